//! Token introspection (RFC 7662) and revocation (RFC 7009): what resource servers and clients
//! ask about tokens. Both are one indexed read by SHA-256; no slow hashing on these paths.

use serde_json::{json, Value};

use super::client_auth;
use super::client_cache::ClientCache;
use super::error::{oauth, OAuthError, TokenError};
use super::params::Params;
use super::ErrorCode::{InvalidClient, InvalidRequest, UnauthorizedClient};
use crate::domain::secret::Secret;
use crate::store::models::TokenKind;
use crate::store::tokens::{self, IntrospectLookup};
use crate::store::Pool;

/// RFC 7662 §2.1–2.2. The caller must be a confidential client marked as a resource server;
/// anything not live is exactly `{"active": false}`.
pub async fn introspect(
    pool: &Pool,
    cache: &ClientCache,
    issuer: &str,
    params: &Params,
    authorization: Option<&str>,
    now: i64,
) -> Result<Value, TokenError> {
    let caller = client_auth::authenticate(pool, cache, params, authorization).await?;
    if caller.is_public() {
        return oauth(InvalidClient, "introspection needs a confidential client");
    }
    // An answer names the user and what the token allows: only resource servers an operator
    // chose may ask (RFC 7662 §4, RFC 9700 §2.3). Which client serves which `[[resources]]`
    // entry is not configured, so a resource server may introspect any token, also one issued
    // for another resource: the answer's `aud` says which, for it to check.
    if !caller.resource_server {
        return Err(TokenError::Forbidden(OAuthError::new(
            UnauthorizedClient,
            "this client is not registered as a resource server, so it may not introspect tokens",
        )));
    }
    let Some(presented) = params.get("token") else {
        return oauth(InvalidRequest, "token is required");
    };
    // token_type_hint only says where to look first (§2.1); one lookup covers both kinds.
    let digest = Secret::from_presented(presented).digest();
    let Some(IntrospectLookup {
        token: t,
        username,
        user_disabled,
    }) = tokens::find_with_user(pool, &digest).await?
    else {
        return Ok(inactive());
    };
    if !t.is_live(now) || user_disabled {
        return Ok(inactive());
    }
    // A rotated refresh token is spent. Access tokens are never parents, so only a refresh
    // token costs this second read.
    if t.kind == TokenKind::Refresh && tokens::has_successor(pool, &digest).await? {
        return Ok(inactive());
    }
    let mut body = json!({
        "active": true,
        "scope": t.scope,
        "client_id": t.client_id,
        "sub": t.user_id.as_deref().unwrap_or(&t.client_id),
        "token_type": match t.kind {
            TokenKind::Access => "Bearer",
            TokenKind::Refresh => "refresh_token",
        },
        "exp": t.expires_at,
        "iat": t.created_at,
        "iss": issuer,
    });
    if let Some(name) = username {
        body["username"] = json!(name);
    }
    // The resource server the token is for (RFC 8707), as its audience (§2.2 `aud`).
    if let Some(resource) = &t.resource {
        body["aud"] = json!(resource);
    }
    Ok(body)
}

fn inactive() -> Value {
    json!({ "active": false })
}

/// RFC 7009 §2.1–2.2. Only the client a token was issued to can revoke it; anything else
/// (unknown, foreign, already revoked) still answers 200 and changes nothing. Revoking a
/// refresh token revokes its family, access tokens included.
pub async fn revoke(
    pool: &Pool,
    cache: &ClientCache,
    params: &Params,
    authorization: Option<&str>,
    now: i64,
) -> Result<(), TokenError> {
    let caller = client_auth::authenticate(pool, cache, params, authorization).await?;
    let Some(presented) = params.get("token") else {
        return oauth(InvalidRequest, "token is required");
    };
    let digest = Secret::from_presented(presented).digest();
    let Some(t) = tokens::find(pool, &digest).await? else {
        return Ok(());
    };
    if t.client_id != caller.client_id {
        tracing::info!(caller = %caller.client_id, "revocation of another client's token ignored");
        return Ok(());
    }
    match t.kind {
        TokenKind::Refresh => tokens::revoke_family(pool, &t.family_id, now).await?,
        TokenKind::Access => usize::from(tokens::revoke(pool, &digest, now).await?),
    };
    Ok(())
}
