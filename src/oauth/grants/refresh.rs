//! `grant_type=refresh_token` (RFC 6749 §6), rotating (RFC 9700 §4.14.2), driven through
//! oxide-auth's `Refresh` machine.
//!
//! Portcullis decides from the one read of the token: unknown, another client's, revoked,
//! already used (`reused`: the family is revoked), expired, its user disabled — all
//! `invalid_grant`.
//! The machine then checks the token's client against the caller and decides the scope: it
//! may only narrow (`invalid_scope` otherwise). The rotation is the single-statement exchange.

use std::borrow::Cow;

use oxide_auth::code_grant::refresh::{Input, Output, Refresh, Request};
use oxide_auth::primitives::grant::{Extensions, Grant};
use oxide_auth::primitives::issuer::{RefreshedToken, TokenType};

use super::machine::{self, GrantParts};
use super::{Minting, Owner, TokenResponse};
use crate::domain::clients::Client;
use crate::domain::scope::Scope;
use crate::domain::secret::Secret;
use crate::keys::KeyRing;
use crate::oauth::error::{oauth, TokenError};
use crate::oauth::id_token::{self, OPENID};
use crate::oauth::params::Params;
use crate::oauth::resource;
use crate::oauth::ErrorCode::*;
use crate::settings::Settings;
use crate::store::exchange::Exchanged;
use crate::store::models::TokenKind;
use crate::store::{tokens, Pool};

const MACHINE: &str = "refresh";

/// The request as the machine sees it. The caller is always named (even a public client):
/// that makes the machine compare the token's client with it.
struct RefreshRequest<'a> {
    token: &'a str,
    scope: Option<&'a str>,
    client_id: &'a str,
}

impl Request for RefreshRequest<'_> {
    fn valid(&self) -> bool {
        true
    }

    fn refresh_token(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.token))
    }

    fn scope(&self) -> Option<Cow<'_, str>> {
        self.scope.map(Cow::Borrowed)
    }

    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed("refresh_token"))
    }

    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        Some((Cow::Borrowed(self.client_id), Cow::Borrowed(&[])))
    }

    fn extension(&self, _key: &str) -> Option<Cow<'_, str>> {
        None
    }
}

pub async fn rotate(
    pool: &Pool,
    keys: &KeyRing,
    settings: &Settings,
    client: &Client,
    params: &Params,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    let Some(presented) = params.get("refresh_token") else {
        return oauth(InvalidRequest, "refresh_token is required");
    };
    let digest = Secret::from_presented(presented).digest();
    // The token, its user's state and whether it was used, in one read.
    let found = match tokens::find_for_refresh(pool, &digest).await? {
        Some(f) if f.token.kind == TokenKind::Refresh && f.token.client_id == client.client_id => f,
        _ => return oauth(InvalidGrant, "unknown refresh token"),
    };
    let row = &found.token;
    if row.revoked_at.is_some() {
        return oauth(InvalidGrant, "the refresh token was revoked");
    }
    if let Some(used_at) = found.used_at {
        return reused(pool, settings, client, &row.family_id, used_at, now).await;
    }
    if row.expires_at <= now {
        return oauth(InvalidGrant, "the refresh token has expired");
    }
    if !found.owner_active {
        return oauth(InvalidGrant, "the resource owner is no longer active");
    }
    // RFC 8707 §2.2: a resource here must be the one the grant was made for.
    resource::matches_grant(params.get(resource::PARAM), row.resource.as_deref())?;
    let granted = Scope::parse(&row.scope).ok_or_else(|| {
        TokenError::Internal(format!(
            "stored scope of a refresh token for {} is invalid",
            client.client_id
        ))
    })?;
    // The machine's grant needs a redirect URI; a refresh token has none, and the machine
    // only carries it along.
    let stored = machine::grant(GrantParts {
        owner_id: row.user_id.as_deref().unwrap_or(&row.client_id),
        client_id: &row.client_id,
        redirect_uri: "urn:ietf:params:oauth:grant-type:refresh_token",
        scope: &granted,
        until: row.expires_at,
        extensions: Extensions::new(),
    })?;
    let request = RefreshRequest {
        token: presented,
        scope: params.get("scope"),
        client_id: &client.client_id,
    };
    let mut engine = Refresh::new(&request);
    let narrowed = drive_to_refresh(&mut engine, &request, stored)?;
    // §6: the access token gets the (possibly narrowed) scope; the new refresh token keeps the
    // original one.
    let access_scope = machine::from_machine_scope(&narrowed.scope)?.to_string();

    let owner = row.user_id.as_deref().map(|user_id| Owner {
        user_id,
        auth_time: row.auth_time,
        sid: row.sid.as_deref(),
    });
    let minting = Minting {
        client,
        owner,
        family_id: &row.family_id,
        resource: row.resource.as_deref(),
        now,
    };
    let (access, access_row) = minting.access_token(keys, settings, &access_scope)?;
    let (next, next_row) = minting.refresh_token(settings, &row.scope);
    let expires_at = access_row.expires_at;
    match tokens::rotate(pool, &digest, [access_row, next_row]).await? {
        Exchanged::Issued => {}
        // A concurrent rotation won: the token was used just now, by someone else.
        Exchanged::AlreadyUsed => {
            return reused(pool, settings, client, &row.family_id, now, now).await
        }
        Exchanged::Refused => return oauth(InvalidGrant, "the refresh token was revoked"),
    }
    let refreshed = RefreshedToken {
        token: access.expose().to_string(),
        refresh: Some(next.expose().to_string()),
        until: machine::time(expires_at),
        token_type: TokenType::Bearer,
    };
    match engine.advance(Input::Refreshed(refreshed)) {
        Output::Ok(_) => {}
        _ => {
            return Err(TokenError::Internal(
                "the refresh machine refused issued tokens".into(),
            ))
        }
    }
    // OpenID Connect Core 1.0 §12.2: a new id_token for the same user and sign-in, without
    // the nonce, while the refreshed access keeps `openid`.
    let id_token = match owner {
        Some(owner) if access_scope.split(' ').any(|s| s == OPENID) => {
            let subject = id_token::Subject {
                user_id: owner.user_id,
                client_id: &client.client_id,
                nonce: None,
                auth_time: owner.auth_time,
                sid: owner.sid,
                access_token: access.expose(),
            };
            let alg = id_token::client_alg(client);
            Some(id_token::issue(keys, settings, alg, &subject, now)?)
        }
        _ => None,
    };
    Ok(TokenResponse {
        access_token: access,
        expires_in: expires_at - now,
        scope: access_scope,
        refresh_token: Some(next),
        id_token,
    })
}

/// A rotated refresh token presented again (RFC 9700 §4.14.2): two parties hold it, so its
/// whole family is revoked, the tokens its rotation issued included. The rule is the same
/// whether the reuse shows at the read or as a lost race with a concurrent rotation. Within
/// `tokens.refresh_reuse_grace_secs` of the rotation (opt-in, default 0) the reuse is only
/// refused: an app whose tabs refresh at once keeps the winner's tokens.
async fn reused(
    pool: &Pool,
    settings: &Settings,
    client: &Client,
    family_id: &str,
    used_at: i64,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    let grace = settings.tokens.refresh_reuse_grace_secs;
    if now < used_at.saturating_add(grace) {
        tracing::info!(client_id = %client.client_id, "rotated refresh token reused within the grace period; refused");
    } else {
        let n = tokens::revoke_family(pool, family_id, now).await?;
        tracing::warn!(client_id = %client.client_id, revoked = n, "rotated refresh token reused; family revoked");
    }
    oauth(InvalidGrant, "the refresh token was already used")
}

/// Runs the machine up to its `Refresh` step; returns the grant it would refresh, with the
/// scope it decided.
fn drive_to_refresh(
    engine: &mut Refresh,
    request: &RefreshRequest<'_>,
    stored: Grant,
) -> Result<Grant, TokenError> {
    let mut stored = Some(Box::new(stored));
    let scope = request.scope.map(Cow::Borrowed);
    let mut input = Input::None;
    loop {
        input = match engine.advance(input) {
            // `client_auth` authenticated the caller; the machine asks once for the named one,
            // and once more (co-authentication) only if it was not named, which it always is.
            Output::Unauthenticated { .. } => Input::Authenticated {
                scope: scope.clone(),
            },
            Output::RecoverRefresh { .. } => Input::Recovered {
                scope: scope.clone(),
                grant: stored.take(),
            },
            Output::Refresh { grant, .. } => return Ok(*grant),
            Output::Ok(_) => {
                return Err(TokenError::Internal(
                    "the refresh machine finished before refreshing".into(),
                ))
            }
            Output::Err(mut e) => return Err(machine::verdict(e.description(), MACHINE)),
        };
    }
}
