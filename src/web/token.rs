//! `POST /oauth2/token` (RFC 6749 §3.2, §5): form in, JSON out, never cached.

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::request::{form_body, is_form};
use super::{detached, with_state, ApiError};
use crate::oauth::error::{OAuthError, TokenError};
use crate::oauth::params::Params;
use crate::oauth::{token, ErrorCode};
use crate::startup::AppState;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::path!("oauth2" / "token")
        .and(warp::post())
        .and(warp::header::optional::<String>("authorization"))
        .and(form_body())
        .and(with_state(state))
        .then(
            |auth: Option<String>, ct: Option<String>, body: Bytes, state: Arc<AppState>| {
                detached(handle(state, auth, ct, body))
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
    if !is_form(ct.as_deref()) {
        return Ok(oauth_error(&OAuthError::new(
            ErrorCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        )));
    }
    let params = match std::str::from_utf8(&body)
        .map_err(|_| ())
        .and_then(|b| Params::parse(b).map_err(|_| ()))
    {
        Ok(p) => p,
        Err(()) => {
            return Ok(oauth_error(&OAuthError::new(
                ErrorCode::InvalidRequest,
                "malformed or repeated parameters",
            )))
        }
    };
    match token::handle(
        &state.pool,
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
fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}
