//! The UserInfo endpoint (OpenID Connect Core 1.0 §5.3): the claims about the user an access
//! token stands for, released by the scopes it carries (§5.4). One indexed read; no slow
//! hashing, no signing.

use serde_json::{json, Map, Value};

use super::bearer::{self, BearerCheck, BearerError, Presented};
use super::id_token::OPENID;
use crate::domain::secret::Secret;
use crate::store::models::{TokenKind, User};
use crate::store::Pool;
use crate::store::{tokens, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    #[error(transparent)]
    Bearer(#[from] BearerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// §5.3.1–5.3.3. The token must be a live access token granted `openid` for a user who is
/// still enabled; anything else is `invalid_token`, or `insufficient_scope` without `openid`.
pub async fn userinfo(
    pool: &Pool,
    presented: Presented<'_>,
    now: i64,
) -> Result<Value, UserinfoError> {
    let check = BearerCheck::start(presented, OPENID)?;
    let digest = Secret::from_presented(check.token()).digest();
    let Some((token, owner)) = tokens::find_with_owner(pool, &digest).await? else {
        return Err(BearerError::InvalidToken.into());
    };
    // A refresh token is no bearer credential (RFC 6749 §1.5).
    if token.kind != TokenKind::Access || !token.is_live(now) {
        return Err(BearerError::InvalidToken.into());
    }
    let subject = token.user_id.as_deref().unwrap_or(&token.client_id);
    let grant = bearer::grant(subject, &token.client_id, &token.scope, token.expires_at)
        .ok_or(BearerError::InvalidToken)?;
    let grant = check.finish(grant)?;
    // A client's own token (client_credentials) has no user to describe.
    let user = owner
        .filter(|u| !u.disabled)
        .ok_or(BearerError::InvalidToken)?;
    let scopes: Vec<&str> = grant.scope.iter().collect();
    Ok(claims(&user, &scopes))
}

/// `sub` always (the id_token's `sub`, §5.3.2); `profile` and `email` release their claims
/// (§5.4), each only when the user has it set.
pub fn claims(user: &User, scopes: &[&str]) -> Value {
    let has = |s: &str| scopes.contains(&s);
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    let p = &user.profile;
    if has("profile") {
        let preferred = p.preferred_username.as_deref().unwrap_or(&user.username);
        out.insert("preferred_username".into(), json!(preferred));
        for (claim, value) in [
            ("name", &p.name),
            ("given_name", &p.given_name),
            ("family_name", &p.family_name),
        ] {
            if let Some(v) = value {
                out.insert(claim.into(), json!(v));
            }
        }
        out.insert("updated_at".into(), json!(p.updated_at));
    }
    if has("email") {
        if let Some(email) = &p.email {
            out.insert("email".into(), json!(email));
            out.insert("email_verified".into(), json!(p.email_verified));
        }
    }
    Value::Object(out)
}
