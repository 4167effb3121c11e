//! A code or refresh token is exchanged in one statement (store::exchange): the last token issued
//! names it in `parent_hash`, and only one row may. These tests hold the store to the three
//! outcomes, to byte-exact storage of the hashes, and to keeping a recorded use across a revert
//! of the migration that introduced it.

use portcullis::domain::secret::Digest;
use portcullis::domain::secret::{prefix, Secret};
use portcullis::store::codes::CodeRead;
use portcullis::store::exchange::{Exchange, Exchanged, Grant};
use portcullis::store::group_commit::Job;
use portcullis::store::migrations::{self, Action, Outcome};
use portcullis::store::models::{Token, TokenKind};
use portcullis::store::tokens::{self, RefreshRead};

use crate::helpers::*;

async fn setup() -> (TestApp, TestClient) {
    let app = spawn_app().await;
    app.add_user("hal").await;
    let c = app.confidential_client().await;
    (app, c)
}

/// A refresh token issued over HTTP, and its stored row.
async fn refresh_row(app: &TestApp, c: &TestClient) -> Token {
    let issued = app.tokens_for(c, "hal", "read").await;
    let digest = Secret::from_presented(issued["refresh_token"].as_str().unwrap()).digest();
    tokens::find(&app.pool, &digest).await.unwrap().unwrap()
}

/// Successor rows for `parent`, with fresh random hashes (any byte values, so a backend that
/// re-encoded them as text would be caught).
fn successors(parent: &Token) -> [Token; 2] {
    let row = |kind: TokenKind, p: &str| Token {
        token_hash: Secret::generate(p).digest().as_bytes().to_vec(),
        kind,
        client_id: parent.client_id.clone(),
        user_id: parent.user_id.clone(),
        scope: parent.scope.clone(),
        family_id: parent.family_id.clone(),
        created_at: parent.created_at,
        expires_at: parent.expires_at,
        consumed_at: None,
        revoked_at: None,
        parent_hash: None,
        auth_time: None,
        resource: parent.resource.clone(),
        sid: parent.sid.clone(),
    };
    [
        row(TokenKind::Access, prefix::ACCESS_TOKEN),
        row(TokenKind::Refresh, prefix::REFRESH_TOKEN),
    ]
}

/// The digest a row is stored under.
fn key(t: &Token) -> Digest {
    Digest::from_slice(&t.token_hash).expect("a SHA-256 digest")
}

async fn stored(app: &TestApp, hash: &[u8]) -> Option<Token> {
    let digest = Digest::from_slice(hash).expect("a SHA-256 digest");
    tokens::find(&app.pool, &digest).await.unwrap()
}

#[tokio::test]
async fn a_rotation_is_issued_once_and_stores_the_hashes_byte_for_byte() {
    let (app, c) = setup().await;
    let parent = refresh_row(&app, &c).await;

    let first = successors(&parent);
    let outcome = tokens::rotate(&app.pool, &key(&parent), first.clone())
        .await
        .unwrap();
    assert_eq!(outcome, Exchanged::Issued);
    let access = stored(&app, &first[0].token_hash)
        .await
        .expect("access row");
    assert_eq!(access.token_hash, first[0].token_hash);
    assert_eq!(access.parent_hash, None);
    let next = stored(&app, &first[1].token_hash)
        .await
        .expect("refresh row");
    assert_eq!(next.parent_hash.as_deref(), Some(&parent.token_hash[..]));
    assert_eq!(next.user_id, parent.user_id);

    // Single use: a second exchange of the same parent stores nothing.
    let second = successors(&parent);
    let outcome = tokens::rotate(&app.pool, &key(&parent), second.clone())
        .await
        .unwrap();
    assert_eq!(outcome, Exchanged::AlreadyUsed);
    for row in &second {
        assert!(stored(&app, &row.token_hash).await.is_none());
    }
    assert!(tokens::has_successor(&app.pool, &key(&parent))
        .await
        .unwrap());
}

#[tokio::test]
async fn a_refresh_token_revoked_before_its_rotation_issues_nothing() {
    let (app, c) = setup().await;
    let parent = refresh_row(&app, &c).await;
    // The family is revoked between the refresh's read and its write (reuse detected elsewhere).
    tokens::revoke_family(&app.pool, &parent.family_id, portcullis::now())
        .await
        .unwrap();

    let rows = successors(&parent);
    let outcome = tokens::rotate(&app.pool, &key(&parent), rows.clone())
        .await
        .unwrap();
    assert_eq!(outcome, Exchanged::Refused);
    for row in &rows {
        assert!(stored(&app, &row.token_hash).await.is_none());
    }
    // An unknown parent is refused the same way.
    let unknown = Secret::generate(prefix::REFRESH_TOKEN).digest();
    let outcome = tokens::rotate(&app.pool, &unknown, successors(&parent))
        .await
        .unwrap();
    assert_eq!(outcome, Exchanged::Refused);
}

#[tokio::test]
async fn a_use_recorded_as_parent_survives_reverting_its_migration() {
    let (app, c) = setup().await;
    let first = app.tokens_for(&c, "hal", "read").await;
    let old = first["refresh_token"].as_str().unwrap();
    let second: serde_json::Value = app.refresh(&c, old, &[]).await.json().await.unwrap();
    assert!(second["refresh_token"].is_string());

    // Down past 0003 (parent_hash is folded into consumed_at), then up again.
    let before = version_before(&app.db.url, "token_parent").await;
    migrations::run(&app.db.url, Action::RevertTo(before))
        .await
        .unwrap();
    migrations::run(&app.db.url, Action::RunPending)
        .await
        .unwrap();

    // RFC 9700 §4.14.2: the rotated token is still spent, and presenting it revokes the family.
    assert_oauth_error(app.refresh(&c, old, &[]).await, 400, "invalid_grant").await;
    let r = app
        .refresh(&c, second["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_oauth_error(r, 400, "invalid_grant").await;
}

/// The version of the migration applied just before the one whose name contains `name`.
async fn version_before(url: &str, name: &str) -> String {
    let Outcome::Status(list) = migrations::run(url, Action::Status).await.unwrap() else {
        panic!("no status");
    };
    let at = list.iter().position(|m| m.name.contains(name)).unwrap();
    list[at - 1].version.clone()
}

/// Rotations racing a family revocation lock the same rows in opposite orders, so InnoDB may
/// pick one as a deadlock victim; the store runs the victim again, and no call fails. Whatever
/// the interleaving, a successor is either refused or revoked with its family: none stays live.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotations_racing_a_family_revocation_all_complete_and_leave_nothing_live() {
    let (app, c) = setup().await;
    for _ in 0..10 {
        let parent = refresh_row(&app, &c).await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let pool = app.pool.clone();
            let parent = parent.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    tokens::revoke_family(&pool, &parent.family_id, portcullis::now())
                        .await
                        .map(|_| vec![])
                } else {
                    let rows = successors(&parent);
                    let hashes = rows.iter().map(|r| r.token_hash.clone()).collect();
                    tokens::rotate(&pool, &key(&parent), rows)
                        .await
                        .map(|_| hashes)
                }
            }));
        }
        for t in tasks {
            for hash in t.await.unwrap().expect("no store error") {
                if let Some(row) = stored(&app, &hash).await {
                    assert!(
                        row.revoked_at.is_some(),
                        "a successor outlived the revocation"
                    );
                }
            }
        }
    }
}

/// Exchanges that share one statement (store::group_commit) each get the outcome they would
/// have had alone: a revoked or unknown grant stores nothing and the others are issued.
#[tokio::test]
async fn exchanges_batched_into_one_statement_each_get_their_own_outcome() {
    let (app, c) = setup().await;
    let mut parents = Vec::new();
    for _ in 0..4 {
        parents.push(refresh_row(&app, &c).await);
    }
    tokens::revoke_family(&app.pool, &parents[1].family_id, portcullis::now())
        .await
        .unwrap();
    let unknown_code = Secret::generate(prefix::CODE).digest();
    let code_rows = vec![successors(&parents[0])[0].clone()];
    // Optional columns set on one grant's rows and not on the others': the batch's columns
    // must take each row's own value, NULL or not.
    let mut with_options = successors(&parents[2]);
    for row in &mut with_options {
        row.resource = Some("https://api.example/".into());
        row.sid = Some("sid-1".into());
        row.auth_time = Some(1_700_000_000);
    }
    let jobs = vec![
        Exchange::new(
            Grant::RefreshToken,
            &key(&parents[0]),
            successors(&parents[0]).into(),
        ),
        Exchange::new(
            Grant::RefreshToken,
            &key(&parents[1]),
            successors(&parents[1]).into(),
        ),
        Exchange::new(Grant::RefreshToken, &key(&parents[2]), with_options.into()),
        Exchange::new(Grant::Code, &unknown_code, code_rows),
        Exchange::new(
            Grant::RefreshToken,
            &key(&parents[3]),
            successors(&parents[3]).into(),
        ),
    ];

    let outcomes = Exchange::run_batch(&app.pool, &jobs).await;

    let outcomes: Vec<Exchanged> = outcomes.into_iter().map(|o| o.unwrap()).collect();
    use Exchanged::*;
    assert_eq!(outcomes, [Issued, Refused, Issued, Refused, Issued]);
    for (job, outcome) in jobs.iter().zip(&outcomes) {
        for (i, row) in job.rows().iter().enumerate() {
            let found = stored(&app, &row.token_hash).await;
            assert_eq!(found.is_some(), *outcome == Issued, "all or none per grant");
            let Some(found) = found else { continue };
            let mut expected = row.clone();
            let last = i + 1 == job.rows().len();
            expected.parent_hash = last.then(|| job.grant_hash().to_vec());
            assert_eq!(
                found, expected,
                "stored as given, the last row naming its grant"
            );
        }
    }
}

/// Two exchanges of one grant in the same batch fail its statement on the unique parent; the
/// batch then runs one by one: the first is issued, the second already used, and a neighbour
/// is not harmed.
#[tokio::test]
async fn a_grant_exchanged_twice_in_one_batch_is_issued_once() {
    let (app, c) = setup().await;
    let twice = refresh_row(&app, &c).await;
    let other = refresh_row(&app, &c).await;
    let jobs = vec![
        Exchange::new(Grant::RefreshToken, &key(&twice), successors(&twice).into()),
        Exchange::new(Grant::RefreshToken, &key(&twice), successors(&twice).into()),
        Exchange::new(Grant::RefreshToken, &key(&other), successors(&other).into()),
    ];

    let outcomes: Vec<Exchanged> = Exchange::run_batch(&app.pool, &jobs)
        .await
        .into_iter()
        .map(|o| o.unwrap())
        .collect();

    use Exchanged::*;
    assert_eq!(outcomes, [Issued, AlreadyUsed, Issued]);
    assert!(stored(&app, &jobs[1].rows()[0].token_hash).await.is_none());
    assert!(stored(&app, &jobs[2].rows()[1].token_hash).await.is_some());
}

/// Token inserts batched into one statement: a row whose client is gone fails alone with the
/// foreign-key violation its caller answers `invalid_client` to; the others are stored.
#[tokio::test]
async fn a_token_insert_that_fails_in_a_batch_fails_alone() {
    let (app, c) = setup().await;
    let parent = refresh_row(&app, &c).await;
    let mut rows: Vec<Token> = (0..3).map(|_| successors(&parent)[0].clone()).collect();
    rows[1].client_id = "no-such-client".into();
    rows[1].user_id = None;

    let results = Token::run_batch(&app.pool, &rows).await;

    assert!(results[0].is_ok() && results[2].is_ok());
    let failed = results[1].as_ref().unwrap_err();
    assert!(failed.is_foreign_key_violation(), "{failed}");
    assert!(stored(&app, &rows[0].token_hash).await.is_some());
    assert!(stored(&app, &rows[1].token_hash).await.is_none());
    assert!(stored(&app, &rows[2].token_hash).await.is_some());
}

/// The reads before an exchange, batched into one statement on MariaDB (`IN (…)`), answer each
/// read with its own row: a live token, an unknown one, a used one, and the same one twice.
#[tokio::test]
async fn refresh_reads_batched_into_one_statement_each_get_their_own_row() {
    let (app, c) = setup().await;
    let live = refresh_row(&app, &c).await;
    let used = refresh_row(&app, &c).await;
    let outcome = tokens::rotate(&app.pool, &key(&used), successors(&used))
        .await
        .unwrap();
    assert_eq!(outcome, Exchanged::Issued);
    let unknown = Secret::generate(prefix::REFRESH_TOKEN).digest();
    let reads = [
        RefreshRead::new(key(&live)),
        RefreshRead::new(unknown),
        RefreshRead::new(key(&used)),
        RefreshRead::new(key(&live)),
    ];

    let found: Vec<_> = RefreshRead::run_batch(&app.pool, &reads)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();

    for i in [0, 3] {
        let read = found[i].as_ref().expect("the live token");
        assert_eq!(read.token, live);
        assert!(read.owner_active && read.used_at.is_none());
    }
    assert!(found[1].is_none(), "an unknown token reads as absent");
    let read = found[2].as_ref().expect("the used token");
    assert_eq!(read.token.token_hash, used.token_hash);
    assert!(read.used_at.is_some(), "its successor shows the use");
}

#[tokio::test]
async fn code_reads_batched_into_one_statement_each_get_their_own_row() {
    let (app, c) = setup().await;
    let digest = |code: &str| Secret::from_presented(code).digest();
    let fresh = digest(&app.code_for(&c, "hal", "read").await);
    let unknown = Secret::generate(prefix::CODE).digest();
    let reads = [
        CodeRead::new(fresh),
        CodeRead::new(unknown),
        CodeRead::new(fresh),
    ];

    let found: Vec<_> = CodeRead::run_batch(&app.pool, &reads)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();

    for i in [0, 2] {
        let read = found[i].as_ref().expect("the code");
        assert_eq!(read.code.code_hash, fresh.as_bytes());
        assert!(!read.used && !read.user_disabled);
    }
    assert!(found[1].is_none(), "an unknown code reads as absent");
}

#[derive(diesel::QueryableByName, Debug)]
struct PlanRow {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "table")]
    table: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>, column_name = "key")]
    key: Option<String>,
}

/// A batched code read looks its codes up by primary key, first, whatever the statistics say.
/// With `authorization_codes` analysed while it held one code and grown since, an inner join to
/// `users` let MariaDB start from the user and walk all of that user's codes by the `user_id`
/// index, testing the IN list on each: one benchmark user with 255 k codes made every read scan them all
/// (BENCHMARKS.md, session 20, "A stall"). On both backends the read still finds every code.
#[tokio::test]
async fn a_batched_code_read_starts_from_the_codes_primary_key_even_with_stale_statistics() {
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    use portcullis::store::{codes, Pool};

    let (app, c) = setup().await;
    let first = Secret::from_presented(app.code_for(&c, "hal", "read").await).digest();
    if let Pool::Mysql(p, ..) = &app.pool {
        // Statistics of a one-code table, kept while the table grows.
        let mut conn = p.get().await.unwrap();
        conn.batch_execute(
            "ALTER TABLE authorization_codes STATS_AUTO_RECALC = 0; \
             ANALYZE TABLE authorization_codes, users",
        )
        .await
        .unwrap();
    }
    if let Pool::Mysql(p, ..) = &app.pool {
        // Then it grows: 2,000 more codes of the same user, copies of the first.
        let mut conn = p.get().await.unwrap();
        conn.batch_execute(
            "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, \
             redirect_uri_explicit, scope, code_challenge, code_challenge_method, nonce, \
             family_id, created_at, expires_at, consumed_at, auth_time, resource, sid) \
             SELECT UNHEX(SHA2(CONCAT(s.seq, 'copy'), 256)), client_id, user_id, redirect_uri, \
             redirect_uri_explicit, scope, code_challenge, code_challenge_method, nonce, \
             family_id, created_at, expires_at, consumed_at, auth_time, resource, sid \
             FROM authorization_codes JOIN seq_1_to_2000 s",
        )
        .await
        .unwrap();
    }
    let mut digests = vec![first];
    for _ in 0..15 {
        let code = app.code_for(&c, "hal", "read").await;
        digests.push(Secret::from_presented(code).digest());
    }

    let reads: Vec<CodeRead> = digests.iter().map(|d| CodeRead::new(*d)).collect();
    let found = CodeRead::run_batch(&app.pool, &reads).await;
    for (read, digest) in found.into_iter().zip(&digests) {
        let read = read.unwrap().expect("every code is found");
        assert_eq!(read.code.code_hash, digest.as_bytes());
        assert!(!read.used && !read.user_disabled);
    }

    let Pool::Mysql(p, ..) = &app.pool else {
        return;
    };
    let mut conn = p.get().await.unwrap();
    let mut explain =
        diesel::sql_query(format!("EXPLAIN {}", codes::code_read_sql(digests.len()))).into_boxed();
    for d in &digests {
        explain = explain.bind::<diesel::sql_types::Binary, _>(d.as_bytes().to_vec());
    }
    let plan: Vec<PlanRow> = explain.load(&mut *conn).await.unwrap();
    assert_eq!(plan[0].table, "authorization_codes", "{plan:?}");
    assert_eq!(plan[0].key.as_deref(), Some("PRIMARY"), "{plan:?}");
}
