//! The authorization endpoint (RFC 6749 §4.1): each browser request, GET or POST, is one call
//! to `authorize`, which answers with an `Outcome`; the web handler only renders it.
//!
//! ```text
//! request invalid, client or redirect URI untrusted → ErrorPage (never redirected, §4.1.2.1)
//! request invalid otherwise, client vetted          → ErrorRedirect (§4.1.2.1)
//! … client self-registered, user not signed in      → UnvettedErrorRedirect (RFC 9700 §4.11.2)
//! … client self-registered, user signed in          → ErrorRedirect
//! request objects (OpenID Connect Core 1.0 §6)       → ErrorRedirect request_not_supported
//! no live session                                   → LoginNeeded
//! … with prompt=none (Core 1.0 §3.1.2.6)            → ErrorRedirect login_required
//! a consent answer not from this site               → ForgedDecision
//! "deny"                                            → ErrorRedirect access_denied
//! "allow"                                           → RedirectWithCode (§4.1.2, RFC 9207 iss)
//! prompt=login, or sign-in older than max_age       → LoginNeeded (none: login_required)
//! consent covers the request and no prompt=consent  → RedirectWithCode
//! prompt=none                                       → ErrorRedirect consent_required
//! otherwise                                         → ConsentNeeded
//! ```

mod machine;
mod prompt;
mod request;

pub use prompt::SUPPORTED as PROMPT_VALUES;

pub use request::{append_query, AuthRequest, ErrorRedirect, REQUEST_PARAMS};

use self::request::Invalid;
use super::client_cache::ClientCache;
use super::id_token::{sid_of, verify_hint};
use super::login::{self, ActiveSession};
use super::params::Params;
use super::ErrorCode;
use crate::keys::KeyRing;
use crate::settings::Settings;
use crate::store::{Pool, StoreError};

/// A browser request to the authorization (or end-session) endpoint, as the web layer
/// received it.
pub struct Incoming<'a> {
    /// The query string (GET) or form body (POST), as received.
    pub raw: &'a str,
    pub is_post: bool,
    /// The session cookie's value, when the browser sent one.
    pub session_cookie: Option<&'a str>,
    /// Whether a form post came from this site (`web::same_origin`); only consulted for a
    /// consent answer.
    pub from_this_site: bool,
}

/// What to do with the request.
#[derive(Debug)]
pub enum Outcome {
    /// The client or its redirect URI cannot be trusted: the user is told, not redirected.
    ErrorPage {
        message: String,
        client_id: Option<String>,
    },
    /// A consent answer whose CSRF token or origin is not this site's: nothing is allowed.
    ForgedDecision { client_id: String },
    /// Back to the client with an error (§4.1.2.1): the URL to send the user agent to.
    ErrorRedirect(String),
    /// An error for a self-registered client, whose redirect URI nobody vetted, before the
    /// user signed in. Redirecting at once would make this server an open redirector (RFC 9700
    /// §4.11.2: anyone may register `https://phish.example/` and link to it through us), so
    /// the user is shown the application and where the link goes, and follows it or not.
    UnvettedErrorRedirect {
        client_id: String,
        client_name: String,
        /// The redirect URI's host, as the user should read it.
        host: String,
        to: String,
    },
    /// No live session: sign in, then come back to `return_to`.
    LoginNeeded { return_to: String },
    /// Ask the user.
    ConsentNeeded(Box<ConsentQuestion>),
    /// Back to the client with a fresh code (§4.1.2): the URL to send the user agent to.
    RedirectWithCode(String),
}

/// What the consent page needs.
#[derive(Debug)]
pub struct ConsentQuestion {
    pub request: AuthRequest,
    pub session: ActiveSession,
    /// The request as a path on this server: where "not you?" comes back to.
    pub return_to: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug: the authorization machine failed on what Portcullis gave it.
    #[error("internal error: {0}")]
    Internal(String),
}

pub async fn authorize(
    pool: &Pool,
    cache: &ClientCache,
    keys: &KeyRing,
    settings: &Settings,
    incoming: Incoming<'_>,
    now: i64,
) -> Result<Outcome, AuthorizeError> {
    let issuer = settings.issuer();
    // A consent answer is the original request plus `decision` and `csrf_token`. The request
    // is parsed once, here: parsing is a good part of this endpoint's own work.
    let mut decision = None;
    let mut csrf = None;
    let mut parsed = Params::parse(incoming.raw);
    if let Ok(p) = &mut parsed {
        if incoming.is_post && p.contains("decision") {
            decision = p.remove("decision");
            csrf = p.remove("csrf_token");
        }
    }
    let client_id = match &parsed {
        Ok(p) => p.get("client_id").map(str::to_string),
        Err(_) => None,
    };
    let req = match request::validate(pool, cache, settings, incoming.raw, parsed).await {
        Ok(r) => r,
        Err(Invalid::Page(message)) => return Ok(Outcome::ErrorPage { message, client_id }),
        Err(Invalid::Redirect(e)) => {
            let signed_in = match incoming.session_cookie {
                Some(_) if e.client.redirect_uris_vetted() => false,
                Some(cookie) => {
                    login::resolve_for_client(pool, settings, cookie, &e.client.client_id, now)
                        .await?
                        .is_some()
                }
                None => false,
            };
            return Ok(error_redirect(e, signed_in, issuer));
        }
        Err(Invalid::Store(e)) => return Err(e.into()),
        Err(Invalid::Internal(cause)) => return Err(AuthorizeError::Internal(cause)),
    };
    // The session, its user and what they allowed this client before: one read.
    let found = match incoming.session_cookie {
        Some(cookie) => {
            login::resolve_for_client(pool, settings, cookie, &req.client.client_id, now).await?
        }
        None => None,
    };
    // Core 1.0 §3.1.2.1 `id_token_hint`: one of our id_tokens for this client (expired is
    // fine) naming who the client expects; someone else signed in must sign in as them.
    let hinted = match req.params.get("id_token_hint") {
        None => None,
        Some(token) => match verify_hint(keys, settings, token, now) {
            Ok(h) if h.aud.iter().any(|a| *a == req.client.client_id) => Some(h.sub),
            _ => {
                let e = request::refused(
                    &req,
                    ErrorCode::InvalidRequest,
                    "id_token_hint is not an id_token this server issued to this client",
                );
                return Ok(error_redirect(e, found.is_some(), issuer));
            }
        },
    };
    let found = found.filter(|(s, _)| hinted.as_ref().is_none_or(|sub| *sub == s.user.id));
    let Some((session, consent)) = found else {
        if req.prompt.none {
            let e = request::refused(&req, ErrorCode::LoginRequired, "the user is not signed in");
            return Ok(error_redirect(e, false, issuer));
        }
        return Ok(login_needed(&req, now));
    };
    let user_id = session.user.id.as_str();
    let auth_time = session.session.created_at;
    let sid = sid_of(&session.session.id_hash);
    let sign_in = (auth_time, sid.as_str());

    if let Some(decision) = decision {
        let csrf_ok = csrf.as_deref().is_some_and(|t| session.csrf_matches(t));
        if !csrf_ok || !incoming.from_this_site {
            return Ok(Outcome::ForgedDecision {
                client_id: req.client.client_id.clone(),
            });
        }
        if decision != "allow" {
            return Ok(error_redirect(request::denied(&req), true, issuer));
        }
        request::remember_consent(pool, user_id, &req, consent.as_ref(), now).await?;
        let to = request::issue_code(pool, settings, user_id, sign_in, &req, now).await?;
        return Ok(Outcome::RedirectWithCode(to));
    }
    // Core 1.0 §3.1.2.1: prompt=login and max_age ask for a sign-in of their own.
    if req.prompt.needs_login(auth_time, now) {
        if req.prompt.none {
            let e = request::refused(
                &req,
                ErrorCode::LoginRequired,
                "the sign-in is older than max_age allows",
            );
            return Ok(error_redirect(e, true, issuer));
        }
        return Ok(login_needed(&req, now));
    }
    if !req.prompt.consent && request::consent_covers(consent.as_ref(), &req) {
        let to = request::issue_code(pool, settings, user_id, sign_in, &req, now).await?;
        return Ok(Outcome::RedirectWithCode(to));
    }
    if req.prompt.none {
        let e = request::refused(
            &req,
            ErrorCode::ConsentRequired,
            "the user has not allowed this application what it asks for",
        );
        return Ok(error_redirect(e, true, issuer));
    }
    Ok(Outcome::ConsentNeeded(Box::new(ConsentQuestion {
        return_to: return_to(&req),
        request: req,
        session,
    })))
}

/// Where to come back to after signing in or answering the consent form: this request again.
fn return_to(req: &AuthRequest) -> String {
    format!("/oauth2/authorize?{}", req.params.to_query())
}

/// To the login page and back. A request that wants a fresh sign-in comes back marked with
/// the time it was sent, so the sign-in it gets satisfies it (`prompt.rs`).
fn login_needed(req: &AuthRequest, now: i64) -> Outcome {
    if !req.prompt.forces_login() {
        return Outcome::LoginNeeded {
            return_to: return_to(req),
        };
    }
    let mut params = req.params.clone();
    params.insert(prompt::LOGIN_AFTER, &now.to_string());
    Outcome::LoginNeeded {
        return_to: format!("/oauth2/authorize?{}", params.to_query()),
    }
}

/// An error redirect, followed at once when the client's redirect URIs were vetted or the user
/// has signed in (RFC 9700 §4.11.2 allows either), otherwise offered as a link.
fn error_redirect(e: ErrorRedirect, signed_in: bool, issuer: &str) -> Outcome {
    let to = e.url(issuer);
    if e.client.redirect_uris_vetted() || signed_in {
        return Outcome::ErrorRedirect(to);
    }
    let host = url::Url::parse(&e.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| e.redirect_uri.clone());
    Outcome::UnvettedErrorRedirect {
        client_id: e.client.client_id.clone(),
        client_name: e.client.name.clone(),
        host,
        to,
    }
}
