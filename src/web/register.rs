//! `POST /oauth2/register` (RFC 7591) and `GET/PUT/DELETE /oauth2/register/{client_id}`
//! (RFC 7592), with JSON in and out.

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::error::json_error;
use super::request::{browser, Browser, MAX_FORM_BYTES};
use super::token::no_store;
use super::{detached, with_state, ApiError, AppState};
use crate::domain::error_code::ErrorCode;
use crate::oauth::registration::{self, RegistrationError};
use crate::settings::RegistrationPolicy;
use crate::store::clients;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let bearer = warp::header::optional::<String>("authorization").map(|h: Option<String>| {
        h.and_then(|v| v.strip_prefix("Bearer ").map(|t| t.trim().to_string()))
    });
    let create = warp::path!("oauth2" / "register")
        .and(warp::post())
        .and(bearer)
        .and(browser())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::content_length_limit(MAX_FORM_BYTES))
        .and(warp::body::bytes())
        .and(with_state(state.clone()))
        .then(|bearer, b: Browser, ct, body, state: Arc<AppState>| {
            detached(state.request_deadline(), create(state, bearer, b, ct, body))
        });
    // RFC 7592 management: the whole Authorization header goes to the bearer check.
    let authorization = warp::header::optional::<String>("authorization");
    let read = warp::path!("oauth2" / "register" / String)
        .and(super::request::get_or_head())
        .and(authorization)
        .and(with_state(state.clone()))
        .then(|id, bearer, state: Arc<AppState>| {
            detached(state.request_deadline(), read(state, id, bearer))
        });
    let update = warp::path!("oauth2" / "register" / String)
        .and(warp::put())
        .and(authorization)
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::content_length_limit(MAX_FORM_BYTES))
        .and(warp::body::bytes())
        .and(with_state(state.clone()))
        .then(|id, bearer, ct, body, state: Arc<AppState>| {
            detached(
                state.request_deadline(),
                update(state, id, bearer, ct, body),
            )
        });
    let delete = warp::path!("oauth2" / "register" / String)
        .and(warp::delete())
        .and(authorization)
        .and(with_state(state))
        .then(|id, bearer, state: Arc<AppState>| {
            detached(state.request_deadline(), delete(state, id, bearer))
        });
    create
        .or(read)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .boxed()
}

fn json_body(ct: Option<&str>, body: &[u8]) -> Result<serde_json::Value, RegistrationError> {
    let is_json = ct
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(metadata_error("the body must be application/json"));
    }
    serde_json::from_slice(body)
        .map_err(|e| metadata_error(&format!("the body is not valid JSON: {e}")))
}

fn metadata_error(d: &str) -> RegistrationError {
    RegistrationError::Metadata(crate::domain::registration::MetadataError {
        code: ErrorCode::InvalidClientMetadata,
        description: d.into(),
    })
}

async fn create(
    state: Arc<AppState>,
    bearer: Option<String>,
    b: Browser,
    ct: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if state.settings.registration.policy == RegistrationPolicy::Closed {
        return error_response(&state, RegistrationError::Closed);
    }
    let result = match json_body(ct.as_deref(), &body) {
        Ok(v) => {
            registration::register(
                &state.pool,
                &state.settings,
                &v,
                bearer.as_deref(),
                b.ip,
                crate::now(),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        // RFC 7591 §3.2.1: 201 Created.
        Ok(v) => Ok(json(StatusCode::CREATED, &v)),
        Err(e) => error_response(&state, e),
    }
}

async fn read(
    state: Arc<AppState>,
    id: String,
    bearer: Option<String>,
) -> Result<Response, ApiError> {
    match registration::authorize_management(&state.pool, &id, bearer.as_deref()).await {
        Ok(c) => Ok(json(
            StatusCode::OK,
            &registration::describe(&c, &state.settings),
        )),
        Err(e) => error_response(&state, e),
    }
}

async fn update(
    state: Arc<AppState>,
    id: String,
    bearer: Option<String>,
    ct: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let client = match registration::authorize_management(&state.pool, &id, bearer.as_deref()).await
    {
        Ok(c) => c,
        Err(e) => return error_response(&state, e),
    };
    let result = match json_body(ct.as_deref(), &body) {
        Ok(v) => {
            let updated = registration::update(&state.pool, &state.settings, client, &v).await;
            state.clients.invalidate(&id);
            updated
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => Ok(json(StatusCode::OK, &v)),
        Err(e) => error_response(&state, e),
    }
}

async fn delete(
    state: Arc<AppState>,
    id: String,
    bearer: Option<String>,
) -> Result<Response, ApiError> {
    match registration::authorize_management(&state.pool, &id, bearer.as_deref()).await {
        Ok(c) => {
            // Its codes, tokens and consents go with it (ON DELETE CASCADE).
            clients::remove(&state.pool, &c.client_id).await?;
            state.clients.invalidate(&c.client_id);
            Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
        }
        Err(e) => error_response(&state, e),
    }
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    no_store(warp::reply::with_status(warp::reply::json(v), status).into_response())
}

fn error_response(state: &AppState, e: RegistrationError) -> Result<Response, ApiError> {
    let (status, code, description) = match e {
        RegistrationError::Closed => (
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "dynamic registration is disabled".to_string(),
        ),
        RegistrationError::InvalidToken => (
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            "a valid bearer token is required".to_string(),
        ),
        RegistrationError::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InvalidRequest,
            e.to_string(),
        ),
        RegistrationError::Metadata(m) => (StatusCode::BAD_REQUEST, m.code, m.description),
        RegistrationError::Store(s) => return Err(s.into()),
    };
    let mut r = no_store(json_error(status, code, &description));
    match code {
        // RFC 6750 §3: a 401 names the scheme and the error.
        ErrorCode::InvalidToken => {
            let challenge = format!("Bearer error=\"{}\"", ErrorCode::InvalidToken);
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        // The throttle forgets an attempt after the window; waiting that long always helps.
        _ if status == StatusCode::TOO_MANY_REQUESTS => {
            let window = u64::try_from(state.settings.registration.window_secs).unwrap_or(60);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(window.max(1)));
        }
        _ => {}
    }
    Ok(r)
}
