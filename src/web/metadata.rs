//! `GET /.well-known/oauth-authorization-server` (RFC 8414) and
//! `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0): one document, the
//! second with the OpenID Connect members added. Every URL comes from the configured issuer,
//! so it is right behind a proxy.

use std::sync::Arc;

use serde_json::json;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::AppState;
use super::{cors, with_state};
use crate::settings::{RegistrationPolicy, Settings};

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let oauth = warp::path!(".well-known" / "oauth-authorization-server").map(|| false);
    let openid = warp::path!(".well-known" / "openid-configuration").map(|| true);
    oauth
        .or(openid)
        .unify()
        .and(super::request::get_or_head())
        .and(warp::header::optional::<String>("origin"))
        .and(with_state(state))
        .map(
            |openid: bool, origin: Option<String>, state: Arc<AppState>| {
                let doc = if openid {
                    openid_document(&state.settings)
                } else {
                    document(&state.settings)
                };
                let r = warp::reply::json(&doc).into_response();
                cors::apply(r, &state, origin.as_deref(), cors::Policy::AnyOrigin)
            },
        )
        .boxed()
}

/// The RFC 8414 document plus what OpenID Connect Discovery 1.0 §3 adds. Only what is built is
/// listed.
pub fn openid_document(settings: &Settings) -> serde_json::Value {
    let mut doc = document(settings);
    doc["userinfo_endpoint"] = json!(format!("{}/oauth2/userinfo", settings.issuer()));
    // RP-Initiated Logout 1.0 §2.1.
    doc["end_session_endpoint"] = json!(format!("{}/oauth2/logout", settings.issuer()));
    doc["subject_types_supported"] = json!(["public"]);
    doc["id_token_signing_alg_values_supported"] = json!(crate::keys::Algorithm::ALL
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>());
    doc["claims_supported"] = json!([
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "at_hash",
        "sid",
        "preferred_username",
        "name",
        "given_name",
        "family_name",
        "updated_at",
        "email",
        "email_verified"
    ]);
    doc["prompt_values_supported"] = json!(crate::oauth::authorize::PROMPT_VALUES);
    doc["claims_parameter_supported"] = json!(false);
    doc["request_parameter_supported"] = json!(false);
    // Its default is true (§3), so it must be said.
    doc["request_uri_parameter_supported"] = json!(false);
    doc
}

pub fn document(settings: &Settings) -> serde_json::Value {
    let iss = settings.issuer();
    let client_auth = ["client_secret_basic", "client_secret_post"];
    let mut doc = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth2/authorize"),
        "token_endpoint": format!("{iss}/oauth2/token"),
        "introspection_endpoint": format!("{iss}/oauth2/introspect"),
        "revocation_endpoint": format!("{iss}/oauth2/revoke"),
        "jwks_uri": format!("{iss}/oauth2/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes_supported(settings),
        "authorization_response_iss_parameter_supported": true,
    });
    if settings.registration.policy != RegistrationPolicy::Closed {
        doc["registration_endpoint"] = json!(format!("{iss}/oauth2/register"));
    }
    doc
}

/// The scopes OpenID Connect defines that Portcullis acts on (`openid`: id_tokens and
/// userinfo; `profile`, `email`: the claims userinfo releases, Core 1.0 §5.4), then those
/// registration allows.
fn scopes_supported(settings: &Settings) -> Vec<&str> {
    let mut scopes = vec![crate::oauth::id_token::OPENID, "profile", "email"];
    for s in settings.registration.allowed_scope.split(' ') {
        if !s.is_empty() && !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    scopes
}
