//! `tokens` table: access and refresh tokens by SHA-256, grouped in families (everything issued
//! from one authorization code or client-credentials request).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::exchange::{self, Exchanged};
use super::models::Token;
use super::schema::tokens;
use super::{retry_on_deadlock, Pool, StoreResult};
use crate::db_run;

pub async fn insert(pool: &Pool, token: &Token) -> StoreResult<()> {
    db_run!(pool, |conn| {
        diesel::insert_into(tokens::table)
            .values(token.values())
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(pool: &Pool, token_hash: &[u8]) -> StoreResult<Option<Token>> {
    db_run!(pool, |conn| {
        Ok(tokens::table
            .find(token_hash)
            .select(Token::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Rotates a refresh token: stores its successors, the last of which names it as parent, in one
/// statement (see `exchange`). Nothing is stored unless the result is `Issued`.
pub async fn rotate(pool: &Pool, old_hash: &[u8], issued: [Token; 2]) -> StoreResult<Exchanged> {
    exchange::run::<exchange::RefreshToken, 2>(pool, old_hash, issued).await
}

/// What a refresh needs in one indexed read: the token, whether its user (if any) is disabled
/// (`None`: no such user), and whether it was already used (it has a successor).
pub async fn find_for_refresh(
    pool: &Pool,
    token_hash: &[u8],
) -> StoreResult<Option<(Token, Option<bool>, bool)>> {
    use super::schema::users;
    let successor = diesel::alias!(tokens as successor);
    db_run!(pool, |conn| {
        let found: Option<(Token, Option<bool>, Option<i64>)> = tokens::table
            .left_join(users::table)
            .left_join(
                successor.on(successor
                    .field(tokens::parent_hash)
                    .eq(tokens::token_hash.nullable())),
            )
            .filter(tokens::token_hash.eq(token_hash))
            .select((
                Token::as_select(),
                users::disabled.nullable(),
                successor.field(tokens::created_at).nullable(),
            ))
            .first(conn)
            .await
            .optional()?;
        Ok(found.map(|(t, disabled, next)| {
            let used = t.consumed_at.is_some() || next.is_some();
            (t, disabled, used)
        }))
    })
}

/// Whether a code or refresh token was used: a token names it as parent (or, for rows used
/// before migration 0003, its `consumed_at` is set; callers check that on the row).
pub async fn has_successor(pool: &Pool, grant_hash: &[u8]) -> StoreResult<bool> {
    db_run!(pool, |conn| {
        Ok(diesel::select(diesel::dsl::exists(
            tokens::table.filter(tokens::parent_hash.eq(grant_hash)),
        ))
        .get_result(conn)
        .await?)
    })
}

/// Revokes every token of a family (code replay, refresh-token reuse). Returns how many.
pub async fn revoke_family(pool: &Pool, family_id: &str, now: i64) -> StoreResult<usize> {
    retry_on_deadlock(|| async {
        db_run!(pool, |conn| {
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

/// What introspection needs in one indexed read: the token and, when a user is behind it,
/// their username and whether they are disabled.
pub async fn find_with_user(
    pool: &Pool,
    token_hash: &[u8],
) -> StoreResult<Option<(Token, Option<String>, Option<bool>)>> {
    use super::schema::users;
    db_run!(pool, |conn| {
        Ok(tokens::table
            .left_join(users::table)
            .filter(tokens::token_hash.eq(token_hash))
            .select((
                Token::as_select(),
                users::username.nullable(),
                users::disabled.nullable(),
            ))
            .first(conn)
            .await
            .optional()?)
    })
}

/// Revokes one token. Returns whether it was live.
pub async fn revoke(pool: &Pool, token_hash: &[u8], now: i64) -> StoreResult<bool> {
    db_run!(pool, |conn| {
        Ok(diesel::update(
            tokens::table
                .find(token_hash)
                .filter(tokens::revoked_at.is_null()),
        )
        .set(tokens::revoked_at.eq(now))
        .execute(conn)
        .await?
            > 0)
    })
}
