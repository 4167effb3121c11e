//! Signing keys (issue 11): the JWKS, keys sealed at rest, rotation across nodes, the CLI, the
//! janitor and dumps. Signatures are checked by an independent JOSE implementation
//! (jsonwebtoken on RustCrypto), never by our own code.

use std::time::{Duration, Instant};

use portcullis::keys::{jws, Algorithm, Kek, KeyRing};
use portcullis::settings::{SecretString, Settings};
use portcullis::store::signing_keys;
use serde_json::{json, Value};

use crate::helpers::{
    count_rows, run_sql, spawn_app, spawn_app_with, verify_jwt, Cli, TestApp, TestDb,
};

/// The key-encryption key a server on `db` uses: configured on MariaDB, the generated file on
/// SQLite.
fn kek_text(db: &TestDb) -> String {
    db.encryption_key().unwrap_or_else(|| {
        std::fs::read_to_string(db.dir.path().join("encryption.key"))
            .expect("the SQLite default made its key file")
    })
}

/// A node of our own in the test process: the same key ring a server opens.
async fn ring_of(app: &TestApp) -> KeyRing {
    let kek = Kek::from_base64(&kek_text(&app.db)).unwrap();
    KeyRing::open(
        app.pool.clone(),
        kek,
        app.settings.keys.retired_publish_secs,
        portcullis::now(),
    )
    .await
    .unwrap()
}

async fn jwks(base: &str) -> Value {
    let r = reqwest::get(format!("{base}/oauth2/jwks")).await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// Verifies `token` with the key of its `kid` from `jwks`, as a relying party would.
fn verify(token: &str, jwks: &Value) -> Result<Value, String> {
    verify_jwt(token, jwks, None).map(|(_, claims)| claims)
}

fn claims() -> Value {
    json!({ "iss": "https://portcullis.test", "sub": "user-1", "exp": portcullis::now() + 300 })
}

/// Polls until `done` holds or `limit` passes; whether it held.
async fn eventually<F, Fut>(limit: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn the_jwks_publishes_one_key_per_algorithm_from_the_first_start() {
    let app = spawn_app().await;
    let r = app.get("/oauth2/jwks").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    // Cached for less than keys are published ahead (3600 s), less the nodes' re-read.
    assert_eq!(r.headers()["cache-control"], "public, max-age=1770");
    let set: Value = r.json().await.unwrap();
    let keys = set["keys"].as_array().unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for k in keys {
        // RFC 7517 §4.2, §4.4, §4.5: what the key is for, which algorithm, which key.
        assert_eq!(k["use"], "sig");
        assert!(k["kid"].as_str().is_some_and(|kid| kid.len() == 43), "{k}");
        // RFC 7518 §6.2.2, §6.3.2 / RFC 8037 §2: no private member is ever published.
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(k.get(private).is_none(), "{private} published in {k}");
        }
    }
    // RFC 8414 §2: the metadata names it.
    let meta: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["jwks_uri"], app.url("/oauth2/jwks"));
    // Anyone may fetch it, from any origin.
    let r = app
        .http
        .get(app.url("/oauth2/jwks"))
        .header("origin", "https://rp.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn every_algorithm_signs_what_an_independent_jose_library_verifies() {
    let app = spawn_app().await;
    let ring = ring_of(&app).await;
    let published = jwks(&app.base).await;
    for alg in Algorithm::ALL {
        let key = ring.signing_key(alg, portcullis::now()).unwrap();
        let token = jws::sign(&key, "JWT", &claims()).unwrap();
        let verified = verify(&token, &published).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified["sub"], "user-1", "{alg}");
        // One changed byte of the payload and it no longer verifies.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = parts[1].replacen('e', "f", 1);
        assert!(verify(&parts.join("."), &published).is_err(), "{alg}");
    }
}

#[tokio::test]
async fn private_keys_are_sealed_at_rest_and_open_only_with_the_same_encryption_key() {
    let app = spawn_app().await;
    let rows = signing_keys::all(&app.pool).await.unwrap();
    assert_eq!(rows.len(), 3);
    let kek = Kek::from_base64(&kek_text(&app.db)).unwrap();
    for row in &rows {
        let aad = format!("portcullis signing key {} {}", row.kid, row.alg);
        let der = kek.open(aad.as_bytes(), &row.private_key).expect("opens");
        // PKCS#8 is a DER SEQUENCE; the stored bytes hold no trace of it.
        assert_eq!(der[0], 0x30);
        assert!(
            !row.private_key
                .windows(32)
                .any(|w| der.windows(32).any(|d| d == w)),
            "{}: plaintext found in the stored key",
            row.alg
        );
    }

    // Another node with another key-encryption key refuses to start, and says why.
    let mut settings = app.settings.clone();
    settings.keys.encryption_key = SecretString(Kek::generate().unwrap());
    let err = build_error(settings).await;
    assert!(
        err.contains("does not open with keys.encryption_key"),
        "{err}"
    );
    assert!(err.contains(&rows[0].kid), "{err}");
}

async fn build_error(mut settings: Settings) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    settings.server.bind = listener.local_addr().unwrap().to_string();
    match portcullis::Application::build_with_listener(settings, listener).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn an_encryption_key_is_required_on_mariadb_and_made_once_on_sqlite() {
    let db = TestDb::new().await;
    if db.is_mysql() {
        let mut settings = db.settings();
        settings.keys.encryption_key = SecretString::default();
        let err = build_error(settings).await;
        assert!(err.contains("keys.encryption_key is not set"), "{err}");
        assert!(
            err.contains("portcullis keys generate-encryption-key"),
            "{err}"
        );
        return;
    }
    let settings = db.settings();
    let app = crate::helpers::spawn_app_on(db, |_| {}).await;
    let file = app.db.dir.path().join("encryption.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    let first = std::fs::read_to_string(&file).unwrap();
    let kids_before = kids(&jwks(&app.base).await);
    // A second start on the same database reads the same file and makes no new key.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let again = portcullis::Application::build_with_listener(settings, listener)
        .await
        .unwrap();
    drop(again);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), first);
    assert_eq!(count_rows(&app.pool, "signing_keys", "1=1").await, 3);
    assert_eq!(kids(&jwks(&app.base).await), kids_before);
}

/// A second server on the database of `app`, as another node behind a load balancer.
struct Node {
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn another_node(app: &TestApp) -> Node {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut settings = app.settings.clone();
    settings.server.bind = listener.local_addr().unwrap().to_string();
    let node = portcullis::Application::build_with_listener(settings, listener)
        .await
        .unwrap();
    let base = format!("http://{}", node.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(node.run_until(async {
        let _ = rx.await;
    }));
    Node { base, _stop: tx }
}

#[tokio::test]
async fn a_rotation_is_published_before_it_signs_and_two_nodes_agree_throughout() {
    const AHEAD: i64 = 8;
    const RETIRED: i64 = 3;
    let app = spawn_app_with(|s| {
        s.keys.refresh_secs = 1;
        s.keys.publish_ahead_secs = AHEAD;
        s.keys.retired_publish_secs = RETIRED;
        s.tokens.access_token_ttl_secs = RETIRED;
        s.tokens.id_token_ttl_secs = RETIRED;
    })
    .await;
    let b = another_node(&app).await;
    let ring = ring_of(&app).await;
    let old = ring
        .signing_key(Algorithm::Rs256, portcullis::now())
        .unwrap();
    let before = jws::sign(&old, "JWT", &claims()).unwrap();

    let mut cli = Cli::for_db(&app.db);
    for (k, v) in [
        ("REFRESH_SECS", "1".to_string()),
        ("PUBLISH_AHEAD_SECS", AHEAD.to_string()),
        ("RETIRED_PUBLISH_SECS", RETIRED.to_string()),
    ] {
        cli.env.push((format!("PORTCULLIS__KEYS__{k}"), v));
    }
    for k in ["ACCESS_TOKEN_TTL_SECS", "ID_TOKEN_TTL_SECS"] {
        cli.env
            .push((format!("PORTCULLIS__TOKENS__{k}"), RETIRED.to_string()));
    }
    let out = cli.ok(&["keys", "rotate", "--alg", "RS256"]);
    let new_kid = out
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(';')
        .to_string();
    let row = signing_keys::all(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kid == new_kid)
        .unwrap_or_else(|| panic!("no row for {new_kid}: {out}"));

    // Both nodes publish the next key within their re-read interval, while it does not sign.
    let published = eventually(Duration::from_secs(3), || async {
        kids(&jwks(&app.base).await).contains(&new_kid)
            && kids(&jwks(&b.base).await).contains(&new_kid)
    })
    .await;
    assert!(published, "the next key is not published by both nodes");
    assert!(
        portcullis::now() < row.activates_at,
        "published only after it started signing"
    );
    ring.refresh().await.unwrap();
    assert_eq!(
        ring.signing_key(Algorithm::Rs256, portcullis::now())
            .unwrap()
            .kid(),
        old.kid(),
        "the next key signs before its time"
    );

    // Once it activates it signs; what the old key signed still verifies on both nodes.
    tokio::time::sleep(Duration::from_secs(
        (row.activates_at - portcullis::now()).max(0) as u64 + 1,
    ))
    .await;
    let now = portcullis::now();
    assert_eq!(
        ring.signing_key(Algorithm::Rs256, now).unwrap().kid(),
        new_kid
    );
    let after = jws::sign(
        &ring.signing_key(Algorithm::Rs256, now).unwrap(),
        "JWT",
        &claims(),
    )
    .unwrap();
    for base in [&app.base, &b.base] {
        let set = jwks(base).await;
        verify(&before, &set).unwrap();
        verify(&after, &set).unwrap();
    }

    // The retired key is unpublished once what it signed has expired (retired_publish_secs).
    let gone = eventually(Duration::from_secs(RETIRED as u64 + 3), || async {
        !kids(&jwks(&app.base).await).contains(&old.kid().to_string())
            && !kids(&jwks(&b.base).await).contains(&old.kid().to_string())
    })
    .await;
    assert!(gone, "the retired key is still published");
    assert!(portcullis::now() >= row.activates_at + RETIRED);
    assert_eq!(kids(&jwks(&app.base).await), kids(&jwks(&b.base).await));
}

#[tokio::test]
async fn the_keys_cli_lists_rotates_and_retires() {
    let app = spawn_app().await;
    let cli = Cli::for_db(&app.db);
    let list = cli.ok(&["keys", "list"]);
    assert_eq!(list.matches(" active ").count(), 3, "{list}");

    let out = cli.ok(&["keys", "rotate", "--alg", "ES256"]);
    assert!(out.starts_with("ES256: made "), "{out}");
    let next = out.split_whitespace().nth(2).unwrap().trim_end_matches(';');
    let list = cli.ok(&["keys", "list"]);
    let line = list.lines().find(|l| l.starts_with(next)).unwrap();
    assert!(line.contains(" next "), "{list}");

    // The active key is not retired by hand: rotating --now replaces it.
    let active = list
        .lines()
        .find(|l| l.contains(" ES256 ") && l.contains(" active "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let err = cli.fails(&["keys", "retire", active]);
    assert!(err.contains("rotate --alg ES256 --now"), "{err}");
    // A next key is: it never signs, and stays published meanwhile.
    let out = cli.ok(&["keys", "retire", next]);
    assert!(out.starts_with(&format!("retired {next}")), "{out}");
    let list = cli.ok(&["keys", "list"]);
    let line = list.lines().find(|l| l.starts_with(next)).unwrap();
    assert!(
        line.contains(" retired ") && line.contains("published until"),
        "{line}"
    );
    assert!(cli
        .fails(&["keys", "retire", next])
        .contains("already retired"));
    assert!(cli
        .fails(&["keys", "retire", "nope"])
        .contains("no signing key"));
    // One kid in 64 starts with '-' (base64url): it is a kid, not a flag.
    assert!(cli
        .fails(&[
            "keys",
            "retire",
            "-i_QJWvSqwHDrl10eOZZATEzjvYqQ0Z6oIUchFzbfFc"
        ])
        .contains("no signing key"));
    assert!(cli
        .fails(&["keys", "rotate", "--alg", "HS256"])
        .contains("not one of RS256, ES256, EdDSA"));

    // --now: the new key signs at once and the one it replaces is retired.
    let out = cli.ok(&["keys", "rotate", "--alg", "EdDSA", "--now"]);
    let fresh = out.split_whitespace().nth(2).unwrap().trim_end_matches(';');
    let list = cli.ok(&["keys", "list"]);
    assert!(list
        .lines()
        .find(|l| l.starts_with(fresh))
        .unwrap()
        .contains(" active "));
    assert_eq!(
        list.lines()
            .filter(|l| l.contains(" EdDSA ") && l.contains(" retired "))
            .count(),
        1,
        "{list}"
    );

    // A key-encryption key for keys.encryption_key: base64 of 32 random bytes, new each time.
    use base64::Engine;
    let one = cli.ok(&["keys", "generate-encryption-key"]);
    let two = cli.ok(&["keys", "generate-encryption-key"]);
    assert_ne!(one, two);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(one.trim())
        .unwrap();
    assert_eq!(bytes.len(), 32);
}

#[tokio::test]
async fn the_janitor_deletes_a_key_once_its_publication_is_over() {
    let app = spawn_app().await;
    let cli = Cli::for_db(&app.db);
    let out = cli.ok(&["keys", "rotate", "--alg", "RS256", "--now"]);
    let fresh = out.split_whitespace().nth(2).unwrap().trim_end_matches(';');
    // The key it replaced retired just now: published for a day, so not due.
    let report = cli.ok(&["db", "purge"]);
    assert_eq!(deleted_keys(&report), 0, "{report}");
    assert_eq!(count_rows(&app.pool, "signing_keys", "1=1").await, 4);
    // Two days on (its activation moved back): due, and only that one goes.
    let day = 24 * 3600;
    run_sql(
        &app.pool,
        &format!(
            "UPDATE signing_keys SET activates_at = activates_at - {}, created_at = created_at - {} WHERE kid = '{fresh}'",
            2 * day,
            2 * day
        ),
    )
    .await;
    run_sql(
        &app.pool,
        &format!(
            "UPDATE signing_keys SET activates_at = activates_at - {} WHERE alg = 'RS256' AND kid <> '{fresh}'",
            3 * day
        ),
    )
    .await;
    let report = cli.ok(&["db", "purge"]);
    assert_eq!(deleted_keys(&report), 1, "{report}");
    let left: Vec<String> = signing_keys::all(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.alg == "RS256")
        .map(|r| r.kid)
        .collect();
    assert_eq!(left, [fresh.to_string()]);
}

/// The `signing_keys  N deleted` line of `db purge`.
fn deleted_keys(report: &str) -> u64 {
    report
        .lines()
        .find(|l| l.starts_with("signing_keys "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no signing_keys line in {report}"))
}

#[tokio::test]
async fn a_dump_carries_the_keys_sealed_and_the_loaded_copy_signs_with_them() {
    let app = spawn_app().await;
    let kek = kek_text(&app.db);
    let dump = Cli::for_db(&app.db).ok(&["db", "dump"]);
    let doc: Value = serde_json::from_str(&dump).unwrap();
    let dumped = doc["tables"]["signing_keys"].as_array().unwrap();
    assert_eq!(dumped.len(), 3);
    let stored = signing_keys::all(&app.pool).await.unwrap();
    for row in &stored {
        let d = dumped
            .iter()
            .find(|d| d["kid"] == row.kid.as_str())
            .unwrap();
        assert_eq!(
            d["private_key"],
            hex::encode(&row.private_key),
            "still sealed"
        );
    }

    let target = TestDb::new().await;
    let file = target.dir.path().join("dump.json");
    std::fs::write(&file, &dump).unwrap();
    let dst = Cli::for_db(&target);
    dst.ok(&["migrate", "run"]);
    dst.ok(&["db", "load", file.to_str().unwrap()]);
    // Started with the source's key-encryption key, the copy opens and publishes the same keys
    // and makes none of its own.
    let copy = crate::helpers::spawn_app_on(target, |s| {
        s.keys.encryption_key = SecretString(kek.trim().to_string());
    })
    .await;
    let mut a = kids(&jwks(&app.base).await);
    let mut b = kids(&jwks(&copy.base).await);
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[tokio::test]
async fn keys_rotate_on_schedule_with_no_command() {
    const AHEAD: i64 = 3;
    const EVERY: i64 = 5;
    let app = spawn_app_with(|s| {
        s.keys.refresh_secs = 1;
        s.keys.publish_ahead_secs = AHEAD;
        s.keys.rotate_after_secs = EVERY;
    })
    .await;
    let first = signing_keys::all(&app.pool).await.unwrap();
    let first_rs256 = first.iter().find(|r| r.alg == "RS256").unwrap().clone();
    // The successor is made when the active key is EVERY - AHEAD seconds old, by the node's
    // own refresh loop, and published AHEAD seconds before it signs.
    let known: Vec<String> = first.iter().map(|r| r.kid.clone()).collect();
    let successor = || async {
        signing_keys::all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.alg == "RS256" && !known.contains(&r.kid))
    };
    let made = eventually(Duration::from_secs(10), || async {
        successor().await.is_some()
    })
    .await;
    assert!(made, "no successor was scheduled");
    let next = successor().await.unwrap();
    assert_eq!(next.activates_at - next.created_at, AHEAD);
    assert!(next.activates_at >= first_rs256.activates_at + EVERY);
    // The node that made it re-read the keys at once: published, not yet signing.
    assert!(kids(&jwks(&app.base).await).contains(&next.kid));
    assert!(portcullis::now() < next.activates_at);
    // Once it activates, the server signs with it, and the old key stays published.
    let ring = ring_of(&app).await;
    let signs = eventually(Duration::from_secs(AHEAD as u64 + 3), || async {
        ring.refresh().await.unwrap();
        ring.signing_key(Algorithm::Rs256, portcullis::now())
            .is_some_and(|k| k.kid() == next.kid)
    })
    .await;
    assert!(signs, "the successor never signed");
    assert!(kids(&jwks(&app.base).await).contains(&first_rs256.kid));
}
