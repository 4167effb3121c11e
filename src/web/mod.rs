//! warp only: routes, the error mapping, and the wrapper that keeps database work from being
//! cancelled by a client that goes away.

pub mod authorize;
pub mod cookies;
pub mod cors;
pub mod error;
pub mod health;
pub mod introspect;
pub mod login;
pub mod metadata;
pub mod pages;
pub mod register;
pub mod request;
pub mod token;

use std::future::Future;
use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::header::{HeaderName, HeaderValue};
use warp::reply::Response;
use warp::{Filter, Reply};

pub use error::ApiError;

use crate::startup::AppState;

/// All routes, with security headers and the single `recover`.
pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let routes = health::routes(state.clone())
        .or(login::routes(state.clone()))
        .unify()
        .or(authorize::routes(state.clone()))
        .unify()
        .or(token::routes(state.clone()))
        .unify()
        .or(introspect::routes(state.clone()))
        .unify()
        .or(register::routes(state.clone()))
        .unify()
        .or(metadata::routes(state.clone()))
        .unify()
        .or(cors::preflight(state))
        .unify();
    routes
        .recover(error::recover)
        .unify()
        .map(with_security_headers)
        .boxed()
}

/// Runs a handler's future in its own task. If the client disconnects, hyper drops *this*
/// future, but the spawned task runs on to completion, so a database round trip is never cut
/// in half (STACK-NOTES: a half-read MySQL connection would poison the pool).
pub async fn detached<R, F>(fut: F) -> Response
where
    F: Future<Output = Result<R, ApiError>> + Send + 'static,
    R: Reply + 'static,
{
    match tokio::spawn(fut).await {
        Ok(Ok(reply)) => reply.into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(join) => ApiError::Internal(format!("handler task failed: {join}")).into_response(),
    }
}

/// The state, for handlers.
pub fn with_state(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Arc<AppState>,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// Headers every response carries. The HTML pages are the ones that need them (CSP, framing,
/// referrer: DESIGN.md), but they cost nothing on JSON and protect an error page as well.
fn with_security_headers(mut r: Response) -> Response {
    const HEADERS: [(&str, &str); 4] = [
        ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
    ];
    let h = r.headers_mut();
    for (name, value) in HEADERS {
        h.entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    r
}
