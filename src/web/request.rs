//! Filters that pull what handlers need out of a request, and reply helpers.

use std::net::IpAddr;

use bytes::Bytes;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::server::Connection;
use crate::oauth::params::Params;
use crate::oauth::{ErrorCode, OAuthError};

/// Bodies of forms and token requests are small; anything larger is refused with 413.
pub const MAX_FORM_BYTES: u64 = 64 * 1024;

/// The parts of a request the browser-facing handlers look at.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    pub cookie: Option<String>,
    pub origin: Option<String>,
    /// Fetch Metadata: `same-origin`, `same-site`, `cross-site` or `none` (see `same_origin`).
    pub sec_fetch_site: Option<String>,
    pub ip: Option<IpAddr>,
}

impl Browser {
    /// The value of this site's session cookie, if the browser sent one.
    pub fn session_cookie(&self, settings: &crate::settings::Settings) -> Option<String> {
        use super::cookies;
        cookies::get(
            self.cookie.as_deref(),
            &cookies::name(settings, cookies::SESSION),
        )
    }
}

pub fn browser() -> impl Filter<Extract = (Browser,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("cookie")
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("sec-fetch-site"))
        .and(warp::ext::optional::<Connection>())
        .and(warp::header::headers_cloned())
        .map(
            |cookie, origin, sec_fetch_site, connection: Option<Connection>, headers| Browser {
                cookie,
                origin,
                sec_fetch_site,
                ip: connection.map(|c| {
                    c.client_ip(
                        joined_header(&headers, "forwarded").as_deref(),
                        joined_header(&headers, "x-forwarded-for").as_deref(),
                    )
                }),
            },
        )
}

/// Every field of a list-valued header, comma-joined in order (RFC 9110 §5.3); `None` if
/// there is none or one is not text.
pub fn joined_header(headers: &warp::http::HeaderMap, name: &str) -> Option<String> {
    let values: Option<Vec<&str>> = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().ok())
        .collect();
    values.filter(|v| !v.is_empty()).map(|v| v.join(","))
}

/// A form body that cannot be used.
#[derive(Debug)]
pub enum BadBody {
    /// Over `MAX_FORM_BYTES` (413, RFC 9110 §15.5.14), whether its Content-Length says so or a
    /// chunked body grows past it while it is read.
    TooLarge,
    /// The client stopped sending it.
    Broken,
    /// The client did not send all of it within `server.body_read_timeout_secs` (408, RFC 9110
    /// §15.5.9).
    TooSlow,
}

impl warp::reject::Reject for BadBody {}

/// A form body: the Content-Type (checked by the handler) and the raw bytes. A body sent with
/// Content-Length or chunked (RFC 9112 §7.1) is read the same way, never beyond the limit,
/// and within the connection's body-read timeout.
pub fn form_body() -> impl Filter<Extract = (Option<String>, Bytes), Error = warp::Rejection> + Clone
{
    warp::header::optional::<String>("content-type")
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::ext::optional::<Connection>())
        .and(warp::body::stream())
        .and_then(
            |ct: Option<String>, length: Option<u64>, connection: Option<Connection>, body| async move {
                if length.is_some_and(|n| n > MAX_FORM_BYTES) {
                    return Err(warp::reject::custom(BadBody::TooLarge));
                }
                let timeout = connection.map_or(DEFAULT_BODY_READ_TIMEOUT, |c| c.body_read_timeout);
                // Dropping a half-read body only drops bytes from the client; no database
                // round trip is in flight here.
                let bytes = tokio::time::timeout(timeout, read_bounded(body, MAX_FORM_BYTES))
                    .await
                    .map_err(|_| warp::reject::custom(BadBody::TooSlow))?
                    .map_err(warp::reject::custom)?;
                Ok::<_, warp::Rejection>((ct, bytes))
            },
        )
        .untuple_one()
}

/// For requests that did not come through `server::serve` (warp's test requests).
const DEFAULT_BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads a body stream into memory, refusing it once it passes `limit` bytes.
async fn read_bounded<S, B>(body: S, limit: u64) -> Result<Bytes, BadBody>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use futures_util::StreamExt;
    let mut out = bytes::BytesMut::new();
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| BadBody::Broken)?;
        if (out.len() + chunk.remaining()) as u64 > limit {
            return Err(BadBody::TooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out.freeze())
}

/// GET, and HEAD wherever GET is served (RFC 9110 §9.3.2: the same answer without the body;
/// hyper leaves the body out).
pub fn get_or_head() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::get().or(warp::head()).unify()
}

pub fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

pub fn html(status: StatusCode, body: String) -> Response {
    let mut r = warp::reply::with_status(warp::reply::html(body), status).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// 303 See Other: after a form POST the browser follows with GET (RFC 9110 §15.4.4).
pub fn see_other(location: &str) -> Response {
    let mut r = warp::reply::with_status(warp::reply(), StatusCode::SEE_OTHER).into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The parameters of a token-style request (RFC 6749 §3.2: a form, no repeated parameters),
/// or the `invalid_request` error to answer with.
pub fn form_params(ct: Option<&str>, body: &[u8]) -> Result<Params, OAuthError> {
    if !is_form(ct) {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    std::str::from_utf8(body)
        .ok()
        .and_then(|b| Params::parse(b).ok())
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidRequest,
                "malformed or repeated parameters",
            )
        })
}
