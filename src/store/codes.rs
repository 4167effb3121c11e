//! `authorization_codes` table. Single use is enforced by a conditional UPDATE (RFC 6749 §4.1.2):
//! of concurrent redemptions exactly one sees an affected row.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::consume::{self, Consume};
use super::models::{AuthorizationCode, Token};
use super::schema::authorization_codes;
use super::{Pool, StoreResult};
use crate::db_run;

pub async fn insert(pool: &Pool, code: &AuthorizationCode) -> StoreResult<()> {
    db_run!(pool, |conn| {
        diesel::insert_into(authorization_codes::table)
            .values(code.values())
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(pool: &Pool, code_hash: &[u8]) -> StoreResult<Option<AuthorizationCode>> {
    db_run!(pool, |conn| {
        Ok(authorization_codes::table
            .find(code_hash)
            .select(AuthorizationCode::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// The code and whether its user is disabled, in one read.
pub async fn find_with_user(
    pool: &Pool,
    code_hash: &[u8],
) -> StoreResult<Option<(AuthorizationCode, bool)>> {
    use super::schema::users;
    db_run!(pool, |conn| {
        Ok(authorization_codes::table
            .inner_join(users::table)
            .filter(authorization_codes::code_hash.eq(code_hash))
            .select((AuthorizationCode::as_select(), users::disabled))
            .first(conn)
            .await
            .optional()?)
    })
}

/// Marks the code used and stores the tokens issued for it, in one transaction. Returns false
/// (and stores nothing) if the code was already used: a concurrent redemption won.
pub async fn redeem(
    pool: &Pool,
    code_hash: &[u8],
    now: i64,
    issued: &[Token],
) -> StoreResult<bool> {
    crate::db_transaction!(pool, |conn| {
        let consume = Consume::<consume::Code>::new(code_hash, now);
        let won = consume.execute(conn).await? == 1;
        if won {
            super::InsertRows::insert_tokens(conn, issued).await?;
        }
        Ok(won)
    })
}
