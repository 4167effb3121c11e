//! `grant_type=client_credentials` (RFC 6749 §4.4), driven through oxide-auth's
//! `ClientCredentials` machine.
//!
//! Portcullis decides before the machine: public clients are `unauthorized_client`, and the
//! scope rule (`Scope::requested`) gives `invalid_scope` — the machine would answer
//! `invalid_request` for a malformed scope and `Ignore` for a refused one (OXIDE-AUTH.md). The
//! machine then walks authentication, binding and negotiation with those answers; its
//! `Pending::issue` (a 10-minute grant with a refresh token) is never used: Portcullis issues
//! one access token and no refresh token (§4.4.3).

use std::borrow::Cow;
use std::sync::LazyLock;

use oxide_auth::code_grant::client_credentials::{ClientCredentials, Input, Output, Request};
use oxide_auth::primitives::grant::Extensions;
use oxide_auth::primitives::registrar::{BoundClient, PreGrant, RegisteredUrl};

use super::machine;
use super::{Minting, TokenResponse};
use crate::domain::clients::Client;
use crate::domain::scope::Scope;
use crate::domain::secret::time_ordered_id;
use crate::keys::KeyRing;
use crate::oauth::error::{oauth, TokenError};
use crate::oauth::params::Params;
use crate::oauth::resource;
use crate::oauth::ErrorCode::*;
use crate::settings::Settings;
use crate::store::{tokens, Pool};

const MACHINE: &str = "client credentials";

/// The request as the machine sees it: the client `client_auth` authenticated (with no
/// secret: the machine never checks one) and the scope Portcullis already granted.
struct CredentialsRequest<'a> {
    client_id: &'a str,
    scope: String,
}

impl Request for CredentialsRequest<'_> {
    fn valid(&self) -> bool {
        true
    }

    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        Some((Cow::Borrowed(self.client_id), Cow::Borrowed(&[])))
    }

    fn scope(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.scope))
    }

    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed("client_credentials"))
    }

    fn extension(&self, _key: &str) -> Option<Cow<'_, str>> {
        None
    }
}

pub async fn issue(
    pool: &Pool,
    keys: &KeyRing,
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
    let Some(scope) = Scope::requested(params.get("scope"), &client.scope) else {
        return oauth(
            InvalidScope,
            "the requested scope is not allowed for this client",
        );
    };
    // RFC 8707 §2.2: the client names the resource server it wants a token for.
    let target = resource::requested(settings, params.get(resource::PARAM))?;
    let scope = resource::narrow(&scope, target)?;
    let request = CredentialsRequest {
        client_id: &client.client_id,
        scope: scope.to_string(),
    };
    drive(&request, &scope)?;

    let family_id = time_ordered_id();
    let minting = Minting {
        client,
        owner: None,
        family_id: &family_id,
        resource: target.map(|r| r.identifier.as_str()),
        now,
    };
    let scope = scope.to_string();
    let (access, row) = minting.access_token(keys, settings, &scope)?;
    let expires_in = row.expires_at - now;
    match tokens::insert(pool, &row).await {
        // The client was removed after its row was cached (another node, or the CLI).
        Err(e) if e.is_foreign_key_violation() => {
            return oauth(InvalidClient, "unknown client or bad credentials")
        }
        other => other?,
    }
    Ok(TokenResponse {
        access_token: access,
        expires_in,
        scope,
        refresh_token: None,
        id_token: None,
    })
}

/// The machine binds the client to a redirect URI, though this grant never redirects and a
/// machine client may have none. One placeholder, parsed once, stands in: parsing the client's
/// own URI on every request was a quarter of the machine's cost (BENCHMARKS.md, session 7).
fn unused_redirect_uri() -> Result<&'static RegisteredUrl, TokenError> {
    static URL: LazyLock<Result<RegisteredUrl, String>> = LazyLock::new(|| {
        machine::registered_url("https://client-credentials.invalid/").map_err(|e| format!("{e:?}"))
    });
    URL.as_ref().map_err(|e| TokenError::Internal(e.clone()))
}

/// Runs the machine to its end: `Ok` when it accepted the request with the scope Portcullis
/// negotiated (it hands back the pre-grant it was given, so that scope is the grant's).
fn drive(request: &CredentialsRequest<'_>, scope: &Scope) -> Result<(), TokenError> {
    let bound_uri = unused_redirect_uri()?;
    let mut engine = ClientCredentials::new(request);
    let mut input = Input::None;
    loop {
        input = match engine.advance(input) {
            Output::Authenticate { .. } => Input::Authenticated,
            Output::Binding { client_id } => Input::Bound {
                bound_client: BoundClient {
                    client_id: Cow::Owned(client_id.to_string()),
                    redirect_uri: Cow::Borrowed(bound_uri),
                },
            },
            Output::Extend => Input::Extended {
                extensions: Extensions::new(),
            },
            Output::Negotiate { bound_client, .. } => Input::Negotiated {
                pre_grant: PreGrant {
                    client_id: bound_client.client_id.to_string(),
                    redirect_uri: bound_client.redirect_uri.as_ref().clone(),
                    scope: machine::to_machine_scope(scope)?,
                },
            },
            Output::Ok { .. } => return Ok(()),
            Output::Err(mut e) => return Err(machine::verdict(e.description(), MACHINE)),
        };
    }
}
