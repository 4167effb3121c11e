//! Every error code Portcullis puts on the wire, in one enum, so no handler spells one as a
//! string:
//!
//! - RFC 6749 §4.1.2.1 (authorization errors, redirected) and §5.2 (token endpoint errors),
//!   which RFC 7009 §2.2.1 and RFC 7662 §2.3 reuse for revocation and introspection;
//! - RFC 6750 §3.1 (bearer tokens) and RFC 7009 §2.2.1's `unsupported_token_type`;
//! - RFC 7591 §3.2.2 (dynamic registration);
//! - OpenID Connect Core 1.0 §3.1.2.6 (authentication errors, redirected like RFC 6749's);
//! - two of Portcullis's own, for requests no endpoint takes (no RFC names these).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    // RFC 6749
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    // RFC 6750
    InvalidToken,
    InsufficientScope,
    // RFC 7009
    UnsupportedTokenType,
    // RFC 7591
    InvalidRedirectUri,
    InvalidClientMetadata,
    // RFC 8707
    InvalidTarget,
    // OpenID Connect Core 1.0
    LoginRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    // Portcullis
    NotFound,
    MethodNotAllowed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode::*;

    #[test]
    fn codes_are_the_rfc_spellings() {
        let all = [
            InvalidRequest,
            InvalidClient,
            InvalidGrant,
            UnauthorizedClient,
            UnsupportedGrantType,
            UnsupportedResponseType,
            InvalidScope,
            AccessDenied,
            ServerError,
            TemporarilyUnavailable,
            InvalidToken,
            InsufficientScope,
            UnsupportedTokenType,
            InvalidRedirectUri,
            InvalidClientMetadata,
            InvalidTarget,
            LoginRequired,
            ConsentRequired,
            RequestNotSupported,
            RequestUriNotSupported,
            NotFound,
            MethodNotAllowed,
        ];
        let names: std::collections::HashSet<&str> = all.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), all.len(), "no two codes share a spelling");
        // RFC 6749 Appendix A.7: %x20-21 / %x23-5B / %x5D-7E; ours are all lower snake case.
        assert!(names
            .iter()
            .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        assert_eq!(InvalidClientMetadata.to_string(), "invalid_client_metadata");
    }
}
