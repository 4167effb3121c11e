//! Deleting what has expired (the janitor, issue 13): in batches, each a SELECT of at most
//! `limit` primary keys along an expiry index and a DELETE of those keys, autocommitted, so no
//! statement holds locks for long and janitors on several nodes only ever wait on each other
//! for one batch. (One `DELETE … ORDER BY … LIMIT` would do on MariaDB, but SQLite builds
//! without it and Diesel has no such DELETE.)
//!
//! A token is deleted only once the grant it was issued for (its `parent_hash`: a code or a
//! refresh token) is gone or due itself: reuse detection (`exchange`) recognises a used grant
//! by the token naming it, so that token must outlive the grant for as long as the grant can be
//! presented, and a grant past its expiry cannot be (the grant handlers refuse it). Asking for
//! the grant to be *gone* instead would free one link of a rotation chain per batch: under load
//! a chain grows faster than that (the soak benchmark's first run).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{authorization_codes, registration_tokens, sessions, throttle_events, tokens};
use super::{Pool, StoreResult};
use crate::{db_run, db_write};

/// Tokens expired before `$cutoff` whose grant (`parent_hash`: a stored token or a stored
/// code, both looked up by unique index) is absent or expired before `$cutoff` as well, so a
/// whole chain of rotations can go in one batch. A macro: the same filter ends in a SELECT of
/// keys and in a COUNT, and Diesel's types for a self-join do not box.
macro_rules! tokens_due {
    ($parent:ident, $cutoff:expr) => {
        tokens::table
            .left_join(
                $parent.on($parent
                    .field(tokens::token_hash)
                    .nullable()
                    .eq(tokens::parent_hash)),
            )
            .left_join(
                authorization_codes::table.on(authorization_codes::code_hash
                    .nullable()
                    .eq(tokens::parent_hash)),
            )
            .filter(tokens::expires_at.lt($cutoff))
            .filter(
                $parent
                    .field(tokens::token_hash)
                    .nullable()
                    .is_null()
                    .or($parent.field(tokens::expires_at).nullable().lt($cutoff)),
            )
            .filter(
                authorization_codes::code_hash
                    .nullable()
                    .is_null()
                    .or(authorization_codes::expires_at.nullable().lt($cutoff)),
            )
    };
}

/// The tables the janitor empties, in the order a pass takes them: codes before tokens, so a
/// token whose code has gone can go in the same pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    AuthorizationCodes,
    Tokens,
    Sessions,
    ThrottleEvents,
    RegistrationTokens,
    /// Signing keys whose publication after retirement is over (`crate::keys::lifecycle`).
    SigningKeys,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::AuthorizationCodes,
        Table::Tokens,
        Table::Sessions,
        Table::ThrottleEvents,
        Table::RegistrationTokens,
        Table::SigningKeys,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::AuthorizationCodes => "authorization_codes",
            Table::Tokens => "tokens",
            Table::Sessions => "sessions",
            Table::ThrottleEvents => "throttle_events",
            Table::RegistrationTokens => "registration_tokens",
            Table::SigningKeys => "signing_keys",
        }
    }
}

/// Deletes at most `limit` rows of `table` that expired before `cutoff` (for throttle events:
/// that occurred before it; registration tokens also go once used up). Returns how many.
pub async fn delete_batch(
    pool: &Pool,
    table: Table,
    cutoff: i64,
    limit: i64,
) -> StoreResult<usize> {
    if table == Table::SigningKeys {
        // A handful of rows, whose state is decided in Rust: read them all.
        let mut due = crate::keys::due_for_deletion(&super::signing_keys::all(pool).await?, cutoff);
        due.truncate(limit.max(0) as usize);
        return super::signing_keys::delete(pool, &due).await;
    }
    let parent = diesel::alias!(tokens as parent);
    db_write!(pool, |conn| {
        let deleted = match table {
            Table::AuthorizationCodes => {
                let keys: Vec<Vec<u8>> = authorization_codes::table
                    .filter(authorization_codes::expires_at.lt(cutoff))
                    .order(authorization_codes::expires_at)
                    .select(authorization_codes::code_hash)
                    .limit(limit)
                    .load(conn)
                    .await?;
                diesel::delete(
                    authorization_codes::table
                        .filter(authorization_codes::code_hash.eq_any(&keys))
                        .filter(authorization_codes::expires_at.lt(cutoff)),
                )
                .execute(conn)
                .await?
            }
            Table::Tokens => {
                let keys: Vec<Vec<u8>> = tokens_due!(parent, cutoff)
                    .order(tokens::expires_at)
                    .select(tokens::token_hash)
                    .limit(limit)
                    .load(conn)
                    .await?;
                diesel::delete(
                    tokens::table
                        .filter(tokens::token_hash.eq_any(&keys))
                        .filter(tokens::expires_at.lt(cutoff)),
                )
                .execute(conn)
                .await?
            }
            Table::Sessions => {
                let keys: Vec<Vec<u8>> = sessions::table
                    .filter(sessions::expires_at.lt(cutoff))
                    .order(sessions::expires_at)
                    .select(sessions::id_hash)
                    .limit(limit)
                    .load(conn)
                    .await?;
                // Re-checked: a session in use moves its expiry forward.
                diesel::delete(
                    sessions::table
                        .filter(sessions::id_hash.eq_any(&keys))
                        .filter(sessions::expires_at.lt(cutoff)),
                )
                .execute(conn)
                .await?
            }
            Table::ThrottleEvents => {
                let keys: Vec<i64> = throttle_events::table
                    .filter(throttle_events::occurred_at.lt(cutoff))
                    .order(throttle_events::occurred_at)
                    .select(throttle_events::id)
                    .limit(limit)
                    .load(conn)
                    .await?;
                diesel::delete(throttle_events::table.filter(throttle_events::id.eq_any(&keys)))
                    .execute(conn)
                    .await?
            }
            Table::RegistrationTokens => {
                let due = registration_tokens::expires_at
                    .lt(cutoff)
                    .or(registration_tokens::uses_left.le(0));
                let keys: Vec<Vec<u8>> = registration_tokens::table
                    .filter(due)
                    .select(registration_tokens::token_hash)
                    .limit(limit)
                    .load(conn)
                    .await?;
                diesel::delete(
                    registration_tokens::table
                        .filter(registration_tokens::token_hash.eq_any(&keys))
                        .filter(due),
                )
                .execute(conn)
                .await?
            }
            Table::SigningKeys => 0, // taken above
        };
        Ok(deleted)
    })
}

/// How many rows of `table` `delete_batch` could delete now.
pub async fn count_due(pool: &Pool, table: Table, cutoff: i64) -> StoreResult<i64> {
    if table == Table::SigningKeys {
        let rows = super::signing_keys::all(pool).await?;
        return Ok(crate::keys::due_for_deletion(&rows, cutoff).len() as i64);
    }
    let parent = diesel::alias!(tokens as parent);
    db_run!(pool, |conn| {
        let n: i64 = match table {
            Table::AuthorizationCodes => {
                authorization_codes::table
                    .filter(authorization_codes::expires_at.lt(cutoff))
                    .count()
                    .get_result(conn)
                    .await?
            }
            Table::Tokens => tokens_due!(parent, cutoff).count().get_result(conn).await?,
            Table::Sessions => {
                sessions::table
                    .filter(sessions::expires_at.lt(cutoff))
                    .count()
                    .get_result(conn)
                    .await?
            }
            Table::ThrottleEvents => {
                throttle_events::table
                    .filter(throttle_events::occurred_at.lt(cutoff))
                    .count()
                    .get_result(conn)
                    .await?
            }
            Table::RegistrationTokens => {
                registration_tokens::table
                    .filter(
                        registration_tokens::expires_at
                            .lt(cutoff)
                            .or(registration_tokens::uses_left.le(0)),
                    )
                    .count()
                    .get_result(conn)
                    .await?
            }
            Table::SigningKeys => 0, // taken above
        };
        Ok(n)
    })
}
