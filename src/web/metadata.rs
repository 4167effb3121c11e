//! `GET /.well-known/oauth-authorization-server` (RFC 8414). Every URL comes from the
//! configured issuer, so it is right behind a proxy.

use std::sync::Arc;

use serde_json::json;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::AppState;
use super::{cors, with_state};
use crate::settings::{RegistrationPolicy, Settings};

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::path!(".well-known" / "oauth-authorization-server")
        .and(super::request::get_or_head())
        .and(warp::header::optional::<String>("origin"))
        .and(with_state(state))
        .map(|origin: Option<String>, state: Arc<AppState>| {
            let r = warp::reply::json(&document(&state.settings)).into_response();
            cors::apply(r, &state, origin.as_deref(), cors::Policy::AnyOrigin)
        })
        .boxed()
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
        "scopes_supported": settings.registration.allowed_scope.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "authorization_response_iss_parameter_supported": true,
    });
    if settings.registration.policy != RegistrationPolicy::Closed {
        doc["registration_endpoint"] = json!(format!("{iss}/oauth2/register"));
    }
    doc
}
