//! OAuth error responses: the wire code in `Display` (RFC 6749 §4.1.2.1, §5.2).

pub use crate::domain::error_code::ErrorCode;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
#[error("{}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
        }
    }
}

/// A token-endpoint failure: an OAuth error for the client, or the store failing underneath.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The client authenticated but may not use this endpoint: 403 (RFC 7662 §2.3 allows it
    /// for introspection).
    #[error("forbidden: {0}")]
    Forbidden(OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A grant machine answered in a way its driver did not expect: a bug, logged and a 500.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for the token endpoint's errors.
pub fn oauth<T>(code: ErrorCode, description: impl Into<String>) -> Result<T, TokenError> {
    Err(TokenError::OAuth(OAuthError::new(code, description)))
}
