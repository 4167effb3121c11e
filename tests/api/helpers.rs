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

    pub fn is_mysql(&self) -> bool {
        self.mysql.is_some()
    }

    pub fn settings(&self) -> Settings {
        let mut s = Settings::default();
        s.database.url = DatabaseUrl(self.url.clone());
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
        pool,
        settings,
        http,
        db,
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
}

/// The `portcullis` binary, run with `--config`-free settings from the environment.
pub struct Cli {
    pub db_url: String,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Cli {
    pub fn for_db(db: &TestDb) -> Self {
        Cli {
            db_url: db.url.clone(),
            cwd: db.dir.path().to_path_buf(),
            env: vec![(
                "PORTCULLIS__LOGIN__PASSWORD_HASH_ITERATIONS".into(),
                "1000".into(),
            )],
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
