//! The OAuth services: what each endpoint does, with no warp types. Each takes parsed
//! parameters and the store, and returns a result the web layer only has to shape.
//!
//! ```text
//! RFC 6749 §4.1.1 authorization request  → authorize::authorize → Outcome (oxide-auth
//! RFC 6749 §4.1.2 authorization response →   Authorization machine; login, consent, code)
//! RFC 6749 §4.1.3 access token request   → grants::authorization_code (oxide-auth AccessToken)
//! RFC 6749 §6     refreshing             → grants::refresh (Refresh machine, rotating)
//! RFC 6749 §4.4   client credentials     → grants::client_credentials (ClientCredentials)
//! ```

pub mod account;
pub mod accounts;
pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod client_cache;
pub mod end_session;
pub mod error;
pub mod grants;
pub mod id_token;
pub mod introspect;
pub mod jwt_access_token;
pub mod login;
pub mod params;
pub mod registration;
pub mod resource;
pub mod userinfo;

pub use error::{ErrorCode, OAuthError};
