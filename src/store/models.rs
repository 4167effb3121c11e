//! Row types, one per table. They derive serde so `db dump` can write them; binary digests are
//! written as hex.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::*;

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
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = clients, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields)]
pub struct Client {
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
}

impl Client {
    pub fn redirect_uri_list(&self) -> Vec<String> {
        serde_json::from_str(&self.redirect_uris).unwrap_or_default()
    }

    pub fn grant_type_list(&self) -> Vec<&str> {
        self.grant_types
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect()
    }

    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = sessions, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields)]
pub struct Session {
    #[serde(with = "hex_bytes")]
    pub id_hash: Vec<u8>,
    pub user_id: String,
    #[serde(with = "hex_bytes")]
    pub csrf_secret: Vec<u8>,
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
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = tokens, check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
#[serde(deny_unknown_fields)]
pub struct Token {
    #[serde(with = "hex_bytes")]
    pub token_hash: Vec<u8>,
    /// `access` or `refresh`.
    pub kind: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: String,
    pub family_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub const KIND_ACCESS: &str = "access";
pub const KIND_REFRESH: &str = "refresh";

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
