//! Builds the application from settings: pool, server check, migrations, listener, routes.
//! Tests and `portcullis serve` go through the same `Application::build`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::oauth::client_cache::ClientCache;
use crate::settings::Settings;
use crate::store::migrations::{self, Action, Outcome};
use crate::store::{Pool, StoreError};
use crate::web::{self, AppState};

pub struct Application {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
}

impl Application {
    /// Binds `server.bind` and builds the application.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = tokio::net::TcpListener::bind(&settings.server.bind)
            .await
            .map_err(|e| StartupError::Bind(settings.server.bind.clone(), e))?;
        Self::build_with_listener(settings, listener).await
    }

    /// Builds on a listener bound by the caller: tests bind port 0 first, then set the issuer
    /// from the real port.
    pub async fn build_with_listener(
        settings: Settings,
        listener: tokio::net::TcpListener,
    ) -> Result<Self, StartupError> {
        // Installed before anything records, so the first requests are counted.
        crate::telemetry::metrics();
        let pool = Pool::build(&settings.database)?;
        if settings.database.auto_migrate {
            pool.check_server().await?;
            if let Outcome::Changed(applied) =
                migrations::run(settings.database.url.expose(), Action::RunPending).await?
            {
                for version in applied {
                    tracing::info!(version, "applied migration");
                }
            }
        }
        let assets = web::assets::Assets::new(&settings);
        let addr = listener
            .local_addr()
            .map_err(|e| StartupError::Bind(settings.server.bind.clone(), e))?;
        Ok(Self {
            listener,
            addr,
            state: Arc::new(AppState {
                clients: ClientCache::new(settings.cache.client_ttl_secs),
                site: web::pages::Site::new(&settings, assets.stylesheet_path.clone()),
                assets: Arc::new(assets),
                settings,
                pool,
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pool(&self) -> Pool {
        self.state.pool.clone()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests. The janitor runs
    /// beside it (unless `janitor.interval_secs` is 0) and finishes its batch before returning.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let settings = &self.state.settings;
        let (stop_janitor, stop) = tokio::sync::watch::channel(false);
        let janitor = (settings.janitor.interval_secs > 0).then(|| {
            tokio::spawn(crate::janitor::run(
                self.state.pool.clone(),
                settings.clone(),
                stop,
            ))
        });
        let routes = web::routes(self.state.clone());
        let limits = web::server::Limits::of(&settings.server);
        web::server::serve(self.listener, routes, limits, shutdown).await;
        let _ = stop_janitor.send(true);
        if let Some(janitor) = janitor {
            let _ = janitor.await;
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
