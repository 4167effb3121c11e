//! The same scenarios with each node on its own member of a Galera cluster, and a member
//! killed under load. The cluster comes from `deploy/galera/cluster.sh` (`.ci/run` starts it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cross_node::{self, field, is_active, Pair};
use crate::helpers::{TestApp, TestClient};
use crate::{keys, races};

const GALERA_ENV: &str = "PORTCULLIS_TEST_GALERA_URLS";

/// Tests that kill a member take this for writing; the others share it.
static CLUSTER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The members' URLs, or None (said on stderr) when the run has no cluster.
fn members() -> Option<Vec<String>> {
    let urls: Vec<String> = std::env::var(GALERA_ENV)
        .ok()?
        .split(',')
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        eprintln!("{GALERA_ENV} is not set: no Galera cluster in this run (deploy/galera/cluster.sh start)");
        return None;
    }
    Some(urls)
}

macro_rules! galera_pair {
    ($tweak:expr) => {{
        let Some(members) = members() else {
            eprintln!("{GALERA_ENV} is not set: skipped (.ci/run sets it)");
            return;
        };
        Pair::on_galera(&members, $tweak).await
    }};
}

#[tokio::test]
async fn a_sign_in_on_one_member_is_served_through_another() {
    let _shared = CLUSTER.read().await;
    let p = galera_pair!(|_| {});
    cross_node::a_sign_in_on_one_node_is_served_by_the_other(&p).await;
}

#[tokio::test]
async fn a_rotated_secret_is_refused_through_another_member_within_the_cache_ttl() {
    let _shared = CLUSTER.read().await;
    let p = galera_pair!(|s| s.cache.client_ttl_secs = 1);
    cross_node::a_rotated_secret_is_refused_by_the_other_node_within_the_cache_ttl(&p).await;
}

#[tokio::test]
async fn one_code_redeemed_twenty_times_across_members_has_one_winner() {
    let _shared = CLUSTER.read().await;
    let p = galera_pair!(|_| {});
    races::one_code_redeemed_twenty_times_has_one_winner(&p).await;
}

#[tokio::test]
async fn one_refresh_token_used_twenty_times_across_members_has_one_winner() {
    let _shared = CLUSTER.read().await;
    let p = galera_pair!(|_| {});
    races::one_refresh_token_used_twenty_times_has_one_winner(&p).await;
}

/// Galera certifies what a transaction writes, not what it reads: this is the race the
/// exchange's claim exists for (see src/store/exchange.rs).
#[tokio::test]
async fn a_rotation_racing_a_revocation_on_another_member_never_leaves_a_live_successor() {
    let _shared = CLUSTER.read().await;
    let p = galera_pair!(|_| {});
    races::a_rotation_racing_a_revocation_never_leaves_a_live_successor(&p, 60).await;
}

#[tokio::test]
async fn a_rotated_key_is_published_through_both_members_before_either_node_signs_with_it() {
    let _shared = CLUSTER.read().await;
    let p = galera_pair!(keys::fast_rotation);
    keys::a_rotated_key_is_published_by_both_nodes_before_either_signs_with_it(&p).await;
}

/// Runs the cluster script (`kill N`, `start-node N`), failing the test if it fails.
async fn cluster(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/galera/cluster.sh");
    let args_owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(script)
            .args(&args_owned)
            .output()
    })
    .await
    .unwrap()
    .expect("run deploy/galera/cluster.sh");
    assert!(
        out.status.success(),
        "cluster.sh {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Restarts member 2 if the test ends (or fails) while it is down, for the tests after it.
struct Rejoin(bool);

impl Drop for Rejoin {
    fn drop(&mut self) {
        if self.0 {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/galera/cluster.sh");
            let _ = std::process::Command::new("bash")
                .args([script, "start-node", "2"])
                .status();
        }
    }
}

async fn readyz(node: &TestApp) -> u16 {
    node.http
        .get(node.url("/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn eventually_ready(node: &TestApp, want: u16, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let got = readyz(node).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: /readyz is {got} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What one load task saw: each answer's status, and the tokens it was given.
#[derive(Default)]
struct Seen {
    statuses: Vec<u16>,
    tokens: Vec<String>,
}

/// Client-credentials requests against `node` until `stop`.
fn load(
    node: &TestApp,
    client: &TestClient,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Seen> {
    let http = node.http.clone();
    let url = node.url("/oauth2/token");
    let (id, secret) = (client.id.clone(), client.secret.clone().unwrap());
    tokio::spawn(async move {
        let mut seen = Seen::default();
        while !stop.load(Ordering::Relaxed) {
            let r = http
                .post(&url)
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("the Portcullis node itself stays up");
            let status = r.status().as_u16();
            seen.statuses.push(status);
            if status == 200 {
                let body: Value = r.json().await.unwrap();
                seen.tokens.push(field(&body, "access_token"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen
    })
}

/// Member 2 (node B's) is killed with SIGKILL under load: B answers 503 and goes unready, A
/// keeps serving; when the member rejoins (a state transfer), B is ready and serves again; and
/// every token either node answered 200 for is still active, through both.
#[tokio::test]
async fn a_member_killed_under_load_takes_only_its_node_down_and_loses_no_token() {
    let _alone = CLUSTER.write().await;
    let p = galera_pair!(|s| {
        s.database.acquire_timeout_secs = 2;
        s.database.connect_timeout_secs = 2;
    });
    let client = p.a.confidential_client().await;
    let rs = p.a.resource_server().await;
    let stop = Arc::new(AtomicBool::new(false));
    let on_a = load(&p.a, &client, stop.clone());
    let on_b = load(&p.b, &client, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;

    cluster(&["kill", "2"]).await;
    let mut rejoin = Rejoin(true);
    let killed = Instant::now();
    eventually_ready(
        &p.b,
        503,
        Duration::from_secs(10),
        "B after its member died",
    )
    .await;
    let unready_after = killed.elapsed();
    // The whole cluster pauses until it evicts the dead member (evs.suspect_timeout, 3 s in
    // cluster.sh), so A may be briefly unready too; its requests wait, they do not fail.
    eventually_ready(&p.a, 200, Duration::from_secs(10), "A, whose member is up").await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    cluster(&["start-node", "2"]).await;
    rejoin.0 = false;
    eventually_ready(
        &p.b,
        200,
        Duration::from_secs(30),
        "B after its member rejoined",
    )
    .await;
    let down_for = killed.elapsed();
    // Both serve again before the load stops.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (a_seen, b_seen) = (on_a.await.unwrap(), on_b.await.unwrap());
    eprintln!(
        "B unready {unready_after:?} after the kill, ready again {down_for:?} after it; \
         A answered {} requests, B {} ({} of them 503)",
        a_seen.statuses.len(),
        b_seen.statuses.len(),
        b_seen.statuses.iter().filter(|s| **s == 503).count()
    );

    assert!(
        a_seen.statuses.iter().all(|s| *s == 200),
        "A must keep serving: {:?}",
        a_seen
            .statuses
            .iter()
            .filter(|s| **s != 200)
            .collect::<Vec<_>>()
    );
    assert!(
        b_seen.statuses.iter().all(|s| *s == 200 || *s == 503),
        "B answers 200 or 503, nothing else: {:?}",
        b_seen
            .statuses
            .iter()
            .filter(|s| **s != 200 && **s != 503)
            .collect::<Vec<_>>()
    );
    assert!(
        b_seen.statuses.contains(&503),
        "B never said it was unavailable"
    );
    assert_eq!(
        b_seen.statuses.last(),
        Some(&200),
        "B serves again after the rejoin"
    );

    let mut lost = Vec::new();
    for (i, token) in a_seen.tokens.iter().chain(&b_seen.tokens).enumerate() {
        if !is_active(p.node(i), &rs, token).await {
            lost.push(i);
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} tokens answered 200 are not active afterwards",
        lost.len(),
        a_seen.tokens.len() + b_seen.tokens.len()
    );
}
