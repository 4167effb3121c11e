//! RP-Initiated Logout 1.0: an application sends the user here to end their session at
//! Portcullis, then (optionally) back to a URI it registered.
//!
//! ```text
//! a parameter repeated, an id_token_hint not ours, an unknown client,
//! a client_id the hint was not issued to, an unregistered
//! post_logout_redirect_uri                          → ErrorPage (never redirected)
//! no live session                                   → SignedOut (nothing to end)
//! the confirmation form, from this site, CSRF good  → end the session, SignedOut
//! … not from this site or CSRF wrong                → Forged
//! the hint names this session (sub and sid)         → end the session, SignedOut
//! otherwise                                         → Confirm (a link alone may not sign
//!                                                     anyone out: §2, "logout CSRF")
//! ```

use std::sync::Arc;

// The same browser request as the authorization endpoint's: a POST (an application may send
// the request as a form post too, §2) is the confirmation form only when it carries
// `csrf_token`.
use super::authorize::append_query;
pub use super::authorize::Incoming;
use super::client_cache::ClientCache;
use super::id_token::{self, verify_hint};
use super::login::{self, ActiveSession};
use super::params::Params;
use crate::domain::clients::{could_be_client_id, Client};
use crate::keys::KeyRing;
use crate::settings::Settings;
use crate::store::{Pool, StoreError};

#[derive(Debug)]
pub enum Outcome {
    ErrorPage(String),
    /// The session is over (or there was none): go to `to`, the client's
    /// post_logout_redirect_uri with its `state`, or the signed-out page.
    SignedOut {
        to: String,
    },
    /// The confirmation form did not come from this site.
    Forged,
    /// Ask the user.
    Confirm(Box<Confirmation>),
}

/// What the confirmation page needs.
#[derive(Debug)]
pub struct Confirmation {
    pub session: ActiveSession,
    pub client: Option<Arc<Client>>,
    /// The parameters the form posts back.
    pub hidden: Vec<(&'static str, String)>,
}

pub const SIGNED_OUT: &str = "/signed-out";

pub async fn end_session(
    pool: &Pool,
    cache: &ClientCache,
    keys: &KeyRing,
    settings: &Settings,
    incoming: Incoming<'_>,
    now: i64,
) -> Result<Outcome, StoreError> {
    let Ok(params) = Params::parse(incoming.raw) else {
        return Ok(Outcome::ErrorPage(
            "The sign-out link repeats a parameter.".into(),
        ));
    };
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => match verify_hint(keys, settings, token, now) {
            Ok(h) => Some(h),
            Err(_) => {
                return Ok(Outcome::ErrorPage(
                    "The sign-out link carries an id_token this site did not issue.".into(),
                ))
            }
        },
    };
    // §2: client_id, or the hint's audience, says which client is asking.
    let client_id = match (params.get("client_id"), &hint) {
        (Some(id), Some(h)) if !h.aud.iter().any(|a| a == id) => {
            return Ok(Outcome::ErrorPage(
                "The sign-out link names another application than the id_token it carries.".into(),
            ))
        }
        (Some(id), _) => Some(id.to_string()),
        (None, Some(h)) if h.aud.len() == 1 => Some(h.aud[0].clone()),
        _ => None,
    };
    let client = match &client_id {
        Some(id) => {
            let found = if could_be_client_id(id) {
                cache.get(pool, id).await?.0
            } else {
                None
            };
            let Some(c) = found else {
                return Ok(Outcome::ErrorPage(
                    "The application that sent you here is not registered.".into(),
                ));
            };
            Some(c)
        }
        None => None,
    };
    // §3: only a URI registered for the client, matched exactly; never an open redirector.
    let to = match params.get("post_logout_redirect_uri") {
        None => SIGNED_OUT.to_string(),
        Some(uri) => {
            let registered = client
                .as_ref()
                .is_some_and(|c| c.post_logout_redirect_uris().any(|r| r == uri));
            if !registered {
                return Ok(Outcome::ErrorPage(
                    "The address to return to after signing out is not registered for this application."
                        .into(),
                ));
            }
            match params.get("state") {
                Some(state) => append_query(uri, &[("state", state)]),
                None => uri.to_string(),
            }
        }
    };
    let session = match incoming.session_cookie {
        Some(cookie) => login::resolve(pool, settings, cookie, now).await?,
        None => None,
    };
    let Some(session) = session else {
        return Ok(Outcome::SignedOut { to });
    };
    if incoming.is_post && params.contains("csrf_token") {
        let csrf_ok = params
            .get("csrf_token")
            .is_some_and(|t| session.csrf_matches(t));
        if !csrf_ok || !incoming.from_this_site {
            return Ok(Outcome::Forged);
        }
        login::end_session(pool, &session).await?;
        return Ok(Outcome::SignedOut { to });
    }
    // The hint ties the request to this very session: same user and, by `sid` (or, in
    // id_tokens from before it was issued, `auth_time`), the same sign-in.
    let tied = hint.as_ref().is_some_and(|h| {
        h.sub == session.user.id
            && match &h.sid {
                Some(sid) => *sid == id_token::sid_of(&session.session.id_hash),
                None => h.auth_time == Some(session.session.created_at),
            }
    });
    if tied {
        login::end_session(pool, &session).await?;
        return Ok(Outcome::SignedOut { to });
    }
    let mut hidden = Vec::new();
    if let Some(c) = &client {
        hidden.push(("client_id", c.client_id.clone()));
    }
    for name in ["post_logout_redirect_uri", "state"] {
        if let Some(v) = params.get(name) {
            hidden.push((name, v.to_string()));
        }
    }
    Ok(Outcome::Confirm(Box::new(Confirmation {
        session,
        client,
        hidden,
    })))
}
