//! warp only: routes, the error mapping, and the wrapper that keeps database work from being
//! cancelled by a client that goes away.

pub mod account;
pub mod assets;
pub mod authorize;
pub mod client_ip;
pub mod cookies;
pub mod cors;
pub mod end_session;
pub mod error;
pub mod health;
pub mod https_only;
pub mod idle;
pub mod introspect;
pub mod jwks;
pub mod login;
pub mod metadata;
pub mod metrics;
pub mod pages;
pub mod register;
pub mod request;
pub mod request_id;
pub mod same_origin;
pub mod server;
mod state;
pub mod tls;
pub mod token;
pub mod userinfo;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use warp::filters::BoxedFilter;
use warp::http::header::{HeaderName, HeaderValue};
use warp::reply::Response;
use warp::{Filter, Reply};

pub use error::ApiError;
pub use state::AppState;

/// All routes, with security headers and the single `recover`.
pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let csp = state.assets.csp.clone();
    // The hot paths first: a request tries each route in turn, and every route it fails costs
    // path matching and a rejection (BENCHMARKS.md, session 14).
    let routes = token::routes(state.clone())
        .or(introspect::routes(state.clone()))
        .unify()
        .or(authorize::routes(state.clone()))
        .unify()
        .or(userinfo::routes(state.clone()))
        .unify()
        .or(health::routes(state.clone()))
        .unify()
        .or(assets::routes(state.assets.clone()))
        .unify()
        .or(login::routes(state.clone()))
        .unify()
        .or(end_session::routes(state.clone()))
        .unify()
        .or(account::routes(state.clone()))
        .unify()
        .or(register::routes(state.clone()))
        .unify()
        .or(metadata::routes(state.clone()))
        .unify()
        .or(jwks::routes(state.clone()))
        .unify()
        .or(cors::preflight(state.clone()))
        .unify();
    // `/metrics` is here unless `metrics.bind` gives it a listener of its own.
    let routes = if state.settings.metrics.bind.is_empty() {
        routes.or(metrics::routes(state)).unify().boxed()
    } else {
        routes.boxed()
    };
    routes
        .recover(error::recover)
        .unify()
        .map(move |r| with_security_headers(r, &csp))
        .with(warp::log::custom(metrics::record))
        .map(Reply::into_response)
        .boxed()
}

/// The routes of the `metrics.bind` listener: `/metrics` alone, anything else 404.
pub fn metrics_routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    metrics::routes(state)
        .recover(error::recover)
        .unify()
        .map(Reply::into_response)
        .boxed()
}

/// Runs a handler's future in its own task. If the client disconnects, hyper drops *this*
/// future, but the spawned task runs on to completion, so a database round trip is never cut
/// in half (STACK-NOTES: a half-read MySQL connection would poison the pool). For the same
/// reason a request that waits too long (a stalled or partitioned database) is answered 503
/// at `deadline` while its task runs on: the answer is bounded, the round trip is not cut.
pub async fn detached<R, F>(deadline: Duration, fut: F) -> Response
where
    F: Future<Output = Result<R, ApiError>> + Send + 'static,
    R: Reply + 'static,
{
    match within(deadline, fut).await {
        Ok(reply) => reply.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `detached` for the pages people see: a failure becomes an error page with a reference that
/// is also in the log, not a JSON body.
pub async fn detached_page<F>(state: Arc<AppState>, fut: F) -> Response
where
    F: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    match within(state.request_deadline(), fut).await {
        Ok(reply) => reply,
        Err(e) => error::page_for(&state.site, e),
    }
}

async fn within<R, F>(deadline: Duration, fut: F) -> Result<R, ApiError>
where
    F: Future<Output = Result<R, ApiError>> + Send + 'static,
    R: Send + 'static,
{
    // Dropping the JoinHandle at the deadline detaches the task; it is not aborted.
    // The task keeps the request's span, so its log lines carry the request id.
    let task = tokio::spawn(tracing::Instrument::in_current_span(fut));
    match tokio::time::timeout(deadline, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(ApiError::Internal(format!("handler task failed: {join}"))),
        Err(_) => Err(ApiError::Unavailable(format!(
            "no answer from the database within {}s; the request's work continues",
            deadline.as_secs()
        ))),
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
///
/// `Referrer-Policy: same-origin`, not `no-referrer`: both send no `Referer` to another origin
/// (a client's redirect URI learns nothing of the page the user came from), but under
/// `no-referrer` browsers send `Origin: null` on a same-origin form post (Fetch, "append a
/// request Origin header"), so our own forms could not be told from a forged one by Origin.
fn with_security_headers(mut r: Response, csp: &HeaderValue) -> Response {
    const HEADERS: [(&str, &str); 3] = [
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("x-content-type-options", "nosniff"),
    ];
    let h = r.headers_mut();
    h.entry(warp::http::header::CONTENT_SECURITY_POLICY)
        .or_insert_with(|| csp.clone());
    for (name, value) in HEADERS {
        h.entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    r
}
