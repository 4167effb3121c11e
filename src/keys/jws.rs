//! Compact JWS serialisation (RFC 7515 §7.1): BASE64URL(header) . BASE64URL(payload) .
//! BASE64URL(signature), the header naming the algorithm and the key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::{Algorithm, KeyError, KeyRing, PrivateKey};

/// Signs `claims` with `key`; `typ` is the media type of the token (`JWT`, `at+jwt`, …).
pub fn sign(key: &PrivateKey, typ: &str, claims: &Value) -> Result<String, KeyError> {
    let header = json!({ "alg": key.alg().name(), "kid": key.kid(), "typ": typ });
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(out)
}

/// Why a JWS presented to Portcullis was not accepted as one of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not a compact JWS")]
    Malformed,
    /// RFC 8725 §3.1: only the algorithms Portcullis signs with; `none`, HMAC (which a
    /// verifier holding a public key could be tricked into using as the secret) and the rest
    /// are refused before any key is looked at.
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(String),
    #[error("no published key has id {0:?}")]
    UnknownKey(String),
    /// RFC 7515 §4.1.11: an extension this verifier would have to understand.
    #[error("critical header parameters are not supported")]
    Critical,
    #[error("the signature does not verify")]
    Signature,
}

/// The longest token read: far above any id_token Portcullis issues.
const MAX_LEN: usize = 16 * 1024;

/// Verifies a compact JWS signed by one of `keys`' published keys (next, active or retired)
/// and returns its payload, which must be a JSON object. The header's `alg` must be the key's
/// own: a key is never used with another algorithm than the one it was made for.
pub fn verify(keys: &KeyRing, token: &str, now: i64) -> Result<Value, JwsError> {
    if token.len() > MAX_LEN {
        return Err(JwsError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let json = |part: &str| -> Result<Value, JwsError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwsError::Malformed)?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(JwsError::Malformed),
        }
    };
    let header = json(h)?;
    let alg_name = header["alg"].as_str().ok_or(JwsError::Malformed)?;
    let alg =
        Algorithm::from_name(alg_name).ok_or_else(|| JwsError::Algorithm(alg_name.to_string()))?;
    if header.get("crit").is_some() {
        return Err(JwsError::Critical);
    }
    let kid = header["kid"].as_str().ok_or(JwsError::Malformed)?;
    let key = keys
        .published_key(kid, now)
        .ok_or_else(|| JwsError::UnknownKey(kid.to_string()))?;
    if key.alg() != alg {
        return Err(JwsError::Algorithm(alg_name.to_string()));
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| JwsError::Malformed)?;
    let signed = &token[..h.len() + 1 + p.len()];
    if !key.verify(signed.as_bytes(), &sig) {
        return Err(JwsError::Signature);
    }
    json(p)
}
