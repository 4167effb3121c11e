//! `tokens` table: access and refresh tokens by SHA-256, grouped in families (everything issued
//! from one authorization code or client-credentials request).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::consume::{self, Consume};
use super::models::Token;
use super::schema::tokens;
use super::{Pool, StoreResult};
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

/// Rotates a refresh token: marks it used and stores its successors, in one transaction.
/// Returns false (and stores nothing) if it was already used or revoked: a concurrent refresh
/// won, or the family was revoked meanwhile.
pub async fn rotate(pool: &Pool, old_hash: &[u8], now: i64, issued: &[Token]) -> StoreResult<bool> {
    crate::db_transaction!(pool, |conn| {
        let consume = Consume::<consume::RefreshToken>::new(old_hash, now);
        let won = consume.execute(conn).await? == 1;
        if won {
            super::InsertRows::insert_tokens(conn, issued).await?;
        }
        Ok(won)
    })
}

/// Revokes every token of a family (code replay, refresh-token reuse). Returns how many.
pub async fn revoke_family(pool: &Pool, family_id: &str, now: i64) -> StoreResult<usize> {
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
