//! CORS for single-page apps. Metadata, the JWKS and userinfo (whose credential is a bearer
//! token, never a cookie) answer any origin; the token and revocation endpoints
//! answer only `cors.allowed_origins`; `/oauth2/authorize` and the HTML pages never send CORS
//! headers (RFC 9700 §2.6), so nothing here is applied to them.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::with_state;
use super::AppState;

/// Who may read a response from a browser page.
#[derive(Debug, Clone, Copy)]
pub enum Policy {
    AnyOrigin,
    Configured,
}

/// Adds CORS headers when `origin` is allowed under `policy`.
pub fn apply(mut r: Response, state: &AppState, origin: Option<&str>, policy: Policy) -> Response {
    let Some(origin) = origin else { return r };
    let h = r.headers_mut();
    match policy {
        Policy::AnyOrigin => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        Policy::Configured => {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
            if state
                .settings
                .cors
                .allowed_origins
                .iter()
                .any(|o| o == origin)
            {
                if let Ok(v) = HeaderValue::from_str(origin) {
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
                }
            }
        }
    }
    r
}

/// Preflight (`OPTIONS`) answers for the CORS-enabled paths.
pub fn preflight(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    // Each CORS-enabled path with its policy and the methods a page may use on it.
    let path = warp::path!("oauth2" / "token")
        .map(|| (Policy::Configured, "POST"))
        .or(warp::path!("oauth2" / "revoke").map(|| (Policy::Configured, "POST")))
        .unify()
        .or(warp::path!("oauth2" / "userinfo").map(|| (Policy::AnyOrigin, "GET, POST")))
        .unify()
        .or(warp::path!(".well-known" / "oauth-authorization-server")
            .map(|| (Policy::AnyOrigin, "GET")))
        .unify();
    // Path before method: a method filter first would turn every unknown path into a 405.
    path.and(warp::options())
        .and(warp::header::optional::<String>("origin"))
        .and(with_state(state))
        .map(
            |(policy, methods): (Policy, &'static str),
             origin: Option<String>,
             state: Arc<AppState>| {
                let base =
                    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response();
                let mut r = apply(base, &state, origin.as_deref(), policy);
                if r.headers()
                    .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                {
                    let h = r.headers_mut();
                    h.insert(
                        header::ACCESS_CONTROL_ALLOW_METHODS,
                        HeaderValue::from_static(methods),
                    );
                    h.insert(
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        HeaderValue::from_static("authorization, content-type"),
                    );
                    h.insert(
                        header::ACCESS_CONTROL_MAX_AGE,
                        HeaderValue::from_static("600"),
                    );
                } else {
                    *r.status_mut() = StatusCode::FORBIDDEN;
                }
                r
            },
        )
        .boxed()
}
