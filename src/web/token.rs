//! `POST /oauth2/token` (RFC 6749 §3.2, §5): form in, JSON out, never cached.

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use std::future::Future;

use super::error::json_error;
use super::request::{form_body, form_params};
use super::{cors, detached, with_state, ApiError, AppState};
use crate::oauth::error::{OAuthError, TokenError};
use crate::oauth::params::Params;
use crate::oauth::{grants, ErrorCode};

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    client_endpoint(
        warp::path!("oauth2" / "token"),
        state,
        Some(cors::Policy::Configured),
        |state, params, auth| async move {
            let issued = grants::handle(
                &state.pool,
                &state.clients,
                &state.keys,
                &state.settings,
                &params,
                auth.as_deref(),
                crate::now(),
            )
            .await?;
            Ok(warp::reply::json(&issued.to_json()).into_response())
        },
    )
}

/// A POST endpoint where a client sends a form and authenticates itself (token,
/// introspection, revocation): parses the form (RFC 6749 §3.2), runs `service` in its own task,
/// answers OAuth errors per RFC 6749 §5.2, never lets a response be cached, and adds CORS
/// headers under `cors`.
pub fn client_endpoint<P, F, Fut>(
    path: P,
    state: Arc<AppState>,
    cors: Option<cors::Policy>,
    service: F,
) -> BoxedFilter<(Response,)>
where
    P: Filter<Extract = (), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    F: Fn(Arc<AppState>, Params, Option<String>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, TokenError>> + Send + 'static,
{
    path.and(warp::post())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("origin"))
        .and(form_body())
        .and(with_state(state))
        .then(
            move |auth: Option<String>,
                  origin: Option<String>,
                  ct: Option<String>,
                  body: Bytes,
                  state: Arc<AppState>| {
                let service = service.clone();
                async move {
                    let task_state = state.clone();
                    let r = detached(state.request_deadline(), async move {
                        let params = match form_params(ct.as_deref(), &body) {
                            Ok(p) => p,
                            Err(e) => return Ok(oauth_error(&e)),
                        };
                        match service(task_state, params, auth).await {
                            Ok(r) => Ok(no_store(r)),
                            Err(TokenError::OAuth(e)) => Ok(oauth_error(&e)),
                            Err(TokenError::Forbidden(e)) => Ok(no_store(json_error(
                                StatusCode::FORBIDDEN,
                                e.code,
                                &e.description,
                            ))),
                            Err(TokenError::Store(e)) => Err(ApiError::from(e)),
                            Err(TokenError::Internal(cause)) => Err(ApiError::Internal(cause)),
                        }
                    })
                    .await;
                    match cors {
                        Some(policy) => cors::apply(r, &state, origin.as_deref(), policy),
                        None => r,
                    }
                }
            },
        )
        .boxed()
}

/// RFC 6749 §5.2: 400 with a JSON body; 401 and `WWW-Authenticate` for `invalid_client`.
pub fn oauth_error(e: &OAuthError) -> Response {
    let status = if e.code == ErrorCode::InvalidClient {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut r = json_error(status, e.code, &e.description);
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
