//! OpenID Connect id_tokens (Core 1.0 §2, §3.1.3.6): who signed in, for which client, when,
//! signed by the active key of the algorithm. Signing uses keys in memory, never a database
//! connection.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

use crate::domain::clients::Client;
use crate::domain::registration::ID_TOKEN_ALG;
use crate::keys::{jws, Algorithm, KeyRing};
use crate::oauth::error::TokenError;
use crate::settings::Settings;

/// The scope that asks for an id_token (Core 1.0 §3.1.2.1).
pub const OPENID: &str = "openid";

/// What an id_token says, besides issuer and times.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub client_id: &'a str,
    /// The request's `nonce`, echoed unchanged.
    pub nonce: Option<&'a str>,
    /// When the user signed in; absent for codes issued before it was recorded.
    pub auth_time: Option<i64>,
    /// The sign-in's session id (`sid_of`); absent for codes issued before it was recorded.
    pub sid: Option<&'a str>,
    /// The access token issued with it, for `at_hash`.
    pub access_token: &'a str,
}

/// The algorithm of `client`'s id_tokens: its registered `id_token_signed_response_alg`, else
/// RS256 (OpenID Connect Dynamic Client Registration 1.0 §2).
pub fn client_alg(client: &Client) -> Algorithm {
    client
        .metadata
        .get(ID_TOKEN_ALG)
        .and_then(|v| v.as_str())
        .and_then(Algorithm::from_name)
        .unwrap_or(Algorithm::Rs256)
}

pub fn issue(
    keys: &KeyRing,
    settings: &Settings,
    alg: Algorithm,
    subject: &Subject<'_>,
    now: i64,
) -> Result<String, TokenError> {
    let key = keys
        .signing_key(alg, now)
        .ok_or_else(|| TokenError::Internal(format!("no active {alg} signing key")))?;
    let mut claims = json!({
        "iss": settings.issuer(),
        "sub": subject.user_id,
        // A single audience, this client, so `azp` is not needed (Core 1.0 §2).
        "aud": subject.client_id,
        "iat": now,
        "exp": now + settings.tokens.id_token_ttl_secs,
        "at_hash": at_hash(alg, subject.access_token),
    });
    if let Some(nonce) = subject.nonce {
        claims["nonce"] = json!(nonce);
    }
    if let Some(auth_time) = subject.auth_time {
        claims["auth_time"] = json!(auth_time);
    }
    if let Some(sid) = subject.sid {
        claims["sid"] = json!(sid);
    }
    jws::sign(&key, "JWT", &claims).map_err(|e| TokenError::Internal(e.to_string()))
}

/// The `sid` claim of a session (OpenID Connect Front-Channel Logout 1.0 §3, Back-Channel
/// Logout 1.0 §2.4): names one sign-in of one browser to the clients it signed in to. Derived
/// from the session row's key (itself the SHA-256 of the cookie) through another hash, so it
/// reveals nothing of the cookie and needs no column of its own on the session.
pub fn sid_of(session_id_hash: &[u8]) -> String {
    let mut input = b"portcullis sid:".to_vec();
    input.extend_from_slice(session_id_hash);
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

/// An id_token this server issued, presented back as a hint: `id_token_hint` at the
/// authorization endpoint (Core 1.0 §3.1.2.1) and at the end-session endpoint (RP-Initiated
/// Logout 1.0 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub sub: String,
    pub aud: Vec<String>,
    pub auth_time: Option<i64>,
    pub sid: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HintError {
    #[error(transparent)]
    Jws(#[from] jws::JwsError),
    #[error("the id_token was not issued by this server")]
    Issuer,
    #[error("the id_token has no sub or aud")]
    Claims,
}

/// A hint must carry a signature by one of the published keys (retired ones too) under the
/// allow-list of `jws::verify`, and this issuer. Its `exp` is not checked: both specifications
/// take an expired id_token as a hint (it says who signed in, not that they still may).
pub fn verify_hint(
    keys: &KeyRing,
    settings: &Settings,
    token: &str,
    now: i64,
) -> Result<Hint, HintError> {
    let claims = jws::verify(keys, token, now)?;
    if claims["iss"].as_str() != Some(settings.issuer()) {
        return Err(HintError::Issuer);
    }
    let sub = claims["sub"].as_str().ok_or(HintError::Claims)?.to_string();
    let aud: Vec<String> = match &claims["aud"] {
        serde_json::Value::String(a) => vec![a.clone()],
        serde_json::Value::Array(all) => all
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    if aud.is_empty() {
        return Err(HintError::Claims);
    }
    Ok(Hint {
        sub,
        aud,
        auth_time: claims["auth_time"].as_i64(),
        sid: claims["sid"].as_str().map(str::to_string),
    })
}

/// Core 1.0 §3.1.3.6: the left half of the hash of the access token, base64url, the hash being
/// the one of the signature algorithm: SHA-256 for RS256 and ES256, SHA-512 for Ed25519 (the
/// hash EdDSA uses on that curve; OpenID Connect Core errata set 2).
pub fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let hash = match alg {
        Algorithm::Rs256 | Algorithm::Es256 => &ring::digest::SHA256,
        Algorithm::EdDsa => &ring::digest::SHA512,
    };
    let digest = ring::digest::digest(hash, access_token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_of_the_openid_connect_example() {
        // OpenID Connect Core 1.0, Appendix A.3 (RS256).
        assert_eq!(
            at_hash(
                Algorithm::Rs256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
