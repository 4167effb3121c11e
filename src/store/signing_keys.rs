//! `signing_keys` table: the JOSE signing keys every node shares (`crate::keys`). There are a
//! handful of rows, so every read loads them all and the lifecycle is decided in Rust.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::SigningKeyRow;
use super::schema::signing_keys;
use super::{Pool, StoreResult};
use crate::{db_run, db_write};

pub async fn insert(pool: &Pool, row: &SigningKeyRow) -> StoreResult<()> {
    db_write!(pool, |conn| {
        diesel::insert_into(signing_keys::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Every key, oldest activation first.
pub async fn all(pool: &Pool) -> StoreResult<Vec<SigningKeyRow>> {
    db_run!(pool, |conn| {
        Ok(signing_keys::table
            .select(SigningKeyRow::as_select())
            .order((signing_keys::activates_at.asc(), signing_keys::kid.asc()))
            .load(conn)
            .await?)
    })
}

/// Sets `retired_at` unless the key was already retired; whether a row changed.
pub async fn retire(pool: &Pool, kid: &str, at: i64) -> StoreResult<bool> {
    db_write!(pool, |conn| {
        let n = diesel::update(
            signing_keys::table
                .find(kid)
                .filter(signing_keys::retired_at.is_null()),
        )
        .set(signing_keys::retired_at.eq(at))
        .execute(conn)
        .await?;
        Ok(n == 1)
    })
}

/// Brings a waiting key's activation forward to `at`; whether a row changed.
pub async fn activate(pool: &Pool, kid: &str, at: i64) -> StoreResult<bool> {
    db_write!(pool, |conn| {
        let n = diesel::update(
            signing_keys::table
                .find(kid)
                .filter(signing_keys::activates_at.gt(at))
                .filter(signing_keys::retired_at.is_null()),
        )
        .set(signing_keys::activates_at.eq(at))
        .execute(conn)
        .await?;
        Ok(n == 1)
    })
}

/// Deletes the named keys; how many went.
pub async fn delete(pool: &Pool, kids: &[String]) -> StoreResult<usize> {
    if kids.is_empty() {
        return Ok(0);
    }
    db_write!(pool, |conn| {
        Ok(
            diesel::delete(signing_keys::table.filter(signing_keys::kid.eq_any(kids)))
                .execute(conn)
                .await?,
        )
    })
}
