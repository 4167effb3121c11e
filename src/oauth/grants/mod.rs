//! The token endpoint's grants (RFC 6749 §4.1.3, §4.4, §6), one module each, and the one place
//! that picks between them. Every failure is an RFC 6749 §5.2 error code.
//!
//! Each grant runs oxide-auth's `code_grant` state machine for it (`../shared/OXIDE-AUTH.md`),
//! driven here: Portcullis answers every step from its own store and rules (client
//! authentication, the one read of the grant, PKCE, the single-statement exchange), and the
//! machine re-checks what it knows (client, redirect URI, expiry, scope narrowing).
//!
//! ```text
//! grant_type=authorization_code → authorization_code::exchange   AccessToken machine
//! grant_type=refresh_token      → refresh::rotate                 Refresh machine
//! grant_type=client_credentials → client_credentials::issue       ClientCredentials machine
//! ```

pub mod authorization_code;
pub mod client_credentials;
mod machine;
pub mod refresh;

use serde_json::json;

use super::client_auth;
use super::client_cache::ClientCache;
use super::error::{oauth, TokenError};
use super::params::Params;
use super::ErrorCode::*;
use crate::domain::clients::{Client, GrantType};
use crate::domain::secret::{prefix, Secret};
use crate::keys::KeyRing;
use crate::settings::Settings;
use crate::store::models::{Token, TokenKind};
use crate::store::Pool;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub expires_in: i64,
    pub scope: String,
    pub refresh_token: Option<Secret>,
    /// OpenID Connect Core 1.0 §3.1.3.3: when the grant has the `openid` scope.
    pub id_token: Option<String>,
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
        if let Some(t) = &self.id_token {
            body["id_token"] = json!(t);
        }
        body
    }
}

pub async fn handle(
    pool: &Pool,
    cache: &ClientCache,
    keys: &KeyRing,
    settings: &Settings,
    params: &Params,
    authorization: Option<&str>,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    let Some(grant_type) = params.get("grant_type") else {
        return oauth(InvalidRequest, "grant_type is required");
    };
    let client = client_auth::authenticate(pool, cache, params, authorization).await?;
    let Some(grant) = GrantType::parse(grant_type) else {
        return oauth(
            UnsupportedGrantType,
            format!("grant type {grant_type:?} is not supported"),
        );
    };
    if !client.may_use(grant) {
        return oauth(
            UnauthorizedClient,
            format!("this client may not use the {grant_type} grant"),
        );
    }
    let issued = match grant {
        GrantType::AuthorizationCode => {
            authorization_code::exchange(pool, keys, settings, &client, params, now).await
        }
        GrantType::RefreshToken => {
            refresh::rotate(pool, keys, settings, &client, params, now).await
        }
        GrantType::ClientCredentials => {
            client_credentials::issue(pool, settings, &client, params, now).await
        }
    }?;
    metrics::counter!("portcullis_tokens_issued_total", "grant" => grant.as_str()).increment(1);
    Ok(issued)
}

pub(crate) fn ttl(client: &Client, kind: TokenKind, settings: &Settings) -> i64 {
    match kind {
        TokenKind::Access => client
            .access_token_ttl
            .unwrap_or(settings.tokens.access_token_ttl_secs),
        TokenKind::Refresh => client
            .refresh_token_ttl
            .unwrap_or(settings.tokens.refresh_token_ttl_secs),
    }
}

/// The user a token acts for, and when they signed in for its grant (None where it was not
/// recorded: rows from before it was).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    pub user_id: &'a str,
    pub auth_time: Option<i64>,
}

/// A new token and its row; the secret is shown once, the row stores its digest. `owner`: None
/// for a client's own token (client credentials).
pub(crate) fn new_token(
    kind: TokenKind,
    client: &Client,
    owner: Option<Owner<'_>>,
    scope: &str,
    family_id: &str,
    now: i64,
    settings: &Settings,
) -> (Secret, Token) {
    let secret = Secret::generate(match kind {
        TokenKind::Access => prefix::ACCESS_TOKEN,
        TokenKind::Refresh => prefix::REFRESH_TOKEN,
    });
    let row = Token {
        token_hash: secret.digest().as_bytes().to_vec(),
        kind,
        client_id: client.client_id.clone(),
        user_id: owner.map(|o| o.user_id.to_string()),
        scope: scope.to_string(),
        family_id: family_id.to_string(),
        created_at: now,
        expires_at: now + ttl(client, kind, settings),
        consumed_at: None,
        revoked_at: None,
        parent_hash: None,
        auth_time: owner.and_then(|o| o.auth_time),
    };
    (secret, row)
}
