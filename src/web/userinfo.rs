//! `GET|POST /oauth2/userinfo` (OpenID Connect Core 1.0 §5.3), with RFC 6750's ways to
//! present the token and its error answers.

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::error::json_error;
use super::request::{form_body, form_params, get_or_head};
use super::token::{no_store, oauth_error};
use super::{cors, detached, with_state, ApiError, AppState};
use crate::domain::error_code::ErrorCode;
use crate::oauth::bearer::{BearerError, Presented};
use crate::oauth::userinfo::{self, UserinfoError};

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    let get = warp::path!("oauth2" / "userinfo")
        .and(get_or_head())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("origin"))
        .and(query)
        .and(with_state(state.clone()))
        .then(
            |auth: Option<String>, origin: Option<String>, query: Option<String>, state| {
                // RFC 6750 §2.3 allows the token in the query but says why not to (logs,
                // history, Referer); Portcullis refuses it rather than leak it.
                let in_query = query.as_deref().is_some_and(|q| {
                    q.split('&')
                        .any(|kv| kv.split('=').next() == Some("access_token"))
                });
                answer(state, origin, move |state: Arc<AppState>| async move {
                    if in_query {
                        return Err(BearerError::InvalidRequest(
                            "send the access token in the Authorization header, not the URL",
                        )
                        .into());
                    }
                    let presented = Presented {
                        authorization: auth.as_deref(),
                        form_token: None,
                    };
                    let claims = userinfo::userinfo(&state.pool, presented, crate::now()).await?;
                    Ok(claims_response(&claims))
                })
            },
        );
    // §2.2: the token as `access_token` in a form body.
    let post = warp::path!("oauth2" / "userinfo")
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
             state| {
                answer(state, origin, move |state: Arc<AppState>| async move {
                    // A POST with the header alone may have no body at all.
                    let params = if body.is_empty() && ct.is_none() {
                        None
                    } else {
                        match form_params(ct.as_deref(), &body) {
                            Ok(p) => Some(p),
                            Err(e) => return Ok(oauth_error(&e)),
                        }
                    };
                    let presented = Presented {
                        authorization: auth.as_deref(),
                        form_token: params.as_ref().and_then(|p| p.get("access_token")),
                    };
                    let claims = userinfo::userinfo(&state.pool, presented, crate::now()).await?;
                    Ok(claims_response(&claims))
                })
            },
        );
    get.or(post).unify().boxed()
}

/// Runs the lookup detached, then shapes the answer: the claims as JSON, or RFC 6750 §3's
/// status and challenge. Any origin may read either: the token, not a cookie, is the
/// credential.
async fn answer<F, Fut>(state: Arc<AppState>, origin: Option<String>, run: F) -> Response
where
    F: FnOnce(Arc<AppState>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Response, UserinfoError>> + Send + 'static,
{
    let task_state = state.clone();
    let r = detached(state.request_deadline(), async move {
        match run(task_state).await {
            Ok(r) => Ok(r),
            Err(UserinfoError::Bearer(e)) => Ok(refusal(&e)),
            Err(UserinfoError::Store(e)) => Err(ApiError::from(e)),
        }
    })
    .await;
    let mut r = cors::apply(r, &state, origin.as_deref(), cors::Policy::AnyOrigin);
    // A page must be able to read why it was refused (RFC 6750 §3 puts it in the challenge);
    // a CORS response shows only safelisted headers unless told.
    if r.headers()
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    {
        r.headers_mut().insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate"),
        );
    }
    r
}

/// Personal data: never cached by the browser or a proxy.
fn claims_response(claims: &serde_json::Value) -> Response {
    no_store(warp::reply::json(claims).into_response())
}

/// RFC 6750 §3: 401 with a bare `Bearer` challenge when no token came (§3.1: no error code),
/// 401 `invalid_token`, 403 `insufficient_scope` naming the scope, 400 `invalid_request`.
pub fn refusal(e: &BearerError) -> Response {
    let (status, code) = match e {
        BearerError::Missing => (StatusCode::UNAUTHORIZED, None),
        BearerError::InvalidRequest(_) => {
            (StatusCode::BAD_REQUEST, Some(ErrorCode::InvalidRequest))
        }
        BearerError::InvalidToken => (StatusCode::UNAUTHORIZED, Some(ErrorCode::InvalidToken)),
        BearerError::InsufficientScope(_) => {
            (StatusCode::FORBIDDEN, Some(ErrorCode::InsufficientScope))
        }
    };
    let description = e.to_string();
    let (mut r, challenge) = match code {
        None => (
            warp::reply::with_status(warp::reply(), status).into_response(),
            "Bearer".to_string(),
        ),
        Some(code) => {
            // The description is ours: printable ASCII with no quote or backslash, as
            // §3's quoted-string grammar needs.
            let mut challenge =
                format!("Bearer error=\"{code}\", error_description=\"{description}\"");
            if let BearerError::InsufficientScope(scope) = e {
                challenge.push_str(&format!(", scope=\"{scope}\""));
            }
            (json_error(status, code, &description), challenge)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    no_store(r)
}
