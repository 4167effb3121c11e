//! Compact JWS serialisation (RFC 7515 §7.1): BASE64URL(header) . BASE64URL(payload) .
//! BASE64URL(signature), the header naming the algorithm and the key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::{KeyError, PrivateKey};

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
