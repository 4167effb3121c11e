//! What every request handler can reach. Built once by `startup::Application`.

use std::sync::Arc;

use crate::keys::KeyRing;
use crate::oauth::client_cache::ClientCache;
use crate::settings::Settings;
use crate::store::Pool;

/// What every request handler can reach.
pub struct AppState {
    pub settings: Settings,
    pub pool: Pool,
    pub clients: ClientCache,
    /// The signing keys, decrypted, re-read every `keys.refresh_secs`.
    pub keys: Arc<KeyRing>,
    /// Branding and the stylesheet's path, for the HTML pages.
    pub site: super::pages::Site,
    pub assets: Arc<super::assets::Assets>,
}

impl AppState {
    /// How long a request waits for its handler (`database.request_timeout_secs`).
    pub fn request_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.settings.database.request_timeout_secs)
    }
}
