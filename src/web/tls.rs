//! In-process TLS (issue 13): rustls with the ring provider, HTTP/2 and HTTP/1.1 offered by
//! ALPN, and a certificate that can be replaced while serving.
//!
//! The certificate and key are read from `server.tls_cert` / `server.tls_key` (PEM) at start
//! and again on `reload` (SIGHUP in `portcullis serve`). The server config itself never
//! changes: a resolver hands each new handshake the current certificate, so a reload touches
//! no open connection, and a reload that fails (missing file, key that does not match) keeps
//! the certificate in use and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// ALPN protocol ids, most preferred first (RFC 7301; RFC 9113 §3.2 for `h2`).
pub const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP11: &[u8] = b"http/1.1";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls_cert {0}: {1}")]
    Certificate(PathBuf, String),
    #[error("server.tls_key {0}: {1}")]
    Key(PathBuf, String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The TLS side of the listener: what accepts handshakes, and the certificate they get.
#[derive(Clone)]
pub struct Tls {
    certificate: Arc<ReloadableCertificate>,
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Reads the certificate chain and key; fails with the file and the reason.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certificate = Arc::new(ReloadableCertificate {
            current: RwLock::new(read_pair(&provider, cert, key)?),
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            provider: provider.clone(),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
        Ok(Self {
            certificate,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Reads the files again; new handshakes get the new certificate. On failure the one in
    /// use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.certificate.reload()
    }
}

#[derive(Debug)]
struct ReloadableCertificate {
    current: RwLock<Arc<CertifiedKey>>,
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
}

impl ReloadableCertificate {
    fn reload(&self) -> Result<(), TlsError> {
        let fresh = read_pair(&self.provider, &self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

impl ResolvesServerCert for ReloadableCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// The chain (leaf first) and its private key, checked to belong together.
fn read_pair(
    provider: &CryptoProvider,
    cert: &Path,
    key: &Path,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_error = |m: String| TlsError::Certificate(cert.to_path_buf(), m);
    let key_error = |m: String| TlsError::Key(key.to_path_buf(), m);
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no PEM certificate in the file".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| key_error(e.to_string()))?;
    let signer = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| key_error(e.to_string()))?;
    let pair = CertifiedKey::new(chain, signer);
    match pair.keys_match() {
        // A key that cannot name its public half cannot be compared; ring's all can.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(pair))
        }
        Err(e) => Err(key_error(format!("does not match the certificate ({e})"))),
    }
}
