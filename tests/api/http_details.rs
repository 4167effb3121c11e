//! HTTP details (issue 12, point 9): oversized bodies are 413 whatever other routes say,
//! chunked form bodies are read within the same limit, HEAD works wherever GET does, and the
//! files that hold secrets are created readable by their owner only.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Sends raw HTTP/1.1 and returns the status code and the whole answer.
async fn raw(app: &TestApp, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn chunked(path: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{extra_headers}\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for part in body.chunks(1000) {
        r.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        r.extend_from_slice(part);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

/// RFC 9110 §15.5.14: a body over the limit is 413, on the token endpoint and the login form.
#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = spawn_app().await;
    let big = format!("grant_type=client_credentials&pad={}", "x".repeat(100_000));
    for path in ["/oauth2/token", "/login", "/oauth2/introspect"] {
        let r = app
            .http
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
    let (status, _) = raw(&app, &chunked("/oauth2/token", "", big.as_bytes())).await;
    assert_eq!(status, 413, "a chunked body is held to the same limit");
}

/// RFC 9112 §7.1: a chunked token request is served like one with Content-Length.
#[tokio::test]
async fn a_chunked_token_request_is_served() {
    let app = spawn_app().await;
    let c = app.confidential_client().await;
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            c.id,
            c.secret.as_deref().unwrap()
        ))
    };
    let request = chunked(
        "/oauth2/token",
        &format!("Authorization: Basic {basic}\r\n"),
        b"grant_type=client_credentials&scope=read",
    );
    let (status, text) = raw(&app, &request).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"access_token\""), "{text}");
}

/// RFC 9110 §9.3.2: HEAD wherever GET is served, with the headers and no body.
#[tokio::test]
async fn head_works_wherever_get_does() {
    let app = spawn_app().await;
    for path in [
        "/healthz",
        "/readyz",
        "/login",
        "/signed-out",
        "/.well-known/oauth-authorization-server",
    ] {
        let get = app.http.get(app.url(path)).send().await.unwrap();
        let head = app.http.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
}

/// The SQLite file holds password hashes and token digests: owner only.
#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::sqlite();
    let file = db.dir.path().join("portcullis.db");
    let app = spawn_app_on(db, |_| {}).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}
