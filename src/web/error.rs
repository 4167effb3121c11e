//! One error type for every handler and its one mapping to HTTP. Internal causes are logged,
//! never sent.

use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

use super::pages::{self, ErrorPage, PageLink, Site};
use super::request::html;
use crate::domain::error_code::ErrorCode;
use crate::store::StoreError;

/// What a 503 tells clients to wait before trying again (RFC 9110 §10.2.3), when nothing
/// better is known.
pub const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the database is unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // A lost connection or a statement the server stopped is the database being
        // unavailable (503, try again), not a bug (500): issue 12, point 4.
        if e.is_unavailable() {
            return ApiError::Unavailable(e.to_string());
        }
        ApiError::Internal(e.to_string())
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unavailable(_) => ErrorCode::TemporarilyUnavailable,
            ApiError::Internal(_) => ErrorCode::ServerError,
            ApiError::BadRequest(_) => ErrorCode::InvalidRequest,
            ApiError::NotFound => ErrorCode::NotFound,
        }
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            _ => {}
        }
        json_error(self.status(), self.code(), &self.to_string())
    }
}

/// What an error page tells a person.
#[derive(Debug, Clone, Copy)]
pub struct Problem<'a> {
    pub title: &'a str,
    /// What went wrong, in one sentence.
    pub message: &'a str,
    /// What to do next.
    pub next_step: &'a str,
    /// The application involved, for the person to quote.
    pub client_id: Option<&'a str>,
}

/// An error page with a fresh reference; the log line carries the same reference, so support
/// can find what happened from what the person quotes.
pub fn problem_page(site: &Site, status: StatusCode, p: Problem<'_>) -> Response {
    logged_problem(site, status, p, None)
}

/// As [`problem_page`], with a link the person may choose to follow.
pub fn problem_page_with_link(
    site: &Site,
    status: StatusCode,
    p: Problem<'_>,
    link: PageLink<'_>,
) -> Response {
    logged_problem(site, status, p, Some(link))
}

fn logged_problem(
    site: &Site,
    status: StatusCode,
    p: Problem<'_>,
    link: Option<PageLink<'_>>,
) -> Response {
    let error_id = pages::new_error_id();
    tracing::info!(
        error_id,
        status = status.as_u16(),
        client_id = p.client_id,
        reason = p.message,
        link = link.as_ref().map(|l| l.href),
        "error page shown"
    );
    render_problem(site, status, p, link, &error_id)
}

fn render_problem(
    site: &Site,
    status: StatusCode,
    p: Problem<'_>,
    link: Option<PageLink<'_>>,
    error_id: &str,
) -> Response {
    let mut r = html(
        status,
        pages::render(&ErrorPage {
            site,
            title: p.title,
            message: p.message,
            next_step: p.next_step,
            error_id,
            client_id: p.client_id,
            link,
        }),
    );
    set_retry_after(&mut r, RETRY_AFTER_SECS);
    r
}

/// `Retry-After` on a 429 or 503 (RFC 6585 §4, RFC 9110 §15.6.4), unless already set. Every
/// error response passes through here, so none of them goes without one.
pub fn set_retry_after(r: &mut Response, secs: u64) {
    let status = r.status();
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .entry(warp::http::header::RETRY_AFTER)
            .or_insert_with(|| warp::http::HeaderValue::from(secs));
    }
}

/// A handler's failure on a page people see: an error page, its cause logged with its reference.
pub fn page_for(site: &Site, e: ApiError) -> Response {
    let error_id = pages::new_error_id();
    let problem = match &e {
        ApiError::Unavailable(cause) => {
            tracing::warn!(error_id, %cause, "database unavailable");
            Problem {
                title: "Temporarily unavailable",
                message: "The service cannot reach its database at the moment.",
                next_step: "Wait a few seconds, then reload this page.",
                client_id: None,
            }
        }
        ApiError::Internal(cause) => {
            tracing::error!(error_id, %cause, "internal error");
            Problem {
                title: "Something went wrong",
                message: "The server ran into an unexpected problem with your request.",
                next_step: "Reload this page or go back and try again.",
                client_id: None,
            }
        }
        ApiError::BadRequest(m) => {
            tracing::info!(error_id, reason = %m, "error page shown");
            Problem {
                title: "This request cannot be handled",
                message: m,
                next_step: "Go back to the application and start again.",
                client_id: None,
            }
        }
        ApiError::NotFound => Problem {
            title: "Page not found",
            message: "There is no page at this address.",
            next_step: "Check the address, or go back to the application.",
            client_id: None,
        },
    };
    render_problem(site, e.status(), problem, None, &error_id)
}

/// `{"error": code, "error_description": text}` with a status: the one renderer of every JSON
/// error (RFC 6749 §5.2's shape), never cached, with `Retry-After` on a 429 or 503.
pub fn json_error(status: StatusCode, code: ErrorCode, description: &str) -> Response {
    metrics::counter!("portcullis_oauth_errors_total", "code" => code.as_str()).increment(1);
    let body = serde_json::json!({ "error": code.as_str(), "error_description": description });
    let mut r = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    r.headers_mut().insert(
        warp::http::header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static("no-store"),
    );
    set_retry_after(&mut r, RETRY_AFTER_SECS);
    r
}

/// Turns warp's rejections (no route, wrong method, bad body) into the same JSON shape.
pub async fn recover(err: Rejection) -> Result<Response, Rejection> {
    use super::request::BadBody;
    use warp::reject;
    // Body problems first: the other routes' "method not allowed" would hide them.
    let (status, code, text) = if let Some(bad) = err.find::<BadBody>() {
        match bad {
            BadBody::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidRequest,
                "request body too large".to_string(),
            ),
            BadBody::Broken => (
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                "the request body could not be read".to_string(),
            ),
            BadBody::TooSlow => (
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::InvalidRequest,
                "the request body did not arrive in time".to_string(),
            ),
        }
    } else if err.find::<reject::PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidRequest,
            "request body too large".to_string(),
        )
    } else if err.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no such endpoint".to_string(),
        )
    } else if err.find::<reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "method not allowed".to_string(),
        )
    } else if err.find::<reject::LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            ErrorCode::InvalidRequest,
            "Content-Length required".to_string(),
        )
    } else if let Some(e) = err.find::<reject::UnsupportedMediaType>() {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidRequest,
            e.to_string(),
        )
    } else if let Some(e) = err.find::<reject::InvalidQuery>() {
        (
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            e.to_string(),
        )
    } else if let Some(e) = err.find::<reject::MissingHeader>() {
        (
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            e.to_string(),
        )
    } else if let Some(e) = err.find::<reject::InvalidHeader>() {
        (
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            e.to_string(),
        )
    } else {
        tracing::debug!(?err, "unhandled rejection");
        (
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "bad request".to_string(),
        )
    };
    let mut r = json_error(status, code, &text);
    if status == StatusCode::REQUEST_TIMEOUT {
        // RFC 9110 §15.5.9: the server SHOULD close the connection; the rest of the body may
        // still be on its way.
        r.headers_mut().insert(
            warp::http::header::CONNECTION,
            warp::http::HeaderValue::from_static("close"),
        );
    }
    Ok(r)
}
