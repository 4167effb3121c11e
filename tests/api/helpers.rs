//! Test harness: a fresh database per test (`TestDb`, dropped on `Drop`) and the real server
//! on port 0 (`spawn_app`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use portcullis::settings::{DatabaseUrl, Settings};
use portcullis::store::Pool;

pub const MYSQL_ENV: &str = "PORTCULLIS_TEST_DATABASE_URL";

/// The MariaDB server URL (no database) when the suite runs against MariaDB.
pub fn mysql_base_url() -> Option<String> {
    std::env::var(MYSQL_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('/').to_string())
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    /// Holds the SQLite file's folder (or a scratch folder for a MariaDB test).
    pub dir: tempfile::TempDir,
    mysql: Option<(String, String)>,
}

impl TestDb {
    /// The backend the suite runs on.
    pub async fn new() -> Self {
        match mysql_base_url() {
            Some(base) => Self::mysql(&base).await,
            None => Self::sqlite(),
        }
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("portcullis.db").display());
        TestDb {
            url,
            dir,
            mysql: None,
        }
    }

    pub async fn mysql(base: &str) -> Self {
        Self::mysql_with_charset(base, "utf8mb4 COLLATE utf8mb4_bin").await
    }

    pub async fn mysql_with_charset(base: &str, charset: &str) -> Self {
        let name = format!("pct_{}", hex_id());
        let mut conn = portcullis::store::connect_mysql(base, Duration::from_secs(5))
            .await
            .expect("connect to MariaDB (is it running?)");
        use diesel_async::SimpleAsyncConnection;
        conn.batch_execute(&format!("CREATE DATABASE `{name}` CHARACTER SET {charset}"))
            .await
            .expect("create test database");
        TestDb {
            url: format!("{base}/{name}"),
            dir: tempfile::tempdir().expect("tempdir"),
            mysql: Some((base.to_string(), name)),
        }
    }

    /// A database another test's `TestDb` owns (another node of the same installation): it is
    /// not dropped with this value.
    pub fn shared(url: &str) -> Self {
        TestDb {
            url: url.to_string(),
            dir: tempfile::tempdir().expect("tempdir"),
            mysql: None,
        }
    }

    /// The MariaDB database's name, for a URL on another server of the same cluster.
    pub fn mysql_name(&self) -> Option<&str> {
        self.mysql.as_ref().map(|(_, name)| name.as_str())
    }

    pub fn is_mysql(&self) -> bool {
        self.mysql.is_some()
    }

    /// The key-encryption key a MariaDB test configures (MariaDB needs one; on SQLite the
    /// server makes one in the database's folder). One per database, as for an installation.
    pub fn encryption_key(&self) -> Option<String> {
        self.mysql.as_ref().map(|(_, name)| {
            use base64::Engine;
            let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
        })
    }

    pub fn settings(&self) -> Settings {
        let mut s = Settings::default();
        s.database.url = DatabaseUrl(self.url.clone());
        if let Some(key) = self.encryption_key() {
            s.keys.encryption_key = portcullis::settings::SecretString(key);
        }
        s.database.pool_size = 4;
        // Fast hashes keep login tests quick; the stored string records the count.
        s.login.password_hash_iterations = 1000;
        s
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, name)) = self.mysql.take() else {
            return;
        };
        // Drop runs outside async context: a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                use diesel_async::SimpleAsyncConnection;
                if let Ok(mut c) =
                    portcullis::store::connect_mysql(&base, Duration::from_secs(5)).await
                {
                    let _ = c
                        .batch_execute(&format!("DROP DATABASE IF EXISTS `{name}`"))
                        .await;
                }
            });
        })
        .join();
    }
}

pub fn hex_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A running server and what tests need to talk to it.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    /// The `metrics.bind` listener's address, when the test set one.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub base: String,
    pub pool: Pool,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub db: TestDb,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server on a fresh database; `tweak` adjusts the settings first.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new().await;
    spawn_app_on(db, tweak).await
}

pub async fn spawn_app_on(db: TestDb, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = db.settings();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    settings.server.bind = addr.to_string();
    settings.server.issuer = format!("http://{addr}");
    tweak(&mut settings);
    let app = portcullis::Application::build_with_listener(settings.clone(), listener)
        .await
        .expect("build application");
    let pool = app.pool();
    let metrics_addr = app.metrics_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    TestApp {
        base: format!("http://{addr}"),
        addr,
        metrics_addr,
        pool,
        settings,
        http,
        db,
        shutdown: Some(tx),
    }
}

/// A second node of `app`'s installation: its own server, pool and caches, the same settings
/// (issuer, key-encryption key), on `database_url` (the same database, or another member of a
/// cluster holding it). It shares `app`'s HTTP client, so a browser's cookies go to both, as
/// behind a load balancer.
pub async fn spawn_node(app: &TestApp, database_url: &str) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut settings = app.settings.clone();
    settings.server.bind = addr.to_string();
    settings.database.url = DatabaseUrl(database_url.to_string());
    let node = portcullis::Application::build_with_listener(settings.clone(), listener)
        .await
        .expect("build the second node");
    let pool = node.pool();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(node.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        base: format!("http://{addr}"),
        addr,
        metrics_addr: None,
        pool,
        settings,
        http: app.http.clone(),
        db: TestDb::shared(database_url),
        shutdown: Some(tx),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    /// The OpenID Connect discovery document (Discovery 1.0 §4), which must be served.
    pub async fn openid_configuration(&self) -> serde_json::Value {
        let r = self.get("/.well-known/openid-configuration").await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

/// The `portcullis` binary, run with `--config`-free settings from the environment.
pub struct Cli {
    pub db_url: String,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Cli {
    pub fn for_db(db: &TestDb) -> Self {
        let mut env = vec![(
            "PORTCULLIS__LOGIN__PASSWORD_HASH_ITERATIONS".to_string(),
            "1000".to_string(),
        )];
        if let Some(key) = db.encryption_key() {
            env.push(("PORTCULLIS__KEYS__ENCRYPTION_KEY".into(), key));
        }
        Cli {
            db_url: db.url.clone(),
            cwd: db.dir.path().to_path_buf(),
            env,
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_binary(&self.cwd, args, stdin, &self.env, Some(&self.db_url))
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_success(&out, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_with_stdin(args, Some(stdin));
        assert_success(&out, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs, asserts a clean failure (non-zero, one sentence on stderr, no panic); returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_clean_failure(&out, args)
    }
}

/// The URL a `portcullis serve` child prints on its first line of stdout, and that line.
pub fn served_url(child: &mut std::process::Child) -> (String, String) {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .expect("serve prints its URL")
        .to_string();
    (url, line)
}

pub fn run_binary(
    cwd: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(String, String)],
    db_url: Option<&str>,
) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTCULLIS__") {
            cmd.env_remove(k);
        }
    }
    if let Some(url) = db_url {
        cmd.env("PORTCULLIS__DATABASE__URL", url);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn portcullis");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(pipe);
    child.wait_with_output().expect("wait")
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "portcullis {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn assert_clean_failure(out: &Output, args: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "portcullis {args:?} should fail; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.starts_with("error: "),
        "stderr should be one error sentence: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint: {stderr}"
    );
    stderr
}

// ---- OAuth helpers -------------------------------------------------------------------------

use portcullis::domain::clients::NewClientSpec;
use portcullis::domain::password::Password;
use portcullis::oauth::accounts::{self, Lifetimes};

pub const REDIRECT: &str = "https://app.example/cb";
pub const PASSWORD: &str = "correct horse battery staple";

/// A registered client as a test sees it.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

impl TestApp {
    pub async fn add_user(&self, name: &str) {
        accounts::create_user(
            &self.pool,
            name,
            &Password::new(PASSWORD),
            1000,
            portcullis::now(),
        )
        .await
        .unwrap();
    }

    /// A confidential client for `REDIRECT` with scopes "read write", every grant.
    pub async fn confidential_client(&self) -> TestClient {
        self.client_with(|_| {}, Lifetimes::default()).await
    }

    pub async fn public_client(&self) -> TestClient {
        self.client_with(
            |s| {
                s.public = true;
                s.redirect_uris = vec!["http://127.0.0.1/callback".into()];
            },
            Lifetimes::default(),
        )
        .await
    }

    pub async fn client_with(
        &self,
        tweak: impl FnOnce(&mut NewClientSpec),
        lifetimes: Lifetimes,
    ) -> TestClient {
        self.client_with_metadata(tweak, lifetimes, serde_json::json!({}))
            .await
    }

    /// `client_with`, plus client metadata (`id_token_signed_response_alg`,
    /// `access_token_format`, `post_logout_redirect_uris`, …) as a JSON object.
    pub async fn client_with_metadata(
        &self,
        tweak: impl FnOnce(&mut NewClientSpec),
        lifetimes: Lifetimes,
        metadata: serde_json::Value,
    ) -> TestClient {
        let mut spec = NewClientSpec {
            name: "Test App".into(),
            redirect_uris: vec![REDIRECT.into()],
            public: false,
            grant_types: vec![],
            scope: "read write".into(),
            auth_method: None,
            resource_server: false,
        };
        tweak(&mut spec);
        let redirect_uri = spec.redirect_uris.first().cloned().unwrap_or_default();
        let extra = metadata.as_object().cloned().unwrap_or_default();
        let (c, secret) =
            accounts::create_client_with(&self.pool, spec, lifetimes, extra, portcullis::now())
                .await
                .unwrap();
        TestClient {
            id: c.client_id,
            secret: secret.map(|s| s.expose().to_string()),
            redirect_uri,
        }
    }

    /// A confidential client an operator marked as a resource server: it may introspect.
    pub async fn resource_server(&self) -> TestClient {
        self.client_with(|s| s.resource_server = true, Lifetimes::default())
            .await
    }

    /// Marks an existing client as a resource server, as `client resource-server ID on` does.
    pub async fn allow_introspection(&self, c: &TestClient) {
        assert!(
            portcullis::store::clients::set_resource_server(&self.pool, &c.id, true)
                .await
                .unwrap()
        );
    }

    /// Runs one SQL statement (portable SQL only) against the test database; returns rows affected.
    pub async fn sql(&self, statement: &str) -> usize {
        run_sql(&self.pool, statement).await
    }

    /// A browser: its own cookie jar, no automatic redirects.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A browser on another loopback address (`127.0.0.2`, …): to the server, another client
    /// IP. Linux answers on all of 127.0.0.0/8.
    pub fn browser_from(&self, local: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(local.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    }

    /// Signs in through the login form; returns the response to the POST.
    pub async fn login(
        &self,
        browser: &reqwest::Client,
        user: &str,
        password: &str,
        return_to: &str,
    ) -> reqwest::Response {
        let page = browser
            .get(self.url(&format!("/login?return_to={}", urlencode(return_to))))
            .send()
            .await
            .unwrap();
        let csrf = hidden_field(&page.text().await.unwrap(), "csrf_token")
            .expect("login form has a csrf token");
        browser
            .post(self.url("/login"))
            .form(&[
                ("username", user),
                ("password", password),
                ("csrf_token", &csrf),
                ("return_to", return_to),
            ])
            .send()
            .await
            .unwrap()
    }

    /// The whole browser part of the code flow with a fresh browser: authorize → login →
    /// consent (allow) → the redirect back to the client. Returns the redirect's parameters.
    pub async fn authorize_as(
        &self,
        user: &str,
        query: &[(&str, &str)],
    ) -> HashMap<String, String> {
        let browser = self.browser();
        self.authorize_in(&browser, user, query).await
    }

    pub async fn authorize_in(
        &self,
        browser: &reqwest::Client,
        user: &str,
        query: &[(&str, &str)],
    ) -> HashMap<String, String> {
        let path = format!("/oauth2/authorize?{}", encode_pairs(query));
        let mut r = browser.get(self.url(&path)).send().await.unwrap();
        if r.status() == 303 && location(&r).starts_with("/login") {
            let back = self.login(browser, user, PASSWORD, &path).await;
            assert_eq!(back.status(), 303, "login failed");
            assert_eq!(location(&back), path);
            r = browser.get(self.url(&path)).send().await.unwrap();
        }
        if r.status() == 200 {
            let page = r.text().await.unwrap();
            r = self.submit_consent(browser, &page, "allow", None).await;
        }
        assert_eq!(r.status(), 303, "expected a redirect back to the client");
        query_of(&location(&r))
    }

    /// Posts the consent form found in `page` with `decision`.
    pub async fn submit_consent(
        &self,
        browser: &reqwest::Client,
        page: &str,
        decision: &str,
        origin: Option<&str>,
    ) -> reqwest::Response {
        let mut fields = hidden_fields(page);
        fields.push(("decision".into(), decision.into()));
        let mut req = browser.post(self.url("/oauth2/authorize")).form(&fields);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send().await.unwrap()
    }

    /// POSTs a token request with optional Basic credentials.
    pub async fn token(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url("/oauth2/token")).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(urlencode(id), Some(urlencode(secret)));
        }
        req.send().await.unwrap()
    }

    /// Exchanges a code as `client` (Basic auth when confidential); returns the JSON body.
    pub async fn exchange(
        &self,
        client: &TestClient,
        code: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", client.redirect_uri.as_str()),
        ];
        form.extend_from_slice(extra);
        match &client.secret {
            Some(secret) => self.token(Some((&client.id, secret)), &form).await,
            None => {
                form.push(("client_id", &client.id));
                self.token(None, &form).await
            }
        }
    }

    pub async fn refresh(
        &self,
        client: &TestClient,
        refresh_token: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        form.extend_from_slice(extra);
        match &client.secret {
            Some(secret) => self.token(Some((&client.id, secret)), &form).await,
            None => {
                form.push(("client_id", &client.id));
                self.token(None, &form).await
            }
        }
    }

    /// An authorization code for `user` and `client`: signed in, consented, redirected back.
    pub async fn code_for(&self, client: &TestClient, user: &str, scope: &str) -> String {
        let q = self
            .authorize_as(
                user,
                &[
                    ("response_type", "code"),
                    ("client_id", &client.id),
                    ("redirect_uri", &client.redirect_uri),
                    ("scope", scope),
                ],
            )
            .await;
        q["code"].clone()
    }

    /// Authorize and exchange: a fresh token response for `user` and a confidential `client`.
    pub async fn tokens_for(
        &self,
        client: &TestClient,
        user: &str,
        scope: &str,
    ) -> serde_json::Value {
        let code = self.code_for(client, user, scope).await;
        let r = self.exchange(client, &code, &[]).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

use std::collections::HashMap;

/// Runs a statement that writes (on SQLite, on the pool's writer connection).
pub async fn run_sql(pool: &Pool, statement: &str) -> usize {
    let f = async {
        portcullis::db_write!(pool, |conn| {
            use diesel_async::RunQueryDsl;
            Ok::<usize, portcullis::store::StoreError>(
                diesel::sql_query(statement).execute(conn).await?,
            )
        })
    };
    f.await.unwrap()
}

/// The number of rows of `table` that `condition` (SQL, portable) selects.
pub async fn count_rows(pool: &Pool, table: &str, condition: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let statement = format!("SELECT COUNT(*) AS n FROM {table} WHERE {condition}");
    let f = async {
        portcullis::db_run!(pool, |conn| {
            use diesel_async::RunQueryDsl;
            Ok::<Count, portcullis::store::StoreError>(
                diesel::sql_query(&statement).get_result(conn).await?,
            )
        })
    };
    f.await.unwrap().n
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    let parsed = url::Url::parse(url)
        .unwrap_or_else(|_| url::Url::parse(&format!("http://x{url}")).unwrap());
    parsed.query_pairs().into_owned().collect()
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn encode_pairs(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `<input type="hidden" name="N" value="V">` fields of the page's first form, unescaped.
pub fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let first_form = page
        .split("<form")
        .nth(1)
        .and_then(|f| f.split("</form>").next())
        .unwrap_or(page);
    first_form
        .split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|rest| {
            let name = rest.split("name=\"").nth(1)?.split('"').next()?;
            let value = rest.split("value=\"").nth(1)?.split('"').next()?;
            Some((unescape(name), unescape(value)))
        })
        .collect()
}

pub fn hidden_field(page: &str, name: &str) -> Option<String> {
    hidden_fields(page)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// Asserts an RFC 6749 §5.2 error response: status, JSON `error`, no caching.
pub async fn assert_oauth_error(
    r: reqwest::Response,
    status: u16,
    error: &str,
) -> serde_json::Value {
    assert_eq!(r.status().as_u16(), status, "status for {error}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    body
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = format!("v{}", hex_id().repeat(6));
    let challenge = portcullis::domain::pkce::s256_challenge(&verifier);
    (verifier, challenge)
}

/// Verifies a JWT with the key its `kid` names in the JWK Set `jwks`, as a relying party
/// would; `audience`, when given, must be its `aud`. Returns the kid and the claims.
pub fn verify_jwt(
    token: &str,
    jwks: &serde_json::Value,
    audience: Option<&str>,
) -> Result<(String, serde_json::Value), String> {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or(format!("unknown kid {kid}"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    if let Some(aud) = audience {
        validation.set_audience(&[aud]);
    }
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .map(|t| t.claims)
        .map_err(|e| e.to_string())?;
    Ok((kid, claims))
}
