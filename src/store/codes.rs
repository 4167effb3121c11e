//! `authorization_codes` table. Single use (RFC 6749 §4.1.2) is enforced by the tokens it issues:
//! one of them names the code as parent, and only one may (see `exchange`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::exchange::{self, Exchanged};
use super::group_commit::{each_on_failure, Job};
use super::in_list::InList;
use super::models::{AuthorizationCode, Token};
use super::schema::authorization_codes;
use super::{Pool, StoreResult};
use crate::domain::secret::Digest;
use crate::{db_run, db_write};

pub async fn insert(pool: &Pool, code: &AuthorizationCode) -> StoreResult<()> {
    db_write!(pool, |conn| {
        diesel::insert_into(authorization_codes::table)
            .values(code.values())
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(pool: &Pool, code_hash: &Digest) -> StoreResult<Option<AuthorizationCode>> {
    db_run!(pool, |conn| {
        Ok(authorization_codes::table
            .find(code_hash.as_bytes())
            .select(AuthorizationCode::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// A code as its redemption needs it, from one indexed read.
#[derive(Debug)]
pub struct CodeLookup {
    pub code: AuthorizationCode,
    pub user_disabled: bool,
    /// Whether it was used: a token names it as parent (or `consumed_at` is set: used before
    /// migration 0003, or withdrawn from the account page).
    pub used: bool,
}

pub async fn find_with_user(pool: &Pool, code_hash: &Digest) -> StoreResult<Option<CodeLookup>> {
    // On MariaDB concurrent redemptions read their codes in one statement (`group_commit`).
    let read = CodeRead(*code_hash);
    pool.batchers().code_reads.read(pool, read).await
}

/// A redemption's read of its code, as a `group_commit` job.
pub struct CodeRead(Digest);

impl CodeRead {
    pub fn new(code_hash: Digest) -> Self {
        CodeRead(code_hash)
    }
}

impl Job for CodeRead {
    type Outcome = Option<CodeLookup>;
    const KIND: &'static str = "code_read";

    async fn run_batch(pool: &Pool, jobs: &[Self]) -> Vec<StoreResult<Option<CodeLookup>>> {
        each_on_failure(jobs, |jobs| read_codes(pool, jobs)).await
    }
}

/// The statement of a batched code read: the codes `$keys` name, each with its user and its
/// successor if any.
///
/// The user is a LEFT JOIN although every code has one (a foreign key with cascade) because an
/// outer join fixes the join order: the codes come first, by their primary key. With an inner
/// join MariaDB may start from `users` and walk the user's codes by the `user_id` index,
/// testing the IN list on each, when the codes table's statistics were taken while it was
/// small: one user with 255 k codes made every batched read scan them all and cut code
/// exchange to an eighth (BENCHMARKS.md, session 20, "A stall").
macro_rules! code_read_query {
    ($keys:expr) => {{
        use $crate::store::schema::{tokens, users};
        authorization_codes::table
            .left_join(users::table)
            .left_join(
                tokens::table.on(tokens::parent_hash.eq(authorization_codes::code_hash.nullable())),
            )
            .filter(InList::new(authorization_codes::code_hash, $keys))
            .select((
                AuthorizationCode::as_select(),
                users::disabled.nullable(),
                tokens::created_at.nullable(),
            ))
    }};
}

/// The codes `reads` name, in one indexed read; one result per read, in order.
async fn read_codes(pool: &Pool, reads: &[CodeRead]) -> StoreResult<Vec<Option<CodeLookup>>> {
    let found: Vec<(AuthorizationCode, Option<bool>, Option<i64>)> = db_run!(pool, |conn| {
        Ok(code_read_query!(reads.iter().map(|r| r.0))
            .load(conn)
            .await?)
    })?;
    Ok(reads
        .iter()
        .map(|read| {
            let (code, user_disabled, next) = found
                .iter()
                .find(|(code, ..)| code.code_hash == read.0.as_bytes())?;
            Some(CodeLookup {
                used: code.consumed_at.is_some() || next.is_some(),
                // A code whose user row is gone (no row joined) is as dead as a disabled one.
                user_disabled: *user_disabled != Some(false),
                code: code.clone(),
            })
        })
        .collect())
}

/// The MariaDB SQL of a batched read of `keys` codes, with `?` for each key, for the test that
/// checks its plan (`EXPLAIN`).
pub fn code_read_sql(keys: usize) -> String {
    let dummy = (0..keys).map(|i| Digest::of(&i.to_be_bytes()));
    let sql = diesel::debug_query::<diesel::mysql::Mysql, _>(&code_read_query!(dummy)).to_string();
    match sql.find(" -- binds:") {
        Some(end) => sql[..end].to_string(),
        None => sql,
    }
}

/// Stores the tokens issued for a code, the last naming the code as parent, in one statement
/// (see `exchange`): of concurrent redemptions exactly one gets `Issued`.
pub async fn redeem<const N: usize>(
    pool: &Pool,
    code_hash: &Digest,
    issued: [Token; N],
) -> StoreResult<Exchanged> {
    exchange::run(pool, exchange::Grant::Code, code_hash, issued.into()).await
}
