//! Portcullis: an OAuth 2.0 authorization server. Layers point one way:
//! `web` → `oauth`/`domain` → `store`.

pub mod backend;
pub mod cli;
pub mod domain;
pub mod janitor;
pub mod keys;
pub mod oauth;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;

pub use settings::Settings;
pub use startup::Application;

/// The one place that reads the wall clock (STYLE.md §9): everything else takes `now`.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
