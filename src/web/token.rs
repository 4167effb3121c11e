//! `POST /oauth2/token` (RFC 6749 §3.2, §5): form in, JSON out, never cached.

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::request::{form_body, form_params};
use super::{cors, detached, with_state, ApiError};
use crate::oauth::error::{OAuthError, TokenError};
use crate::oauth::{token, ErrorCode};
use crate::startup::AppState;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::path!("oauth2" / "token")
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
                let r = detached(handle(state.clone(), auth, ct, body)).await;
                cors::apply(r, &state, origin.as_deref(), cors::Policy::Configured)
            },
        )
        .boxed()
}

async fn handle(
    state: Arc<AppState>,
    auth: Option<String>,
    ct: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // RFC 6749 §3.2: the request is application/x-www-form-urlencoded.
    let params = match form_params(ct.as_deref(), &body) {
        Ok(p) => p,
        Err(e) => return Ok(oauth_error(&e)),
    };
    match token::handle(
        &state.pool,
        &state.clients,
        &state.settings,
        &params,
        auth.as_deref(),
        crate::now(),
    )
    .await
    {
        Ok(t) => Ok(no_store(warp::reply::json(&t.to_json()).into_response())),
        Err(TokenError::OAuth(e)) => Ok(oauth_error(&e)),
        Err(TokenError::Store(e)) => Err(e.into()),
    }
}

/// RFC 6749 §5.2: 400 with a JSON body; 401 and `WWW-Authenticate` for `invalid_client`.
pub fn oauth_error(e: &OAuthError) -> Response {
    let body = serde_json::json!({ "error": e.code.as_str(), "error_description": e.description });
    let status = if e.code == ErrorCode::InvalidClient {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut r = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    if e.code == ErrorCode::InvalidClient {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"portcullis\", charset=\"UTF-8\""),
        );
    }
    no_store(r)
}

/// RFC 6749 §5.1: token responses carry `Cache-Control: no-store` and `Pragma: no-cache`.
pub fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}
