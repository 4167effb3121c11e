//! The OAuth services: what each endpoint does, with no warp types. Each takes parsed
//! parameters and the store, and returns a result the web layer only has to shape.
//!
//! ```text
//! RFC 6749 §4.1.1 authorization request  → authorize::validate (+ login, consent)
//! RFC 6749 §4.1.2 authorization response → authorize::issue_code / authorize::deny
//! RFC 6749 §4.1.3 access token request   → token::handle (authorization_code)
//! RFC 6749 §6     refreshing             → token::handle (refresh_token, rotating)
//! RFC 6749 §4.4   client credentials     → token::handle (client_credentials)
//! ```

pub mod account;
pub mod accounts;
pub mod authorize;
pub mod client_auth;
pub mod client_cache;
pub mod error;
pub mod introspect;
pub mod login;
pub mod params;
pub mod registration;
pub mod token;

pub use error::{ErrorCode, OAuthError};
