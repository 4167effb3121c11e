//! RFC 9068 JWT access tokens, for clients whose `access_token_format` is `jwt`: a resource
//! server can validate one against the JWKS without asking Portcullis. Each is still stored by
//! its SHA-256 like an opaque token, so introspection, revocation and userinfo treat both
//! alike; a resource server that only validates locally cannot see a revocation before `exp`,
//! which is why these live `tokens.jwt_access_token_ttl_secs` (5 minutes) by default.
//!
//! Signed, like the client's id_tokens, with its `id_token_signed_response_alg` (RS256 by
//! default; RFC 9068 §4 requires verifiers to support it). Signing uses keys in memory, never
//! a database connection.

use serde_json::json;

use crate::domain::secret::random_id;
use crate::keys::{jws, Algorithm, KeyRing};
use crate::oauth::error::TokenError;
use crate::settings::Settings;

/// The media type of the header's `typ` (RFC 9068 §2.1): a verifier tells an access token
/// from an id_token by it, so neither can stand in for the other.
pub const TYP: &str = "at+jwt";

/// What an access token says, besides issuer, audience and times.
pub struct Claims<'a> {
    pub client_id: &'a str,
    /// The user it acts for; None for the client's own token (client credentials), whose
    /// `sub` is then the client (RFC 9068 §2.2).
    pub user_id: Option<&'a str>,
    pub scope: &'a str,
    pub audience: &'a str,
    pub auth_time: Option<i64>,
    pub expires_at: i64,
}

pub fn issue(
    keys: &KeyRing,
    settings: &Settings,
    alg: Algorithm,
    claims: &Claims<'_>,
    now: i64,
) -> Result<String, TokenError> {
    let key = keys
        .signing_key(alg, now)
        .ok_or_else(|| TokenError::Internal(format!("no active {alg} signing key")))?;
    // RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti required; scope when granted;
    // auth_time (§2.2.1) when the user signed in for it.
    let mut body = json!({
        "iss": settings.issuer(),
        "exp": claims.expires_at,
        "aud": claims.audience,
        "sub": claims.user_id.unwrap_or(claims.client_id),
        "client_id": claims.client_id,
        "iat": now,
        "jti": random_id(),
    });
    if !claims.scope.is_empty() {
        body["scope"] = json!(claims.scope);
    }
    if let Some(t) = claims.auth_time {
        body["auth_time"] = json!(t);
    }
    jws::sign(&key, TYP, &body).map_err(|e| TokenError::Internal(e.to_string()))
}
