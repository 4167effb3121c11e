//! Creating users and clients: shared by the admin CLI, dynamic registration and tests, so a
//! client made one way is the same as one made another.

use serde_json::json;

use crate::domain::clients::{Client, NewClientSpec};
use crate::domain::password::{self, Password};
use crate::domain::secret::{prefix, random_id, Secret};
use crate::store::models::User;
use crate::store::{clients, users, Pool, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Usernames are what people type at the login form: no spaces or control characters.
pub fn check_username(name: &str) -> Result<(), AccountError> {
    if name.is_empty() || name.chars().count() > 191 {
        return Err(AccountError::Invalid(
            "a username must be 1 to 191 characters".into(),
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AccountError::Invalid(
            "a username must not contain spaces or control characters".into(),
        ));
    }
    Ok(())
}

pub async fn create_user(
    pool: &Pool,
    username: &str,
    password: &Password,
    iterations: u32,
    now: i64,
) -> Result<User, AccountError> {
    check_username(username)?;
    password::validate(password).map_err(|e| AccountError::Invalid(e.to_string()))?;
    if users::find_by_username(pool, username).await?.is_some() {
        return Err(AccountError::UserExists(username.into()));
    }
    let user = User {
        id: random_id(),
        username: username.to_string(),
        password_hash: password::hash(password, iterations),
        disabled: false,
        created_at: now,
    };
    match users::insert(pool, &user).await {
        Err(e) if e.is_unique_violation() => Err(AccountError::UserExists(username.into())),
        other => other.map(|_| user).map_err(Into::into),
    }
}

/// Per-client token lifetimes (None: the server default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Lifetimes {
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
}

/// Validates and stores a client. Returns it and, for a confidential client, its secret in
/// clear: the only time it exists outside the caller's hands.
pub async fn create_client(
    pool: &Pool,
    spec: NewClientSpec,
    lifetimes: Lifetimes,
    now: i64,
) -> Result<(Client, Option<Secret>), AccountError> {
    create_client_with(pool, spec, lifetimes, serde_json::Map::new(), now).await
}

/// `create_client` with RFC 7591 metadata beside the name (the CLI's `--id-token-alg`).
pub async fn create_client_with(
    pool: &Pool,
    spec: NewClientSpec,
    lifetimes: Lifetimes,
    extra: serde_json::Map<String, serde_json::Value>,
    now: i64,
) -> Result<(Client, Option<Secret>), AccountError> {
    let mut metadata = json!({ "client_name": spec.name });
    if let serde_json::Value::Object(m) = &mut metadata {
        m.extend(extra);
    }
    let (client, secret) = build_client(spec, lifetimes, metadata, now)?;
    clients::insert(pool, &client).await?;
    Ok((client, secret))
}

/// The row for a new client (not yet stored) and its secret.
pub fn build_client(
    spec: NewClientSpec,
    lifetimes: Lifetimes,
    metadata: serde_json::Value,
    now: i64,
) -> Result<(Client, Option<Secret>), AccountError> {
    for ttl in [lifetimes.access_token_ttl, lifetimes.refresh_token_ttl]
        .into_iter()
        .flatten()
    {
        if ttl <= 0 {
            return Err(AccountError::Invalid(
                "token lifetimes must be positive".into(),
            ));
        }
    }
    let spec = spec
        .validate()
        .map_err(|e| AccountError::Invalid(e.to_string()))?;
    let secret = (!spec.public).then(|| Secret::generate(prefix::CLIENT_SECRET));
    let client = Client {
        client_id: random_id(),
        secret_hash: secret.as_ref().map(Secret::digest),
        grant_types: spec.grant_set(),
        scope: spec.scope_set(),
        auth_method: spec.auth_method(),
        registration_access_token_hash: None,
        access_token_ttl: lifetimes.access_token_ttl,
        refresh_token_ttl: lifetimes.refresh_token_ttl,
        metadata: metadata_object(metadata),
        created_at: now,
        resource_server: spec.resource_server,
        name: spec.name,
        redirect_uris: spec.redirect_uris,
    };
    Ok((client, secret))
}

/// RFC 7591 metadata is a JSON object; anything else carries nothing.
pub fn metadata_object(metadata: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match metadata {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}
