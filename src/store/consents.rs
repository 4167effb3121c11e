//! `consents` table: what a user has allowed a client, so the consent page can be skipped.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::Consent;
use super::schema::consents;
use super::{Pool, StoreResult};
use crate::{db_run, db_write};

/// Records the scope the user allowed (the caller passes the union with what was granted
/// before). Portable upsert: UPDATE, then INSERT if nothing was there; a concurrent INSERT
/// that wins the race just means the row exists, so UPDATE once more.
pub async fn save(pool: &Pool, consent: &Consent) -> StoreResult<()> {
    // Idempotent, so a deadlock (or, on Galera, a certification conflict with the same user's
    // consent on another node) just runs it again.
    let update = || {
        super::retry_on_deadlock(|| async {
            db_write!(pool, |conn| {
                Ok::<_, super::StoreError>(
                    diesel::update(consents::table.find((&consent.user_id, &consent.client_id)))
                        .set((
                            consents::scope.eq(&consent.scope),
                            consents::granted_at.eq(consent.granted_at),
                        ))
                        .execute(conn)
                        .await?,
                )
            })
        })
    };
    if update().await? > 0 {
        return Ok(());
    }
    let inserted = db_write!(pool, |conn| {
        Ok::<_, super::StoreError>(
            diesel::insert_into(consents::table)
                .values(consent)
                .execute(conn)
                .await,
        )
    })?;
    match inserted {
        Ok(_) => Ok(()),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => update().await.map(|_| ()),
        Err(e) => Err(e.into()),
    }
}

/// Every client a user has allowed, with the client's name, newest first.
pub async fn list_for_user(pool: &Pool, user_id: &str) -> StoreResult<Vec<(Consent, String)>> {
    use super::schema::clients;
    db_run!(pool, |conn| {
        Ok(consents::table
            .inner_join(clients::table)
            .filter(consents::user_id.eq(user_id))
            .order((consents::granted_at.desc(), consents::client_id.asc()))
            .select((Consent::as_select(), clients::name))
            .load(conn)
            .await?)
    })
}

/// Withdraws what a user allowed a client, in one transaction: the remembered consent goes,
/// the user's outstanding codes for the client can no longer be redeemed (the exchange
/// requires `consumed_at IS NULL`), and every live token of the client for the user is
/// revoked. Returns whether there was a consent to withdraw.
pub async fn withdraw(pool: &Pool, user_id: &str, client_id: &str, now: i64) -> StoreResult<bool> {
    use super::schema::{authorization_codes as codes, tokens};
    super::retry_on_deadlock(|| async {
        crate::db_transaction!(pool, |conn| {
            diesel::update(
                codes::table
                    .filter(codes::user_id.eq(user_id))
                    .filter(codes::client_id.eq(client_id))
                    .filter(codes::consumed_at.is_null()),
            )
            .set(codes::consumed_at.eq(now))
            .execute(conn)
            .await?;
            diesel::update(
                tokens::table
                    .filter(tokens::user_id.eq(user_id))
                    .filter(tokens::client_id.eq(client_id))
                    .filter(tokens::revoked_at.is_null()),
            )
            .set(tokens::revoked_at.eq(now))
            .execute(conn)
            .await?;
            let removed = diesel::delete(consents::table.find((user_id, client_id)))
                .execute(conn)
                .await?;
            Ok(removed > 0)
        })
    })
    .await
}
