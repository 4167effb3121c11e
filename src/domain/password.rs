//! User passwords: PBKDF2-HMAC-SHA256 (ring). The stored string carries its own parameters
//! (`$pbkdf2-sha256$i=ITER$SALT$HASH`), so the iteration count can be raised later without
//! invalidating existing hashes.

use std::fmt;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use rand::RngCore;
use ring::pbkdf2;

const ALG: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;
const TAG: &str = "pbkdf2-sha256";

/// A password in clear; `Debug` prints nothing.
pub struct Password(String);

impl Password {
    pub fn new(p: impl Into<String>) -> Self {
        Password(p.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password must not be empty")]
    Empty,
    #[error("password is longer than 1024 bytes")]
    TooLong,
}

/// Accepts any non-empty password up to 1 KiB (NIST 800-63B: no composition rules).
pub fn validate(p: &Password) -> Result<(), PasswordError> {
    if p.0.is_empty() {
        Err(PasswordError::Empty)
    } else if p.0.len() > 1024 {
        Err(PasswordError::TooLong)
    } else {
        Ok(())
    }
}

pub fn hash(p: &Password, iterations: u32) -> String {
    let iterations = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; 32];
    pbkdf2::derive(ALG, iterations, &salt, p.0.as_bytes(), &mut out);
    format!(
        "${TAG}$i={}${}${}",
        iterations,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

/// Checks `p` against a stored hash in constant time. A malformed stored hash never matches.
pub fn verify(p: &Password, stored: &str) -> bool {
    let Some((iterations, salt, expected)) = parse(stored) else {
        return false;
    };
    pbkdf2::verify(ALG, iterations, &salt, p.0.as_bytes(), &expected).is_ok()
}

/// Burns the same CPU as `verify` against a hash of `iterations`, so that an unknown user
/// costs what a wrong password costs.
pub fn verify_dummy(p: &Password, iterations: u32) {
    let iterations = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
    let mut out = [0u8; 32];
    pbkdf2::derive(ALG, iterations, &[0u8; 16], p.0.as_bytes(), &mut out);
    std::hint::black_box(out);
}

/// Iteration count stored in a hash (0 if malformed).
pub fn iterations_of(stored: &str) -> u32 {
    parse(stored).map(|(i, _, _)| i.get()).unwrap_or(0)
}

fn parse(stored: &str) -> Option<(NonZeroU32, Vec<u8>, Vec<u8>)> {
    let mut parts = stored.split('$');
    let (empty, tag, iter, salt, hash) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if !empty.is_empty() || tag != TAG || parts.next().is_some() {
        return None;
    }
    let iterations = NonZeroU32::new(iter.strip_prefix("i=")?.parse().ok()?)?;
    let salt = STANDARD_NO_PAD.decode(salt).ok()?;
    let hash = STANDARD_NO_PAD.decode(hash).ok()?;
    Some((iterations, salt, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_parameters_in_string() {
        let h = hash(&Password::new("correct horse"), 1000);
        assert!(h.starts_with("$pbkdf2-sha256$i=1000$"));
        assert!(verify(&Password::new("correct horse"), &h));
        assert!(!verify(&Password::new("correct horsf"), &h));
        assert_eq!(iterations_of(&h), 1000);
    }

    #[test]
    fn salts_differ() {
        let p = Password::new("x");
        assert_ne!(hash(&p, 1000), hash(&p, 1000));
    }

    #[test]
    fn malformed_hash_never_matches() {
        assert!(!verify(&Password::new(""), ""));
        assert!(!verify(&Password::new("a"), "$pbkdf2-sha256$i=0$AA$AA"));
        assert!(!verify(&Password::new("a"), "$argon2id$v=19$x"));
    }

    #[test]
    fn validation() {
        assert_eq!(validate(&Password::new("")), Err(PasswordError::Empty));
        assert_eq!(
            validate(&Password::new("a".repeat(1025))),
            Err(PasswordError::TooLong)
        );
        assert!(validate(&Password::new("ok")).is_ok());
    }
}
