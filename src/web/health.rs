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
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response());
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(with_state(state))
        .then(|state: Arc<AppState>| detached(readyz(state)));
    healthz.or(readyz).unify().boxed()
}

async fn readyz(state: Arc<AppState>) -> Result<Response, ApiError> {
    // Bounded even when the pool's own timeouts are generous: a probe must answer quickly.
    let limit = Duration::from_secs(state.settings.database.acquire_timeout_secs.clamp(1, 5));
    match tokio::time::timeout(limit, state.pool.ping()).await {
        Ok(Ok(())) => Ok(warp::reply::json(&serde_json::json!({
            "status": "ready",
            "database": state.pool.backend_name(),
        }))
        .into_response()),
        Ok(Err(e)) => Err(ApiError::Unavailable(e.to_string())),
        Err(_) => Err(ApiError::Unavailable(
            "database did not answer in time".into(),
        )),
    }
}
