//! The key-encryption key: AES-256-GCM (ring `aead`) over each signing key's PKCS#8 document,
//! so a database dump or backup holds no usable private key. The sealed form is the 12-byte
//! random nonce, then ciphertext and tag. The associated data names the key (kid and alg), so
//! a sealed key copied into another row does not open.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::KeyError;
use crate::settings::Settings;
use crate::store::Backend;

/// The file the SQLite default keeps its generated key in, next to the database.
pub const KEY_FILE: &str = "encryption.key";

pub struct Kek {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

/// Where the key-encryption key came from, for the startup log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Settings,
    File(PathBuf),
    /// Generated into this file just now.
    NewFile(PathBuf),
}

impl Kek {
    /// From `keys.encryption_key`: base64 (standard alphabet) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| bad_key())?);
        if bytes.len() != 32 {
            return Err(bad_key());
        }
        let key = UnboundKey::new(&aead::AES_256_GCM, &bytes).map_err(|_| bad_key())?;
        Ok(Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// A new random key, base64, for `keys generate-encryption-key` and the SQLite default.
    pub fn generate() -> Result<String, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| KeyError::Generate("random bytes".into()))?;
        Ok(STANDARD.encode(bytes.as_ref()))
    }

    /// The configured key; on SQLite with none configured, the one in the database's folder,
    /// made there on first use. MariaDB/MySQL needs it configured: every node must share it,
    /// and a file on one node would not be.
    pub fn resolve(settings: &Settings) -> Result<(Self, Source), KeyError> {
        let configured = settings.keys.encryption_key.expose();
        if !configured.is_empty() {
            return Ok((Self::from_base64(configured)?, Source::Settings));
        }
        match Backend::of_url(settings.database.url.expose()) {
            Ok(Backend::Sqlite(db)) => {
                let dir = db.parent().unwrap_or(Path::new("."));
                let path = dir.join(KEY_FILE);
                if path.exists() {
                    let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
                        KeyError::Kek(format!("cannot read {}: {e}", path.display()))
                    })?);
                    let kek = Self::from_base64(&text).map_err(|_| {
                        KeyError::Kek(format!(
                            "{} does not hold a base64 key of 32 bytes",
                            path.display()
                        ))
                    })?;
                    Ok((kek, Source::File(path)))
                } else {
                    let text = Zeroizing::new(Self::generate()?);
                    write_private(&path, &text)?;
                    Ok((Self::from_base64(&text)?, Source::NewFile(path)))
                }
            }
            _ => Err(KeyError::Kek(
                "keys.encryption_key is not set; MariaDB needs it, the same on every node: make one with `portcullis keys generate-encryption-key` and set it (env PORTCULLIS__KEYS__ENCRYPTION_KEY)".into(),
            )),
        }
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| KeyError::Generate("random bytes".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + aead::MAX_TAG_LEN);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| KeyError::Generate("sealing".into()))?;
        out.extend_from_slice(&body);
        body.iter_mut().for_each(|b| *b = 0);
        Ok(out)
    }

    /// The plaintext, or `None` when this key did not seal it for `aad` (another key, another
    /// row, or altered bytes: AES-GCM cannot tell which).
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN + aead::MAX_TAG_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = Zeroizing::new(body.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .ok()?
            .len();
        body.truncate(len);
        Some(body)
    }
}

fn bad_key() -> KeyError {
    KeyError::Kek(
        "keys.encryption_key must be the base64 of 32 bytes (make one with `portcullis keys generate-encryption-key`)".into(),
    )
}

/// Creates `path` readable by its owner only and writes `text` to it; refuses to overwrite.
fn write_private(path: &Path, text: &str) -> Result<(), KeyError> {
    use std::io::Write;
    let cannot =
        |e: std::io::Error| KeyError::Kek(format!("cannot create {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(cannot)?;
    file.write_all(format!("{text}\n").as_bytes())
        .map_err(cannot)?;
    file.sync_all().map_err(cannot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_key_and_row() {
        let kek = Kek::from_base64(&Kek::generate().unwrap()).unwrap();
        let sealed = kek.seal(b"kid-1 RS256", b"secret").unwrap();
        assert_eq!(
            kek.open(b"kid-1 RS256", &sealed).unwrap().as_slice(),
            b"secret"
        );
        assert!(kek.open(b"kid-2 RS256", &sealed).is_none(), "another row");
        let other = Kek::from_base64(&Kek::generate().unwrap()).unwrap();
        assert!(other.open(b"kid-1 RS256", &sealed).is_none(), "another key");
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(
            kek.open(b"kid-1 RS256", &altered).is_none(),
            "altered bytes"
        );
        assert!(
            kek.open(b"kid-1 RS256", &sealed[..20]).is_none(),
            "truncated"
        );
    }

    #[test]
    fn only_32_bytes_of_base64_make_a_key() {
        assert!(Kek::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(Kek::from_base64(&STANDARD.encode([7u8; 16])).is_err());
        assert!(Kek::from_base64("not base64!").is_err());
        assert!(Kek::from_base64("").is_err());
    }
}
