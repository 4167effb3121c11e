//! Races across nodes: the same grant used on both at once.

use futures_util::future::join_all;
use serde_json::Value;

use crate::cross_node::{field, is_active, revoke, Pair};

const PARALLEL: usize = 20;

/// Counts the answers: exactly one 200, every other one the RFC 6749 §5.2 `invalid_grant`,
/// never a 5xx.
async fn one_winner(answers: Vec<reqwest::Response>) -> Value {
    let mut winner = None;
    let mut losers = 0;
    for r in answers {
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        match status.as_u16() {
            200 => {
                assert!(winner.is_none(), "a second winner: {body}");
                winner = Some(body);
            }
            400 => {
                assert_eq!(body["error"], "invalid_grant", "{body}");
                losers += 1;
            }
            other => panic!("{other} in a race: {body}"),
        }
    }
    assert_eq!(losers, PARALLEL - 1);
    winner.expect("no request won")
}

/// RFC 6749 §4.1.2: a code is used once, whichever nodes its redemptions reach.
pub async fn one_code_redeemed_twenty_times_has_one_winner(p: &Pair) {
    p.a.add_user("alice").await;
    let client = p.a.confidential_client().await;
    let code = p.a.code_for(&client, "alice", "read").await;
    let answers = join_all((0..PARALLEL).map(|i| p.node(i).exchange(&client, &code, &[]))).await;
    one_winner(answers).await;
}

/// RFC 9700 §4.14.2: a refresh token rotates once, whichever nodes its uses reach.
pub async fn one_refresh_token_used_twenty_times_has_one_winner(p: &Pair) {
    p.a.add_user("alice").await;
    let client = p.a.confidential_client().await;
    let tokens = p.a.tokens_for(&client, "alice", "read").await;
    let rt = field(&tokens, "refresh_token");
    let answers = join_all((0..PARALLEL).map(|i| p.node(i).refresh(&client, &rt, &[]))).await;
    one_winner(answers).await;
}

/// A refresh on one node and the revocation of the same token (RFC 7009 §2.1: a refresh
/// token's revocation revokes its family) on the other, at the same moment, for `rounds`
/// families. Whichever commits first, no token the rotation issued may stay active.
pub async fn a_rotation_racing_a_revocation_never_leaves_a_live_successor(p: &Pair, rounds: usize) {
    p.a.add_user("alice").await;
    let client = p.a.confidential_client().await;
    let rs = p.a.resource_server().await;
    let mut live = Vec::new();
    let mut rotated = 0;
    for round in 0..rounds {
        let (rotating, revoking) = (p.node(round), p.node(round + 1));
        let tokens = rotating.tokens_for(&client, "alice", "read").await;
        let rt = field(&tokens, "refresh_token");
        let (rotation, revocation) = tokio::join!(
            rotating.refresh(&client, &rt, &[]),
            revoke(revoking, &client, &rt)
        );
        assert_eq!(revocation.status(), 200, "round {round}: revocation");
        let status = rotation.status();
        let body: Value = rotation.json().await.unwrap();
        match status.as_u16() {
            200 => {
                rotated += 1;
                for name in ["access_token", "refresh_token"] {
                    let token = field(&body, name);
                    if is_active(p.node(round), &rs, &token).await
                        || is_active(p.node(round + 1), &rs, &token).await
                    {
                        live.push(format!("round {round}: {name}"));
                    }
                }
            }
            400 => assert_eq!(body["error"], "invalid_grant", "round {round}: {body}"),
            other => panic!("round {round}: rotation answered {other}: {body}"),
        }
    }
    eprintln!("{rotated} of {rounds} rotations were answered 200 before their revocation won");
    assert!(
        live.is_empty(),
        "{} live successors of revoked families in {rounds} rounds: {live:?}",
        live.len()
    );
}
