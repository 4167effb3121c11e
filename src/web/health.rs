//! `GET /healthz` (the process is alive) and `GET /readyz` (the database answers).

use std::sync::Arc;
use std::time::Duration;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::AppState;
use super::{detached, with_state, ApiError};

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let healthz = warp::path!("healthz")
        .and(super::request::get_or_head())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response());
    let readyz = warp::path!("readyz")
        .and(super::request::get_or_head())
        .and(with_state(state))
        .then(|state: Arc<AppState>| detached(state.request_deadline(), readyz(state)));
    healthz.or(readyz).unify().boxed()
}

async fn readyz(state: Arc<AppState>) -> Result<Response, ApiError> {
    // Bounded even when the pool's own timeouts are generous: a probe must answer quickly. The
    // ping runs in a task of its own and only the wait for it times out: cancelling a round
    // trip in flight would return a half-read MySQL connection to the pool, and the next query
    // on it would read the ping's answer (issue 12). A late ping finishes in the background.
    let limit = Duration::from_secs(state.settings.database.acquire_timeout_secs.clamp(1, 5));
    let pool = state.pool.clone();
    let ping = tokio::spawn(async move { pool.ping().await });
    match tokio::time::timeout(limit, ping).await {
        Ok(Ok(Ok(()))) => Ok(warp::reply::json(&serde_json::json!({
            "status": "ready",
            "database": state.pool.backend_name(),
        }))
        .into_response()),
        Ok(Ok(Err(e))) => Err(ApiError::Unavailable(e.to_string())),
        Ok(Err(join)) => Err(ApiError::Internal(format!(
            "the readiness ping failed: {join}"
        ))),
        Err(_) => Err(ApiError::Unavailable(
            "database did not answer in time".into(),
        )),
    }
}
