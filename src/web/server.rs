//! The server loop (issue 12, point 1; TLS from issue 13). warp 0.4's own `serve` builds
//! hyper's connection without a timer, so no connection was ever closed for being idle or
//! slow; here hyper serves the routes with a timer and the limits of `[server]`, over plain
//! HTTP/1.1 or, with `server.tls_cert`, over TLS with HTTP/2 or HTTP/1.1 as ALPN chose:
//!
//! - **header-read timeout**: from the moment a connection is ready for a request (just
//!   accepted, or idle between keep-alive requests) until the request's headers are all in;
//!   hyper closes the connection when it passes. This bounds idle and slow-header connections.
//! - **body-read timeout**: applied where a body is read (`request::form_body`), answered 408.
//! - **connection limits**: at most `max_connections` at once (further connections wait in
//!   the kernel's accept queue) and at most `max_connections_per_ip` from one address (further
//!   ones are closed at once), so one client cannot hold every slot.
//! - **TLS handshake**: bounded by the header-read timeout, in the connection's own task so a
//!   slow handshake never holds up `accept`. HTTP/2 has no header-read timeout in hyper: an
//!   HTTP/2 connection is closed once idle for the same time (`web::idle`).
//! - **graceful shutdown**: on the signal the listener closes, and connections finish the
//!   request they are serving.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::http::HeaderValue;
use warp::reply::Response;

use super::client_ip::TrustedProxies;
use super::https_only::HttpsOnly;
use super::idle::{IdleIo, InFlight};
use super::request_id::{self, RequestId};
use super::tls::{self, Tls};
use crate::settings::Settings;

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
    /// `Strict-Transport-Security` on every response: the issuer is https (RFC 6797).
    pub hsts: bool,
    /// Plain HTTP refused (an https issuer served without TLS of its own).
    pub https_only: Option<HttpsOnly>,
}

impl Limits {
    pub fn of(settings: &Settings) -> Self {
        let server = &settings.server;
        Self {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(server.body_read_timeout_secs),
            max_connections: server.max_connections,
            max_connections_per_ip: server.max_connections_per_ip,
            // Validated with the settings; an unparsable list trusts nobody.
            trusted_proxies: Arc::new(
                TrustedProxies::parse(&server.trusted_proxies).unwrap_or_default(),
            ),
            hsts: settings.issuer().starts_with("https://"),
            https_only: HttpsOnly::of(settings),
        }
    }
}

/// One year, the value RFC 6797 §11.2 gives as an example of a long-lived policy.
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

/// Serves `routes` on `listener` (through `tls` when given) until `shutdown` resolves, then
/// waits for open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    limits: Limits,
    tls: Option<Tls>,
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
        let service = RequestService {
            warp: TowerToHyperService::new(warp::service(routes.clone())),
            connection,
            hsts: limits.hsts,
            https_only: limits.https_only.clone(),
            in_flight: None,
        };
        let http1 = http1_builder(&limits);
        let Some(tls) = &tls else {
            let conn = graceful.watch(http1.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                ended(peer, conn.await);
                drop((slot, ip_slot));
            });
            continue;
        };
        // The handshake runs in the connection's task, bounded like a request's headers.
        let (acceptor, watcher) = (tls.acceptor().clone(), graceful.watcher());
        let timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(tls::ALPN_H2);
                    let result = if h2 {
                        let in_flight = InFlight::default();
                        let io = TokioIo::new(IdleIo::new(stream, in_flight.clone(), timeout));
                        let service = RequestService {
                            in_flight: Some(in_flight),
                            ..service
                        };
                        let mut http2 = http2::Builder::new(TokioExecutor::new());
                        http2.timer(TokioTimer::new());
                        watcher.watch(http2.serve_connection(io, service)).await
                    } else {
                        let io = TokioIo::new(stream);
                        watcher.watch(http1.serve_connection(io, service)).await
                    };
                    ended(peer, result);
                }
                Ok(Err(e)) => handshake_failed(peer, &e.to_string()),
                Err(_) => handshake_failed(peer, "timed out"),
            }
            drop((slot, ip_slot));
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

fn http1_builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder
}

/// A client that sends garbage, stalls or goes away: its problem, not the server's, so not an
/// error in the log (anyone could flood it).
fn ended(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
        metrics::counter!("portcullis_http_connection_errors_total").increment(1);
    }
}

fn handshake_failed(peer: SocketAddr, why: &str) {
    tracing::debug!(%peer, error = why, "TLS handshake failed");
    metrics::counter!("portcullis_tls_handshake_failures_total").increment(1);
}

/// What wraps the routes for each request: its id and span, the plain-HTTP rule, and the
/// headers every response gets.
#[derive(Clone)]
struct RequestService<S> {
    /// The routes as a hyper service (warp does not name its type).
    warp: S,
    connection: Connection,
    hsts: bool,
    https_only: Option<HttpsOnly>,
    /// HTTP/2 only: the connection's requests in flight, which keep it from being idle.
    in_flight: Option<InFlight>,
}

impl<S> hyper::service::Service<hyper::Request<Incoming>> for RequestService<S>
where
    S: hyper::service::Service<
        hyper::Request<Incoming>,
        Response = Response,
        Error = std::convert::Infallible,
    >,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Response, std::convert::Infallible>> + Send>>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        let id = RequestId::for_request(req.headers(), &self.connection);
        // Every log line of the request carries its id; the path never has a secret (the
        // query, which may, is left out).
        let span = tracing::info_span!(
            "request",
            id = %id.0,
            method = %req.method(),
            path = %req.uri().path(),
            client_id = tracing::field::Empty,
        );
        let refusal = self.https_only.as_ref().and_then(|rule| {
            rule.refusal(&self.connection, req.method(), req.uri(), req.headers())
        });
        let answer = match refusal {
            Some(refusal) => Err(refusal),
            None => {
                req.extensions_mut().insert(self.connection.clone());
                Ok(hyper::service::Service::call(&self.warp, req))
            }
        };
        let hsts = self.hsts;
        let started = std::time::Instant::now();
        let in_flight = self.in_flight.as_ref().map(InFlight::start);
        Box::pin(async move {
            let _in_flight = in_flight;
            let mut response = match answer {
                Err(refusal) => refusal,
                Ok(answer) => answer.instrument(span.clone()).await?,
            };
            tracing::debug!(
                parent: &span,
                status = response.status().as_u16(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "answered"
            );
            if let Ok(v) = HeaderValue::from_str(&id.0) {
                response.headers_mut().insert(request_id::HEADER, v);
            }
            if hsts {
                response
                    .headers_mut()
                    .insert(warp::http::header::STRICT_TRANSPORT_SECURITY, HSTS);
            }
            Ok(response)
        })
    }
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
