//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).

use serde_json::{json, Value};

use super::accounts::{build_client, metadata_object, AccountError, Lifetimes};
use super::bearer::{self, BearerCheck, Presented};
use crate::domain::clients::{could_be_client_id, Client};
use crate::domain::error_code::ErrorCode;
use crate::domain::registration::{self, MetadataError};
use crate::domain::scope::Scope;
use crate::domain::secret::Secret;
use crate::settings::{RegistrationPolicy, Settings};
use crate::store::{clients, registration_tokens, throttle, Pool, StoreError};

pub const RAT_PREFIX: &str = "pc_rat_";
pub const INITIAL_TOKEN_PREFIX: &str = "pc_iat_";

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("registration is closed")]
    Closed,
    /// A missing, wrong, expired or used-up bearer token (initial or registration access).
    #[error("a valid bearer token is required")]
    InvalidToken,
    #[error("too many registrations from this address")]
    RateLimited,
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AccountError> for RegistrationError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(s) => RegistrationError::Store(s),
            other => RegistrationError::Metadata(MetadataError {
                code: ErrorCode::InvalidClientMetadata,
                description: other.to_string(),
            }),
        }
    }
}

/// RFC 7591 §3: registers a client. `bearer` is the initial access token, when sent.
pub async fn register(
    pool: &Pool,
    settings: &Settings,
    body: &Value,
    bearer: Option<&str>,
    client_ip: Option<std::net::IpAddr>,
    now: i64,
) -> Result<Value, RegistrationError> {
    let cfg = &settings.registration;
    let initial = match cfg.policy {
        RegistrationPolicy::Closed => return Err(RegistrationError::Closed),
        RegistrationPolicy::Open => None,
        RegistrationPolicy::Token => {
            let digest =
                Secret::from_presented(bearer.ok_or(RegistrationError::InvalidToken)?).digest();
            if !registration_tokens::is_usable(pool, &digest, now).await? {
                return Err(RegistrationError::InvalidToken);
            }
            Some(digest)
        }
    };
    if let Some(ip) = client_ip {
        // Counted before it is judged, so a burst cannot overrun the limit (`store::throttle`);
        // a refused attempt takes its row back, so the limit is on registrations.
        let subject = vec![format!("register:{ip}")];
        let attempt = throttle::begin_attempt(pool, &subject, now, now - cfg.window_secs).await?;
        if attempt.counts[0] > cfg.max_per_ip {
            throttle::withdraw(pool, &attempt).await?;
            return Err(RegistrationError::RateLimited);
        }
    }
    let allowed = Scope::parse(&cfg.allowed_scope).unwrap_or_default();
    let reg = registration::validate(body, &allowed)?;
    let (mut client, secret) = build_client(reg.spec, Lifetimes::default(), reg.metadata, now)?;
    let rat = Secret::generate(RAT_PREFIX);
    client.registration_access_token_hash = Some(rat.digest());
    if !clients::insert_registered(pool, &client, initial.as_ref(), now).await? {
        // The initial token ran out between the check and the insert.
        return Err(RegistrationError::InvalidToken);
    }
    let mut out = describe(&client, settings);
    out["registration_access_token"] = json!(rat.expose());
    if let Some(s) = secret {
        out["client_secret"] = json!(s.expose());
        out["client_secret_expires_at"] = json!(0);
    }
    Ok(out)
}

/// RFC 7592 §2: the client the registration access token belongs to, checked through the
/// bearer machine (`bearer.rs`; RFC 6750 §2.1: the `Bearer` scheme, case-insensitive). A
/// missing or wrong token, or a client registered without one, is `InvalidToken` (401), never
/// a hint that the id exists.
pub async fn authorize_management(
    pool: &Pool,
    client_id: &str,
    authorization: Option<&str>,
) -> Result<Client, RegistrationError> {
    // The empty required scope: the token itself is the permission.
    let check = BearerCheck::start(
        Presented {
            authorization,
            form_token: None,
        },
        "",
    )
    .map_err(|_| RegistrationError::InvalidToken)?;
    if !could_be_client_id(client_id) {
        return Err(RegistrationError::InvalidToken);
    }
    let client = clients::find(pool, client_id)
        .await?
        .ok_or(RegistrationError::InvalidToken)?;
    let matches = client
        .registration_access_token_hash
        .as_ref()
        .is_some_and(|stored| {
            Secret::from_presented(check.token())
                .digest()
                .matches(stored.as_bytes())
        });
    if !matches {
        return Err(RegistrationError::InvalidToken);
    }
    // RFC 7592 §3: valid until rotated or the client is deleted: no expiry (year 9999).
    let grant = bearer::grant(&client.client_id, &client.client_id, "", 253_402_300_799)
        .ok_or_else(|| StoreError::Corrupt(format!("no grant for {client_id}")))?;
    check
        .finish(grant)
        .map_err(|_| RegistrationError::InvalidToken)?;
    Ok(client)
}

/// RFC 7592 §2.2: replaces the metadata. The body must name the same client_id, and a
/// client_secret in it must be the current one; the client cannot switch between public and
/// confidential (its credentials would change).
pub async fn update(
    pool: &Pool,
    settings: &Settings,
    client: Client,
    body: &Value,
) -> Result<Value, RegistrationError> {
    let bad = |d: &str| {
        RegistrationError::Metadata(MetadataError {
            code: ErrorCode::InvalidClientMetadata,
            description: d.into(),
        })
    };
    if body.get("client_id").and_then(Value::as_str) != Some(client.client_id.as_str()) {
        return Err(bad("client_id in the body must be this client's id"));
    }
    if let Some(s) = body.get("client_secret") {
        let ok = match (s.as_str(), &client.secret_hash) {
            (Some(s), Some(h)) => Secret::from_presented(s).digest().matches(h.as_bytes()),
            _ => false,
        };
        if !ok {
            return Err(bad("client_secret does not match"));
        }
    }
    let allowed = Scope::parse(&settings.registration.allowed_scope).unwrap_or_default();
    let reg = registration::validate(body, &allowed)?;
    if reg.spec.public != client.is_public() {
        return Err(bad(
            "a client cannot switch between public and confidential; register a new one",
        ));
    }
    let updated = Client {
        grant_types: reg.spec.grant_set(),
        scope: reg.spec.scope_set(),
        auth_method: reg.spec.auth_method(),
        metadata: metadata_object(reg.metadata),
        name: reg.spec.name,
        redirect_uris: reg.spec.redirect_uris,
        ..client
    };
    clients::replace_metadata(pool, &updated).await?;
    Ok(describe(&updated, settings))
}

/// RFC 7591 §3.2.1 / RFC 7592 §3: the client information response, without secrets.
pub fn describe(c: &Client, settings: &Settings) -> Value {
    let mut out = json!({
        "client_id": c.client_id,
        "client_id_issued_at": c.created_at,
        "redirect_uris": c.redirect_uris,
        "grant_types": c.grant_types.names(),
        "token_endpoint_auth_method": c.auth_method.as_str(),
        "scope": c.scope.to_string(),
        "registration_client_uri": format!("{}/oauth2/register/{}", settings.issuer(), c.client_id),
    });
    for (k, v) in &c.metadata {
        out[k] = v.clone();
    }
    if c.name.is_empty() {
        if let Some(o) = out.as_object_mut() {
            o.remove("client_name");
        }
    }
    out
}
