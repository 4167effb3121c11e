//! TLS and https (issue 13): in-process TLS with a CA made here, HTTP/2 and HTTP/1.1 by ALPN,
//! HSTS, the certificate reloaded on SIGHUP without dropping connections, the start-up rule
//! for an https issuer, and plain HTTP refused behind a proxy.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::settings::Settings;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost.
struct TestPki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl TestPki {
    fn new(ca_name: &str) -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        TestPki {
            ca_pem: ca.pem(),
            cert_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the server's files as a renewal would: new files renamed over the old ones.
    fn install(&self, dir: &Path) -> (String, String) {
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        for (path, pem) in [(&cert, &self.cert_pem), (&key, &self.key_pem)] {
            let fresh = path.with_extension("new");
            std::fs::write(&fresh, pem).unwrap();
            std::fs::rename(&fresh, path).unwrap();
        }
        (cert.display().to_string(), key.display().to_string())
    }

    /// A client that trusts this CA only.
    fn client(&self) -> reqwest::Client {
        self.client_builder().build().unwrap()
    }

    fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
    }
}

async fn tls_app(pki: &TestPki) -> (TestApp, String) {
    tls_app_with(pki, |_| {}).await
}

async fn tls_app_with(pki: &TestPki, tweak: impl FnOnce(&mut Settings)) -> (TestApp, String) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pki.install(dir.path());
    let app = spawn_app_with(|s| {
        s.server.tls_cert = cert;
        s.server.tls_key = key;
        s.server.issuer = format!("https://{}", s.server.bind);
        tweak(s);
    })
    .await;
    // The files are read at start; the folder may go.
    drop(dir);
    let base = format!("https://{}", app.addr);
    (app, base)
}

#[tokio::test]
async fn tls_serves_http2_and_http1_with_hsts_and_a_whole_grant() {
    let pki = TestPki::new("Portcullis test CA");
    let (app, base) = tls_app(&pki).await;

    // RFC 7301: the client offers h2 and http/1.1 and the server picks h2 (RFC 9113 §3.2).
    let r = pki
        .client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    // RFC 6797 §6.1: the policy on every response of an https issuer.
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    assert!(r.headers().contains_key("x-request-id"));

    let http1 = pki.client_builder().http1_only().build().unwrap();
    let r = http1.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");

    // A token over each protocol, and the token checks out by introspection.
    let client = app
        .client_with(
            |s| s.grant_types = vec!["client_credentials".into()],
            Default::default(),
        )
        .await;
    let rs = app.resource_server().await;
    for http in [pki.client(), http1] {
        let r = http
            .post(format!("{base}/oauth2/token"))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&[("grant_type", "client_credentials"), ("scope", "read")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let token: serde_json::Value = r.json().await.unwrap();
        let r = http
            .post(format!("{base}/oauth2/introspect"))
            .basic_auth(&rs.id, rs.secret.as_deref())
            .form(&[("token", token["access_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["active"], true);
    }

    // A client that does not trust the CA gets no answer, and neither does plain HTTP.
    let stranger = TestPki::new("Another CA").client();
    assert!(stranger
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err());
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(plain
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await
        .is_err());
}

/// Issue 12, point 1, over HTTP/2: hyper's header-read timeout, which closes idle HTTP/1.1
/// connections, does not apply to HTTP/2, so an HTTP/2 connection that says nothing after its
/// preface must be closed by the server's own idle timeout (before: never).
#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let pki = TestPki::new("Portcullis test CA");
    let (app, _) = tls_app_with(&pki, |s| s.server.header_read_timeout_secs = 1).await;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // RFC 9113 §3.4: the client preface, then an empty SETTINGS frame (§6.5); then nothing.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let started = Instant::now();
    let mut said = Vec::new();
    let mut buf = [0u8; 4096];
    let mut acked = false;
    let closed = loop {
        let read = tokio::time::timeout_at(
            (started + Duration::from_secs(10)).into(),
            tls.read(&mut buf),
        )
        .await;
        match read {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(started.elapsed()),
            Ok(Ok(n)) => said.extend_from_slice(&buf[..n]),
        }
        // A well-behaved client acknowledges the server's SETTINGS (§6.5.3).
        if !acked && said.len() >= 9 {
            tls.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).await.unwrap();
            acked = true;
        }
    };
    let took = closed.expect("an idle HTTP/2 connection was still open after 10 s");
    // The server spoke HTTP/2 (its SETTINGS frame first, RFC 9113 §3.4) and waited the
    // timeout before closing.
    assert_eq!(said.get(3), Some(&4), "{said:?}");
    assert!(took >= Duration::from_millis(800), "{took:?}");
    // The server still serves.
    let r = pki
        .client()
        .get(format!("https://{}/healthz", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
}

#[tokio::test]
async fn an_http_issuer_sends_no_hsts() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    // RFC 6797 §7.2: the header means nothing over plain HTTP; it is not sent.
    assert!(!r.headers().contains_key("strict-transport-security"));
}

/// `portcullis serve` as a child with its JSON log read on a thread.
struct ServeChild {
    child: std::process::Child,
    url: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServeChild {
    fn start(db: &TestDb, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.arg("serve")
            .current_dir(db.dir.path())
            .env("PORTCULLIS__DATABASE__URL", &db.url)
            .env("PORTCULLIS__SERVER__BIND", "127.0.0.1:0")
            .env("PORTCULLIS__LOG__FORMAT", "json")
            .envs(
                db.encryption_key()
                    .map(|k| ("PORTCULLIS__KEYS__ENCRYPTION_KEY", k)),
            )
            .env("PORTCULLIS__JANITOR__INTERVAL_SECS", "0")
            .env("RUST_LOG", "portcullis=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let url = served_url(&mut child).0;
        ServeChild { child, url, log }
    }

    fn hang_up(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn wait_for_log(&self, needle: &str) {
        for _ in 0..100 {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no log line with {needle:?}: {:?}",
            self.log.lock().unwrap()
        );
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sighup_swaps_the_certificate_and_keeps_open_connections() {
    let db = TestDb::new().await;
    let files = tempfile::tempdir().unwrap();
    let (old, new) = (TestPki::new("Old CA"), TestPki::new("New CA"));
    let (cert, key) = old.install(files.path());
    let serve = ServeChild::start(
        &db,
        &[
            ("PORTCULLIS__SERVER__TLS_CERT", &cert),
            ("PORTCULLIS__SERVER__TLS_KEY", &key),
            ("PORTCULLIS__SERVER__ISSUER", "https://127.0.0.1"),
        ],
    );
    assert!(serve.url.starts_with("https://"), "{}", serve.url);
    let health = format!("{}/healthz", serve.url);

    // One HTTP/2 connection, made with the old certificate, stays open in this client.
    let before = old.client();
    assert_eq!(before.get(&health).send().await.unwrap().status(), 200);

    new.install(files.path());
    serve.hang_up();
    serve.wait_for_log("TLS certificate reloaded").await;

    // New handshakes get the new certificate, which the old CA did not sign.
    assert_eq!(
        new.client().get(&health).send().await.unwrap().status(),
        200
    );
    assert!(old.client().get(&health).send().await.is_err());
    // The open connection was not dropped: a new one from this client would now fail.
    for _ in 0..3 {
        assert_eq!(before.get(&health).send().await.unwrap().status(), 200);
    }

    // A renewal that went wrong (a key of another certificate) keeps the one in use.
    std::fs::write(files.path().join("server.key"), &old.key_pem).unwrap();
    serve.hang_up();
    serve.wait_for_log("TLS certificate not reloaded").await;
    assert_eq!(
        new.client().get(&health).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn an_https_issuer_needs_tls_or_a_proxy_to_start() {
    let db = TestDb::new().await;
    let env = |extra: &[(&str, &str)]| {
        let mut v = vec![(
            "PORTCULLIS__SERVER__ISSUER".to_string(),
            "https://auth.example".to_string(),
        )];
        v.extend(
            extra
                .iter()
                .map(|(k, val)| (k.to_string(), val.to_string())),
        );
        v
    };
    let refused = run_binary(
        db.dir.path(),
        &["config", "check"],
        None,
        &env(&[]),
        Some(&db.url),
    );
    let stderr = assert_clean_failure(&refused, &["config", "check"]);
    assert!(stderr.contains("insecure_allow_http"), "{stderr}");
    assert!(stderr.contains("server.trusted_proxies"), "{stderr}");

    for extra in [
        ("PORTCULLIS__SERVER__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]"),
        ("PORTCULLIS__SERVER__INSECURE_ALLOW_HTTP", "true"),
    ] {
        let ok = run_binary(
            db.dir.path(),
            &["config", "check"],
            None,
            &env(&[extra]),
            Some(&db.url),
        );
        assert_success(&ok, &["config", "check"]);
    }

    // Files that cannot be used stop `serve` with the file and the reason, before it listens.
    let missing = db.dir.path().join("nowhere.pem").display().to_string();
    let out = run_binary(
        db.dir.path(),
        &["serve"],
        None,
        &env(&[
            ("PORTCULLIS__SERVER__TLS_CERT", &missing),
            ("PORTCULLIS__SERVER__TLS_KEY", &missing),
            ("PORTCULLIS__SERVER__BIND", "127.0.0.1:0"),
        ]),
        Some(&db.url),
    );
    let stderr = assert_clean_failure(&out, &["serve"]);
    assert!(
        stderr.contains("server.tls_cert") && stderr.contains("nowhere.pem"),
        "{stderr}"
    );
}

#[tokio::test]
async fn behind_a_proxy_plain_http_is_refused_but_probes_pass() {
    // The proxy terminates TLS for https://auth.example; this test's client is, in turn, a
    // stranger (not in the list) and the proxy itself (127.0.0.1).
    let issuer = "https://auth.example";
    let stranger = spawn_app_with(|s| {
        s.server.issuer = issuer.into();
        s.server.trusted_proxies = vec!["10.0.0.0/8".into()];
    })
    .await;
    let r = stranger
        .get("/oauth2/authorize?client_id=x&response_type=code")
        .await;
    // A browser is sent to the same path and query on the issuer (RFC 9110 §15.4.9: 308
    // keeps the method).
    assert_eq!(r.status(), 308);
    assert_eq!(
        location(&r),
        "https://auth.example/oauth2/authorize?client_id=x&response_type=code"
    );
    assert!(r.headers().contains_key("strict-transport-security"));
    // Credentials sent in clear are refused, not processed (RFC 6749 §3.2: TLS is required).
    let r = stranger
        .http
        .post(stranger.url("/oauth2/token"))
        .form(&[("grant_type", "client_credentials")])
        .basic_auth("someone", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(stranger.get(probe).await.status(), 200, "{probe}");
    }

    let proxied = spawn_app_with(|s| {
        s.server.issuer = issuer.into();
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let login = |headers: &[(&'static str, &'static str)]| {
        let mut req = proxied.http.get(proxied.url("/login"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    // The proxy says the client came over https, or says nothing: served.
    assert_eq!(login(&[]).await.unwrap().status(), 200);
    assert_eq!(
        login(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "198.51.100.7")
        ])
        .await
        .unwrap()
        .status(),
        200
    );
    // The proxy says the client used plain http: refused the same way.
    assert_eq!(
        login(&[("x-forwarded-proto", "http")])
            .await
            .unwrap()
            .status(),
        308
    );
    assert_eq!(
        login(&[("forwarded", "for=198.51.100.7;proto=http")])
            .await
            .unwrap()
            .status(),
        308
    );
}
