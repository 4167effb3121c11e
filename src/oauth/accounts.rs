//! Creating users and clients: shared by the admin CLI, dynamic registration and tests, so a
//! client made one way is the same as one made another.

use serde_json::json;

use crate::domain::clients::{Client, NewClientSpec};
use crate::domain::password::{self, Password};
use crate::domain::secret::{prefix, random_id, Secret};
use crate::store::models::{Profile, User};
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

/// The profile claims as MariaDB's columns hold them (VARCHAR counts characters): an e-mail
/// address of at most 254 (RFC 5321 §4.5.3.1.3's path limit less the brackets) with one `@`
/// between non-empty parts, names of at most 255, and no control characters anywhere. Checked
/// here so both backends refuse the same input with the same message.
pub fn check_profile(p: &Profile) -> Result<(), AccountError> {
    let text = |label: &str, v: &Option<String>, max: usize| match v {
        Some(v) if v.is_empty() || v.chars().count() > max => Err(AccountError::Invalid(format!(
            "{label} must be 1 to {max} characters (leave it out for none)"
        ))),
        Some(v) if v.chars().any(char::is_control) => Err(AccountError::Invalid(format!(
            "{label} must not contain control characters"
        ))),
        _ => Ok(()),
    };
    text("email", &p.email, 254)?;
    for (label, v) in [
        ("name", &p.name),
        ("given_name", &p.given_name),
        ("family_name", &p.family_name),
        ("preferred_username", &p.preferred_username),
    ] {
        text(label, v, 255)?;
    }
    if let Some(email) = &p.email {
        let well_formed = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        }) && !email.chars().any(char::is_whitespace);
        if !well_formed {
            return Err(AccountError::Invalid(format!(
                "{email:?} is not an e-mail address"
            )));
        }
    }
    if p.email.is_none() && p.email_verified {
        return Err(AccountError::Invalid(
            "email_verified needs an email".into(),
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
    create_user_with(
        pool,
        username,
        password,
        Profile::default(),
        iterations,
        now,
    )
    .await
}

/// `create_user` with profile claims (`user add --email …`).
pub async fn create_user_with(
    pool: &Pool,
    username: &str,
    password: &Password,
    profile: Profile,
    iterations: u32,
    now: i64,
) -> Result<User, AccountError> {
    check_username(username)?;
    check_profile(&profile)?;
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
        profile: Profile {
            updated_at: now,
            ..profile
        },
    };
    match users::insert(pool, &user).await {
        Err(e) if e.is_unique_violation() => Err(AccountError::UserExists(username.into())),
        other => other.map(|_| user).map_err(Into::into),
    }
}

/// Replaces a user's profile claims and stamps `updated_at`. Returns whether the user existed.
pub async fn set_profile(
    pool: &Pool,
    username: &str,
    profile: Profile,
    now: i64,
) -> Result<bool, AccountError> {
    check_profile(&profile)?;
    let profile = Profile {
        updated_at: now,
        ..profile
    };
    Ok(users::set_profile(pool, username, &profile).await?)
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
