//! `tokens` table: access and refresh tokens by SHA-256, grouped in families (everything issued
//! from one authorization code or client-credentials request).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::exchange::{self, Exchanged, InsertRows};
use super::group_commit::{each_on_failure, Job};
use super::in_list::InList;
use super::models::{Token, TokenState, User};
use super::schema::tokens;
use super::{retry_on_deadlock, Pool, StoreResult};
use crate::domain::secret::Digest;
use crate::{db_run, db_write};

/// Stores a new token. Concurrent inserts share one statement (`group_commit`).
pub async fn insert(pool: &Pool, token: &Token) -> StoreResult<()> {
    pool.batchers().tokens.submit(pool, token.clone()).await
}

/// A token insert as a `group_commit` job: one multi-row `INSERT … VALUES` per batch.
impl Job for Token {
    type Outcome = ();
    const KIND: &'static str = "token_insert";

    async fn run_batch(pool: &Pool, jobs: &[Self]) -> Vec<StoreResult<()>> {
        each_on_failure(jobs, |rows| {
            retry_on_deadlock(move || async move {
                db_write!(pool, |conn| {
                    InsertRows(rows).execute(conn).await?;
                    Ok(vec![(); rows.len()])
                })
            })
        })
        .await
    }
}

/// Rows in the table, live or not (the benchmark's soak watches it level off).
pub async fn count(pool: &Pool) -> StoreResult<i64> {
    db_run!(pool, |conn| Ok(tokens::table
        .count()
        .get_result(conn)
        .await?))
}

pub async fn find(pool: &Pool, token_hash: &Digest) -> StoreResult<Option<Token>> {
    db_run!(pool, |conn| {
        Ok(tokens::table
            .find(token_hash.as_bytes())
            .select(Token::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Rotates a refresh token: stores its successors, the last of which names it as parent, in one
/// statement (see `exchange`). Nothing is stored unless the result is `Issued`.
pub async fn rotate(pool: &Pool, old_hash: &Digest, issued: [Token; 2]) -> StoreResult<Exchanged> {
    exchange::run(pool, exchange::Grant::RefreshToken, old_hash, issued.into()).await
}

/// A refresh token as a refresh needs it, from one indexed read.
#[derive(Debug)]
pub struct RefreshLookup {
    pub token: Token,
    /// Whether a token bound to a user may still be used: the user exists and is not
    /// disabled. (True for client tokens, which have no user.)
    pub owner_active: bool,
    /// When it was used, if it was: its successor's creation (or, for rows used before
    /// migration 0003, `consumed_at`).
    pub used_at: Option<i64>,
}

pub async fn find_for_refresh(
    pool: &Pool,
    token_hash: &Digest,
) -> StoreResult<Option<RefreshLookup>> {
    // On MariaDB concurrent refreshes read their tokens in one statement (`group_commit`).
    let read = RefreshRead(*token_hash);
    pool.batchers().refresh_reads.read(pool, read).await
}

/// A refresh's read of its token, as a `group_commit` job.
pub struct RefreshRead(Digest);

impl RefreshRead {
    pub fn new(token_hash: Digest) -> Self {
        RefreshRead(token_hash)
    }
}

impl Job for RefreshRead {
    type Outcome = Option<RefreshLookup>;
    const KIND: &'static str = "refresh_read";

    async fn run_batch(pool: &Pool, jobs: &[Self]) -> Vec<StoreResult<Option<RefreshLookup>>> {
        each_on_failure(jobs, |jobs| read_refresh_tokens(pool, jobs)).await
    }
}

/// The tokens `reads` name, each with its user's state and its successor if any, in one
/// indexed read; one result per read, in order.
async fn read_refresh_tokens(
    pool: &Pool,
    reads: &[RefreshRead],
) -> StoreResult<Vec<Option<RefreshLookup>>> {
    use super::schema::users;
    let successor = diesel::alias!(tokens as successor);
    let found: Vec<(Token, Option<bool>, Option<i64>)> = db_run!(pool, |conn| {
        Ok(tokens::table
            .left_join(users::table)
            .left_join(
                successor.on(successor
                    .field(tokens::parent_hash)
                    .eq(tokens::token_hash.nullable())),
            )
            .filter(InList::new(tokens::token_hash, reads.iter().map(|r| r.0)))
            .select((
                Token::as_select(),
                users::disabled.nullable(),
                successor.field(tokens::created_at).nullable(),
            ))
            .load(conn)
            .await?)
    })?;
    Ok(reads
        .iter()
        .map(|read| {
            let (token, disabled, next) = found
                .iter()
                .find(|(token, ..)| token.token_hash == read.0.as_bytes())?;
            Some(RefreshLookup {
                // A user-bound token whose user is gone (no row joined) or disabled is dead.
                owner_active: token.user_id.is_none() || *disabled == Some(false),
                used_at: token.consumed_at.or(*next),
                token: token.clone(),
            })
        })
        .collect())
}

/// Whether a code or refresh token was used: a token names it as parent (or, for rows used
/// before migration 0003, its `consumed_at` is set; callers check that on the row).
pub async fn has_successor(pool: &Pool, grant_hash: &Digest) -> StoreResult<bool> {
    db_run!(pool, |conn| {
        Ok(diesel::select(diesel::dsl::exists(
            tokens::table.filter(tokens::parent_hash.eq(grant_hash.as_bytes())),
        ))
        .get_result(conn)
        .await?)
    })
}

/// Revokes every token of a family (code replay, refresh-token reuse). Returns how many.
pub async fn revoke_family(pool: &Pool, family_id: &str, now: i64) -> StoreResult<usize> {
    retry_on_deadlock(|| async {
        db_write!(pool, |conn| {
            Ok(diesel::update(
                tokens::table
                    .filter(tokens::family_id.eq(family_id))
                    .filter(tokens::revoked_at.is_null()),
            )
            .set(tokens::revoked_at.eq(now))
            .execute(conn)
            .await?)
        })
    })
    .await
}

/// A token as introspection needs it, from one indexed read.
#[derive(Debug)]
pub struct IntrospectLookup {
    pub token: TokenState,
    /// The username of the user behind it, if any.
    pub username: Option<String>,
    /// Whether that user is disabled (false when there is none).
    pub user_disabled: bool,
}

pub async fn find_with_user(
    pool: &Pool,
    token_hash: &Digest,
) -> StoreResult<Option<IntrospectLookup>> {
    use super::schema::users;
    db_run!(pool, |conn| {
        let found: Option<(TokenState, Option<String>, Option<bool>)> = tokens::table
            .left_join(users::table)
            .filter(tokens::token_hash.eq(token_hash.as_bytes()))
            .select((
                TokenState::as_select(),
                users::username.nullable(),
                users::disabled.nullable(),
            ))
            .first(conn)
            .await
            .optional()?;
        Ok(found.map(|(token, username, disabled)| IntrospectLookup {
            token,
            username,
            user_disabled: disabled == Some(true),
        }))
    })
}

/// A token and the user it was issued for (None for a client's own token), in one indexed
/// read: what userinfo needs.
pub async fn find_with_owner(
    pool: &Pool,
    token_hash: &Digest,
) -> StoreResult<Option<(TokenState, Option<User>)>> {
    use super::schema::users;
    db_run!(pool, |conn| {
        Ok(tokens::table
            .left_join(users::table)
            .filter(tokens::token_hash.eq(token_hash.as_bytes()))
            .select((TokenState::as_select(), Option::<User>::as_select()))
            .first(conn)
            .await
            .optional()?)
    })
}

/// Revokes one token. Returns whether it was live.
pub async fn revoke(pool: &Pool, token_hash: &Digest, now: i64) -> StoreResult<bool> {
    db_write!(pool, |conn| {
        Ok(diesel::update(
            tokens::table
                .find(token_hash.as_bytes())
                .filter(tokens::revoked_at.is_null()),
        )
        .set(tokens::revoked_at.eq(now))
        .execute(conn)
        .await?
            > 0)
    })
}
