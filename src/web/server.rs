//! The HTTP/1.1 server loop (issue 12, point 1). warp 0.4's own `serve` builds hyper's
//! connection without a timer, so no connection was ever closed for being idle or slow; here
//! hyper serves the routes with a timer and the limits of `[server]`:
//!
//! - **header-read timeout**: from the moment a connection is ready for a request (just
//!   accepted, or idle between keep-alive requests) until the request's headers are all in;
//!   hyper closes the connection when it passes. This bounds idle and slow-header connections.
//! - **body-read timeout**: applied where a body is read (`request::form_body`), answered 408.
//! - **connection limits**: at most `max_connections` at once (further connections wait in
//!   the kernel's accept queue) and at most `max_connections_per_ip` from one address (further
//!   ones are closed at once), so one client cannot hold every slot.
//! - **graceful shutdown**: on the signal the listener closes, and connections finish the
//!   request they are serving.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::http::HeaderValue;
use warp::reply::Response;

use super::client_ip::TrustedProxies;
use super::request_id::{self, RequestId};
use crate::settings::ServerSettings;

/// What the server knows of a request's connection, put in the request's extensions for the
/// filters (`request::browser`, `request::form_body`); warp's own remote-address extension
/// can only be set by warp's server.
#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    pub body_read_timeout: Duration,
    /// Whose forwarding headers name the client (`client_ip`).
    pub trusted_proxies: Arc<TrustedProxies>,
}

impl Connection {
    /// The client's address: the peer, or the client a trusted proxy names.
    pub fn client_ip(&self, forwarded: Option<&str>, x_forwarded_for: Option<&str>) -> IpAddr {
        self.trusted_proxies
            .client_ip(self.peer.ip(), forwarded, x_forwarded_for)
    }
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    /// 0: no limit per address.
    pub max_connections_per_ip: usize,
    pub trusted_proxies: Arc<TrustedProxies>,
}

impl Limits {
    pub fn of(settings: &ServerSettings) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(settings.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(settings.body_read_timeout_secs),
            max_connections: settings.max_connections,
            max_connections_per_ip: settings.max_connections_per_ip,
            // Validated with the settings; an unparsable list trusts nobody.
            trusted_proxies: Arc::new(
                TrustedProxies::parse(&settings.trusted_proxies).unwrap_or_default(),
            ),
        }
    }
}

/// Serves `routes` on `listener` until `shutdown` resolves, then waits for open connections to
/// finish their requests.
pub async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = PerIp::new(limits.max_connections_per_ip);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first, then accept: over the limit, new connections wait in the
        // kernel's queue instead of taking a file descriptor each.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    back_off(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(ip_slot) = per_ip.take(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: too many from this address");
            metrics::counter!("portcullis_http_connections_refused_total").increment(1);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            peer,
            body_read_timeout: limits.body_read_timeout,
            trusted_proxies: limits.trusted_proxies.clone(),
        };
        let warp_service = TowerToHyperService::new(warp::service(routes.clone()));
        let service = service_fn(move |mut req: hyper::Request<Incoming>| {
            let id = RequestId::for_request(req.headers(), &connection);
            // Every log line of the request carries its id; the path never has a secret (the
            // query, which may, is left out).
            let span = tracing::info_span!(
                "request",
                id = %id.0,
                method = %req.method(),
                path = %req.uri().path(),
                client_id = tracing::field::Empty,
            );
            req.extensions_mut().insert(connection.clone());
            let answer = hyper::service::Service::call(&warp_service, req);
            let started = std::time::Instant::now();
            async move {
                let mut response = answer.instrument(span.clone()).await?;
                tracing::debug!(
                    parent: &span,
                    status = response.status().as_u16(),
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "answered"
                );
                if let Ok(v) = HeaderValue::from_str(&id.0) {
                    response.headers_mut().insert(request_id::HEADER, v);
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // A client that sends garbage, stalls or goes away: its problem, not the
                // server's, so not an error in the log (anyone could flood it).
                tracing::debug!(%peer, error = %e, "connection ended with an error");
                metrics::counter!("portcullis_http_connection_errors_total").increment(1);
            }
            drop((slot, ip_slot));
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors from `accept` that concern one connection (it was reset before we took it) are
/// skipped; others (out of file descriptors, out of memory) would repeat at once, so the loop
/// pauses before trying again instead of spinning.
async fn back_off(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; pausing 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Open connections per client address.
#[derive(Clone)]
struct PerIp {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place in `PerIp`, given back when dropped.
struct IpSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerIp {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Arc::default(),
        }
    }

    fn take(&self, ip: IpAddr) -> Option<IpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if self.limit > 0 && *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
