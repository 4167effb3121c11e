//! `authorization_codes` table. Single use (RFC 6749 §4.1.2) is enforced by the tokens it issues:
//! one of them names the code as parent, and only one may (see `exchange`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::exchange::{self, Exchanged};
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
    use super::schema::{tokens, users};
    db_run!(pool, |conn| {
        let found: Option<(AuthorizationCode, bool, Option<i64>)> = authorization_codes::table
            .inner_join(users::table)
            .left_join(
                tokens::table.on(tokens::parent_hash.eq(authorization_codes::code_hash.nullable())),
            )
            .filter(authorization_codes::code_hash.eq(code_hash.as_bytes()))
            .select((
                AuthorizationCode::as_select(),
                users::disabled,
                tokens::created_at.nullable(),
            ))
            .first(conn)
            .await
            .optional()?;
        Ok(found.map(|(code, user_disabled, next)| CodeLookup {
            used: code.consumed_at.is_some() || next.is_some(),
            user_disabled,
            code,
        }))
    })
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
