//! Plain HTTP to an https issuer (issue 13). With an https issuer and no TLS of its own,
//! Portcullis runs behind a TLS-terminating proxy (the settings refuse to start otherwise,
//! unless `server.insecure_allow_http`). A request that still reached it over plain HTTP —
//! from a peer that is not a trusted proxy, or through a proxy that says the client used
//! `http` — would carry passwords, codes and tokens in clear (RFC 6749 §3.1 and §3.2 require
//! TLS at both endpoints). It is refused before any handler reads it: GET and HEAD get a 308
//! to the same path and query on the issuer's origin, other methods a 400 JSON error. Health
//! checks and metrics carry no secret and are probed directly, so they pass.

use warp::http::{header, HeaderMap, Method, StatusCode, Uri};
use warp::reply::Response;

use super::server::Connection;
use crate::settings::Settings;

/// Paths a load balancer or scraper calls on the node itself.
const PROBES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

#[derive(Debug, Clone)]
pub struct HttpsOnly {
    /// `https://host[:port]` of the issuer, without its path.
    origin: String,
}

impl HttpsOnly {
    /// The rule, when it applies: an https issuer, no TLS here, no development override.
    pub fn of(settings: &Settings) -> Option<Self> {
        let issuer = url::Url::parse(settings.issuer()).ok()?;
        let applies = issuer.scheme() == "https"
            && !settings.server.tls()
            && !settings.server.insecure_allow_http;
        applies.then(|| Self {
            origin: issuer.origin().ascii_serialization(),
        })
    }

    /// The answer for a request that came over plain HTTP, or `None` to serve it.
    pub fn refusal(
        &self,
        connection: &Connection,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<Response> {
        if PROBES.contains(&uri.path()) || self.came_over_https(connection, headers) {
            return None;
        }
        metrics::counter!("portcullis_http_plain_refused_total").increment(1);
        if method == Method::GET || method == Method::HEAD {
            let target = format!(
                "{}{}",
                self.origin,
                uri.path_and_query().map_or("/", |p| p.as_str())
            );
            let mut response = Response::default();
            *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
            if let Ok(location) = header::HeaderValue::from_str(&target) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            return Some(response);
        }
        let body = serde_json::json!({
            "error": "invalid_request",
            "error_description": "this server is served over https only",
        });
        let mut response = Response::new(body.to_string().into());
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        Some(response)
    }

    /// From a trusted proxy, unless it says the client used another scheme: a proxy that says
    /// nothing is taken at its word as the TLS terminator it was configured as.
    fn came_over_https(&self, connection: &Connection, headers: &HeaderMap) -> bool {
        if !connection.trusted_proxies.trusts(connection.peer.ip()) {
            return false;
        }
        let joined = |name: &str| super::request::joined_header(headers, name);
        let proto = connection.trusted_proxies.forwarded_proto(
            connection.peer.ip(),
            joined("forwarded").as_deref(),
            joined("x-forwarded-for").as_deref(),
            joined("x-forwarded-proto").as_deref(),
        );
        proto.is_none_or(|p| p == "https")
    }
}
