//! RFC 8707 resource indicators: which resource server a grant is for. The identifier must be
//! one of the settings' `[[resources]]`; it becomes the `aud` of the grant's access tokens
//! (introspection answers it; JWT access tokens carry it) and narrows the grant's scope to
//! what that server accepts.
//!
//! One resource per grant: a token has one audience, so a resource server never receives a
//! token also valid at another (RFC 8707 §2's "audience-restricted" tokens). A second
//! `resource` parameter is `invalid_target`.

use crate::domain::scope::Scope;
use crate::oauth::error::OAuthError;
use crate::oauth::ErrorCode::{InvalidScope, InvalidTarget};
use crate::settings::{ResourceSettings, Settings};

pub const PARAM: &str = "resource";

/// Scopes the authorization server itself serves (OpenID Connect Core 1.0 §5.4, §11): they
/// stay in a grant whatever resource it is for.
const SERVER_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The refusal of a repeated `resource` parameter.
pub fn repeated() -> OAuthError {
    OAuthError::new(
        InvalidTarget,
        "one resource per request: a token has a single audience",
    )
}

/// The resource `requested` names, checked against the settings (RFC 8707 §2: unknown or
/// malformed is `invalid_target`). `None` when no resource was asked for.
pub fn requested<'a>(
    settings: &'a Settings,
    requested: Option<&str>,
) -> Result<Option<&'a ResourceSettings>, OAuthError> {
    let Some(identifier) = requested else {
        return Ok(None);
    };
    match settings.resource(identifier) {
        Some(r) => Ok(Some(r)),
        None => Err(OAuthError::new(
            InvalidTarget,
            "the resource is not one this server issues tokens for",
        )),
    }
}

/// `scope` narrowed to what `resource` accepts, with the server's own scopes kept (RFC 6749
/// §3.3 lets the server grant less than asked; the response's `scope` says what was given).
/// Nothing the resource accepts left is `invalid_scope`.
pub fn narrow(scope: &Scope, resource: Option<&ResourceSettings>) -> Result<Scope, OAuthError> {
    let Some(resource) = resource else {
        return Ok(scope.clone());
    };
    let for_resource = scope.filtered(|v| resource.scopes.iter().any(|s| s == v));
    if for_resource.is_empty() {
        return Err(OAuthError::new(
            InvalidScope,
            "none of the requested scope is accepted by the resource",
        ));
    }
    Ok(scope.filtered(|v| SERVER_SCOPES.contains(&v) || resource.scopes.iter().any(|s| s == v)))
}

/// RFC 8707 §2.2 at the token endpoint for a grant made earlier (a code or a refresh token):
/// `resource` may repeat the grant's resource; any other is `invalid_target`, as the grant
/// was not approved for it.
pub fn matches_grant(requested: Option<&str>, granted: Option<&str>) -> Result<(), OAuthError> {
    match requested {
        Some(r) if Some(r) != granted => Err(OAuthError::new(
            InvalidTarget,
            "the grant was not made for this resource",
        )),
        _ => Ok(()),
    }
}

/// The audience of an access token: its grant's resource, else `tokens.default_audience`,
/// else the issuer (the authorization server's own userinfo endpoint accepts it).
pub fn audience<'a>(settings: &'a Settings, resource: Option<&'a str>) -> &'a str {
    match resource {
        Some(r) => r,
        None if !settings.tokens.default_audience.is_empty() => &settings.tokens.default_audience,
        None => settings.issuer(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> ResourceSettings {
        ResourceSettings {
            identifier: "https://api.example.com".into(),
            scopes: vec!["read".into(), "write".into()],
        }
    }

    #[test]
    fn a_resource_narrows_the_scope_and_keeps_the_servers_own() {
        let asked = Scope::parse("openid read admin offline_access").unwrap();
        let got = narrow(&asked, Some(&api())).unwrap();
        assert_eq!(got.to_string(), "offline_access openid read");
        assert_eq!(narrow(&asked, None).unwrap(), asked);
    }

    #[test]
    fn nothing_for_the_resource_is_invalid_scope() {
        let asked = Scope::parse("openid admin").unwrap();
        let e = narrow(&asked, Some(&api())).unwrap_err();
        assert_eq!(e.code, InvalidScope);
    }

    #[test]
    fn only_configured_resources_are_targets() {
        let mut settings = Settings::default();
        settings.resources.push(api());
        assert!(requested(&settings, None).unwrap().is_none());
        assert_eq!(
            requested(&settings, Some("https://api.example.com"))
                .unwrap()
                .map(|r| r.identifier.as_str()),
            Some("https://api.example.com")
        );
        // Exact comparison: no trailing-slash or case folding (RFC 8707 §2).
        for other in ["https://api.example.com/", "https://API.example.com", "x"] {
            assert_eq!(
                requested(&settings, Some(other)).unwrap_err().code,
                InvalidTarget
            );
        }
    }

    #[test]
    fn the_token_endpoint_may_only_repeat_the_grants_resource() {
        assert!(matches_grant(None, Some("https://a")).is_ok());
        assert!(matches_grant(Some("https://a"), Some("https://a")).is_ok());
        assert!(matches_grant(Some("https://b"), Some("https://a")).is_err());
        assert!(matches_grant(Some("https://a"), None).is_err());
    }

    #[test]
    fn the_audience_falls_back_to_the_default_then_the_issuer() {
        let mut settings = Settings::default();
        assert_eq!(audience(&settings, None), "http://127.0.0.1:8080");
        settings.tokens.default_audience = "https://apis.example.com".into();
        assert_eq!(audience(&settings, None), "https://apis.example.com");
        assert_eq!(audience(&settings, Some("https://a")), "https://a");
    }
}
