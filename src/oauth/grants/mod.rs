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
use super::{id_token, jwt_access_token, resource};
use crate::domain::clients::{AccessTokenFormat, Client, GrantType};
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
    // Each grant's future is boxed: inline, the largest of the three (with its database
    // round trips) would size this future, which warp and the detached task copy several times
    // per request (BENCHMARKS.md, session 15).
    let issued = match grant {
        GrantType::AuthorizationCode => {
            Box::pin(authorization_code::exchange(
                pool, keys, settings, &client, params, now,
            ))
            .await
        }
        GrantType::RefreshToken => {
            Box::pin(refresh::rotate(pool, keys, settings, &client, params, now)).await
        }
        GrantType::ClientCredentials => {
            Box::pin(client_credentials::issue(
                pool, keys, settings, &client, params, now,
            ))
            .await
        }
    }?;
    metrics::counter!("portcullis_tokens_issued_total", "grant" => grant.as_str()).increment(1);
    Ok(issued)
}

/// An access token's lifetime for `client`: its own setting, else the server's for its format.
/// A JWT lives at most as long as a retired key stays published, so it always verifies.
pub(crate) fn access_ttl(client: &Client, settings: &Settings) -> i64 {
    match client.access_token_format() {
        AccessTokenFormat::Opaque => client
            .access_token_ttl
            .unwrap_or(settings.tokens.access_token_ttl_secs),
        AccessTokenFormat::Jwt => client
            .access_token_ttl
            .unwrap_or(settings.tokens.jwt_access_token_ttl_secs)
            .min(settings.keys.retired_publish_secs),
    }
}

fn refresh_ttl(client: &Client, settings: &Settings) -> i64 {
    client
        .refresh_token_ttl
        .unwrap_or(settings.tokens.refresh_token_ttl_secs)
}

/// The user a token acts for, and the sign-in that approved its grant (None where it was not
/// recorded: rows from before).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    pub user_id: &'a str,
    pub auth_time: Option<i64>,
    pub sid: Option<&'a str>,
}

/// What every token of one grant carries. `owner`: None for a client's own token (client
/// credentials); `resource`: the RFC 8707 resource it is for.
pub(crate) struct Minting<'a> {
    pub client: &'a Client,
    pub owner: Option<Owner<'a>>,
    pub family_id: &'a str,
    pub resource: Option<&'a str>,
    pub now: i64,
}

impl Minting<'_> {
    /// A new access token for `scope` and its row: a random secret, or a signed JWT when the
    /// client asks for those. Either way the row stores only its digest.
    pub fn access_token(
        &self,
        keys: &KeyRing,
        settings: &Settings,
        scope: &str,
    ) -> Result<(Secret, Token), TokenError> {
        let expires_at = self.now + access_ttl(self.client, settings);
        let secret = match self.client.access_token_format() {
            AccessTokenFormat::Opaque => Secret::generate(prefix::ACCESS_TOKEN),
            AccessTokenFormat::Jwt => {
                let claims = jwt_access_token::Claims {
                    client_id: &self.client.client_id,
                    user_id: self.owner.map(|o| o.user_id),
                    scope,
                    audience: resource::audience(settings, self.resource),
                    auth_time: self.owner.and_then(|o| o.auth_time),
                    expires_at,
                };
                let alg = id_token::client_alg(self.client);
                let jwt = jwt_access_token::issue(keys, settings, alg, &claims, self.now)?;
                Secret::from_presented(jwt)
            }
        };
        let row = self.row(TokenKind::Access, &secret, scope, expires_at);
        Ok((secret, row))
    }

    /// A new refresh token (always opaque: only this server reads it) and its row.
    pub fn refresh_token(&self, settings: &Settings, scope: &str) -> (Secret, Token) {
        let secret = Secret::generate(prefix::REFRESH_TOKEN);
        let expires_at = self.now + refresh_ttl(self.client, settings);
        let row = self.row(TokenKind::Refresh, &secret, scope, expires_at);
        (secret, row)
    }

    fn row(&self, kind: TokenKind, secret: &Secret, scope: &str, expires_at: i64) -> Token {
        Token {
            token_hash: secret.digest().as_bytes().to_vec(),
            kind,
            client_id: self.client.client_id.clone(),
            user_id: self.owner.map(|o| o.user_id.to_string()),
            scope: scope.to_string(),
            family_id: self.family_id.to_string(),
            created_at: self.now,
            expires_at,
            consumed_at: None,
            revoked_at: None,
            parent_hash: None,
            auth_time: self.owner.and_then(|o| o.auth_time),
            resource: self.resource.map(str::to_string),
            sid: self.owner.and_then(|o| o.sid).map(str::to_string),
        }
    }
}
