//! `GET /metrics` in Prometheus text format (issue 13), and the per-request figures recorded
//! for it. Routes are labelled by template, never by raw path, so the label set stays small.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::header::CONTENT_TYPE;
use warp::http::HeaderValue;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::request::get_or_head;
use super::AppState;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::path!("metrics")
        .and(get_or_head())
        .map(move || scrape(&state))
        .boxed()
}

fn scrape(state: &AppState) -> Response {
    let pool = state.pool.status();
    let gauge = |s: &'static str, v: usize| {
        metrics::gauge!("portcullis_db_pool_connections", "state" => s).set(v as f64);
    };
    gauge("open", pool.size);
    gauge("idle", pool.available);
    gauge("max", pool.max_size);
    metrics::gauge!("portcullis_db_pool_waiting").set(pool.waiting as f64);
    let mut r = crate::telemetry::metrics().render().into_response();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Records one answered request (`warp::log::custom`).
pub fn record(info: warp::log::Info<'_>) {
    let route = route_of(info.path());
    metrics::counter!(
        "portcullis_http_requests_total",
        "route" => route,
        "status" => info.status().as_str().to_owned()
    )
    .increment(1);
    metrics::histogram!("portcullis_http_request_duration_seconds", "route" => route)
        .record(info.elapsed().as_secs_f64());
}

/// The route template a path belongs to; anything unknown is `other`.
fn route_of(path: &str) -> &'static str {
    const ROUTES: [&str; 14] = [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/login",
        "/logout",
        "/signed-out",
        "/account/grants/revoke",
        "/oauth2/authorize",
        "/oauth2/token",
        "/oauth2/introspect",
        "/oauth2/revoke",
        "/oauth2/register",
        "/.well-known/oauth-authorization-server",
    ];
    if let Some(known) = ROUTES.iter().find(|r| **r == path) {
        return known;
    }
    if path.starts_with("/oauth2/register/") {
        "/oauth2/register/{client_id}"
    } else if path.starts_with("/assets/") {
        "/assets"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::route_of;

    #[test]
    fn paths_map_to_a_small_set_of_routes() {
        assert_eq!(route_of("/oauth2/token"), "/oauth2/token");
        assert_eq!(
            route_of("/oauth2/register/abc"),
            "/oauth2/register/{client_id}"
        );
        assert_eq!(route_of("/assets/portcullis.1234.css"), "/assets");
        assert_eq!(route_of("/wp-admin.php"), "other");
    }
}
