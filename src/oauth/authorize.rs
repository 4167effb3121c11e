//! The authorization endpoint (RFC 6749 §4.1.1–4.1.2, RFC 7636, RFC 9207, RFC 9700).
//!
//! Until the client and redirect URI are known to be good, errors are shown to the user and
//! never redirected (§4.1.2.1: no open redirector). After that, errors go back to the client.
//!
//! Portcullis decides every rule itself first (client, redirect URI with RFC 8252's loopback
//! ports, a missing `response_type`, the client's grants, scope, PKCE), then runs oxide-auth's
//! `Authorization` machine over the result, which binds the client to the redirect URI, checks
//! the response type and scope syntax again and yields the pre-grant the code is issued for.
//! Codes are issued by Portcullis (configured lifetime, `iss`), never by the machine's
//! `Pending::authorize` (a fixed 10 minutes).

use std::borrow::Cow;

use super::client_cache::ClientCache;
use super::params::Params;
use super::ErrorCode::{self, *};
use crate::domain::clients::{redirect_uri_matches, GRANT_AUTHORIZATION_CODE};
use crate::domain::pkce;
use crate::domain::scope::Scope;
use crate::domain::secret::{prefix, random_id, Secret};
use crate::settings::Settings;
use crate::store::models::{AuthorizationCode, Client, Consent};
use crate::store::{codes, consents, Pool, StoreError};

/// The parameters a consent form carries back, besides its own.
pub const REQUEST_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub redirect_uri_explicit: bool,
    pub scope: Scope,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    /// The parameters as received, to carry through login and the consent form.
    pub params: Params,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
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

/// Validates an authorization request. `raw` is the query string or form body as received.
pub async fn validate(
    pool: &Pool,
    cache: &ClientCache,
    raw: &str,
) -> Result<AuthRequest, AuthorizeError> {
    let params = match Params::parse(raw) {
        Ok(p) => p,
        // A repeated client_id or redirect_uri makes the redirect target unknowable.
        Err(rep) if rep.0 == "client_id" || rep.0 == "redirect_uri" => {
            return Err(AuthorizeError::Page(format!(
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
            drop(client);
            return Err(redirect(
                redirect_uri,
                InvalidRequest,
                format!("parameter {} is repeated", rep.0),
                &lenient,
            ));
        }
    };
    let (client, redirect_uri, explicit) = client_and_redirect(pool, cache, &params).await?;
    let fail = |code, text: &str| {
        Err(redirect(
            redirect_uri.clone(),
            code,
            text.to_string(),
            &params,
        ))
    };

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
    if !client.grant_type_list().contains(&GRANT_AUTHORIZATION_CODE) {
        return fail(
            UnauthorizedClient,
            "this client may not use the authorization code grant",
        );
    }
    let allowed = Scope::parse(&client.scope).unwrap_or_default();
    let Some(scope) = Scope::requested(params.get("scope"), &allowed) else {
        return fail(
            InvalidScope,
            "the requested scope is not allowed for this client",
        );
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
    let scope = match pre_grant_scope(&params, &client.client_id, &redirect_uri, &scope) {
        Ok(s) => s,
        Err(MachineVerdict::Refused(code)) => {
            return fail(code, "the authorization request is not valid")
        }
        Err(MachineVerdict::Failed(why)) => return Err(AuthorizeError::Internal(why)),
    };
    Ok(AuthRequest {
        state: params.get("state").map(str::to_string),
        client,
        redirect_uri,
        redirect_uri_explicit: explicit,
        scope,
        code_challenge: challenge,
        params,
    })
}

/// The request as oxide-auth's `Authorization` machine sees it: the parameters as received,
/// except the redirect URI, which is the one Portcullis resolved (the registered one when the
/// request named none, or the presented loopback URI whose port may differ).
struct MachineRequest<'a> {
    params: &'a Params,
    redirect_uri: &'a str,
}

impl oxide_auth::code_grant::authorization::Request for MachineRequest<'_> {
    fn valid(&self) -> bool {
        true
    }

    fn client_id(&self) -> Option<Cow<'_, str>> {
        self.params.get("client_id").map(Cow::Borrowed)
    }

    fn scope(&self) -> Option<Cow<'_, str>> {
        self.params.get("scope").map(Cow::Borrowed)
    }

    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.redirect_uri))
    }

    fn state(&self) -> Option<Cow<'_, str>> {
        self.params.get("state").map(Cow::Borrowed)
    }

    fn response_type(&self) -> Option<Cow<'_, str>> {
        self.params.get("response_type").map(Cow::Borrowed)
    }

    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.params.get(key).map(Cow::Borrowed)
    }
}

enum MachineVerdict {
    /// The machine refused the request (an error it would redirect with).
    Refused(ErrorCode),
    /// The machine failed on an input Portcullis gave it: a bug, logged.
    Failed(String),
}

/// Runs the `Authorization` machine over a request Portcullis has accepted; returns the scope
/// of the pre-grant it yields. Synchronous: no `Input` (which borrows the request) is held
/// across an `.await`.
fn pre_grant_scope(
    params: &Params,
    client_id: &str,
    redirect_uri: &str,
    scope: &Scope,
) -> Result<Scope, MachineVerdict> {
    use oxide_auth::code_grant::authorization::{Authorization, Error, Input, Output};
    use oxide_auth::code_grant::error::AuthorizationErrorType as Kind;
    use oxide_auth::primitives::grant::Extensions;
    use oxide_auth::primitives::registrar::{BoundClient, ExactUrl, PreGrant, RegisteredUrl};

    let failed = |why: String| {
        tracing::error!(client_id, %why, "oxide-auth authorization machine failed");
        MachineVerdict::Failed(why)
    };
    let request = MachineRequest {
        params,
        redirect_uri,
    };
    let registered = redirect_uri
        .parse::<ExactUrl>()
        .map(RegisteredUrl::Exact)
        .map_err(|e| failed(format!("redirect URI does not parse: {e}")))?;
    let machine_scope: oxide_auth::primitives::scope::Scope = scope
        .to_string()
        .parse()
        .map_err(|e| failed(format!("scope does not parse: {e}")))?;
    let mut machine = Authorization::new(&request);
    let mut input = Input::None;
    loop {
        input = match machine.advance(input) {
            Output::Bind { client_id, .. } => Input::Bound {
                request: &request,
                bound_client: BoundClient {
                    client_id: Cow::Owned(client_id),
                    redirect_uri: Cow::Owned(registered.clone()),
                },
            },
            Output::Extend => Input::Extended(Extensions::new()),
            Output::Negotiate { bound_client, .. } => Input::Negotiated {
                pre_grant: PreGrant {
                    client_id: bound_client.client_id.to_string(),
                    redirect_uri: registered.clone(),
                    scope: machine_scope.clone(),
                },
                state: params.get("state").map(str::to_string),
            },
            Output::Ok { pre_grant, .. } => {
                return Scope::parse(&pre_grant.scope.to_string())
                    .ok_or_else(|| failed("the machine produced an invalid scope".into()))
            }
            Output::Err(Error::Redirect(mut url)) => {
                let code = match url.description().kind() {
                    Kind::InvalidScope => ErrorCode::InvalidScope,
                    Kind::UnsupportedResponseType => ErrorCode::UnsupportedResponseType,
                    Kind::UnauthorizedClient => ErrorCode::UnauthorizedClient,
                    Kind::AccessDenied => ErrorCode::AccessDenied,
                    _ => ErrorCode::InvalidRequest,
                };
                return Err(MachineVerdict::Refused(code));
            }
            Output::Err(Error::Ignore) => {
                return Err(failed("the machine ignored the request".into()))
            }
            Output::Err(Error::PrimitiveError) => {
                return Err(failed("the machine got an input it did not expect".into()))
            }
        };
    }
}

fn redirect(
    redirect_uri: String,
    code: ErrorCode,
    description: String,
    params: &Params,
) -> AuthorizeError {
    AuthorizeError::Redirect(ErrorRedirect {
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
) -> Result<(Client, String, bool), AuthorizeError> {
    let Some(client_id) = params.get("client_id") else {
        return Err(AuthorizeError::Page("The request has no client_id.".into()));
    };
    let (Some(client), _) = cache.get(pool, client_id).await? else {
        return Err(AuthorizeError::Page(
            "The application that sent you here is not registered.".into(),
        ));
    };
    let registered = client.redirect_uri_list();
    match params.get("redirect_uri") {
        Some(uri) if registered.iter().any(|r| redirect_uri_matches(r, uri)) => {
            Ok((client, uri.to_string(), true))
        }
        Some(_) => Err(AuthorizeError::Page(
            "The redirect URI does not match any registered for this application.".into(),
        )),
        None if registered.len() == 1 => Ok((client, registered[0].clone(), false)),
        None => Err(AuthorizeError::Page(
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

/// Remembers the consent (adding to what was allowed before).
pub async fn remember_consent(
    pool: &Pool,
    user_id: &str,
    req: &AuthRequest,
    now: i64,
) -> Result<(), StoreError> {
    let before = consents::find(pool, user_id, &req.client.client_id).await?;
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
pub async fn issue_code(
    pool: &Pool,
    settings: &Settings,
    user_id: &str,
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
            nonce: None,
            family_id: random_id(),
            created_at: now,
            expires_at: now + settings.tokens.code_ttl_secs,
            consumed_at: None,
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
    ErrorRedirect {
        redirect_uri: req.redirect_uri.clone(),
        code: AccessDenied,
        description: "the user denied the request".into(),
        state: req.state.clone(),
    }
}
