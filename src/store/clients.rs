//! `clients` table.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::Client;
use super::schema::clients;
use super::{Pool, StoreResult};
use crate::db_run;

pub async fn insert(pool: &Pool, client: &Client) -> StoreResult<()> {
    db_run!(pool, |conn| {
        diesel::insert_into(clients::table)
            .values(client)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(pool: &Pool, client_id: &str) -> StoreResult<Option<Client>> {
    db_run!(pool, |conn| {
        Ok(clients::table
            .find(client_id)
            .select(Client::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn list(pool: &Pool) -> StoreResult<Vec<Client>> {
    db_run!(pool, |conn| {
        Ok(clients::table
            .order((clients::created_at.asc(), clients::client_id.asc()))
            .select(Client::as_select())
            .load(conn)
            .await?)
    })
}

/// Deletes the client; its codes, tokens and consents go with it (ON DELETE CASCADE).
pub async fn remove(pool: &Pool, client_id: &str) -> StoreResult<bool> {
    db_run!(pool, |conn| {
        Ok(diesel::delete(clients::table.find(client_id))
            .execute(conn)
            .await?
            > 0)
    })
}

/// Replaces the secret digest of a confidential client. Returns false if no such client, or
/// if it is public (a public client has no secret to rotate).
pub async fn set_secret_hash(pool: &Pool, client_id: &str, hash: &[u8]) -> StoreResult<bool> {
    db_run!(pool, |conn| {
        let n = diesel::update(
            clients::table
                .find(client_id)
                .filter(clients::secret_hash.is_not_null()),
        )
        .set(clients::secret_hash.eq(hash))
        .execute(conn)
        .await?;
        Ok(n > 0)
    })
}
