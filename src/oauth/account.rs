//! What a signed-in user sees of their own account on `/`, and the one thing they can undo
//! there: an application's access.

use crate::domain::scope::Scope;
use crate::store::models::Session;
use crate::store::{consents, sessions, Pool, StoreError};

/// An application the user allowed, and what it may do.
#[derive(Debug, Clone)]
pub struct Grant {
    pub client_id: String,
    pub client_name: String,
    pub scope: Scope,
    pub granted_at: i64,
}

#[derive(Debug, Clone)]
pub struct Overview {
    pub grants: Vec<Grant>,
    pub sessions: Vec<Session>,
}

pub async fn overview(pool: &Pool, user_id: &str, now: i64) -> Result<Overview, StoreError> {
    let grants = consents::list_for_user(pool, user_id)
        .await?
        .into_iter()
        .map(|(c, client_name)| {
            let scope = Scope::parse(&c.scope).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "consent of user {user_id} for client {} has an invalid scope",
                    c.client_id
                ))
            })?;
            Ok(Grant {
                client_id: c.client_id,
                client_name,
                scope,
                granted_at: c.granted_at,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let sessions = sessions::list_for_user(pool, user_id, now).await?;
    Ok(Overview { grants, sessions })
}

/// Withdraws the user's consent for a client and revokes everything it holds for them: its
/// tokens, and codes not yet redeemed. The next authorization asks for consent again.
pub async fn withdraw_grant(
    pool: &Pool,
    user_id: &str,
    client_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let withdrawn = consents::withdraw(pool, user_id, client_id, now).await?;
    if withdrawn {
        tracing::info!(user_id, client_id, "user revoked an application's access");
    }
    Ok(withdrawn)
}
