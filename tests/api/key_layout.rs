//! Keys that grow at their end (issue 15; `domain::secret`): every code, token and session the
//! server issues is stored under a key that starts with its issue time, token families get
//! ids that sort by time, and what an earlier version issued under the plain SHA-256 keeps
//! working after an upgrade.

use portcullis::domain::secret::{random_b64, Digest, Secret};
use portcullis::store::models::{Token, TokenKind};
use portcullis::store::tokens;

use crate::helpers::*;

fn millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The issue time a key starts with.
fn stamp_of(key: &[u8]) -> u64 {
    key[..6].iter().fold(0, |n, b| n << 8 | u64::from(*b))
}

/// The stamp as the database shows it: `HEX()` of the key's first six bytes, upper case.
fn stamp_hex(millis: u64) -> String {
    format!("{millis:012X}")
}

#[tokio::test]
async fn every_issued_secret_is_stored_under_its_issue_time() {
    let app = spawn_app().await;
    app.add_user("ivy").await;
    let c = app.confidential_client().await;
    let before = millis();
    let code = app.code_for(&c, "ivy", "read").await;
    let r = app.exchange(&c, &code, &[]).await;
    assert_eq!(r.status(), 200);
    let issued: serde_json::Value = r.json().await.unwrap();
    let after = millis();

    let access = issued["access_token"].as_str().unwrap();
    let refresh = issued["refresh_token"].as_str().unwrap();
    for secret in [code.as_str(), access, refresh] {
        let key = Secret::from_presented(secret).digest();
        let stamp = stamp_of(key.as_bytes());
        assert!(
            before <= stamp && stamp <= after,
            "{stamp} not in {before}..={after}"
        );
        assert_ne!(key, Digest::of(secret.as_bytes()));
    }
    let row = |secret: &str| {
        let pool = app.pool.clone();
        let key = Secret::from_presented(secret).digest();
        async move { tokens::find(&pool, &key).await.unwrap().unwrap() }
    };
    let (access_row, refresh_row) = (row(access).await, row(refresh).await);
    // The code's key is what the exchange recorded as the parent.
    let code_key = Secret::from_presented(code.as_str()).digest();
    assert!([&access_row, &refresh_row]
        .iter()
        .any(|t| t.parent_hash.as_deref() == Some(code_key.as_bytes())));
    // The family id starts with the authorization request's time, in hex.
    let family_stamp = u64::from_str_radix(&refresh_row.family_id[..12], 16).unwrap();
    assert!(before <= family_stamp && family_stamp <= after);
    // The sign-in's session too (its cookie never leaves the test browser, so ask the table).
    let (low, high) = (stamp_hex(before), stamp_hex(after));
    assert_eq!(
        count_rows(
            &app.pool,
            "sessions",
            &format!("HEX(SUBSTR(id_hash, 1, 6)) BETWEEN '{low}' AND '{high}'"),
        )
        .await,
        1
    );

    // Later secrets, later keys: a rotation sorts after what it replaces, and so does its
    // access token after the first one.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let r = app.refresh(&c, refresh, &[]).await;
    assert_eq!(r.status(), 200);
    let rotated: serde_json::Value = r.json().await.unwrap();
    let new_refresh = Secret::from_presented(rotated["refresh_token"].as_str().unwrap()).digest();
    let new_access = Secret::from_presented(rotated["access_token"].as_str().unwrap()).digest();
    assert!(new_refresh.as_bytes() > refresh_row.token_hash.as_slice());
    assert!(new_access.as_bytes() > access_row.token_hash.as_slice());
}

/// A token as a version before the stamp issued it: 43 characters after the prefix, stored
/// under the plain SHA-256.
fn unstamped(prefix: &str) -> (String, Digest) {
    let secret = format!("{prefix}{}", random_b64(32));
    let key = Digest::of(secret.as_bytes());
    (secret, key)
}

#[tokio::test]
async fn tokens_issued_before_the_stamp_introspect_refresh_and_revoke_after_the_upgrade() {
    let app = spawn_app().await;
    app.add_user("ivy").await;
    let c = app.confidential_client().await;
    let rs = app.resource_server().await;
    // A family issued by this server, copied under old-style secrets and keys.
    let issued = app.tokens_for(&c, "ivy", "read").await;
    let template = tokens::find(
        &app.pool,
        &Secret::from_presented(issued["refresh_token"].as_str().unwrap()).digest(),
    )
    .await
    .unwrap()
    .unwrap();
    let family_id = random_b64(16);
    let (old_access, access_key) = unstamped("pc_at_");
    let (old_refresh, refresh_key) = unstamped("pc_rt_");
    for (kind, key) in [
        (TokenKind::Access, access_key),
        (TokenKind::Refresh, refresh_key),
    ] {
        let row = Token {
            token_hash: key.as_bytes().to_vec(),
            kind,
            family_id: family_id.clone(),
            parent_hash: None,
            ..template.clone()
        };
        tokens::insert(&app.pool, &row).await.unwrap();
    }

    // RFC 7662 §2.2: the old access token is still active.
    let r = app.introspect(&rs, &old_access, None).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["scope"], "read");

    // The old refresh token rotates once into stamped tokens (RFC 6749 §6) …
    let r = app.refresh(&c, &old_refresh, &[]).await;
    assert_eq!(r.status(), 200);
    let rotated: serde_json::Value = r.json().await.unwrap();
    let new_refresh = rotated["refresh_token"].as_str().unwrap();
    assert_eq!(new_refresh.len(), "pc_rt_".len() + 51);
    let successor = tokens::find(&app.pool, &Secret::from_presented(new_refresh).digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(successor.family_id, family_id);
    // … and a second use is a replay (RFC 9700 §4.14.2): invalid_grant, and the family,
    // stamped successor included, is revoked.
    let r = app.refresh(&c, &old_refresh, &[]).await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    let r = app.introspect(&rs, new_refresh, None).await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"active": false}));

    // RFC 7009 §2.2: an old token can be revoked, and is then inactive.
    let (old_other, other_key) = unstamped("pc_at_");
    let row = Token {
        token_hash: other_key.as_bytes().to_vec(),
        kind: TokenKind::Access,
        family_id: random_b64(16),
        parent_hash: None,
        ..template
    };
    tokens::insert(&app.pool, &row).await.unwrap();
    assert_eq!(app.revoke(&c, &old_other).await.status(), 200);
    let r = app.introspect(&rs, &old_other, None).await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"active": false}));
}
