//! `sessions` table: server-side login sessions, looked up by the SHA-256 of the cookie value.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{Account, Consent, Session};
use super::schema::{consents, sessions, users};
use super::{Pool, StoreResult};
use crate::domain::secret::Digest;
use crate::{db_run, db_write};

pub async fn insert(pool: &Pool, session: &Session) -> StoreResult<()> {
    db_write!(pool, |conn| {
        diesel::insert_into(sessions::table)
            .values(session)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// The session and its user, whatever their state; the caller applies the expiry rules.
pub async fn find_with_user(
    pool: &Pool,
    id_hash: &Digest,
) -> StoreResult<Option<(Session, Account)>> {
    db_run!(pool, |conn| {
        Ok(sessions::table
            .inner_join(users::table)
            .filter(sessions::id_hash.eq(id_hash.as_bytes()))
            .select((Session::as_select(), Account::as_select()))
            .first(conn)
            .await
            .optional()?)
    })
}

/// `find_with_user`, plus what the user has allowed `client_id`: the authorization endpoint
/// needs both, and one read costs one round trip instead of two.
pub async fn find_with_user_and_consent(
    pool: &Pool,
    id_hash: &Digest,
    client_id: &str,
) -> StoreResult<Option<(Session, Account, Option<Consent>)>> {
    db_run!(pool, |conn| {
        Ok(sessions::table
            .inner_join(users::table)
            .left_join(
                consents::table.on(consents::user_id
                    .eq(sessions::user_id)
                    .and(consents::client_id.eq(client_id))),
            )
            .filter(sessions::id_hash.eq(id_hash.as_bytes()))
            .select((
                Session::as_select(),
                Account::as_select(),
                Option::<Consent>::as_select(),
            ))
            .first(conn)
            .await
            .optional()?)
    })
}

/// Records that the session was used. One browser can use a session on two nodes at once (two
/// tabs); on Galera their updates of this row conflict at certification, and the loser simply
/// runs again (the statement is idempotent).
pub async fn touch(pool: &Pool, id_hash: &Digest, now: i64) -> StoreResult<()> {
    super::retry_on_deadlock(|| async {
        db_write!(pool, |conn| {
            diesel::update(sessions::table.find(id_hash.as_bytes()))
                .set(sessions::last_seen_at.eq(now))
                .execute(conn)
                .await?;
            Ok(())
        })
    })
    .await
}

pub async fn delete(pool: &Pool, id_hash: &Digest) -> StoreResult<()> {
    db_write!(pool, |conn| {
        diesel::delete(sessions::table.find(id_hash.as_bytes()))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// A user's sessions that have not reached their absolute expiry, newest first. (Idle expiry
/// is applied when a session is used; the account page shows last activity instead.)
pub async fn list_for_user(pool: &Pool, user_id: &str, now: i64) -> StoreResult<Vec<Session>> {
    db_run!(pool, |conn| {
        Ok(sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::expires_at.gt(now))
            .order(sessions::created_at.desc())
            .select(Session::as_select())
            .load(conn)
            .await?)
    })
}
