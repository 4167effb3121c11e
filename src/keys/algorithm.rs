//! The three JOSE signature algorithms (RFC 7518 §3.3, §3.4; RFC 8037 for EdDSA): generating a
//! private key, reading it back, its public JWK and thumbprint, and signing. Every signature is
//! made by ring. ring cannot generate RSA keys, so the pure-Rust `rsa` crate does that, and
//! only that: it hands ring a PKCS#8 document.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::KeyError;

/// RSA modulus size for new RS256 keys: the size every OpenID Connect library accepts, and the
/// smallest ring signs with.
const RSA_BITS: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the one OpenID Connect requires, the id_token default.
    Rs256,
    /// ECDSA on P-256 with SHA-256, the signature as r‖s (RFC 7518 §3.4).
    Es256,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];

    /// The JOSE `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// By JOSE name, exactly as RFC 7518 spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// A new private key as PKCS#8 DER. RSA takes a fraction of a second to a few seconds
    /// (prime search): call it off the async threads.
    pub fn generate(self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let rng = SystemRandom::new();
        let der = match self {
            Algorithm::Rs256 => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                    .map_err(|e| KeyError::Generate(e.to_string()))?;
                let doc = key
                    .to_pkcs8_der()
                    .map_err(|e| KeyError::Generate(e.to_string()))?;
                doc.as_bytes().to_vec()
            }
            Algorithm::Es256 => signature::EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rng,
            )
            .map_err(|_| KeyError::Generate("P-256".into()))?
            .as_ref()
            .to_vec(),
            Algorithm::EdDsa => signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError::Generate("Ed25519".into()))?
                .as_ref()
                .to_vec(),
        };
        Ok(Zeroizing::new(der))
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

enum Pair {
    Rsa(signature::RsaKeyPair),
    Ecdsa(signature::EcdsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
}

/// A private key ready to sign, with its public half as a JWK.
pub struct PrivateKey {
    alg: Algorithm,
    kid: String,
    /// The public JWK as published: `kty`, its parameters, `kid`, `alg`, `use`.
    jwk: Value,
    pair: Pair,
    rng: SystemRandom,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Reads a PKCS#8 document of `alg`. The key id is the RFC 7638 thumbprint of the public
    /// key, so it is derived, never trusted from storage.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let rejected = |e: ring::error::KeyRejected| KeyError::BadKey(format!("{alg}: {e}"));
        let (pair, params) = match alg {
            Algorithm::Rs256 => {
                let pair = signature::RsaKeyPair::from_pkcs8(der).map_err(rejected)?;
                let public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                let params = json!({
                    "e": b64(&public.e),
                    "kty": "RSA",
                    "n": b64(&public.n),
                });
                (Pair::Rsa(pair), params)
            }
            Algorithm::Es256 => {
                let pair = signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der,
                    &rng,
                )
                .map_err(rejected)?;
                // Uncompressed point: 0x04, then x and y, 32 bytes each.
                let point = pair.public_key().as_ref();
                let params = json!({
                    "crv": "P-256",
                    "kty": "EC",
                    "x": b64(&point[1..33]),
                    "y": b64(&point[33..65]),
                });
                (Pair::Ecdsa(pair), params)
            }
            Algorithm::EdDsa => {
                let pair = signature::Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?;
                let params = json!({
                    "crv": "Ed25519",
                    "kty": "OKP",
                    "x": b64(pair.public_key().as_ref()),
                });
                (Pair::Ed25519(pair), params)
            }
        };
        let kid = thumbprint(&params);
        let mut jwk = params;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg.name());
        jwk["use"] = json!("sig");
        Ok(Self {
            alg,
            kid,
            jwk,
            pair,
            rng,
        })
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// The JWS signature of `input` (RFC 7515 §5.1: the ASCII of header.payload).
    pub fn sign(&self, input: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |_| KeyError::Sign(self.alg);
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &self.rng, input, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
            Pair::Ecdsa(pair) => Ok(pair
                .sign(&self.rng, input)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Pair::Ed25519(pair) => Ok(pair.sign(input).as_ref().to_vec()),
        }
    }
}

impl PrivateKey {
    /// Whether `sig` is this key's JWS signature of `input`, checked with the public half.
    pub fn verify(&self, input: &[u8], sig: &[u8]) -> bool {
        let (alg, public): (&dyn signature::VerificationAlgorithm, &[u8]) = match &self.pair {
            // The DER RSAPublicKey ring reads back; moduli from 2048 to 8192 bits.
            Pair::Rsa(pair) => (
                &signature::RSA_PKCS1_2048_8192_SHA256,
                pair.public().as_ref(),
            ),
            Pair::Ecdsa(pair) => (
                &signature::ECDSA_P256_SHA256_FIXED,
                pair.public_key().as_ref(),
            ),
            Pair::Ed25519(pair) => (&signature::ED25519, pair.public_key().as_ref()),
        };
        signature::UnparsedPublicKey::new(alg, public)
            .verify(input, sig)
            .is_ok()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638 §3: SHA-256 of the required members in lexicographic order, no whitespace.
/// `params` holds exactly those members, written in that order (serde_json keeps it either way:
/// its map is sorted, or in insertion order with `preserve_order`).
fn thumbprint(params: &Value) -> String {
    let canonical = params.to_string();
    b64(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_of_the_rfcs_example_key() {
        // RFC 7638 §3.1.
        let params = json!({
            "e": "AQAB",
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        });
        assert_eq!(
            thumbprint(&params),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn every_algorithm_generates_reads_back_and_signs() {
        for alg in [Algorithm::Es256, Algorithm::EdDsa] {
            let der = alg.generate().unwrap();
            let key = PrivateKey::from_pkcs8(alg, &der).unwrap();
            let again = PrivateKey::from_pkcs8(alg, &der).unwrap();
            assert_eq!(
                key.kid(),
                again.kid(),
                "{alg}: the kid is derived from the key"
            );
            assert_eq!(key.public_jwk()["alg"], alg.name());
            assert!(!key.sign(b"header.payload").unwrap().is_empty());
        }
    }

    #[test]
    fn rsa_keys_are_generated_by_rsa_and_read_by_ring() {
        let started = std::time::Instant::now();
        let der = Algorithm::Rs256.generate().unwrap();
        eprintln!("RSA-2048 generation took {:?}", started.elapsed());
        let key = PrivateKey::from_pkcs8(Algorithm::Rs256, &der).unwrap();
        assert_eq!(key.public_jwk()["kty"], "RSA");
        assert_eq!(key.public_jwk()["e"], "AQAB");
        assert_eq!(key.sign(b"header.payload").unwrap().len(), 256);
    }

    #[test]
    fn a_key_of_another_algorithm_is_refused() {
        let der = Algorithm::EdDsa.generate().unwrap();
        assert!(matches!(
            PrivateKey::from_pkcs8(Algorithm::Es256, &der),
            Err(KeyError::BadKey(_))
        ));
    }
}
