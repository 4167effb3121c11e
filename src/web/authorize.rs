//! `GET/POST /oauth2/authorize`: the browser-facing half of the code flow.
//!
//! ```text
//! GET  /oauth2/authorize?...   → validate (errors: page or redirect, RFC 6749 §4.1.2.1)
//!      no session              → 303 /login?return_to=...
//!      remembered consent      → 303 redirect_uri?code&state&iss
//!      otherwise               → consent page (CSRF token bound to the session)
//! POST /oauth2/authorize       → a consent decision (CSRF token + same-origin checked), or a
//!                                 request by POST
//! ```

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::{problem_page, Problem};
use super::login::current_session_for_client;
use super::request::{browser, form_body, html, is_form, see_other, Browser};
use super::same_origin::form_from_this_site;
use super::{detached_page, pages, with_state, ApiError};
use crate::oauth::authorize::{self, AuthorizeError, REQUEST_PARAMS};
use crate::oauth::params::Params;
use crate::startup::AppState;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let get = warp::path!("oauth2" / "authorize")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(browser())
        .and(with_state(state.clone()))
        .then(|query: String, b, state: Arc<AppState>| {
            detached_page(state.clone(), handle(state, b, query, false))
        });
    let post = warp::path!("oauth2" / "authorize")
        .and(warp::post())
        .and(browser())
        .and(form_body())
        .and(with_state(state))
        .then(
            |b, ct: Option<String>, body: Bytes, state: Arc<AppState>| async move {
                if !is_form(ct.as_deref()) {
                    return problem_page(
                        &state.site,
                        StatusCode::BAD_REQUEST,
                        Problem {
                            title: "This request cannot be handled",
                            message: "An authorization request sent by POST must be a form.",
                            next_step: "Go back to the application and start again.",
                            client_id: None,
                        },
                    );
                }
                let raw = String::from_utf8_lossy(&body).into_owned();
                detached_page(state.clone(), handle(state, b, raw, true)).await
            },
        );
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
            // The client or its redirect URI cannot be trusted: the user is told, not redirected.
            let client_id = Params::parse(&raw)
                .ok()
                .and_then(|p| p.get("client_id").map(str::to_string));
            return Ok(problem_page(
                &state.site,
                StatusCode::BAD_REQUEST,
                Problem {
                    title: "This sign-in link does not work",
                    message: &msg,
                    next_step: "Go back to the application and try again. If it keeps happening, tell the application's developers.",
                    client_id: client_id.as_deref(),
                },
            ));
        }
        Err(AuthorizeError::Redirect(e)) => return Ok(see_other(&e.url(issuer))),
        Err(AuthorizeError::Store(e)) => return Err(e.into()),
        Err(AuthorizeError::Internal(cause)) => return Err(ApiError::Internal(cause)),
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
        if !csrf_ok || !form_from_this_site(settings, &b) {
            return Ok(problem_page(
                &state.site,
                StatusCode::FORBIDDEN,
                Problem {
                    title: "Nothing was allowed",
                    message: "The answer to the consent question did not come from this site, so it was ignored.",
                    next_step: "Go back to the application and sign in again.",
                    client_id: Some(&req.client.client_id),
                },
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
    let redirect_host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| req.redirect_uri.clone());
    let hidden: Vec<(&str, &str)> = req
        .params
        .iter()
        .filter(|(k, _)| REQUEST_PARAMS.contains(k))
        .collect();
    let return_to = format!("/oauth2/authorize?{}", req.params.to_query());
    let page = pages::ConsentPage {
        site: &state.site,
        username: &session.user.username,
        client_name: &req.client.name,
        redirect_host: &redirect_host,
        client_uri: metadata.get("client_uri").and_then(|v| v.as_str()),
        scopes: pages::describe_scopes(&req.scope, &settings.scopes),
        hidden,
        csrf: &csrf,
        return_to: &return_to,
    };
    Ok(html(StatusCode::OK, pages::render(&page)))
}
