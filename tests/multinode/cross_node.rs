//! What a second node must see of the first one's work: the scenarios, run by `one_database`
//! and `galera` on their own pair of nodes.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{spawn_app_on, spawn_app_with, spawn_node, Cli, TestApp, TestClient, TestDb};

/// Two nodes of one installation.
pub struct Pair {
    pub a: TestApp,
    pub b: TestApp,
}

impl Pair {
    /// Both nodes on the suite's database.
    pub async fn on_one_database(tweak: impl FnOnce(&mut portcullis::settings::Settings)) -> Self {
        let a = spawn_app_with(tweak).await;
        let url = a.db.url.clone();
        let b = spawn_node(&a, &url).await;
        Pair { a, b }
    }

    /// Node A on the first member of a Galera cluster, node B on the second; a fresh database
    /// (created through the first member, which replicates it).
    pub async fn on_galera(
        members: &[String],
        tweak: impl FnOnce(&mut portcullis::settings::Settings),
    ) -> Self {
        assert!(
            members.len() >= 2,
            "a Galera pair needs two members: {members:?}"
        );
        let db = TestDb::mysql(&members[0]).await;
        let name = db.mysql_name().expect("a MariaDB database").to_string();
        let a = spawn_app_on(db, tweak).await;
        let b = spawn_node(&a, &format!("{}/{name}", members[1])).await;
        Pair { a, b }
    }

    /// Node `i` of the pair, alternating: spreads requests over both.
    pub fn node(&self, i: usize) -> &TestApp {
        if i.is_multiple_of(2) {
            &self.a
        } else {
            &self.b
        }
    }
}

/// POSTs to the introspection endpoint (RFC 7662) as `caller`; returns the JSON answer.
pub async fn introspect(node: &TestApp, caller: &TestClient, token: &str) -> Value {
    let r = node
        .http
        .post(node.url("/oauth2/introspect"))
        .basic_auth(&caller.id, caller.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "introspection on {}", node.base);
    r.json().await.unwrap()
}

/// POSTs to the revocation endpoint (RFC 7009) as `caller`.
pub async fn revoke(node: &TestApp, caller: &TestClient, token: &str) -> reqwest::Response {
    node.http
        .post(node.url("/oauth2/revoke"))
        .basic_auth(&caller.id, caller.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

pub async fn is_active(node: &TestApp, rs: &TestClient, token: &str) -> bool {
    introspect(node, rs, token).await["active"] == true
}

pub fn field(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
        .to_string()
}

/// Signs in and consents on A, redeems the code on B, refreshes on A, and revokes and
/// introspects across the two: each node acts on rows the other one wrote a moment before.
pub async fn a_sign_in_on_one_node_is_served_by_the_other(p: &Pair) {
    let (a, b) = (&p.a, &p.b);
    a.add_user("alice").await;
    let client = a.confidential_client().await;
    let rs = a.resource_server().await;

    let code = a.code_for(&client, "alice", "read").await;
    let r = b.exchange(&client, &code, &[]).await;
    assert_eq!(r.status(), 200, "the code from A redeemed on B");
    let first: Value = r.json().await.unwrap();
    assert!(is_active(a, &rs, &field(&first, "access_token")).await);

    let r = a
        .refresh(&client, &field(&first, "refresh_token"), &[])
        .await;
    assert_eq!(r.status(), 200, "the refresh token from B rotated on A");
    let second: Value = r.json().await.unwrap();
    let access = field(&second, "access_token");
    assert!(is_active(b, &rs, &access).await, "A's token active on B");

    // RFC 7009 §2.1: revoked on B, inactive on A at once.
    assert_eq!(revoke(b, &client, &access).await.status(), 200);
    assert!(
        !is_active(a, &rs, &access).await,
        "revoked on B, still active on A"
    );

    // The first refresh token, rotated on A, replayed on B: reuse (RFC 9700 §4.14.2) revokes
    // the family there, and A sees it.
    let r = b
        .refresh(&client, &field(&first, "refresh_token"), &[])
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(!is_active(a, &rs, &field(&second, "refresh_token")).await);
}

/// A client secret rotated through node A's database is refused by node B once B's client
/// cache (`cache.client_ttl_secs`) expires, and the new one is accepted.
pub async fn a_rotated_secret_is_refused_by_the_other_node_within_the_cache_ttl(p: &Pair) {
    let (a, b) = (&p.a, &p.b);
    let ttl = Duration::from_secs(b.settings.cache.client_ttl_secs);
    let client = a.confidential_client().await;
    let old = client.secret.clone().unwrap();
    let cc = [("grant_type", "client_credentials")];
    // B caches the client with its old secret.
    assert_eq!(b.token(Some((&client.id, &old)), &cc).await.status(), 200);

    let out = Cli::for_db(&a.db).ok(&["client", "rotate-secret", &client.id, "--json"]);
    let rotated: Value = serde_json::from_str(&out).unwrap();
    let new = field(&rotated, "client_secret");
    let rotated_at = Instant::now();

    let deadline = rotated_at + ttl + Duration::from_secs(2);
    loop {
        let status = b.token(Some((&client.id, &old)), &cc).await.status();
        if status == 401 {
            break;
        }
        assert_eq!(
            status, 200,
            "the old secret is either still cached or refused"
        );
        assert!(
            Instant::now() < deadline,
            "B still accepts the old secret {:?} after the rotation (cache TTL {ttl:?})",
            rotated_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(b.token(Some((&client.id, &new)), &cc).await.status(), 200);
    assert_eq!(a.token(Some((&client.id, &new)), &cc).await.status(), 200);
}
