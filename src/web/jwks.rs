//! `GET /oauth2/jwks`: the JWK Set (RFC 7517 §5) of every published signing key, the
//! `jwks_uri` of the metadata documents. Served from memory.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::header::{HeaderValue, CACHE_CONTROL};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::AppState;
use super::{cors, with_state};

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::path!("oauth2" / "jwks")
        .and(super::request::get_or_head())
        .and(warp::header::optional::<String>("origin"))
        .and(with_state(state))
        .map(|origin: Option<String>, state: Arc<AppState>| {
            let mut r = warp::reply::json(&state.keys.jwks(crate::now())).into_response();
            // A verifier's copy expires before a key published now starts signing
            // (keys.publish_ahead_secs), so it never meets an unknown kid.
            let max_age = state.settings.keys.jwks_max_age_secs();
            if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
                r.headers_mut().insert(CACHE_CONTROL, v);
            }
            cors::apply(r, &state, origin.as_deref(), cors::Policy::AnyOrigin)
        })
        .boxed()
}
