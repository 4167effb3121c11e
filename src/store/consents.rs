//! `consents` table: what a user has allowed a client, so the consent page can be skipped.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::Consent;
use super::schema::consents;
use super::{Pool, StoreResult};
use crate::db_run;

pub async fn find(pool: &Pool, user_id: &str, client_id: &str) -> StoreResult<Option<Consent>> {
    db_run!(pool, |conn| {
        Ok(consents::table
            .find((user_id, client_id))
            .select(Consent::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Records the scope the user allowed (the caller passes the union with what was granted
/// before). Portable upsert: UPDATE, then INSERT if nothing was there; a concurrent INSERT
/// that wins the race just means the row exists, so UPDATE once more.
pub async fn save(pool: &Pool, consent: &Consent) -> StoreResult<()> {
    let update = || async {
        db_run!(pool, |conn| {
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
    };
    if update().await? > 0 {
        return Ok(());
    }
    let inserted = db_run!(pool, |conn| {
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
