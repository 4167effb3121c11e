//! Builds the application from settings: pool, server check, migrations, listener, routes.
//! Tests and `portcullis serve` go through the same `Application::build`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::keys::{kek, Kek, KeyError, KeyRing};
use crate::oauth::client_cache::ClientCache;
use crate::settings::Settings;
use crate::store::migrations::{self, Action, Outcome};
use crate::store::{Pool, StoreError};
use crate::web::tls::{Tls, TlsError};
use crate::web::{self, AppState};

pub struct Application {
    listener: tokio::net::TcpListener,
    tls: Option<Tls>,
    /// `metrics.bind`'s own listener, when set.
    metrics_listener: Option<(tokio::net::TcpListener, SocketAddr)>,
    addr: SocketAddr,
    state: Arc<AppState>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Keys(#[from] KeyError),
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
        // Read before the database is touched: a wrong path fails fast and says which.
        let tls = if settings.server.tls() {
            Some(Tls::load(
                settings.server.tls_cert.as_ref(),
                settings.server.tls_key.as_ref(),
            )?)
        } else {
            None
        };
        let metrics_listener = match settings.metrics.bind.as_str() {
            "" => None,
            bind => {
                let bind_error = |e| StartupError::Bind(bind.to_string(), e);
                let listener = tokio::net::TcpListener::bind(bind)
                    .await
                    .map_err(bind_error)?;
                let addr = listener.local_addr().map_err(bind_error)?;
                Some((listener, addr))
            }
        };
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
        let keys = Arc::new(open_keys(&settings, &pool).await?);
        let assets = web::assets::Assets::new(&settings);
        let addr = listener
            .local_addr()
            .map_err(|e| StartupError::Bind(settings.server.bind.clone(), e))?;
        Ok(Self {
            listener,
            tls,
            metrics_listener,
            addr,
            state: Arc::new(AppState {
                clients: ClientCache::new(settings.cache.client_ttl_secs),
                keys,
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

    /// Where `/metrics` is served when `metrics.bind` gives it its own listener.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// `https` with in-process TLS, else `http`: how to reach `local_addr`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    pub fn pool(&self) -> Pool {
        self.state.pool.clone()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests. The janitor runs
    /// beside it (unless `janitor.interval_secs` is 0) and finishes its batch before returning;
    /// so does the `metrics.bind` listener, when there is one.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let settings = &self.state.settings;
        let (stop_background, stop) = tokio::sync::watch::channel(false);
        let janitor = (settings.janitor.interval_secs > 0).then(|| {
            tokio::spawn(crate::janitor::run(
                self.state.pool.clone(),
                settings.clone(),
                stop,
            ))
        });
        let key_refresher = tokio::spawn(crate::keys::refresh_periodically(
            self.state.keys.clone(),
            std::time::Duration::from_secs(settings.keys.refresh_secs),
            (
                settings.keys.rotate_after_secs,
                settings.keys.publish_ahead_secs,
            ),
            stop_background.subscribe(),
        ));
        let reloader = self
            .tls
            .clone()
            .map(|tls| tokio::spawn(reload_on_sighup(tls)));
        let limits = web::server::Limits::of(settings);
        let metrics_server = self.metrics_listener.map(|(listener, _)| {
            let mut stop = stop_background.subscribe();
            // Plain HTTP for a scraper on an internal address: no TLS, no https rule.
            let limits = web::server::Limits {
                https_only: None,
                ..limits.clone()
            };
            let routes = web::metrics_routes(self.state.clone());
            tokio::spawn(web::server::serve(
                listener,
                routes,
                limits,
                None,
                async move {
                    let _ = stop.changed().await;
                },
            ))
        });
        let routes = web::routes(self.state.clone());
        web::server::serve(self.listener, routes, limits, self.tls, shutdown).await;
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        let _ = stop_background.send(true);
        let _ = key_refresher.await;
        if let Some(janitor) = janitor {
            let _ = janitor.await;
        }
        if let Some(metrics_server) = metrics_server {
            let _ = metrics_server.await;
        }
    }
}

/// The key-encryption key (made on first start on SQLite) and every signing key, opened.
async fn open_keys(settings: &Settings, pool: &Pool) -> Result<KeyRing, StartupError> {
    let (kek, source) = Kek::resolve(settings)?;
    match source {
        kek::Source::NewFile(path) => tracing::warn!(
            path = %path.display(),
            "made a key-encryption key for the signing keys; back it up with the database: without it they cannot be opened"
        ),
        kek::Source::File(path) => {
            tracing::info!(path = %path.display(), "key-encryption key read from file")
        }
        kek::Source::Settings => {}
    }
    Ok(KeyRing::open(
        pool.clone(),
        kek,
        settings.keys.retired_publish_secs,
        crate::now(),
    )
    .await?)
}

/// Reads the TLS certificate and key again on each SIGHUP (certbot's or cert-manager's renewal
/// hook sends one). Open connections keep the certificate they were made with; a reload that
/// fails keeps the current one and logs why.
async fn reload_on_sighup(tls: Tls) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; the TLS certificate will not be reloaded");
            return;
        };
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => {
                    tracing::info!("TLS certificate reloaded");
                    metrics::counter!("portcullis_tls_reloads_total", "outcome" => "ok")
                        .increment(1);
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded; keeping the current one");
                    metrics::counter!("portcullis_tls_reloads_total", "outcome" => "failed")
                        .increment(1);
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tls;
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
