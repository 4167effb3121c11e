//! Row types, one per table. They derive serde so `db dump` can write them; binary digests are
//! written as hex.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::*;
use super::StoreError;
use crate::domain::clients::{AuthMethod, Client, GrantTypes};
use crate::domain::scope::Scope;
use crate::domain::secret::Digest;

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|h| hex::decode(h).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = users, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    /// The claims of the profile and email scopes (migration 0009). `serde(default)` so a
    /// dump taken before them still loads.
    #[diesel(embed)]
    #[serde(default)]
    pub profile: Profile,
}

/// A user as sessions need them: who, and whether still enabled; no password hash and no
/// profile claims. The authorization endpoint reads it with every request, and the profile's
/// seven columns cost about 5 % of that path's instructions in MariaDB's protocol alone
/// (BENCHMARKS.md, session 14).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct Account {
    pub id: String,
    pub username: String,
    pub disabled: bool,
}

/// OpenID Connect Core 1.0 §5.1 standard claims a user may have; `None` is "not set".
/// Validated by `accounts::check_profile` before it is stored.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Queryable,
    Selectable,
    Insertable,
    AsChangeset,
    Serialize,
    Deserialize,
)]
#[diesel(table_name = users, treat_none_as_null = true)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `None`: the username.
    pub preferred_username: Option<String>,
    /// When the profile last changed (the `updated_at` claim); the creation time at first.
    pub updated_at: i64,
}

/// A `clients` row as stored; the rest of the server sees `domain::clients::Client`, which
/// `TryFrom` builds (parsing each column once) and `From` turns back into a row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = clients, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields)]
pub struct ClientRow {
    pub client_id: String,
    #[serde(with = "hex_opt")]
    pub secret_hash: Option<Vec<u8>>,
    pub name: String,
    /// JSON array of strings.
    pub redirect_uris: String,
    /// Space-separated, sorted.
    pub grant_types: String,
    /// Space-separated, sorted.
    pub scope: String,
    pub token_endpoint_auth_method: String,
    #[serde(with = "hex_opt")]
    pub registration_access_token_hash: Option<Vec<u8>>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    /// RFC 7591 metadata as a JSON object.
    pub metadata: String,
    pub created_at: i64,
    /// May call the introspection endpoint. Absent from dumps made before it existed.
    #[serde(default)]
    pub resource_server: bool,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!(
                "client {}: stored {what} does not parse",
                row.client_id
            ))
        };
        let digest = |bytes: &Option<Vec<u8>>, what: &str| match bytes {
            None => Ok(None),
            Some(b) => Digest::from_slice(b).map(Some).ok_or_else(|| corrupt(what)),
        };
        Ok(Client {
            secret_hash: digest(&row.secret_hash, "secret digest")?,
            registration_access_token_hash: digest(
                &row.registration_access_token_hash,
                "registration token digest",
            )?,
            redirect_uris: serde_json::from_str(&row.redirect_uris)
                .map_err(|_| corrupt("redirect_uris"))?,
            grant_types: GrantTypes::parse(&row.grant_types)
                .ok_or_else(|| corrupt("grant_types"))?,
            scope: Scope::parse(&row.scope).ok_or_else(|| corrupt("scope"))?,
            auth_method: AuthMethod::parse(&row.token_endpoint_auth_method)
                .ok_or_else(|| corrupt("token_endpoint_auth_method"))?,
            metadata: match serde_json::from_str(&row.metadata) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => return Err(corrupt("metadata")),
            },
            access_token_ttl: row.access_token_ttl,
            refresh_token_ttl: row.refresh_token_ttl,
            created_at: row.created_at,
            resource_server: row.resource_server,
            name: row.name,
            client_id: row.client_id,
        })
    }
}

impl From<&Client> for ClientRow {
    fn from(c: &Client) -> Self {
        ClientRow {
            client_id: c.client_id.clone(),
            secret_hash: c.secret_hash.map(|d| d.as_bytes().to_vec()),
            name: c.name.clone(),
            redirect_uris: serde_json::Value::from(c.redirect_uris.clone()).to_string(),
            grant_types: c.grant_types.to_string(),
            scope: c.scope.to_string(),
            token_endpoint_auth_method: c.auth_method.as_str().to_string(),
            registration_access_token_hash: c
                .registration_access_token_hash
                .map(|d| d.as_bytes().to_vec()),
            access_token_ttl: c.access_token_ttl,
            refresh_token_ttl: c.refresh_token_ttl,
            metadata: serde_json::Value::Object(c.metadata.clone()).to_string(),
            created_at: c.created_at,
            resource_server: c.resource_server,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = sessions, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields)]
pub struct Session {
    #[serde(with = "hex_bytes")]
    pub id_hash: Vec<u8>,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = authorization_codes, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields)]
pub struct AuthorizationCode {
    #[serde(with = "hex_bytes")]
    pub code_hash: Vec<u8>,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub redirect_uri_explicit: bool,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    pub family_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    /// When the user signed in for the session that approved it (the id_token's auth_time).
    pub auth_time: Option<i64>,
    /// The resource server the grant is for (RFC 8707), one of `[[resources]]`.
    pub resource: Option<String>,
    /// The id_token's `sid`: which sign-in approved the grant (`crate::oauth::sid`).
    pub sid: Option<String>,
}

/// An authorization code row as column assignments (NULLs bound, see `TokenValues`).
pub type CodeValues = (
    diesel::dsl::Eq<authorization_codes::code_hash, Vec<u8>>,
    diesel::dsl::Eq<authorization_codes::client_id, String>,
    diesel::dsl::Eq<authorization_codes::user_id, String>,
    diesel::dsl::Eq<authorization_codes::redirect_uri, String>,
    diesel::dsl::Eq<authorization_codes::redirect_uri_explicit, bool>,
    diesel::dsl::Eq<authorization_codes::scope, String>,
    diesel::dsl::Eq<authorization_codes::code_challenge, Option<String>>,
    diesel::dsl::Eq<authorization_codes::code_challenge_method, Option<String>>,
    diesel::dsl::Eq<authorization_codes::nonce, Option<String>>,
    diesel::dsl::Eq<authorization_codes::family_id, String>,
    diesel::dsl::Eq<authorization_codes::created_at, i64>,
    diesel::dsl::Eq<authorization_codes::expires_at, i64>,
    diesel::dsl::Eq<authorization_codes::consumed_at, Option<i64>>,
    diesel::dsl::Eq<authorization_codes::auth_time, Option<i64>>,
    diesel::dsl::Eq<authorization_codes::resource, Option<String>>,
    diesel::dsl::Eq<authorization_codes::sid, Option<String>>,
);

impl AuthorizationCode {
    pub fn values(&self) -> CodeValues {
        use authorization_codes as c;
        (
            c::code_hash.eq(self.code_hash.clone()),
            c::client_id.eq(self.client_id.clone()),
            c::user_id.eq(self.user_id.clone()),
            c::redirect_uri.eq(self.redirect_uri.clone()),
            c::redirect_uri_explicit.eq(self.redirect_uri_explicit),
            c::scope.eq(self.scope.clone()),
            c::code_challenge.eq(self.code_challenge.clone()),
            c::code_challenge_method.eq(self.code_challenge_method.clone()),
            c::nonce.eq(self.nonce.clone()),
            c::family_id.eq(self.family_id.clone()),
            c::created_at.eq(self.created_at),
            c::expires_at.eq(self.expires_at),
            c::consumed_at.eq(self.consumed_at),
            c::auth_time.eq(self.auth_time),
            c::resource.eq(self.resource.clone()),
            c::sid.eq(self.sid.clone()),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = tokens, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields)]
pub struct Token {
    #[serde(with = "hex_bytes")]
    pub token_hash: Vec<u8>,
    pub kind: TokenKind,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: String,
    pub family_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set on rows used before migration 0003 only; see `parent_hash`.
    pub consumed_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The authorization code or refresh token whose single use issued this row (unique: a
    /// code or refresh token is used once exactly when a row names it here).
    #[serde(default, with = "hex_opt")]
    pub parent_hash: Option<Vec<u8>>,
    /// When the user signed in for the grant this token descends from (refreshed id_tokens).
    pub auth_time: Option<i64>,
    /// The resource server of its grant (RFC 8707): the audience of its access tokens.
    pub resource: Option<String>,
    /// The `sid` of its grant's sign-in (refreshed id_tokens).
    pub sid: Option<String>,
}

/// What introspection and userinfo read of a token: no digest (it was looked up by it), family, parent,
/// sign-in or `sid`. On MariaDB every column read costs a column-definition packet per query,
/// and introspection is the hottest read (BENCHMARKS.md, session 15).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tokens, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct TokenState {
    pub kind: TokenKind,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub resource: Option<String>,
}

impl TokenState {
    /// Not revoked, not expired, and not marked used (rows used before migration 0003; later
    /// uses are found by `tokens::has_successor`).
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now && self.consumed_at.is_none()
    }
}

/// A token row as column assignments. Diesel's derived `Insertable` writes `None` as `DEFAULT`,
/// so the SQL depends on the values and MySQL re-prepares the statement for every insert; bound
/// as NULL, the SQL is fixed and the prepared statement is reused. Hot paths insert through this.
pub type TokenValues = (
    diesel::dsl::Eq<tokens::token_hash, Vec<u8>>,
    diesel::dsl::Eq<tokens::kind, TokenKind>,
    diesel::dsl::Eq<tokens::client_id, String>,
    diesel::dsl::Eq<tokens::user_id, Option<String>>,
    diesel::dsl::Eq<tokens::scope, String>,
    diesel::dsl::Eq<tokens::family_id, String>,
    diesel::dsl::Eq<tokens::created_at, i64>,
    diesel::dsl::Eq<tokens::expires_at, i64>,
    diesel::dsl::Eq<tokens::consumed_at, Option<i64>>,
    diesel::dsl::Eq<tokens::revoked_at, Option<i64>>,
    diesel::dsl::Eq<tokens::parent_hash, Option<Vec<u8>>>,
    diesel::dsl::Eq<tokens::auth_time, Option<i64>>,
    diesel::dsl::Eq<tokens::resource, Option<String>>,
    diesel::dsl::Eq<tokens::sid, Option<String>>,
);

impl Token {
    pub fn values(&self) -> TokenValues {
        (
            tokens::token_hash.eq(self.token_hash.clone()),
            tokens::kind.eq(self.kind),
            tokens::client_id.eq(self.client_id.clone()),
            tokens::user_id.eq(self.user_id.clone()),
            tokens::scope.eq(self.scope.clone()),
            tokens::family_id.eq(self.family_id.clone()),
            tokens::created_at.eq(self.created_at),
            tokens::expires_at.eq(self.expires_at),
            tokens::consumed_at.eq(self.consumed_at),
            tokens::revoked_at.eq(self.revoked_at),
            tokens::parent_hash.eq(self.parent_hash.clone()),
            tokens::auth_time.eq(self.auth_time),
            tokens::resource.eq(self.resource.clone()),
            tokens::sid.eq(self.sid.clone()),
        )
    }
}

/// What a `tokens` row is: stored as `access` or `refresh`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
    Serialize,
    Deserialize,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for TokenKind
where
    DB: diesel::backend::Backend,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
{
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, DB>,
    ) -> diesel::serialize::Result {
        self.as_str().to_sql(out)
    }
}

impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for TokenKind
where
    DB: diesel::backend::Backend,
    String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
        match String::from_sql(bytes)?.as_str() {
            "access" => Ok(TokenKind::Access),
            "refresh" => Ok(TokenKind::Refresh),
            other => {
                Err(format!("stored token kind {other:?} is neither access nor refresh").into())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = consents, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub granted_at: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = registration_tokens, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields)]
pub struct RegistrationToken {
    #[serde(with = "hex_bytes")]
    pub token_hash: Vec<u8>,
    /// None: unlimited.
    pub uses_left: Option<i64>,
    pub created_at: i64,
    /// None: never expires.
    pub expires_at: Option<i64>,
}

/// A signing key as stored: the private key sealed under the key-encryption key (`keys::kek`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = signing_keys, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields)]
pub struct SigningKeyRow {
    /// The RFC 7638 thumbprint of the public key.
    pub kid: String,
    pub alg: String,
    /// The public key as served in the JWKS (RFC 7517), JSON.
    pub public_jwk: String,
    /// Nonce, then AES-256-GCM ciphertext and tag of the PKCS#8 private key.
    #[serde(with = "hex_bytes")]
    pub private_key: Vec<u8>,
    pub created_at: i64,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
}
