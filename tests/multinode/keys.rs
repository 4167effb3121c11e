//! Signing keys across nodes: a key rotated through one node's database is published by every
//! node before any of them signs with it, so no relying party meets an unknown `kid`
//! (issue 11's rotation, issue 14's nodes).

use std::time::{Duration, Instant};

use portcullis::oauth::accounts::Lifetimes;
use serde_json::Value;

use crate::cross_node::{field, Pair};
use crate::helpers::{Cli, TestApp, TestClient};

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

/// Verifies a JWT with the key its `kid` names in `set`, as a relying party would.
fn verify(token: &str, set: &Value) -> Result<String, String> {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(set.clone()).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or(format!("unknown kid {kid}"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?;
    Ok(kid)
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
    let old_token = id_token(b, &client).await;
    let old_kid = verify(&old_token, &jwks(a).await).unwrap();

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

    // Once it is active, each node signs with it, and the other node's JWKS verifies it; what
    // the old key signed still verifies too.
    tokio::time::sleep(
        Duration::from_secs(PUBLISH_AHEAD as u64 + 1).saturating_sub(rotated.elapsed()),
    )
    .await;
    for (signer, verifier) in [(a, b), (b, a)] {
        let token = id_token(signer, &client).await;
        let kid = verify(&token, &jwks(verifier).await).unwrap();
        assert_eq!(kid, new_kid, "{} signs with the new key", signer.base);
    }
    assert!(
        kids(&jwks(a).await).contains(&old_kid),
        "the retired key is still published"
    );
}
