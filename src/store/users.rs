//! `users` table.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{Profile, User};
use super::schema::users;
use super::{Pool, StoreResult};
use crate::{db_run, db_write};

pub async fn insert(pool: &Pool, user: &User) -> StoreResult<()> {
    db_write!(pool, |conn| {
        diesel::insert_into(users::table)
            .values(user)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find_by_username(pool: &Pool, username: &str) -> StoreResult<Option<User>> {
    db_run!(pool, |conn| {
        Ok(users::table
            .filter(users::username.eq(username))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn list(pool: &Pool) -> StoreResult<Vec<User>> {
    db_run!(pool, |conn| {
        Ok(users::table
            .order(users::username.asc())
            .select(User::as_select())
            .load(conn)
            .await?)
    })
}

/// Returns whether a user by that name existed.
pub async fn set_password_hash(pool: &Pool, username: &str, hash: &str) -> StoreResult<bool> {
    db_write!(pool, |conn| {
        let n = diesel::update(users::table.filter(users::username.eq(username)))
            .set(users::password_hash.eq(hash))
            .execute(conn)
            .await?;
        Ok(n > 0)
    })
}

/// Returns whether a user by that name existed.
pub async fn set_profile(pool: &Pool, username: &str, profile: &Profile) -> StoreResult<bool> {
    db_write!(pool, |conn| {
        let n = diesel::update(users::table.filter(users::username.eq(username)))
            .set(profile)
            .execute(conn)
            .await?;
        Ok(n > 0)
    })
}

/// Disables the user and ends their sessions in one transaction. Returns whether the user existed.
pub async fn disable(pool: &Pool, username: &str) -> StoreResult<bool> {
    use super::schema::sessions;
    crate::db_transaction!(pool, |conn| {
        let n = diesel::update(users::table.filter(users::username.eq(username)))
            .set(users::disabled.eq(true))
            .execute(conn)
            .await?;
        let ids = users::table
            .filter(users::username.eq(username))
            .select(users::id);
        diesel::delete(sessions::table.filter(sessions::user_id.eq_any(ids)))
            .execute(conn)
            .await?;
        Ok(n > 0)
    })
}
