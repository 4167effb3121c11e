//! Signing keys across nodes: a key rotated through one node's database is published by every
//! node before any of them signs with it, so no relying party meets an unknown `kid`
//! (issue 11's rotation, issue 14's nodes).

use std::time::{Duration, Instant};

use portcullis::oauth::accounts::Lifetimes;
use serde_json::Value;

use crate::cross_node::{field, Pair};
use crate::helpers::{verify_jwt, Cli, TestApp, TestClient};

/// Publish the next key this long before it signs; nodes re-read every second.
pub const PUBLISH_AHEAD: i64 = 6;
const RETIRED: i64 = 10;

/// The settings both nodes and the CLI run with.
pub fn fast_rotation(s: &mut portcullis::settings::Settings) {
    s.keys.refresh_secs = 1;
    s.keys.publish_ahead_secs = PUBLISH_AHEAD;
    s.keys.retired_publish_secs = RETIRED;
    s.tokens.access_token_ttl_secs = RETIRED;
    s.tokens.id_token_ttl_secs = RETIRED;
}

async fn jwks(node: &TestApp) -> Value {
    let r = node.get("/oauth2/jwks").await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn kids(set: &Value) -> Vec<String> {
    let mut kids: Vec<String> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| field(k, "kid"))
        .collect();
    kids.sort();
    kids
}

/// Verifies an id_token `client` received with `set`, as the client would; returns its kid.
fn verify(token: &str, set: &Value, client: &TestClient) -> Result<String, String> {
    verify_jwt(token, set, Some(&client.id)).map(|(kid, _)| kid)
}

/// An id_token for alice from a sign-in and exchange on `node`.
async fn id_token(node: &TestApp, client: &TestClient) -> String {
    field(
        &node.tokens_for(client, "alice", "openid read").await,
        "id_token",
    )
}

pub async fn a_rotated_key_is_published_by_both_nodes_before_either_signs_with_it(p: &Pair) {
    let (a, b) = (&p.a, &p.b);
    a.add_user("alice").await;
    let client = a
        .client_with(|s| s.scope = "openid read".into(), Lifetimes::default())
        .await;
    // One installation, one set of keys: B made none of its own at start.
    assert_eq!(kids(&jwks(a).await), kids(&jwks(b).await));
    let old_kid = verify(&id_token(b, &client).await, &jwks(a).await, &client).unwrap();

    let mut cli = Cli::for_db(&a.db);
    for (k, v) in [
        ("KEYS__REFRESH_SECS", "1".to_string()),
        ("KEYS__PUBLISH_AHEAD_SECS", PUBLISH_AHEAD.to_string()),
        ("KEYS__RETIRED_PUBLISH_SECS", RETIRED.to_string()),
        ("TOKENS__ACCESS_TOKEN_TTL_SECS", RETIRED.to_string()),
        ("TOKENS__ID_TOKEN_TTL_SECS", RETIRED.to_string()),
    ] {
        cli.env.push((format!("PORTCULLIS__{k}"), v));
    }
    let out = cli.ok(&["keys", "rotate", "--alg", "RS256"]);
    let rotated = Instant::now();
    let new_kid = out
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(';')
        .to_string();

    // Both publish it within their re-read interval, well before it signs.
    loop {
        let (on_a, on_b) = (kids(&jwks(a).await), kids(&jwks(b).await));
        if on_a.contains(&new_kid) && on_b.contains(&new_kid) {
            break;
        }
        assert!(
            rotated.elapsed() < Duration::from_secs(3),
            "{new_kid} not published by both nodes 3 s after the rotation: A {on_a:?}, B {on_b:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let published_after = rotated.elapsed();
    assert!(
        published_after < Duration::from_secs(PUBLISH_AHEAD as u64 - 1),
        "published too late to be ahead: {published_after:?}"
    );

    // Once it is active, each node signs with it, and the other node's JWKS verifies it; the
    // retired key stays published.
    tokio::time::sleep(
        Duration::from_secs(PUBLISH_AHEAD as u64 + 1).saturating_sub(rotated.elapsed()),
    )
    .await;
    for (signer, verifier) in [(a, b), (b, a)] {
        let token = id_token(signer, &client).await;
        let kid = verify(&token, &jwks(verifier).await, &client).unwrap();
        assert_eq!(kid, new_kid, "{} signs with the new key", signer.base);
    }
    assert!(
        kids(&jwks(a).await).contains(&old_kid),
        "the retired key is still published"
    );
}
