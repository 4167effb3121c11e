//! `grant_type=authorization_code` (RFC 6749 §4.1.3, PKCE RFC 7636 §4.5–4.6), driven through
//! oxide-auth's `AccessToken` machine.
//!
//! Portcullis decides first, from the one read of the code: unknown or another client's code,
//! a used code (which revokes what it issued), expiry, the redirect URI as an identical string,
//! PKCE's S256-only and verifier syntax, a verifier for a code without a challenge (RFC 9700
//! §4.8.2), a disabled user. Then the machine: it re-checks client, redirect URI and expiry,
//! asks for the PKCE verdict (oxide-auth's `Pkce`, required for public clients), and is told
//! of the tokens once the single-statement exchange has stored them.

use std::borrow::Cow;

use oxide_auth::code_grant::accesstoken::{AccessToken, Authorization, Input, Output, Request};
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::primitives::grant::{Extensions, Grant};
use oxide_auth::primitives::issuer::{IssuedToken, TokenType};

use super::machine::{self, GrantParts};
use super::{Minting, Owner, TokenResponse};
use crate::domain::clients::{Client, GrantType};
use crate::domain::pkce;
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
use crate::store::{codes, tokens, Pool};

const MACHINE: &str = "authorization code";

/// The request as the machine sees it: the code, the client `client_auth` already
/// authenticated (named without a secret, so the machine's own credential rules never apply),
/// and the effective redirect URI (the presented one, or the code's own when the authorization
/// request had none: otherwise the machine would demand it, OXIDE-AUTH.md).
struct CodeRequest<'a> {
    code: &'a str,
    client_id: &'a str,
    redirect_uri: &'a str,
}

impl Request for CodeRequest<'_> {
    fn valid(&self) -> bool {
        // Repeated parameters were refused when the form was parsed.
        true
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.code))
    }

    fn authorization(&self) -> Authorization<'_> {
        Authorization::Username(Cow::Borrowed(self.client_id))
    }

    fn client_id(&self) -> Option<Cow<'_, str>> {
        None
    }

    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.redirect_uri))
    }

    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed("authorization_code"))
    }

    fn extension(&self, _key: &str) -> Option<Cow<'_, str>> {
        None
    }
}

pub async fn exchange(
    pool: &Pool,
    keys: &KeyRing,
    settings: &Settings,
    client: &Client,
    params: &Params,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    let Some(code) = params.get("code") else {
        return oauth(InvalidRequest, "code is required");
    };
    let digest = Secret::from_presented(code).digest();
    let Some(codes::CodeLookup {
        code: row,
        user_disabled,
        used,
    }) = codes::find_with_user(pool, &digest).await?
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
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if uri != row.redirect_uri => {
            return oauth(InvalidGrant, "redirect_uri does not match")
        }
        None if row.redirect_uri_explicit => {
            return oauth(InvalidRequest, "redirect_uri is required")
        }
        _ => row.redirect_uri.as_str(),
    };
    // RFC 8707 §2.2: a resource here must be the one the code was issued for.
    resource::matches_grant(params.get(resource::PARAM), row.resource.as_deref())?;
    let verifier = params.get("code_verifier");
    match (&row.code_challenge, verifier) {
        (Some(_), None) => return oauth(InvalidGrant, "code_verifier is required"),
        // RFC 9700 §4.8.2: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => return oauth(InvalidGrant, "no code_challenge was sent for this code"),
        // RFC 7636 §4.1: 43–128 unreserved characters.
        (Some(_), Some(v)) if !pkce::is_valid_verifier(v) => {
            return oauth(InvalidGrant, "malformed code_verifier")
        }
        _ => {}
    }
    if user_disabled {
        return oauth(InvalidGrant, "the resource owner is no longer active");
    }

    // PKCE as oxide-auth's extension: the stored challenge re-encoded through its public API.
    let pkce = if client.is_public() {
        Pkce::required()
    } else {
        Pkce::optional()
    };
    let mut stored_extensions = Extensions::new();
    if let Some(challenge) = &row.code_challenge {
        match pkce.challenge(Some(pkce::S256.into()), Some(challenge.into())) {
            Ok(Some(value)) => stored_extensions.set(&pkce, value),
            _ => {
                return Err(TokenError::Internal(format!(
                    "stored code_challenge of client {} is not S256",
                    client.client_id
                )))
            }
        }
    }
    let scope = Scope::parse(&row.scope).ok_or_else(|| {
        TokenError::Internal(format!(
            "stored scope of a code for {} is invalid",
            client.client_id
        ))
    })?;
    let stored = machine::grant(GrantParts {
        owner_id: &row.user_id,
        client_id: &row.client_id,
        redirect_uri: &row.redirect_uri,
        scope: &scope,
        until: row.expires_at,
        extensions: stored_extensions,
    })?;

    let request = CodeRequest {
        code,
        client_id: &client.client_id,
        redirect_uri,
    };
    let mut engine = AccessToken::new(&request);
    // The machine issues for the recovered grant as it is (pinned in
    // tests/api/oxide_auth_pins.rs): its scope is the code's, already parsed as ours.
    drive_to_issue(&mut engine, stored, &pkce, verifier)?;
    let scope = scope.to_string();

    let minting = Minting {
        client,
        owner: Some(Owner {
            user_id: &row.user_id,
            auth_time: row.auth_time,
            sid: row.sid.as_deref(),
        }),
        family_id: &row.family_id,
        resource: row.resource.as_deref(),
        now,
    };
    let (access, access_row) = minting.access_token(keys, settings, &scope)?;
    let (refresh, refresh_row) = if client.may_use(GrantType::RefreshToken) {
        let (secret, r) = minting.refresh_token(settings, &scope);
        (Some(secret), Some(r))
    } else {
        (None, None)
    };
    let expires_at = access_row.expires_at;
    // The one place a code is consumed: a single statement (store::exchange).
    let outcome = match refresh_row {
        Some(r) => codes::redeem(pool, &digest, [access_row, r]).await?,
        None => codes::redeem(pool, &digest, [access_row]).await?,
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
    let issued = IssuedToken {
        token: access.expose().to_string(),
        refresh: refresh.as_ref().map(|r| r.expose().to_string()),
        until: machine::time(expires_at),
        token_type: TokenType::Bearer,
    };
    match engine.advance(Input::Issued(issued)) {
        // Its bearer token is never serialized: its JSON cannot carry our fields.
        Output::Ok(_) => {}
        _ => {
            return Err(TokenError::Internal(
                "the authorization code machine refused issued tokens".into(),
            ))
        }
    }
    // Signed once the tokens are stored, with no database connection held.
    let id_token = if scope.split(' ').any(|s| s == OPENID) {
        let subject = id_token::Subject {
            user_id: &row.user_id,
            client_id: &client.client_id,
            nonce: row.nonce.as_deref(),
            auth_time: row.auth_time,
            sid: row.sid.as_deref(),
            access_token: access.expose(),
        };
        let alg = id_token::client_alg(client);
        Some(id_token::issue(keys, settings, alg, &subject, now)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access,
        expires_in: expires_at - now,
        scope,
        refresh_token: refresh,
        id_token,
    })
}

/// Runs the machine up to its `Issue` step, answering each step from what was already decided.
/// Synchronous: nothing here awaits.
fn drive_to_issue(
    engine: &mut AccessToken,
    stored: Grant,
    pkce: &Pkce,
    verifier: Option<&str>,
) -> Result<(), TokenError> {
    let mut stored = Some(Box::new(stored));
    let mut input = Input::None;
    loop {
        input = match engine.advance(input) {
            // `client_auth` authenticated the client before the grant type was looked at.
            Output::Authenticate { .. } => Input::Authenticated,
            Output::Recover { .. } => Input::Recovered(stored.take()),
            Output::Extend { extensions } => {
                let challenge = extensions.remove(pkce);
                if pkce.verify(challenge, verifier.map(Cow::Borrowed)).is_err() {
                    return oauth(
                        InvalidGrant,
                        "code_verifier does not match the code_challenge",
                    );
                }
                Input::Extended {
                    access_extensions: Extensions::new(),
                }
            }
            Output::Issue { .. } => return Ok(()),
            Output::Ok(_) => {
                return Err(TokenError::Internal(
                    "the authorization code machine finished before issuing".into(),
                ))
            }
            Output::Err(mut e) => return Err(machine::verdict(e.description(), MACHINE)),
        };
    }
}
