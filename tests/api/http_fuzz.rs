//! A bounded HTTP fuzz run (issue 12): 3,000 requests generated from a seed, across every route
//! and method, mixing real credentials, tokens, cookies and CSRF tokens with mangled ones, in
//! query strings, form, JSON and garbage bodies, with and without chunked framing. Every request
//! must be answered, none with a 5xx, and afterwards the server must still work and a token
//! the run never saw must still be active.
//!
//! The requests are written on raw TCP so that nothing (URL parsing, header validation) cleans
//! them first. A failure prints the seed; `PORTCULLIS_FUZZ_SEED=N cargo test http_fuzz` replays
//! a run (the interleaving of the workers can differ).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use portcullis::settings::RegistrationPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const WORKERS: u64 = 4;
/// More than the 64 KiB a body may have.
const OVER_LIMIT: usize = 65_536 + 1_024;
const REQUESTS_PER_WORKER: usize = 750;

/// Each route with the methods it serves; requests mostly use one of them, so that they get
/// past routing, and sometimes any method.
const ROUTES: [(&str, &[&str]); 21] = [
    ("/", &["GET"]),
    ("/healthz", &["GET", "HEAD"]),
    ("/metrics", &["GET", "HEAD"]),
    ("/readyz", &["GET"]),
    ("/login", &["GET", "POST"]),
    ("/logout", &["POST"]),
    ("/signed-out", &["GET"]),
    ("/account/grants/revoke", &["POST"]),
    ("/oauth2/authorize", &["GET", "POST"]),
    ("/oauth2/authorize", &["GET", "POST"]),
    ("/oauth2/token", &["POST", "OPTIONS"]),
    ("/oauth2/token", &["POST"]),
    ("/oauth2/introspect", &["POST"]),
    ("/oauth2/revoke", &["POST", "OPTIONS"]),
    ("/oauth2/register", &["POST"]),
    ("/oauth2/register/", &["GET", "PUT", "DELETE"]),
    (
        "/.well-known/oauth-authorization-server",
        &["GET", "OPTIONS"],
    ),
    ("/assets/portcullis.0000.css", &["GET"]),
    ("/oauth2/../oauth2/token", &["POST"]),
    ("//oauth2/token", &["POST"]),
    ("/nowhere%FF%00", &["GET"]),
];

const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "FOO",
];

const PARAMS: [&str; 24] = [
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "scope",
    "state",
    "code_verifier",
    "code_challenge",
    "code_challenge_method",
    "refresh_token",
    "token",
    "token_type_hint",
    "response_type",
    "username",
    "password",
    "csrf_token",
    "return_to",
    "decision",
    "client_name",
    "redirect_uris",
    "nonce",
    "prompt",
    "x",
];

const HOSTILE: [&str; 28] = [
    "",
    " ",
    "é",
    "\u{0}",
    "%",
    "%FF",
    "+",
    "&",
    "=",
    "'",
    "\"",
    "<script>alert(1)</script>",
    "' OR '1'='1",
    "\u{202e}",
    "../../etc/passwd",
    "http://127.0.0.1:99999/cb",
    "HTTPS://APP.EXAMPLE/cb",
    "https://app.example/cb#f",
    "javascript:alert(1)",
    "-1",
    "99999999999999999999",
    "null",
    "[]",
    "{}",
    "\r\n",
    "pc_at_",
    "🦀",
    "pad ",
];

/// xorshift64*: a reproducible stream from a seed, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The real values of this server that the generator mixes in, so that requests get past the
/// first check and reach the deeper ones.
struct Known {
    values: Vec<String>,
    session_cookie: String,
    registration_token: String,
    registered_id: String,
}

impl Known {
    async fn gather(app: &TestApp) -> Self {
        app.add_user("fuzz").await;
        let client = app.confidential_client().await;
        let secret = client.secret.clone().unwrap();
        let rs = app.resource_server().await;
        let public = app.public_client().await;
        let tokens = app.tokens_for(&client, "fuzz", "read").await;
        let (verifier, challenge) = pkce_pair();

        let browser = app.browser();
        let signed_in = app.login(&browser, "fuzz", PASSWORD, "/").await;
        let session_cookie = signed_in
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("portcullis_session="))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        let account = browser.get(app.url("/")).send().await.unwrap();
        let csrf = hidden_field(&account.text().await.unwrap(), "csrf_token").unwrap();

        let registered: serde_json::Value = app
            .http
            .post(app.url("/oauth2/register"))
            .json(&serde_json::json!({"redirect_uris": ["https://reg.example/cb"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let registered_id = registered["client_id"].as_str().unwrap().to_string();
        let registration_token = registered["registration_access_token"]
            .as_str()
            .unwrap()
            .to_string();

        let values = [
            client.id.as_str(),
            &secret,
            &rs.id,
            rs.secret.as_deref().unwrap(),
            &public.id,
            &registered_id,
            tokens["access_token"].as_str().unwrap(),
            tokens["refresh_token"].as_str().unwrap(),
            REDIRECT,
            "http://127.0.0.1:4711/callback",
            "code",
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "access_token",
            "read",
            "read write",
            "S256",
            "plain",
            &verifier,
            &challenge,
            "fuzz",
            PASSWORD,
            &csrf,
            "/",
            "allow",
            "deny",
        ]
        .map(str::to_string)
        .to_vec();
        Known {
            values,
            session_cookie,
            registration_token,
            registered_id,
        }
    }
}

/// One request, written as bytes on a fresh connection.
struct Generator<'a> {
    rng: Rng,
    known: &'a Known,
    host: String,
}

impl Generator<'_> {
    fn value(&mut self) -> String {
        match self.rng.below(10) {
            0..=3 => self.rng.pick(&self.known.values).clone(),
            4..=5 => self.rng.pick(&HOSTILE).to_string(),
            6 => "x".repeat(*self.rng.pick(&[64, 65, 191, 192, 256, 2_100, 70_000])),
            7..=8 => {
                let mut v = self.rng.pick(&self.known.values).clone().into_bytes();
                match self.rng.below(3) {
                    0 => v.truncate(self.rng.below(v.len() + 1)),
                    1 => v.push(self.rng.next() as u8),
                    _ => {
                        if !v.is_empty() {
                            let i = self.rng.below(v.len());
                            v[i] ^= 1 << self.rng.below(8);
                        }
                    }
                }
                String::from_utf8_lossy(&v).into_owned()
            }
            _ => String::from_utf8_lossy(&self.rng.bytes(40)).into_owned(),
        }
    }

    /// Parameters, usually form-urlencoded, sometimes raw; sometimes a name twice.
    fn params(&mut self) -> String {
        let n = self.rng.below(7);
        let mut pairs: Vec<(String, String)> = (0..n)
            .map(|_| (self.rng.pick(&PARAMS).to_string(), self.value()))
            .collect();
        if self.rng.chance(10) {
            pairs.push((self.rng.pick(&PARAMS).to_string(), self.value()));
        }
        if self.rng.chance(85) {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        } else {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }
    }

    fn json(&mut self, depth: usize) -> serde_json::Value {
        use serde_json::Value;
        match self.rng.below(if depth > 3 { 4 } else { 7 }) {
            0 => Value::String(self.value()),
            1 => Value::from(self.rng.next() as i64),
            2 => Value::Bool(self.rng.chance(50)),
            3 => Value::Null,
            4 | 5 => Value::Array(
                (0..self.rng.below(4))
                    .map(|_| self.json(depth + 1))
                    .collect(),
            ),
            _ => {
                let keys = [
                    "redirect_uris",
                    "grant_types",
                    "response_types",
                    "token_endpoint_auth_method",
                    "scope",
                    "client_name",
                    "client_uri",
                    "logo_uri",
                    "contacts",
                    "software_id",
                    "client_id",
                ];
                let mut m = serde_json::Map::new();
                for _ in 0..self.rng.below(6) {
                    let key = self.rng.pick(&keys).to_string();
                    m.insert(key, self.json(depth + 1));
                }
                Value::Object(m)
            }
        }
    }

    /// A header value with no CR, LF or NUL, so the framing stays intact; other bytes may be
    /// anything a client could send.
    fn header_safe(v: &str) -> String {
        v.chars()
            .map(|c| {
                if matches!(c, '\r' | '\n' | '\0') {
                    ' '
                } else {
                    c
                }
            })
            .collect()
    }

    fn authorization(&mut self) -> String {
        let v = match self.rng.below(5) {
            0 | 1 => {
                let (id, secret) = (self.value(), self.value());
                let enc = |s: &str| -> String {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
                };
                let (id, secret) = (enc(&id), enc(&secret));
                format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
            }
            2 => format!("Basic {}", self.value()),
            3 => {
                let token = if self.rng.chance(50) {
                    self.known.registration_token.clone()
                } else {
                    self.value()
                };
                format!("Bearer {token}")
            }
            _ => format!(
                "{} {}",
                self.rng.pick(&["Digest", "basic", "Bearer"]),
                self.value()
            ),
        };
        Self::header_safe(&v)
    }

    fn request(&mut self) -> Vec<u8> {
        let (path, methods) = *self.rng.pick(&ROUTES);
        let method = if self.rng.chance(80) {
            *self.rng.pick(methods)
        } else {
            *self.rng.pick(&METHODS)
        };
        let mut path = path.to_string();
        if path == "/oauth2/register/" {
            path.push_str(&if self.rng.chance(70) {
                self.known.registered_id.clone()
            } else {
                url::form_urlencoded::byte_serialize(self.value().as_bytes()).collect()
            });
        }
        if self.rng.chance(50) {
            let q = self.params();
            // A raw query may hold bytes that are not allowed in a request line; the server
            // must still answer (400). Only CR and LF are kept out, to keep one request.
            path = format!("{path}?{}", q.replace(['\r', '\n', ' '], "+"));
        }
        let mut headers = vec![format!(
            "Host: {}",
            if self.rng.chance(95) {
                self.host.clone()
            } else {
                Self::header_safe(&self.value())
            }
        )];
        if self.rng.chance(40) {
            headers.push(format!("Authorization: {}", self.authorization()));
        }
        if self.rng.chance(40) {
            let cookie = if self.rng.chance(60) {
                self.known.session_cookie.clone()
            } else {
                format!("portcullis_session={}", Self::header_safe(&self.value()))
            };
            headers.push(format!("Cookie: {cookie}"));
        }
        if self.rng.chance(30) {
            let origin = match self.rng.below(4) {
                0 => "null".to_string(),
                1 => format!("http://{}", self.host),
                2 => "https://evil.example".to_string(),
                _ => Self::header_safe(&self.value()),
            };
            headers.push(format!("Origin: {origin}"));
        }
        if self.rng.chance(20) {
            let site = *self
                .rng
                .pick(&["same-origin", "cross-site", "none", "same-site", "é"]);
            headers.push(format!("Sec-Fetch-Site: {site}"));
        }
        if self.rng.chance(20) {
            let accept = *self
                .rng
                .pick(&["application/json", "text/html", "*/*", "image/png"]);
            headers.push(format!("Accept: {accept}"));
        }
        let body = if matches!(method, "POST" | "PUT" | "PATCH") || self.rng.chance(5) {
            let (content_type, body) = match self.rng.below(10) {
                0..=4 => (
                    "application/x-www-form-urlencoded",
                    self.params().into_bytes(),
                ),
                5..=6 => ("application/json", self.json(0).to_string().into_bytes()),
                7 => ("application/x-www-form-urlencoded", self.rng.bytes(200)),
                8 => (
                    "text/plain",
                    vec![b'a'; *self.rng.pick(&[0, 10, 65_536, 70_000])],
                ),
                _ => ("multipart/form-data; boundary=x", b"--x--".to_vec()),
            };
            if self.rng.chance(90) {
                headers.push(format!("Content-Type: {content_type}"));
            }
            Some(body)
        } else {
            None
        };
        headers.push("Connection: close".into());
        let mut out = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
        let chunked = body.is_some() && self.rng.chance(15);
        match &body {
            Some(_) if chunked => headers.push("Transfer-Encoding: chunked".into()),
            Some(b) => headers.push(format!("Content-Length: {}", b.len())),
            None => {}
        }
        for h in headers {
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if let Some(b) = body {
            if chunked {
                for chunk in b.chunks(1000) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            } else {
                out.extend_from_slice(&b);
            }
        }
        out
    }
}

/// Sends `request` on a new connection; the status code, or why there was none.
async fn send(addr: std::net::SocketAddr, request: &[u8]) -> Result<u16, String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // The server may answer (413, 400) and close before it has read everything.
        let _ = stream.write_all(request).await;
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(2).any(|w| w == b"\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(e) if head.is_empty() => return Err(format!("read: {e}")),
                Err(_) => break,
            }
        }
        let line = String::from_utf8_lossy(&head);
        line.strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("no status line: {:?}", line.lines().next()))
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .unwrap_or_else(|_| Err("no answer within 20 s".into()))
}

fn shown(request: &[u8]) -> String {
    let text = String::from_utf8_lossy(request);
    text.chars().take(1_500).collect()
}

#[tokio::test]
async fn thousands_of_hostile_requests_get_no_5xx_and_lose_nothing() {
    let app = spawn_app_with(|s| {
        s.registration.policy = RegistrationPolicy::Open;
        s.registration.max_per_ip = 1_000;
        // The slowdown is tested in sessions.rs; here it would only make the run slow.
        s.login.max_slowdown_ms = 0;
    })
    .await;
    let known = Known::gather(&app).await;
    // A token the run never sees: it must be as alive afterwards as before.
    let bystander = app.confidential_client().await;
    let sentinel = app.tokens_for(&bystander, "fuzz", "read").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let seed: u64 = std::env::var("PORTCULLIS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_205);
    let mut workers = tokio::task::JoinSet::new();
    let known = std::sync::Arc::new(known);
    for w in 0..WORKERS {
        let known = known.clone();
        let addr = app.addr;
        workers.spawn(async move {
            let mut generator = Generator {
                rng: Rng(seed.wrapping_add(w).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
                known: &known,
                host: addr.to_string(),
            };
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            let mut failures = Vec::new();
            for _ in 0..REQUESTS_PER_WORKER {
                let request = generator.request();
                match send(addr, &request).await {
                    Ok(status) if status < 500 => *statuses.entry(status).or_default() += 1,
                    Ok(status) => failures.push(format!("{status} for\n{}", shown(&request))),
                    // A server that refuses an over-long body (413) without reading it closes
                    // with unread data, and the kernel then resets the connection, which may
                    // discard the answer before the client reads it (RFC 9112 §9.6).
                    Err(why) if request.len() > OVER_LIMIT && why.starts_with("read") => {
                        *statuses.entry(0).or_default() += 1
                    }
                    Err(why) => failures.push(format!("{why} for\n{}", shown(&request))),
                }
            }
            (statuses, failures)
        });
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut failures = Vec::new();
    while let Some(done) = workers.join_next().await {
        let (s, f) = done.unwrap();
        for (code, n) in s {
            *statuses.entry(code).or_default() += n;
        }
        failures.extend(f);
    }
    eprintln!("http fuzz, seed {seed}: statuses {statuses:?}");
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {} requests failed; the first ones:\n{}",
        failures.len(),
        WORKERS as usize * REQUESTS_PER_WORKER,
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n----\n")
    );
    // The run reached past the first checks: successes and several kinds of refusal.
    assert!(
        statuses.get(&200).copied().unwrap_or(0) >= 100,
        "{statuses:?}"
    );
    for code in [303, 400, 401, 405] {
        assert!(statuses.contains_key(&code), "no {code} in {statuses:?}");
    }

    // Afterwards the server still works, and nothing it did not revoke was lost.
    assert_eq!(app.get("/readyz").await.status(), 200);
    let rs = app.resource_server().await;
    let r = app
        .http
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&rs.id, rs.secret.as_deref())
        .form(&[("token", sentinel.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["active"], true, "the bystander's token was lost");
    let fresh = app
        .token(
            Some((&bystander.id, bystander.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(fresh.status(), 200);
}
