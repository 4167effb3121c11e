//! The janitor (issue 13): expired rows are deleted in batches, by `portcullis db purge` and
//! inside `serve`; live rows stay, and a token outlives the grant it came from so that reuse
//! of a rotated refresh token is still recognised.

use std::time::Duration;

use portcullis::domain::secret::Secret;
use portcullis::store::purge::{self, Table};

use crate::helpers::*;

const DAY: i64 = 24 * 3600;

/// `WHERE` text naming one token row by the hash of its value.
fn token_row(token: &str) -> String {
    format!(
        "token_hash = X'{}'",
        hex::encode(Secret::from_presented(token).digest().as_bytes())
    )
}

async fn expire_token(app: &TestApp, token: &str, ago: i64) {
    let n = app
        .sql(&format!(
            "UPDATE tokens SET expires_at = {} WHERE {}",
            portcullis::now() - ago,
            token_row(token)
        ))
        .await;
    assert_eq!(n, 1);
}

/// Every code and every token but `keep` expired a minute before `now`.
async fn expire_all_but(app: &TestApp, keep: &str, now: i64) {
    app.sql(&format!(
        "UPDATE authorization_codes SET expires_at = {}",
        now - 60
    ))
    .await;
    app.sql(&format!(
        "UPDATE tokens SET expires_at = {} WHERE NOT ({})",
        now - 60,
        token_row(keep)
    ))
    .await;
}

async fn introspect(app: &TestApp, rs: &TestClient, token: &str) -> bool {
    let r = app
        .http
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&rs.id, rs.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<serde_json::Value>().await.unwrap()["active"] == true
}

fn purge_output(out: &str, table: &str) -> u64 {
    out.lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(table)).then(|| words.next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no line for {table} in {out:?}"))
}

#[tokio::test]
async fn db_purge_deletes_what_expired_past_retention_and_keeps_the_rest() {
    let app = spawn_app_with(|s| s.janitor.interval_secs = 0).await;
    app.add_user("erin").await;
    let client = app.confidential_client().await;
    let rs = app.resource_server().await;
    let live = app.tokens_for(&client, "erin", "read").await;
    let machine = app
        .token(
            Some((&client.id, client.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = app.login(&app.browser(), "erin", "wrong", "/").await;
    assert_eq!(failed.status(), 401);

    let now = portcullis::now();
    // Past the retention (a day by default): the code, the machine token, every session and
    // throttle event. Expired but within the retention: nothing is deleted yet.
    app.sql(&format!(
        "UPDATE authorization_codes SET expires_at = {}",
        now - 2 * DAY
    ))
    .await;
    expire_token(&app, &machine, 2 * DAY).await;
    app.sql(&format!(
        "UPDATE sessions SET expires_at = {}",
        now - 2 * DAY
    ))
    .await;
    app.sql(&format!(
        "UPDATE throttle_events SET occurred_at = {}",
        now - 2 * DAY
    ))
    .await;
    let tokens_before = count_rows(&app.pool, "tokens", "1 = 1").await;

    let cli = Cli::for_db(&app.db);
    let dry = cli.ok(&["db", "purge", "--dry-run"]);
    assert_eq!(purge_output(&dry, "authorization_codes"), 1, "{dry}");
    assert_eq!(purge_output(&dry, "tokens"), 1, "{dry}");
    assert!(purge_output(&dry, "sessions") >= 1, "{dry}");
    assert!(purge_output(&dry, "throttle_events") >= 1, "{dry}");
    assert_eq!(
        count_rows(&app.pool, "tokens", "1 = 1").await,
        tokens_before
    );
    assert_eq!(
        count_rows(&app.pool, "authorization_codes", "1 = 1").await,
        1
    );

    let done = cli.ok(&["db", "purge"]);
    assert_eq!(purge_output(&done, "authorization_codes"), 1, "{done}");
    assert_eq!(purge_output(&done, "tokens"), 1, "{done}");
    for table in ["authorization_codes", "sessions", "throttle_events"] {
        assert_eq!(count_rows(&app.pool, table, "1 = 1").await, 0, "{table}");
    }
    assert_eq!(
        count_rows(&app.pool, "tokens", "1 = 1").await,
        tokens_before - 1
    );
    assert!(!introspect(&app, &rs, &machine).await);
    // What had not expired works as before.
    assert!(introspect(&app, &rs, live["access_token"].as_str().unwrap()).await);
    let r = app
        .refresh(&client, live["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(r.status(), 200);
    // A second pass finds nothing.
    let again = cli.ok(&["db", "purge"]);
    assert_eq!(purge_output(&again, "tokens"), 0, "{again}");
}

/// A rotated refresh token is recognised as reused by the token that names it as its parent.
/// That successor must outlive it, even when the successor expires first.
#[tokio::test]
async fn a_token_outlives_the_grant_it_came_from() {
    let app = spawn_app_with(|s| {
        s.janitor.interval_secs = 0;
        s.janitor.retention_secs = 0;
    })
    .await;
    app.add_user("erin").await;
    let client = app.confidential_client().await;
    let first = app.tokens_for(&client, "erin", "read").await;
    let old_refresh = first["refresh_token"].as_str().unwrap().to_string();
    let r = app.refresh(&client, &old_refresh, &[]).await;
    assert_eq!(r.status(), 200);
    let second: serde_json::Value = r.json().await.unwrap();
    let family = count_rows(&app.pool, "tokens", "1 = 1").await;
    assert_eq!(family, 4);

    // Everything has expired but the rotated refresh token, which can still be presented.
    let now = portcullis::now();
    expire_all_but(&app, &old_refresh, now).await;
    let mut cli = Cli::for_db(&app.db);
    cli.env
        .push(("PORTCULLIS__JANITOR__RETENTION_SECS".into(), "0".into()));
    cli.ok(&["db", "purge"]);
    // The first access token went; the old refresh token stays, and so does whichever of
    // its successors names it.
    assert_eq!(
        count_rows(&app.pool, "tokens", &token_row(&old_refresh)).await,
        1
    );
    let successor = format!("parent_hash = X'{}'", {
        hex::encode(Secret::from_presented(&old_refresh).digest().as_bytes())
    });
    assert_eq!(count_rows(&app.pool, "tokens", &successor).await, 1);
    assert!(count_rows(&app.pool, "tokens", "1 = 1").await < family);

    // RFC 9700 §4.14.2: presenting it again is reuse, refused, and not a fresh rotation.
    let reused = app.refresh(&client, &old_refresh, &[]).await;
    assert_eq!(reused.status(), 400);
    let body: serde_json::Value = reused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(second["refresh_token"].is_string());

    // Once it has expired too, the whole family goes in one pass.
    app.sql(&format!("UPDATE tokens SET expires_at = {}", now - 60))
        .await;
    let out = cli.ok(&["db", "purge"]);
    assert_eq!(count_rows(&app.pool, "tokens", "1 = 1").await, 0, "{out}");
}

/// A chain of rotations whose links have all expired goes in one batch, not one link per
/// batch: under load a chain grows by hundreds of links between passes (the soak benchmark
/// found the janitor falling behind when a token waited for its grant to be deleted first).
/// The newest link, still live, stays and still refreshes.
#[tokio::test]
async fn an_expired_chain_of_rotations_goes_in_one_batch() {
    let app = spawn_app_with(|s| {
        s.janitor.interval_secs = 0;
        s.janitor.retention_secs = 0;
    })
    .await;
    app.add_user("erin").await;
    let client = app.confidential_client().await;
    let mut refresh = app.tokens_for(&client, "erin", "read").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let rotations = 10;
    for _ in 0..rotations {
        let r = app.refresh(&client, &refresh, &[]).await;
        assert_eq!(r.status(), 200);
        refresh = r.json::<serde_json::Value>().await.unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let rows = count_rows(&app.pool, "tokens", "1 = 1").await;
    assert_eq!(rows, 2 + 2 * rotations);

    let now = portcullis::now();
    expire_all_but(&app, &refresh, now).await;
    let codes = purge::delete_batch(&app.pool, Table::AuthorizationCodes, now, 1000)
        .await
        .unwrap();
    assert_eq!(codes, 1);
    let deleted = purge::delete_batch(&app.pool, Table::Tokens, now, 1000)
        .await
        .unwrap();
    assert_eq!(deleted as i64, rows - 1);
    assert_eq!(
        count_rows(&app.pool, "tokens", &token_row(&refresh)).await,
        1
    );
    let r = app.refresh(&client, &refresh, &[]).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_janitor_inside_serve_deletes_expired_sessions_and_keeps_live_ones() {
    let app = spawn_app_with(|s| {
        s.janitor.interval_secs = 1;
        s.janitor.retention_secs = 0;
    })
    .await;
    app.add_user("erin").await;
    app.add_user("finn").await;
    let erin = app.browser();
    assert_eq!(app.login(&erin, "erin", PASSWORD, "/").await.status(), 303);
    let finn = app.browser();
    assert_eq!(app.login(&finn, "finn", PASSWORD, "/").await.status(), 303);
    app.sql(&format!(
        "UPDATE sessions SET expires_at = {} WHERE user_id = (SELECT id FROM users WHERE username = 'erin')",
        portcullis::now() - 5
    ))
    .await;
    let mut left = count_rows(&app.pool, "sessions", "1 = 1").await;
    for _ in 0..50 {
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = count_rows(&app.pool, "sessions", "1 = 1").await;
    }
    assert_eq!(left, 1, "the expired session is still there after 5 s");
    // Finn is still signed in: the account page, not the login page.
    let page = finn.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
}
