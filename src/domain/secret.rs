//! Random secrets and their digests. A secret is 256 bits from the OS CSPRNG, base64url, with a
//! type prefix so a leaked one is recognisable by secret scanners; only its SHA-256 is stored.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

/// Prefixes for each kind of secret (DESIGN.md: "pc_at_", "pc_rt_", ...).
pub mod prefix {
    pub const ACCESS_TOKEN: &str = "pc_at_";
    pub const REFRESH_TOKEN: &str = "pc_rt_";
    pub const CODE: &str = "pc_ac_";
    pub const CLIENT_SECRET: &str = "pc_cs_";
    pub const SESSION: &str = "pc_ss_";
}

/// A secret in clear. `Debug` prints nothing so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// 256 fresh random bits with `prefix`.
    pub fn generate(prefix: &str) -> Self {
        Secret(format!("{prefix}{}", random_b64(32)))
    }

    pub fn from_presented(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> Digest {
        Digest::of(self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// SHA-256 of a secret: what the database stores and looks up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, bytes);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Digest(out)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Digest)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time comparison, for checking a presented secret against a stored digest.
    pub fn matches(&self, stored: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        stored.len() == 32 && bool::from(self.0.ct_eq(stored))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest(..)")
    }
}

/// `n` random bytes, base64url without padding.
pub fn random_b64(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A random identifier (128 bits): user ids, client ids, token families. Never starts with
/// `-`, so it can be passed to a command line without being taken for an option.
pub fn random_id() -> String {
    loop {
        let id = random_b64(16);
        if !id.starts_with('-') {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_prefixed_and_long() {
        let s = Secret::generate(prefix::ACCESS_TOKEN);
        assert!(s.expose().starts_with("pc_at_"));
        assert_eq!(s.expose().len(), 6 + 43);
        assert_ne!(s, Secret::generate(prefix::ACCESS_TOKEN));
    }

    #[test]
    fn ids_never_look_like_options() {
        assert!((0..2000)
            .map(|_| random_id())
            .all(|id| id.len() == 22 && !id.starts_with('-')));
    }

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::from_presented("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn digest_matches_only_itself() {
        let s = Secret::from_presented("abc");
        assert!(s.digest().matches(Digest::of(b"abc").as_bytes()));
        assert!(!s.digest().matches(Digest::of(b"abd").as_bytes()));
        assert!(!s.digest().matches(b"short"));
    }
}
