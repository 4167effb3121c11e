//! `GET/POST /oauth2/authorize`: the browser-facing half of the code flow.
//!
//! ```text
//! GET  /oauth2/authorize?...   → validate (errors: page or redirect, RFC 6749 §4.1.2.1)
//!      no session              → 303 /login?return_to=...
//!      remembered consent      → 303 redirect_uri?code&state&iss
//!      otherwise               → consent page (CSRF token bound to the session)
//! POST /oauth2/authorize       → a consent decision (CSRF + Origin checked), or a request by POST
//! ```

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::login::current_session_for_client;
use super::request::{browser, form_body, html, is_form, see_other, Browser};
use super::{cookies, detached, pages, with_state, ApiError};
use crate::oauth::authorize::{self, AuthorizeError, REQUEST_PARAMS};
use crate::oauth::params::Params;
use crate::startup::AppState;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let get = warp::path!("oauth2" / "authorize")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(browser())
        .and(with_state(state.clone()))
        .then(|query: String, b, state| detached(handle(state, b, query, false)));
    let post = warp::path!("oauth2" / "authorize")
        .and(warp::post())
        .and(browser())
        .and(form_body())
        .and(with_state(state))
        .then(|b, ct: Option<String>, body: Bytes, state| async move {
            if !is_form(ct.as_deref()) {
                return html(
                    StatusCode::BAD_REQUEST,
                    pages::error("The request body must be a form."),
                );
            }
            detached(handle(
                state,
                b,
                String::from_utf8_lossy(&body).into_owned(),
                true,
            ))
            .await
        });
    get.or(post).unify().boxed()
}

async fn handle(
    state: Arc<AppState>,
    b: Browser,
    raw: String,
    is_post: bool,
) -> Result<Response, ApiError> {
    let settings = &state.settings;
    let issuer = settings.issuer();
    // A consent decision is the original request plus `decision` and `csrf_token`.
    let mut decision = None;
    let mut csrf = None;
    let raw = match Params::parse(&raw) {
        Ok(mut p) if is_post && p.contains("decision") => {
            decision = p.remove("decision");
            csrf = p.remove("csrf_token");
            p.to_query()
        }
        _ => raw,
    };
    let req = match authorize::validate(&state.pool, &state.clients, &raw).await {
        Ok(r) => r,
        Err(AuthorizeError::Page(msg)) => {
            return Ok(html(StatusCode::BAD_REQUEST, pages::error(&msg)))
        }
        Err(AuthorizeError::Redirect(e)) => return Ok(see_other(&e.url(issuer))),
        Err(AuthorizeError::Store(e)) => return Err(e.into()),
    };
    let found = current_session_for_client(&state, &b, &req.client.client_id).await?;
    let Some((session, consent)) = found else {
        let back = format!("/oauth2/authorize?{}", req.params.to_query());
        let login = format!(
            "/login?{}",
            Params::from_pairs([("return_to".to_string(), back)])
                .unwrap_or_default()
                .to_query()
        );
        return Ok(see_other(&login));
    };
    let now = crate::now();
    let user_id = session.user.id.as_str();

    if let Some(decision) = decision {
        let csrf_ok = csrf.as_deref().is_some_and(|t| session.csrf_matches(t));
        if !csrf_ok || !cookies::origin_allowed(settings, b.origin.as_deref()) {
            return Ok(html(
                StatusCode::FORBIDDEN,
                pages::error("The consent form did not come from this site."),
            ));
        }
        if decision != "allow" {
            return Ok(see_other(&authorize::denied(&req).url(issuer)));
        }
        authorize::remember_consent(&state.pool, user_id, &req, now).await?;
        return Ok(see_other(
            &authorize::issue_code(&state.pool, settings, user_id, &req, now).await?,
        ));
    }

    if authorize::consent_covers(consent.as_ref(), &req) {
        return Ok(see_other(
            &authorize::issue_code(&state.pool, settings, user_id, &req, now).await?,
        ));
    }
    let metadata: serde_json::Value =
        serde_json::from_str(&req.client.metadata).unwrap_or_default();
    let csrf = session.csrf_token();
    let view = pages::ConsentView {
        username: &session.user.username,
        client_name: &req.client.name,
        client_uri: metadata.get("client_uri").and_then(|v| v.as_str()),
        scope: &req.scope,
        hidden: req
            .params
            .iter()
            .filter(|(k, _)| REQUEST_PARAMS.contains(k))
            .collect(),
        csrf: &csrf,
    };
    Ok(html(StatusCode::OK, pages::consent(&view)))
}
