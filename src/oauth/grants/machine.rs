//! What the grant drivers share: Portcullis's records as oxide-auth's `Grant`, and the machines'
//! verdicts as RFC 6749 §5.2 errors.
//!
//! The machines are synchronous and borrow themselves in each output, so a driver answers
//! every step that needs no I/O in a plain loop, leaves the loop with owned values at the one
//! step that does (the exchange), and re-enters with the result. Nothing of a machine's
//! `Input` (which borrows a `&dyn Request`, not `Sync`) lives across an `.await`: the handler
//! futures stay `Send` for `web::detached`.

use chrono::{DateTime, Utc};
use oxide_auth::code_grant::error::{AccessTokenError, AccessTokenErrorType};
use oxide_auth::primitives::grant::{Extensions, Grant};
use oxide_auth::primitives::registrar::{ExactUrl, RegisteredUrl};
use oxide_auth::primitives::scope::Scope as MachineScope;

use crate::domain::scope::Scope;
use crate::oauth::error::{OAuthError, TokenError};
use crate::oauth::ErrorCode;

/// Unix seconds as the machines' time. (Stored times are far inside chrono's range.)
pub fn time(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Our scope as the machines' scope. Both parse RFC 6749 §3.3's characters, so a stored scope
/// that fails here is a corrupt row, not bad input.
pub fn to_machine_scope(scope: &Scope) -> Result<MachineScope, TokenError> {
    scope
        .to_string()
        .parse()
        .map_err(|e| TokenError::Internal(format!("stored scope {scope} does not parse: {e}")))
}

/// The machines' scope (a hash set) back as ours (sorted, so responses are stable).
pub fn from_machine_scope(scope: &MachineScope) -> Result<Scope, TokenError> {
    Scope::parse(&scope.to_string()).ok_or_else(|| {
        TokenError::Internal(format!("oxide-auth produced an invalid scope {scope}"))
    })
}

/// A redirect URI the machines compare as they like. Portcullis has already compared the
/// presented one with the stored one as identical strings (RFC 6749 §4.1.3), which is stricter
/// than the machine's parsed-URL comparison.
pub fn url(uri: &str) -> Result<url::Url, TokenError> {
    url::Url::parse(uri).map_err(|e| {
        TokenError::Internal(format!("stored redirect URI {uri:?} does not parse: {e}"))
    })
}

/// A registered URL for a pre-grant. Clients that only use client credentials have no redirect
/// URI; the machine needs one but never sends anyone there, so the issuer stands in.
pub fn registered_url(uri: &str) -> Result<RegisteredUrl, TokenError> {
    uri.parse::<ExactUrl>()
        .map(RegisteredUrl::Exact)
        .map_err(|e| TokenError::Internal(format!("URL {uri:?} does not parse: {e}")))
}

pub struct GrantParts<'a> {
    pub owner_id: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a Scope,
    /// Unix seconds: the stored expiry. The machines check it against the wall clock after
    /// Portcullis has checked it against its own `now`.
    pub until: i64,
    pub extensions: Extensions,
}

pub fn grant(p: GrantParts<'_>) -> Result<Grant, TokenError> {
    Ok(Grant {
        owner_id: p.owner_id.to_string(),
        client_id: p.client_id.to_string(),
        scope: to_machine_scope(p.scope)?,
        redirect_uri: url(p.redirect_uri)?,
        until: time(p.until),
        extensions: p.extensions,
    })
}

/// A machine's refusal as the RFC 6749 §5.2 error it names; `None` (a primitive error, or the
/// client-credentials machine's `Ignore`) means the driver fed it something it did not expect.
pub fn verdict(description: Option<&mut AccessTokenError>, machine: &str) -> TokenError {
    let Some(error) = description else {
        tracing::error!(
            machine,
            "oxide-auth machine failed on an input its driver gave it"
        );
        return TokenError::Internal(format!("the {machine} machine failed"));
    };
    let (code, text) = match error.kind() {
        AccessTokenErrorType::InvalidRequest => (
            ErrorCode::InvalidRequest,
            "the request is missing or repeats a parameter",
        ),
        AccessTokenErrorType::InvalidClient => (
            ErrorCode::InvalidClient,
            "unknown client or bad credentials",
        ),
        AccessTokenErrorType::InvalidGrant => (ErrorCode::InvalidGrant, "the grant is not valid"),
        AccessTokenErrorType::UnauthorizedClient => (
            ErrorCode::UnauthorizedClient,
            "this client may not use this grant",
        ),
        AccessTokenErrorType::UnsupportedGrantType => (
            ErrorCode::UnsupportedGrantType,
            "this grant type is not supported",
        ),
        AccessTokenErrorType::InvalidScope => (
            ErrorCode::InvalidScope,
            "the requested scope exceeds what was granted",
        ),
    };
    TokenError::OAuth(OAuthError::new(code, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_survive_the_round_trip_sorted() {
        let ours = Scope::parse("write read openid").unwrap();
        let back = from_machine_scope(&to_machine_scope(&ours).unwrap()).unwrap();
        assert_eq!(back.to_string(), "openid read write");
        let empty = Scope::default();
        assert!(from_machine_scope(&to_machine_scope(&empty).unwrap())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unix_time_converts_exactly() {
        assert_eq!(time(1_796_395_500).timestamp(), 1_796_395_500);
    }
}
