//! PKCE (RFC 7636) with S256 only: `plain` is refused (RFC 9700 §2.1.1).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub const S256: &str = "S256";

/// RFC 7636 §4.1/§4.2: 43–128 characters of `[A-Za-z0-9-._~]`.
fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub fn is_valid_verifier(v: &str) -> bool {
    is_pkce_string(v)
}

/// An S256 challenge is BASE64URL(SHA256(verifier)): exactly 43 characters.
pub fn is_valid_s256_challenge(c: &str) -> bool {
    c.len() == 43 && is_pkce_string(c)
}

pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// RFC 7636 §4.6, compared in constant time.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    use subtle::ConstantTimeEq;
    is_valid_verifier(verifier)
        && bool::from(
            s256_challenge(verifier)
                .as_bytes()
                .ct_eq(challenge.as_bytes()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            s256_challenge(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verify_s256(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!verify_s256(
            "x".repeat(43).as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn verifier_syntax() {
        assert!(!is_valid_verifier("short"));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}+", "a".repeat(43))));
        assert!(is_valid_verifier(&"a".repeat(128)));
    }
}
