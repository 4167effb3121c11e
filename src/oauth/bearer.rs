//! Bearer-token checks (RFC 6750) through oxide-auth's `Resource` machine, for the endpoints
//! Portcullis itself protects: client management (RFC 7592) and userinfo (OpenID Connect Core
//! 1.0 §5.3). The machine reads the `Authorization` header and decides missing credentials,
//! expiry and `insufficient_scope`; Portcullis looks the token up and answers `invalid_token`
//! itself (never feeding the machine "no grant": it would say `invalid_request`, OXIDE-AUTH.md).

use std::borrow::Cow;

use oxide_auth::code_grant::resource::{self, Input, Output, Resource};
use oxide_auth::primitives::grant::Grant;
use oxide_auth::primitives::scope::Scope;

/// Why a request was refused; the web layer turns each into RFC 6750 §3's status and
/// `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No credentials, or another scheme than Bearer (§3.1: answered with no error code).
    #[error("a bearer token is required")]
    Missing,
    /// §3.1 `invalid_request` (400): e.g. the token sent in two ways at once (§2).
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// §3.1 `invalid_token` (401): unknown, expired, revoked, or not an access token.
    #[error("the access token is not valid")]
    InvalidToken,
    /// §3.1 `insufficient_scope` (403), with the scope the resource needs.
    #[error("the access token does not allow this; it needs the scope {0}")]
    InsufficientScope(String),
}

/// How the token arrived (RFC 6750 §2). The query form (§2.3) is refused by the caller: it
/// lands in logs and browser history.
#[derive(Debug, Default, Clone, Copy)]
pub struct Presented<'a> {
    /// The whole `Authorization` header (§2.1).
    pub authorization: Option<&'a str>,
    /// `access_token` from a form body (§2.2).
    pub form_token: Option<&'a str>,
}

/// A check in progress: the token has been read; `finish` is given the grant it stands for.
pub struct BearerCheck {
    machine: Resource,
    token: String,
}

impl BearerCheck {
    /// Reads the token. `required` is the scope the resource needs (`""` when the token
    /// itself is the permission, as for a registration access token).
    pub fn start(presented: Presented<'_>, required: &str) -> Result<Self, BearerError> {
        let header = presented.authorization.map(str::trim);
        let is_bearer = |h: &str| {
            h.get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
        };
        // §2: "Clients MUST NOT use more than one method to transmit the token in each
        // request." Another scheme in the header (Basic, say) is no bearer credential at all.
        let authorization = match (header, presented.form_token) {
            (Some(h), Some(_)) if is_bearer(h) => {
                return Err(BearerError::InvalidRequest(
                    "send the access token in the Authorization header or the body, not both",
                ))
            }
            (Some(h), _) if is_bearer(h) => Cow::Borrowed(h),
            (_, Some(t)) => Cow::Owned(format!("Bearer {t}")),
            _ => return Err(BearerError::Missing),
        };
        let required: Scope = required
            .parse()
            .map_err(|_| BearerError::InsufficientScope(required.to_string()))?;
        let request = Request {
            authorization: Some(authorization),
        };
        let mut machine = Resource::new();
        let token = match machine.advance(Input::Request { request: &request }) {
            Output::DetermineScopes => match machine.advance(Input::Scopes(&[required])) {
                Output::Recover { token } => token.trim().to_string(),
                other => return Err(refusal(other)),
            },
            other => return Err(refusal(other)),
        };
        if token.is_empty() {
            return Err(BearerError::Missing);
        }
        Ok(BearerCheck { machine, token })
    }

    /// The token as presented; look it up, then call `finish`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Hands the machine the grant the token stands for; it checks the expiry and the scope.
    pub fn finish(mut self, grant: Grant) -> Result<Grant, BearerError> {
        match self.machine.advance(Input::Recovered(Some(grant))) {
            Output::Ok(grant) => Ok(*grant),
            other => Err(refusal(other)),
        }
    }
}

/// A grant as the machine sees it: who, for which client, which scope, until when (Unix
/// seconds). Tokens keep no redirect URI; the machine never reads it on this path.
pub fn grant(owner_id: &str, client_id: &str, scope: &str, until: i64) -> Option<Grant> {
    Some(Grant {
        owner_id: owner_id.to_string(),
        client_id: client_id.to_string(),
        scope: scope.parse().ok()?,
        redirect_uri: "urn:portcullis:bearer".parse().ok()?,
        until: chrono::DateTime::from_timestamp(until, 0)?,
        extensions: oxide_auth::primitives::grant::Extensions::new(),
    })
}

fn refusal(output: Output<'_>) -> BearerError {
    use resource::{Error, ErrorCode};
    match output {
        Output::Err(Error::NoAuthentication { .. }) => BearerError::Missing,
        Output::Err(Error::InvalidRequest { .. }) => {
            BearerError::InvalidRequest("the Authorization header is not a bearer credential")
        }
        Output::Err(Error::AccessDenied {
            failure,
            authenticate,
        }) => match failure.code {
            Some(ErrorCode::InsufficientScope) => BearerError::InsufficientScope(
                authenticate
                    .scope
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            ),
            _ => BearerError::InvalidToken,
        },
        // Only a wrong input from this driver gets here; nothing is allowed by it.
        _ => BearerError::InvalidToken,
    }
}

struct Request<'a> {
    authorization: Option<Cow<'a, str>>,
}

impl resource::Request for Request<'_> {
    fn valid(&self) -> bool {
        true
    }

    fn token(&self) -> Option<Cow<'_, str>> {
        self.authorization.as_deref().map(Cow::Borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(h: &str) -> Presented<'_> {
        Presented {
            authorization: Some(h),
            form_token: None,
        }
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_others_are_no_credential() {
        // RFC 7235 §2.1: auth-scheme is case-insensitive.
        assert_eq!(
            BearerCheck::start(header("bEaReR abc"), "")
                .unwrap()
                .token(),
            "abc"
        );
        assert_eq!(
            BearerCheck::start(header("Basic YTpi"), "").err(),
            Some(BearerError::Missing)
        );
        assert_eq!(
            BearerCheck::start(header("Bearer "), "").err(),
            Some(BearerError::Missing)
        );
    }

    #[test]
    fn one_method_only() {
        let both = Presented {
            authorization: Some("Bearer a"),
            form_token: Some("a"),
        };
        assert!(matches!(
            BearerCheck::start(both, "openid").err(),
            Some(BearerError::InvalidRequest(_))
        ));
        let form = Presented {
            authorization: Some("Basic YTpi"),
            form_token: Some("tok"),
        };
        assert_eq!(BearerCheck::start(form, "").unwrap().token(), "tok");
    }
}
