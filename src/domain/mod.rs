//! Rules with no warp and no Diesel types: secrets and hashing, passwords, scopes, URIs.

pub mod clients;
pub mod error_code;
pub mod password;
pub mod pkce;
pub mod registration;
pub mod scope;
pub mod secret;
