//! The token endpoint's grants (RFC 6749 §4.1.3, §4.4, §6). The grant type picks the handler;
//! every failure is an RFC 6749 §5.2 error code.

use serde_json::json;

use super::client_auth;
use super::client_cache::ClientCache;
use super::error::{oauth, TokenError};
use super::params::Params;
use super::ErrorCode::*;
use crate::domain::clients::{
    GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN,
};
use crate::domain::pkce;
use crate::domain::scope::Scope;
use crate::domain::secret::{prefix, random_id, Secret};
use crate::settings::Settings;
use crate::store::exchange::Exchanged;
use crate::store::models::{Client, Token, KIND_ACCESS, KIND_REFRESH};
use crate::store::{codes, tokens, Pool};

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub expires_in: i64,
    pub scope: String,
    pub refresh_token: Option<Secret>,
}

impl TokenResponse {
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = json!({
            "access_token": self.access_token.expose(),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        });
        if let Some(r) = &self.refresh_token {
            body["refresh_token"] = json!(r.expose());
        }
        body
    }
}

pub async fn handle(
    pool: &Pool,
    cache: &ClientCache,
    settings: &Settings,
    params: &Params,
    authorization: Option<&str>,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    let Some(grant_type) = params.get("grant_type") else {
        return oauth(InvalidRequest, "grant_type is required");
    };
    let client = client_auth::authenticate(pool, cache, params, authorization).await?;
    let allowed = |g: &str| client.grant_type_list().contains(&g);
    match grant_type {
        GRANT_AUTHORIZATION_CODE | GRANT_REFRESH_TOKEN | GRANT_CLIENT_CREDENTIALS
            if !allowed(grant_type) =>
        {
            oauth(
                UnauthorizedClient,
                format!("this client may not use the {grant_type} grant"),
            )
        }
        GRANT_AUTHORIZATION_CODE => authorization_code(pool, settings, &client, params, now).await,
        GRANT_REFRESH_TOKEN => refresh(pool, settings, &client, params, now).await,
        GRANT_CLIENT_CREDENTIALS => client_credentials(pool, settings, &client, params, now).await,
        other => oauth(
            UnsupportedGrantType,
            format!("grant type {other:?} is not supported"),
        ),
    }
}

/// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5–4.6).
async fn authorization_code(
    pool: &Pool,
    settings: &Settings,
    client: &Client,
    params: &Params,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    let Some(code) = params.get("code") else {
        return oauth(InvalidRequest, "code is required");
    };
    let digest = Secret::from_presented(code).digest();
    let Some((row, user_disabled, used)) = codes::find_with_user(pool, digest.as_bytes()).await?
    else {
        return oauth(InvalidGrant, "unknown authorization code");
    };
    if row.client_id != client.client_id {
        return oauth(InvalidGrant, "the code was issued to another client");
    }
    // RFC 6749 §4.1.2: a code used twice is refused, and what it issued is revoked.
    if used {
        let n = tokens::revoke_family(pool, &row.family_id, now).await?;
        tracing::warn!(client_id = %client.client_id, revoked = n, "authorization code replayed; its tokens are revoked");
        return oauth(InvalidGrant, "the authorization code was already used");
    }
    if row.expires_at <= now {
        return oauth(InvalidGrant, "the authorization code has expired");
    }
    // RFC 6749 §4.1.3: redirect_uri is required if it was in the authorization request, and
    // must then be identical.
    match params.get("redirect_uri") {
        Some(uri) if uri != row.redirect_uri => {
            return oauth(InvalidGrant, "redirect_uri does not match")
        }
        None if row.redirect_uri_explicit => {
            return oauth(InvalidRequest, "redirect_uri is required")
        }
        _ => {}
    }
    match (&row.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            if !pkce::verify_s256(verifier, challenge) {
                return oauth(
                    InvalidGrant,
                    "code_verifier does not match the code_challenge",
                );
            }
        }
        (Some(_), None) => return oauth(InvalidGrant, "code_verifier is required"),
        // RFC 9700 §4.8.2: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => return oauth(InvalidGrant, "no code_challenge was sent for this code"),
        (None, None) => {}
    }
    if user_disabled {
        return oauth(InvalidGrant, "the resource owner is no longer active");
    }
    let scope = row.scope.clone();
    let (access, access_row) = new_token(
        KIND_ACCESS,
        client,
        Some(&row.user_id),
        &scope,
        &row.family_id,
        now,
        settings,
    );
    let (refresh, refresh_row) = if client.grant_type_list().contains(&GRANT_REFRESH_TOKEN) {
        let (secret, r) = new_token(
            KIND_REFRESH,
            client,
            Some(&row.user_id),
            &scope,
            &row.family_id,
            now,
            settings,
        );
        (Some(secret), Some(r))
    } else {
        (None, None)
    };
    let outcome = match refresh_row {
        Some(r) => codes::redeem(pool, digest.as_bytes(), [access_row, r]).await?,
        None => codes::redeem(pool, digest.as_bytes(), [access_row]).await?,
    };
    match outcome {
        Exchanged::Issued => {}
        Exchanged::AlreadyUsed => {
            // A concurrent redemption won: this one is the replay.
            tokens::revoke_family(pool, &row.family_id, now).await?;
            return oauth(InvalidGrant, "the authorization code was already used");
        }
        Exchanged::Refused => return oauth(InvalidGrant, "unknown authorization code"),
    }
    Ok(TokenResponse {
        access_token: access,
        expires_in: ttl(client, KIND_ACCESS, settings),
        scope,
        refresh_token: refresh,
    })
}

/// RFC 6749 §6, rotating (RFC 9700 §4.14.2): each refresh token works once; a used one
/// presented again revokes its family.
async fn refresh(
    pool: &Pool,
    settings: &Settings,
    client: &Client,
    params: &Params,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    let Some(presented) = params.get("refresh_token") else {
        return oauth(InvalidRequest, "refresh_token is required");
    };
    let digest = Secret::from_presented(presented).digest();
    // The token and its user's state in one read.
    let (row, user_disabled, used) = match tokens::find_for_refresh(pool, digest.as_bytes()).await?
    {
        Some((t, disabled, used)) if t.kind == KIND_REFRESH && t.client_id == client.client_id => {
            (t, disabled, used)
        }
        _ => return oauth(InvalidGrant, "unknown refresh token"),
    };
    if row.revoked_at.is_some() {
        return oauth(InvalidGrant, "the refresh token was revoked");
    }
    if used {
        let n = tokens::revoke_family(pool, &row.family_id, now).await?;
        tracing::warn!(client_id = %client.client_id, revoked = n, "rotated refresh token reused; family revoked");
        return oauth(InvalidGrant, "the refresh token was already used");
    }
    if row.expires_at <= now {
        return oauth(InvalidGrant, "the refresh token has expired");
    }
    let granted = Scope::parse(&row.scope).unwrap_or_default();
    // §6: the scope may only narrow; the new refresh token keeps the original scope.
    let Some(access_scope) = Scope::requested(params.get("scope"), &granted) else {
        return oauth(InvalidScope, "the requested scope exceeds what was granted");
    };
    // A user-bound token whose user is gone (None from the join) or disabled is dead.
    if row.user_id.is_some() && user_disabled != Some(false) {
        return oauth(InvalidGrant, "the resource owner is no longer active");
    }
    let user = row.user_id.as_deref();
    let (access, access_row) = new_token(
        KIND_ACCESS,
        client,
        user,
        &access_scope.to_string(),
        &row.family_id,
        now,
        settings,
    );
    let (next, next_row) = new_token(
        KIND_REFRESH,
        client,
        user,
        &row.scope,
        &row.family_id,
        now,
        settings,
    );
    match tokens::rotate(pool, digest.as_bytes(), [access_row, next_row]).await? {
        Exchanged::Issued => {}
        Exchanged::AlreadyUsed => return oauth(InvalidGrant, "the refresh token was already used"),
        Exchanged::Refused => return oauth(InvalidGrant, "the refresh token was revoked"),
    }
    Ok(TokenResponse {
        access_token: access,
        expires_in: ttl(client, KIND_ACCESS, settings),
        scope: access_scope.to_string(),
        refresh_token: Some(next),
    })
}

/// RFC 6749 §4.4: confidential clients only, no refresh token (§4.4.3).
async fn client_credentials(
    pool: &Pool,
    settings: &Settings,
    client: &Client,
    params: &Params,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    if client.is_public() {
        return oauth(
            UnauthorizedClient,
            "public clients cannot use client_credentials",
        );
    }
    let allowed = Scope::parse(&client.scope).unwrap_or_default();
    let Some(scope) = Scope::requested(params.get("scope"), &allowed) else {
        return oauth(
            InvalidScope,
            "the requested scope is not allowed for this client",
        );
    };
    let (access, row) = new_token(
        KIND_ACCESS,
        client,
        None,
        &scope.to_string(),
        &random_id(),
        now,
        settings,
    );
    match tokens::insert(pool, &row).await {
        // The client was removed after its row was cached (another node, or the CLI).
        Err(e) if e.is_foreign_key_violation() => {
            return oauth(InvalidClient, "unknown client or bad credentials")
        }
        other => other?,
    }
    Ok(TokenResponse {
        access_token: access,
        expires_in: ttl(client, KIND_ACCESS, settings),
        scope: scope.to_string(),
        refresh_token: None,
    })
}

fn ttl(client: &Client, kind: &str, settings: &Settings) -> i64 {
    if kind == KIND_ACCESS {
        client
            .access_token_ttl
            .unwrap_or(settings.tokens.access_token_ttl_secs)
    } else {
        client
            .refresh_token_ttl
            .unwrap_or(settings.tokens.refresh_token_ttl_secs)
    }
}

fn new_token(
    kind: &str,
    client: &Client,
    user_id: Option<&str>,
    scope: &str,
    family_id: &str,
    now: i64,
    settings: &Settings,
) -> (Secret, Token) {
    let secret = Secret::generate(if kind == KIND_ACCESS {
        prefix::ACCESS_TOKEN
    } else {
        prefix::REFRESH_TOKEN
    });
    let row = Token {
        token_hash: secret.digest().as_bytes().to_vec(),
        kind: kind.to_string(),
        client_id: client.client_id.clone(),
        user_id: user_id.map(str::to_string),
        scope: scope.to_string(),
        family_id: family_id.to_string(),
        created_at: now,
        expires_at: now + ttl(client, kind, settings),
        consumed_at: None,
        revoked_at: None,
        parent_hash: None,
    };
    (secret, row)
}
