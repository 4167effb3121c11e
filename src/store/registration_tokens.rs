//! `registration_tokens` table: initial access tokens for dynamic registration (RFC 7591 §3).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::RegistrationToken;
use super::schema::registration_tokens;
use super::{Pool, StoreResult};
use crate::domain::secret::Digest;
use crate::{db_run, db_write};

pub async fn insert(pool: &Pool, token: &RegistrationToken) -> StoreResult<()> {
    db_write!(pool, |conn| {
        diesel::insert_into(registration_tokens::table)
            .values(token)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Whether the token exists, has not expired and has uses left (read only).
pub async fn is_usable(pool: &Pool, token_hash: &Digest, now: i64) -> StoreResult<bool> {
    db_run!(pool, |conn| {
        let t: Option<RegistrationToken> = registration_tokens::table
            .find(token_hash.as_bytes())
            .select(RegistrationToken::as_select())
            .first(conn)
            .await
            .optional()?;
        Ok(t.is_some_and(|t| {
            t.expires_at.is_none_or(|e| e > now) && t.uses_left.is_none_or(|u| u > 0)
        }))
    })
}
