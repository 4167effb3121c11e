//! `authorization_codes` table. Single use (RFC 6749 §4.1.2) is enforced by the tokens it issues:
//! one of them names the code as parent, and only one may (see `exchange`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::exchange::{self, Exchanged};
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

/// The code, whether its user is disabled and whether it was used (a token names it as parent,
/// or `consumed_at` is set from before migration 0003), in one read.
pub async fn find_with_user(
    pool: &Pool,
    code_hash: &[u8],
) -> StoreResult<Option<(AuthorizationCode, bool, bool)>> {
    use super::schema::{tokens, users};
    db_run!(pool, |conn| {
        let found: Option<(AuthorizationCode, bool, Option<i64>)> = authorization_codes::table
            .inner_join(users::table)
            .left_join(
                tokens::table.on(tokens::parent_hash.eq(authorization_codes::code_hash.nullable())),
            )
            .filter(authorization_codes::code_hash.eq(code_hash))
            .select((
                AuthorizationCode::as_select(),
                users::disabled,
                tokens::created_at.nullable(),
            ))
            .first(conn)
            .await
            .optional()?;
        Ok(found.map(|(code, disabled, next)| {
            let used = code.consumed_at.is_some() || next.is_some();
            (code, disabled, used)
        }))
    })
}

/// Stores the tokens issued for a code, the last naming the code as parent, in one statement
/// (see `exchange`): of concurrent redemptions exactly one gets `Issued`.
pub async fn redeem<const N: usize>(
    pool: &Pool,
    code_hash: &[u8],
    issued: [Token; N],
) -> StoreResult<Exchanged> {
    exchange::run::<exchange::Code, N>(pool, code_hash, issued).await
}
