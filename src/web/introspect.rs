//! `POST /oauth2/introspect` (RFC 7662) and `POST /oauth2/revoke` (RFC 7009).

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::request::{form_body, form_params};
use super::token::{no_store, oauth_error};
use super::{cors, detached, with_state, ApiError};
use crate::oauth::error::TokenError;
use crate::oauth::introspect;
use crate::startup::AppState;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let introspect = warp::path!("oauth2" / "introspect")
        .and(warp::post())
        .and(warp::header::optional::<String>("authorization"))
        .and(form_body())
        .and(with_state(state.clone()))
        .then(
            |auth: Option<String>, ct: Option<String>, body: Bytes, state: Arc<AppState>| {
                detached(introspect(state, auth, ct, body))
            },
        );
    let revoke = warp::path!("oauth2" / "revoke")
        .and(warp::post())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("origin"))
        .and(form_body())
        .and(with_state(state))
        .then(
            |auth: Option<String>,
             origin: Option<String>,
             ct: Option<String>,
             body: Bytes,
             state: Arc<AppState>| async move {
                let r = detached(revoke(state.clone(), auth, ct, body)).await;
                cors::apply(r, &state, origin.as_deref(), cors::Policy::Configured)
            },
        );
    introspect.or(revoke).unify().boxed()
}

async fn introspect(
    state: Arc<AppState>,
    auth: Option<String>,
    ct: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = match form_params(ct.as_deref(), &body) {
        Ok(p) => p,
        Err(e) => return Ok(oauth_error(&e)),
    };
    match introspect::introspect(
        &state.pool,
        &state.clients,
        state.settings.issuer(),
        &params,
        auth.as_deref(),
        crate::now(),
    )
    .await
    {
        Ok(body) => Ok(no_store(warp::reply::json(&body).into_response())),
        Err(TokenError::OAuth(e)) => Ok(oauth_error(&e)),
        Err(TokenError::Store(e)) => Err(e.into()),
    }
}

async fn revoke(
    state: Arc<AppState>,
    auth: Option<String>,
    ct: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = match form_params(ct.as_deref(), &body) {
        Ok(p) => p,
        Err(e) => return Ok(oauth_error(&e)),
    };
    match introspect::revoke(
        &state.pool,
        &state.clients,
        &params,
        auth.as_deref(),
        crate::now(),
    )
    .await
    {
        // RFC 7009 §2.2: 200 whether or not anything was revoked.
        Ok(()) => Ok(no_store(warp::reply().into_response())),
        Err(TokenError::OAuth(e)) => Ok(oauth_error(&e)),
        Err(TokenError::Store(e)) => Err(e.into()),
    }
}
