//! The database going away, and clients going away: requests fail fast with 503 and recover;
//! a client that disconnects mid-request never poisons a pooled connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{mysql_base_url, spawn_app, spawn_app_on, spawn_app_with, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_disconnect_mid_request_do_not_poison_the_pool() {
    let app = spawn_app_with(|s| s.database.pool_size = 2).await;
    let client = app.confidential_client().await;
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            client.id,
            client.secret.clone().unwrap()
        ))
    };
    let body = "grant_type=client_credentials&scope=read";
    let token_request = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let requests = std::sync::Arc::new([
        token_request,
        "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
    ]);
    // 300 requests (token issuance: a read and an insert; readiness: a ping) abandoned right
    // after they are sent, at several points of the database round trip.
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let (addr, requests) = (app.addr, requests.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(requests[(i % 2) as usize].as_bytes())
                .await
                .unwrap();
            match i % 3 {
                0 => {}
                1 => tokio::task::yield_now().await,
                _ => tokio::time::sleep(Duration::from_micros(400 * (i % 11))).await,
            }
            // Reset, not a graceful close: the server sees the peer vanish. A zero linger
            // never blocks on drop, which is what the deprecation warns about.
            #[allow(deprecated)]
            s.set_linger(Some(Duration::ZERO)).ok();
            drop(s);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Every later request must succeed.
    let secret = client.secret.as_deref().unwrap();
    for _ in 0..30 {
        let r = app
            .token(
                Some((&client.id, secret)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        let r = app.get("/readyz").await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
    }
}

/// A TCP proxy in front of MariaDB that the test can cut (close every connection, refuse new
/// ones) or stall (hold every byte, in both directions, until released) and restore.
struct Proxy {
    port: u16,
    cut: Arc<tokio::sync::watch::Sender<bool>>,
    stall: Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(tokio::sync::watch::channel(false).0);
        let stall = Arc::new(tokio::sync::watch::channel(false).0);
        let task = tokio::spawn(Self::serve(listener, target, cut.clone(), stall.clone()));
        Proxy {
            port,
            cut,
            stall,
            task,
        }
    }

    async fn serve(
        listener: TcpListener,
        target: std::net::SocketAddr,
        cut: Arc<tokio::sync::watch::Sender<bool>>,
        stall: Arc<tokio::sync::watch::Sender<bool>>,
    ) {
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                return;
            };
            let mut down = cut.subscribe();
            if *down.borrow() {
                drop(inbound);
                continue;
            }
            let stall = stall.clone();
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                tokio::select! {
                    _ = Self::pump(in_read, out_write, stall.subscribe()) => {}
                    _ = Self::pump(out_read, in_write, stall.subscribe()) => {}
                    _ = down.wait_for(|d| *d) => {}
                }
            });
        }
    }

    /// Copies one direction, holding what it read while the proxy is stalled.
    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut stall: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if stall.wait_for(|s| !*s).await.is_err() {
                return;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    fn set_down(&self, down: bool) {
        self.cut.send_replace(down);
    }

    fn set_stalled(&self, stalled: bool) {
        self.stall.send_replace(stalled);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The app on a fresh MariaDB database reached through a `Proxy`.
async fn proxied_app(
    base: &str,
    tweak: impl FnOnce(&mut portcullis::Settings),
) -> (crate::helpers::TestApp, Proxy) {
    let db = TestDb::mysql(base).await;
    let real = url::Url::parse(base).unwrap();
    let target = format!(
        "{}:{}",
        real.host_str().unwrap(),
        real.port().unwrap_or(3306)
    )
    .parse()
    .unwrap();
    let proxy = Proxy::start(target).await;
    // Migrate through the real address, then serve through the proxy.
    portcullis::store::migrations::run(&db.url, portcullis::store::migrations::Action::RunPending)
        .await
        .unwrap();
    // prefer_socket=false: mysql_async would otherwise hop from loopback TCP to the Unix
    // socket and bypass the proxy.
    let proxied = db.url.replacen(
        &format!(":{}/", real.port().unwrap_or(3306)),
        &format!(":{}/", proxy.port),
        1,
    ) + "?prefer_socket=false";
    let app = spawn_app_on(db, |s| {
        s.database.url = portcullis::settings::DatabaseUrl(proxied.clone());
        s.database.auto_migrate = false;
        s.database.connect_timeout_secs = 2;
        s.database.acquire_timeout_secs = 2;
        tweak(s);
    })
    .await;
    (app, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_fast_while_the_database_is_down_and_recovers() {
    let Some(base) = mysql_base_url() else {
        eprintln!("needs MariaDB to take away: set PORTCULLIS_TEST_DATABASE_URL (the MariaDB run covers it)");
        return;
    };
    let (app, proxy) = proxied_app(&base, |_| {}).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    proxy.set_down(true);
    // Let the proxy's forwarding tasks see the cut and close their sockets.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let started = Instant::now();
        let r = app.get("/readyz").await;
        assert_eq!(r.status(), 503);
        // RFC 9110 §10.2.3: a 503 says when to try again.
        assert!(r.headers().contains_key("retry-after"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "must fail fast, took {:?}",
            started.elapsed()
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
        assert!(
            !body.to_string().contains("127.0.0.1"),
            "internal causes are not sent: {body}"
        );
    }
    // The process itself is alive the whole time.
    assert_eq!(app.get("/healthz").await.status(), 200);

    proxy.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if app.get("/readyz").await.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..10 {
        assert_eq!(app.get("/readyz").await.status(), 200);
    }
}

#[tokio::test]
async fn readyz_is_503_when_sqlite_file_cannot_be_opened() {
    // SQLite has no server to stop; a database path whose folder is a file can never open.
    let db = TestDb::sqlite();
    let blocker = db.dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let settings_url = format!("sqlite://{}/x.db", blocker.display());
    let mut settings = db.settings();
    settings.database.url = portcullis::settings::DatabaseUrl(settings_url);
    settings.database.auto_migrate = false;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let built = portcullis::Application::build_with_listener(settings, listener).await;
    let err = built
        .err()
        .expect("a database folder that cannot be created is a startup error");
    assert!(
        err.to_string().contains("cannot create database folder"),
        "{err}"
    );
}

#[tokio::test]
async fn startup_refuses_a_database_that_is_not_utf8mb4() {
    let Some(base) = mysql_base_url() else {
        eprintln!("needs MariaDB: set PORTCULLIS_TEST_DATABASE_URL (the MariaDB run covers it)");
        return;
    };
    let db = TestDb::mysql_with_charset(&base, "latin1").await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = portcullis::Application::build_with_listener(db.settings(), listener)
        .await
        .err()
        .expect("must refuse latin1");
    let msg = err.to_string();
    assert!(
        msg.contains("latin1") && msg.contains("utf8mb4") && msg.contains("ALTER DATABASE"),
        "{msg}"
    );
}

#[test]
fn version_check_names_what_was_found_and_the_fix() {
    use portcullis::store::{check_server_info, ServerInfo};
    let info = |v: &str, c: &str| ServerInfo {
        version: v.into(),
        charset: c.into(),
        db: Some("auth".into()),
    };
    assert!(check_server_info(&info("10.11.19-MariaDB-0+deb12u1", "utf8mb4")).is_ok());
    assert!(check_server_info(&info("10.5.0-MariaDB", "utf8mb4")).is_ok());
    assert!(
        check_server_info(&info("8.0.36", "utf8mb4")).is_ok(),
        "MySQL 8"
    );
    let old = check_server_info(&info("10.4.32-MariaDB", "utf8mb4")).unwrap_err();
    assert!(
        old.contains("10.4.32-MariaDB") && old.contains("10.5"),
        "{old}"
    );
    let mysql57 = check_server_info(&info("5.7.44", "utf8mb4")).unwrap_err();
    assert!(mysql57.contains("5.7.44"), "{mysql57}");
}

#[tokio::test]
async fn raw_garbage_gets_a_400_not_a_crash() {
    let app = spawn_app().await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// A readiness probe that times out while the database stalls must not cancel its round trip:
/// a half-read MySQL connection back in the pool would hand the ping's late answer to the next
/// query (issue 12, point 3: a valid token introspected inactive, then "packet out of order").
/// With a single pooled connection, every answer after the stall must be right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_probe_timing_out_in_a_stall_leaves_the_pool_clean() {
    let Some(base) = mysql_base_url() else {
        eprintln!(
            "needs MariaDB to stall: set PORTCULLIS_TEST_DATABASE_URL (the MariaDB run covers it)"
        );
        return;
    };
    let (app, proxy) = proxied_app(&base, |s| {
        s.database.pool_size = 1;
        s.database.acquire_timeout_secs = 1;
    })
    .await;
    let client = app.resource_server().await;
    let secret = client.secret.clone().unwrap();
    let r = app
        .token(
            Some((&client.id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let issued: serde_json::Value = r.json().await.unwrap();
    let token = issued["access_token"].as_str().unwrap().to_string();

    proxy.set_stalled(true);
    let r = app.get("/readyz").await;
    assert_eq!(
        r.status(),
        503,
        "the probe gives up while the database stalls"
    );
    proxy.set_stalled(false);
    tokio::time::sleep(Duration::from_millis(300)).await;

    for round in 0..20 {
        let r = app
            .http
            .post(app.url("/oauth2/introspect"))
            .basic_auth(&client.id, Some(&secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "round {round}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["active"], true, "round {round}: {body}");
        assert_eq!(app.get("/readyz").await.status(), 200, "round {round}");
    }
}

/// Issue 12, point 4: a stalled (partitioned) database used to hold a request for as long as
/// the stall lasted. Now the answer comes at `request_timeout_secs` as 503
/// `temporarily_unavailable` with Retry-After, the held round trips are not cut (so no
/// connection is left half-read), and every answer after the stall is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_database_answers_503_in_time_and_leaves_every_later_answer_right() {
    let Some(base) = mysql_base_url() else {
        eprintln!(
            "needs MariaDB to stall: set PORTCULLIS_TEST_DATABASE_URL (the MariaDB run covers it)"
        );
        return;
    };
    let (app, proxy) = proxied_app(&base, |s| {
        s.database.pool_size = 2;
        s.database.acquire_timeout_secs = 1;
        s.database.request_timeout_secs = 2;
    })
    .await;
    let client = app.resource_server().await;
    let secret = client.secret.clone().unwrap();
    let basic = Some((client.id.as_str(), secret.as_str()));
    let grant = [("grant_type", "client_credentials")];
    let token = issued_access_token(&app, basic).await;

    proxy.set_stalled(true);
    // /readyz polled throughout, as a load balancer would.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (http, url, stop) = (app.http.clone(), app.url("/readyz"), stop.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                statuses.push(http.get(&url).send().await.unwrap().status().as_u16());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            statuses
        })
    };
    for _ in 0..3 {
        let started = Instant::now();
        let r = app.token(basic, &grant).await;
        let waited = started.elapsed();
        // RFC 6749 §5.2 has no code for this; temporarily_unavailable (§4.1.2.1) with a 503
        // and Retry-After (RFC 9110 §10.2.3), as for every other outage.
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
        assert!(waited < Duration::from_secs(4), "answered after {waited:?}");
    }
    proxy.set_stalled(false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let polled = poller.await.unwrap();
    assert!(polled.iter().all(|s| *s == 200 || *s == 503), "{polled:?}");
    assert!(polled.contains(&503), "the stall was seen: {polled:?}");
    // Requests that found both connections held gave up waiting for one, and were counted.
    let scrape = app.get("/metrics").await.text().await.unwrap();
    let (_, samples) = crate::metrics::parse(&scrape);
    assert!(
        crate::metrics::value(
            &samples,
            "portcullis_db_pool_acquire_failures_total",
            &[("reason", "wait_timeout")]
        ) >= 1.0
    );

    for round in 0..20 {
        let r = app
            .http
            .post(app.url("/oauth2/introspect"))
            .basic_auth(&client.id, Some(&secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "round {round}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["active"], true, "round {round}: {body}");
        assert_eq!(
            app.token(basic, &grant).await.status(),
            200,
            "round {round}"
        );
        assert_eq!(app.get("/readyz").await.status(), 200, "round {round}");
    }
}

/// Issue 12, point 4: after the database restarts, the pooled connections are dead; the first
/// request on each used to get a 500. It is a 503 with Retry-After, the dead connection is
/// dropped, and the next requests succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_database_gets_503_not_500_and_recovers() {
    let Some(base) = mysql_base_url() else {
        eprintln!("needs MariaDB to restart: set PORTCULLIS_TEST_DATABASE_URL (the MariaDB run covers it)");
        return;
    };
    let (app, proxy) = proxied_app(&base, |s| s.database.pool_size = 4).await;
    let client = app.resource_server().await;
    let secret = client.secret.clone().unwrap();
    let basic = Some((client.id.as_str(), secret.as_str()));
    let grant = [("grant_type", "client_credentials")];
    // Open every pooled connection.
    let burst = (0..8).map(|_| app.token(basic, &grant));
    for r in futures_util::future::join_all(burst).await {
        assert_eq!(r.status(), 200);
    }

    proxy.set_down(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.set_down(false);

    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = app.token(basic, &grant).await;
        let status = r.status().as_u16();
        if status == 503 {
            assert!(r.headers().contains_key("retry-after"));
        }
        statuses.push(status);
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(
        statuses[statuses.len() - 6..].iter().all(|s| *s == 200),
        "recovered once each dead connection was dropped: {statuses:?}"
    );
}

/// Issue 12, point 4: MariaDB itself stops a statement at `statement_timeout_secs`
/// (max_statement_time, set on every pooled connection), and that error reads as "unavailable"
/// (503), not as a bug.
#[tokio::test]
async fn mariadb_stops_a_statement_at_the_statement_timeout() {
    let Some(_) = mysql_base_url() else {
        eprintln!("MariaDB only (SQLite's is the busy timeout): the MariaDB run covers it");
        return;
    };
    let app = spawn_app_with(|s| s.database.statement_timeout_secs = 1).await;
    let started = Instant::now();
    let pool = &app.pool;
    let result = async {
        portcullis::db_run!(pool, |conn| {
            use diesel_async::RunQueryDsl;
            Ok::<usize, portcullis::store::StoreError>(
                diesel::sql_query("SELECT SLEEP(4)").execute(conn).await?,
            )
        })
    }
    .await;
    let err = result.expect_err("the server stops the statement");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.is_unavailable(), "{err}");
    // The connection is still good.
    assert_eq!(app.sql("SELECT 1").await, 0);
}

/// Issue 15: on SQLite every write of the process goes through one connection. A write that
/// finds another in progress waits its turn in the process instead of sleeping in SQLite's busy
/// handler and failing with "database is locked" (503) once the busy timeout is spent, and
/// reads go on meanwhile (WAL). Here the writer is held for longer than the busy timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_wait_their_turn_past_the_busy_timeout_and_reads_go_on() {
    if mysql_base_url().is_some() {
        eprintln!("SQLite only (MariaDB has row locks, not one writer): the SQLite run covers it");
        return;
    }
    let app = spawn_app_with(|s| s.database.statement_timeout_secs = 1).await;
    let client = app.resource_server().await;
    let secret = client.secret.clone().unwrap();
    let basic = Some((client.id.as_str(), secret.as_str()));
    let grant = [("grant_type", "client_credentials")];
    let token = issued_access_token(&app, basic).await;

    // A write transaction on the server's own pool that holds SQLite's write lock for 2.5 s,
    // more than twice the 1 s busy timeout.
    let hold = Duration::from_millis(2500);
    let (taken_tx, taken_rx) = tokio::sync::oneshot::channel();
    let holder = {
        let pool = app.pool.clone();
        tokio::spawn(async move {
            portcullis::db_transaction!(&pool, |conn| {
                use diesel_async::RunQueryDsl;
                diesel::sql_query("UPDATE clients SET name = name")
                    .execute(conn)
                    .await?;
                let _ = taken_tx.send(Instant::now());
                tokio::time::sleep(hold).await;
                Ok::<(), portcullis::store::StoreError>(())
            })
        })
    };
    let taken = taken_rx.await.unwrap();

    // A read answers while the writer is held.
    let r = app.introspect(&client, &token, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["active"], true);
    assert!(
        taken.elapsed() < Duration::from_secs(1),
        "introspection waited for the writer: {:?}",
        taken.elapsed()
    );

    // Two writes wait for it, in the process, and then succeed.
    let (first, second) = tokio::join!(app.token(basic, &grant), app.token(basic, &grant));
    let waited = taken.elapsed();
    for r in [first, second] {
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
    }
    assert!(
        waited >= hold - Duration::from_millis(100),
        "the writes did not wait for the writer ({waited:?})"
    );
    holder.await.unwrap().unwrap();
}

/// An access token the token endpoint issues to the client with these Basic credentials
/// (client_credentials).
async fn issued_access_token(app: &crate::helpers::TestApp, basic: Option<(&str, &str)>) -> String {
    let r = app
        .token(basic, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 200);
    let issued: serde_json::Value = r.json().await.unwrap();
    issued["access_token"].as_str().unwrap().to_string()
}

/// Issue 15, session 21: on SQLite the WAL is copied into the database file by a thread of its
/// own (`store::checkpointer`), not inside the writer's commits, which would do it only past
/// 20,000 pages (80 MiB). So what the writer commits reaches the database file while the server
/// runs, long before the WAL is that big.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoints_run_beside_the_writer() {
    if mysql_base_url().is_some() {
        eprintln!("SQLite only (MariaDB has no WAL file of ours): the SQLite run covers it");
        return;
    }
    let app = spawn_app().await;
    let client = app.resource_server().await;
    let secret = client.secret.clone().unwrap();
    let basic = Some((client.id.as_str(), secret.as_str()));
    let file = app.db.dir.path().join("portcullis.db");
    let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap();
    let before = size();

    // 400 tokens, 8 at a time: a few MiB of WAL, far under the writer's own threshold.
    for _ in 0..50 {
        let batch = (0..8).map(|_| issued_access_token(&app, basic));
        futures_util::future::join_all(batch).await;
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while size() <= before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        size() > before,
        "the database file stayed at {before} bytes: nothing was checkpointed"
    );
}
