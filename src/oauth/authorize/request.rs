//! Validating an authorization request (RFC 6749 §4.1.1, RFC 7636, RFC 9700) and issuing the
//! code (§4.1.2, RFC 9207).
//!
//! Until the client and redirect URI are known to be good, errors are shown to the user and
//! never redirected (§4.1.2.1: no open redirector). After that, errors go back to the client.
//! Portcullis decides every rule itself first (client, redirect URI with RFC 8252's loopback
//! ports, a missing `response_type`, the client's grants, scope, PKCE), then runs oxide-auth's
//! `Authorization` machine (`machine`) over the result. Codes are issued here (configured
//! lifetime, `iss`), never by the machine's `Pending::authorize` (a fixed 10 minutes).

use std::sync::Arc;

use super::machine::{pre_grant_scope, MachineVerdict};
use super::prompt::Prompt;
use crate::domain::clients::{could_be_client_id, redirect_uri_matches, Client, GrantType};
use crate::domain::pkce;
use crate::domain::scope::Scope;
use crate::domain::secret::{prefix, time_ordered_id, Secret};
use crate::oauth::client_cache::ClientCache;
use crate::oauth::params::{Params, Repeated};
use crate::oauth::resource;
use crate::oauth::ErrorCode::{self, *};
use crate::oauth::OAuthError;
use crate::settings::Settings;
use crate::store::models::{AuthorizationCode, Consent};
use crate::store::{codes, consents, Pool, StoreError};

/// The parameters a consent form carries back, besides its own.
pub const REQUEST_PARAMS: [&str; 9] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "resource",
];

/// The longest `nonce` kept (characters): the column's size on MariaDB.
const MAX_NONCE_CHARS: usize = 255;

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub client: Arc<Client>,
    pub redirect_uri: String,
    pub redirect_uri_explicit: bool,
    pub scope: Scope,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    /// OpenID Connect's `nonce`, returned in the id_token.
    pub nonce: Option<String>,
    /// OpenID Connect's `prompt` and `max_age`.
    pub prompt: Prompt,
    /// The RFC 8707 resource the grant is for, one of the settings' `[[resources]]`.
    pub resource: Option<String>,
    /// The parameters as received, to carry through login and the consent form.
    pub params: Params,
}

/// Why a request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    /// Shown to the user on an error page; the client and redirect URI are not trusted.
    #[error("{0}")]
    Page(String),
    /// Sent back to the client's redirect URI.
    #[error("{}", .0.code.as_str())]
    Redirect(ErrorRedirect),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug: the authorization machine failed on what Portcullis gave it.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Debug)]
pub struct ErrorRedirect {
    /// Whose redirect URI it is: whether it may be followed at once depends on who registered
    /// the client.
    pub client: Arc<Client>,
    pub redirect_uri: String,
    pub code: ErrorCode,
    pub description: String,
    pub state: Option<String>,
}

impl ErrorRedirect {
    pub fn url(&self, issuer: &str) -> String {
        let mut pairs = vec![
            ("error", self.code.as_str()),
            ("error_description", self.description.as_str()),
        ];
        if let Some(s) = &self.state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", issuer));
        append_query(&self.redirect_uri, &pairs)
    }
}

/// Adds parameters to a redirect URI, keeping any query it already has (RFC 6749 §3.1.2).
pub fn append_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = match url::Url::parse(uri) {
        Ok(u) => u,
        Err(_) => return uri.to_string(),
    };
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

/// Validates an authorization request: `parsed` is `raw` (the query string or form body as
/// received) parsed; `raw` is read again only when a parameter was repeated.
pub async fn validate(
    pool: &Pool,
    cache: &ClientCache,
    settings: &Settings,
    raw: &str,
    parsed: Result<Params, Repeated>,
) -> Result<AuthRequest, Invalid> {
    let params = match parsed {
        Ok(p) => p,
        // A repeated client_id or redirect_uri makes the redirect target unknowable.
        Err(rep) if rep.0 == "client_id" || rep.0 == "redirect_uri" => {
            return Err(Invalid::Page(format!(
                "The request repeats the {} parameter.",
                rep.0
            )))
        }
        Err(rep) => {
            let lenient = Params::from_pairs(
                url::form_urlencoded::parse(raw.as_bytes())
                    .into_owned()
                    .filter(|(k, _)| k == "client_id" || k == "redirect_uri" || k == "state"),
            )
            .unwrap_or_default();
            let (client, redirect_uri, _) = client_and_redirect(pool, cache, &lenient).await?;
            let e = match rep.0.as_str() {
                // RFC 8707 §2 allows several; Portcullis grants one (`resource`).
                resource::PARAM => resource::repeated(),
                _ => OAuthError::new(InvalidRequest, format!("parameter {} is repeated", rep.0)),
            };
            return Err(redirect(
                &client,
                redirect_uri,
                e.code,
                e.description,
                &lenient,
            ));
        }
    };
    let (client, redirect_uri, explicit) = client_and_redirect(pool, cache, &params).await?;
    let fail = |code, text: &str| {
        Err(redirect(
            &client,
            redirect_uri.clone(),
            code,
            text.to_string(),
            &params,
        ))
    };

    // OpenID Connect Core 1.0 §6: request objects, by value or by reference, are not
    // supported (discovery says so), and are refused rather than ignored: their contents
    // would override the plain parameters.
    if params.contains("request") {
        return fail(RequestNotSupported, "request objects are not supported");
    }
    if params.contains("request_uri") {
        return fail(RequestUriNotSupported, "request_uri is not supported");
    }
    match params.get("response_type") {
        None => return fail(InvalidRequest, "response_type is required"),
        Some("code") => {}
        Some(_) => {
            return fail(
                UnsupportedResponseType,
                "only response_type=code is supported",
            )
        }
    }
    if !client.may_use(GrantType::AuthorizationCode) {
        return fail(
            UnauthorizedClient,
            "this client may not use the authorization code grant",
        );
    }
    let Some(scope) = Scope::requested(params.get("scope"), &client.scope) else {
        return fail(
            InvalidScope,
            "the requested scope is not allowed for this client",
        );
    };
    // RFC 8707 §2: the resource server the grant is for, and the scope it accepts.
    let target = match resource::requested(settings, params.get(resource::PARAM)) {
        Ok(t) => t,
        Err(e) => return fail(e.code, &e.description),
    };
    let scope = match resource::narrow(&scope, target) {
        Ok(s) => s,
        Err(e) => return fail(e.code, &e.description),
    };
    // PKCE: S256 only; a challenge without a method means `plain` (RFC 7636 §4.3), refused.
    let challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) if client.is_public() => {
            return fail(
                InvalidRequest,
                "code_challenge (PKCE, S256) is required for public clients",
            )
        }
        (None, None) => None,
        (None, Some(_)) => {
            return fail(
                InvalidRequest,
                "code_challenge_method without code_challenge",
            )
        }
        (Some(_), m) if m != Some(pkce::S256) => {
            return fail(
                InvalidRequest,
                "code_challenge_method must be S256 (plain is not supported)",
            )
        }
        (Some(c), _) if !pkce::is_valid_s256_challenge(c) => {
            return fail(InvalidRequest, "malformed code_challenge")
        }
        (Some(c), _) => Some(c.to_string()),
    };
    // OpenID Connect Core 1.0 §3.1.2.1: any string, echoed in the id_token; bounded here, so
    // MariaDB never truncates what SQLite would keep.
    let nonce = params.get("nonce");
    if nonce.is_some_and(|n| n.chars().count() > MAX_NONCE_CHARS) {
        return fail(InvalidRequest, "nonce is longer than 255 characters");
    }
    let nonce = nonce.map(str::to_string);
    let prompt = match Prompt::parse(&params) {
        Ok(p) => p,
        Err(why) => return fail(InvalidRequest, &why),
    };
    let scope = match pre_grant_scope(&params, &client.client_id, &redirect_uri, &scope) {
        Ok(s) => s,
        Err(MachineVerdict::Refused(code)) => {
            return fail(code, "the authorization request is not valid")
        }
        Err(MachineVerdict::Failed(why)) => return Err(Invalid::Internal(why)),
    };
    Ok(AuthRequest {
        state: params.get("state").map(str::to_string),
        client,
        redirect_uri,
        redirect_uri_explicit: explicit,
        scope,
        code_challenge: challenge,
        nonce,
        prompt,
        resource: target.map(|r| r.identifier.clone()),
        params,
    })
}

fn redirect(
    client: &Arc<Client>,
    redirect_uri: String,
    code: ErrorCode,
    description: String,
    params: &Params,
) -> Invalid {
    Invalid::Redirect(ErrorRedirect {
        client: client.clone(),
        redirect_uri,
        code,
        description,
        state: params.get("state").map(str::to_string),
    })
}

/// The client and the redirect URI to use. Failures here are never redirected.
async fn client_and_redirect(
    pool: &Pool,
    cache: &ClientCache,
    params: &Params,
) -> Result<(Arc<Client>, String, bool), Invalid> {
    let Some(client_id) = params.get("client_id") else {
        return Err(Invalid::Page("The request has no client_id.".into()));
    };
    // An id no client can have is not looked up (MariaDB would refuse non-ASCII with an error).
    let client = if could_be_client_id(client_id) {
        cache.get(pool, client_id).await?.0
    } else {
        None
    };
    let Some(client) = client else {
        return Err(Invalid::Page(
            "The application that sent you here is not registered.".into(),
        ));
    };
    let registered = &client.redirect_uris;
    match params.get("redirect_uri") {
        Some(uri) if registered.iter().any(|r| redirect_uri_matches(r, uri)) => {
            Ok((client, uri.to_string(), true))
        }
        Some(_) => Err(Invalid::Page(
            "The redirect URI does not match any registered for this application.".into(),
        )),
        None if registered.len() == 1 => {
            let only = registered[0].clone();
            Ok((client, only, false))
        }
        None => Err(Invalid::Page(
            "The request has no redirect_uri and the application has several.".into(),
        )),
    }
}

/// Whether the user already allowed this client everything the request asks for.
pub fn consent_covers(consent: Option<&Consent>, req: &AuthRequest) -> bool {
    consent.is_some_and(|c| {
        req.scope
            .is_subset_of(&Scope::parse(&c.scope).unwrap_or_default())
    })
}

/// Remembers the consent, adding to what was allowed before (`before`, as read with the
/// session: the consent row is read once per request).
pub async fn remember_consent(
    pool: &Pool,
    user_id: &str,
    req: &AuthRequest,
    before: Option<&Consent>,
    now: i64,
) -> Result<(), StoreError> {
    let scope = match before {
        Some(c) => Scope::parse(&c.scope).unwrap_or_default().union(&req.scope),
        None => req.scope.clone(),
    };
    consents::save(
        pool,
        &Consent {
            user_id: user_id.into(),
            client_id: req.client.client_id.clone(),
            scope: scope.to_string(),
            granted_at: now,
        },
    )
    .await
}

/// Issues a code and returns the URL to send the user agent to (RFC 6749 §4.1.2, RFC 9207).
/// `auth_time` and `sid`: the sign-in whose session approved it.
pub async fn issue_code(
    pool: &Pool,
    settings: &Settings,
    user_id: &str,
    (auth_time, sid): (i64, &str),
    req: &AuthRequest,
    now: i64,
) -> Result<String, StoreError> {
    let code = Secret::generate(prefix::CODE);
    codes::insert(
        pool,
        &AuthorizationCode {
            code_hash: code.digest().as_bytes().to_vec(),
            client_id: req.client.client_id.clone(),
            user_id: user_id.to_string(),
            redirect_uri: req.redirect_uri.clone(),
            redirect_uri_explicit: req.redirect_uri_explicit,
            scope: req.scope.to_string(),
            code_challenge: req.code_challenge.clone(),
            code_challenge_method: req.code_challenge.as_ref().map(|_| pkce::S256.to_string()),
            nonce: req.nonce.clone(),
            family_id: time_ordered_id(),
            created_at: now,
            expires_at: now + settings.tokens.code_ttl_secs,
            consumed_at: None,
            auth_time: Some(auth_time),
            resource: req.resource.clone(),
            sid: Some(sid.to_string()),
        },
    )
    .await?;
    let mut pairs = vec![("code", code.expose())];
    if let Some(s) = &req.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", settings.issuer()));
    Ok(append_query(&req.redirect_uri, &pairs))
}

/// The user said no (RFC 6749 §4.1.2.1 `access_denied`).
pub fn denied(req: &AuthRequest) -> ErrorRedirect {
    refused(req, AccessDenied, "the user denied the request")
}

/// An error about a valid request, sent back to its redirect URI.
pub fn refused(req: &AuthRequest, code: ErrorCode, description: &str) -> ErrorRedirect {
    ErrorRedirect {
        client: req.client.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code,
        description: description.into(),
        state: req.state.clone(),
    }
}
