//! `clients` table. Rows go in and come out as `domain::clients::Client`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::ClientRow;
use super::schema::clients;
use super::{Pool, StoreResult};
use crate::domain::clients::Client;
use crate::domain::secret::Digest;
use crate::{db_run, db_write};

pub async fn insert(pool: &Pool, client: &Client) -> StoreResult<()> {
    db_write!(pool, |conn| {
        diesel::insert_into(clients::table)
            .values(ClientRow::from(client))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// The client, parsed; a row that does not parse is `StoreError::Corrupt`.
pub async fn find(pool: &Pool, client_id: &str) -> StoreResult<Option<Client>> {
    let row: Option<ClientRow> = db_run!(pool, |conn| {
        Ok(clients::table
            .find(client_id)
            .select(ClientRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })?;
    row.map(Client::try_from).transpose()
}

pub async fn list(pool: &Pool) -> StoreResult<Vec<Client>> {
    let rows: Vec<ClientRow> = db_run!(pool, |conn| {
        Ok(clients::table
            .order((clients::created_at.asc(), clients::client_id.asc()))
            .select(ClientRow::as_select())
            .load(conn)
            .await?)
    })?;
    rows.into_iter().map(Client::try_from).collect()
}

/// Deletes the client; its codes, tokens and consents go with it (ON DELETE CASCADE).
pub async fn remove(pool: &Pool, client_id: &str) -> StoreResult<bool> {
    db_write!(pool, |conn| {
        Ok(diesel::delete(clients::table.find(client_id))
            .execute(conn)
            .await?
            > 0)
    })
}

/// Replaces the secret digest of a confidential client. Returns false if no such client, or
/// if it is public (a public client has no secret to rotate).
pub async fn set_secret_hash(pool: &Pool, client_id: &str, hash: &Digest) -> StoreResult<bool> {
    db_write!(pool, |conn| {
        let n = diesel::update(
            clients::table
                .find(client_id)
                .filter(clients::secret_hash.is_not_null()),
        )
        .set(clients::secret_hash.eq(hash.as_bytes()))
        .execute(conn)
        .await?;
        Ok(n > 0)
    })
}

/// Marks a confidential client as a resource server (may introspect) or not. Returns false if
/// no such client, or if it is public.
pub async fn set_resource_server(pool: &Pool, client_id: &str, on: bool) -> StoreResult<bool> {
    db_write!(pool, |conn| {
        let n = diesel::update(
            clients::table
                .find(client_id)
                .filter(clients::secret_hash.is_not_null()),
        )
        .set(clients::resource_server.eq(on))
        .execute(conn)
        .await?;
        Ok(n > 0)
    })
}

/// Stores a dynamically registered client. With an initial access token, one use of it is
/// spent in the same transaction (a conditional UPDATE: concurrent registrations cannot
/// overspend it); returns false, storing nothing, if it is expired or used up.
pub async fn insert_registered(
    pool: &Pool,
    client: &Client,
    initial_token: Option<&Digest>,
    now: i64,
) -> StoreResult<bool> {
    use super::schema::registration_tokens as rt;
    let row = ClientRow::from(client);
    crate::db_transaction!(pool, |conn| {
        if let Some(hash) = initial_token {
            let spent = diesel::update(
                rt::table
                    .find(hash.as_bytes())
                    .filter(rt::uses_left.is_null().or(rt::uses_left.gt(0)))
                    .filter(rt::expires_at.is_null().or(rt::expires_at.gt(now))),
            )
            .set(rt::uses_left.eq(rt::uses_left - 1))
            .execute(conn)
            .await?;
            if spent != 1 {
                return Ok(false);
            }
        }
        diesel::insert_into(clients::table)
            .values(&row)
            .execute(conn)
            .await?;
        Ok(true)
    })
}

/// Replaces a client's registered metadata (RFC 7592 §2.2); credentials stay as they are.
pub async fn replace_metadata(pool: &Pool, client: &Client) -> StoreResult<bool> {
    let c = ClientRow::from(client);
    db_write!(pool, |conn| {
        let n = diesel::update(clients::table.find(&c.client_id))
            .set((
                clients::name.eq(&c.name),
                clients::redirect_uris.eq(&c.redirect_uris),
                clients::grant_types.eq(&c.grant_types),
                clients::scope.eq(&c.scope),
                clients::token_endpoint_auth_method.eq(&c.token_endpoint_auth_method),
                clients::metadata.eq(&c.metadata),
            ))
            .execute(conn)
            .await?;
        Ok(n > 0)
    })
}
