//! The account page at `/`: who is signed in, where, and which applications they allowed, with
//! a button to take each one's access back.
//!
//! ```text
//! GET  /                         → the page (303 /login when nobody is signed in)
//! POST /account/grants/revoke    → session CSRF token, same-origin check → 303 /?notice=revoked
//! ```

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::{problem_page, Problem};
use super::login::current_session;
use super::request::{browser, form_body, html, is_form, see_other, Browser};
use super::same_origin::form_from_this_site;
use super::AppState;
use super::{detached_page, pages, with_state, ApiError};
use crate::domain::clients::could_be_client_id;
use crate::oauth::account;
use crate::oauth::params::Params;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let show = warp::path::end()
        .and(super::request::get_or_head())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(browser())
        .and(with_state(state.clone()))
        .then(|query: String, b, state: Arc<AppState>| {
            detached_page(state.clone(), show(state, b, query))
        });
    let revoke = warp::path!("account" / "grants" / "revoke")
        .and(warp::post())
        .and(browser())
        .and(form_body())
        .and(with_state(state))
        .then(|b, ct: Option<String>, body, state: Arc<AppState>| {
            detached_page(state.clone(), revoke(state, b, ct, body))
        });
    show.or(revoke).unify().boxed()
}

async fn show(state: Arc<AppState>, b: Browser, query: String) -> Result<Response, ApiError> {
    let Some(session) = current_session(&state, &b).await? else {
        return Ok(see_other("/login"));
    };
    let now = crate::now();
    let overview = account::overview(&state.pool, &session.user.id, now).await?;
    // Only fixed sentences: a query parameter never puts its own text on the page.
    let notice = Params::parse(&query)
        .ok()
        .and_then(|p| match p.get("notice") {
            Some("revoked") => Some("Access revoked. The application will have to ask again."),
            _ => None,
        });
    let grants = overview
        .grants
        .iter()
        .map(|g| pages::GrantLine {
            client_id: g.client_id.clone(),
            client_name: g.client_name.clone(),
            scopes: pages::describe_scopes(&g.scope, &state.settings.scopes),
            granted_at: pages::format_time(g.granted_at),
        })
        .collect();
    let sessions = overview
        .sessions
        .iter()
        .map(|s| pages::SessionLine {
            created_at: pages::format_time(s.created_at),
            last_seen_at: pages::format_time(s.last_seen_at),
            current: s.id_hash == session.session.id_hash,
        })
        .collect();
    let csrf = session.csrf_token();
    Ok(html(
        StatusCode::OK,
        pages::render(&pages::AccountPage {
            site: &state.site,
            username: &session.user.username,
            notice,
            grants,
            sessions,
            csrf,
        }),
    ))
}

async fn revoke(
    state: Arc<AppState>,
    b: Browser,
    ct: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(session) = current_session(&state, &b).await? else {
        return Ok(see_other("/login"));
    };
    let params = std::str::from_utf8(&body)
        .ok()
        .filter(|_| is_form(ct.as_deref()))
        .and_then(|s| Params::parse(s).ok())
        .unwrap_or_default();
    let csrf_ok = params
        .get("csrf_token")
        .is_some_and(|t| session.csrf_matches(t));
    if !csrf_ok || !form_from_this_site(&state.settings, &b) {
        return Ok(problem_page(
            &state.site,
            StatusCode::FORBIDDEN,
            Problem {
                title: "Nothing was changed",
                message:
                    "The request to revoke access did not come from this site, so it was ignored.",
                next_step: "Use the Revoke access button on your account page.",
                client_id: None,
            },
        ));
    }
    let Some(client_id) = params.get("client_id").filter(|id| could_be_client_id(id)) else {
        return Err(ApiError::BadRequest(
            "The request did not say which application to revoke.".into(),
        ));
    };
    account::withdraw_grant(&state.pool, &session.user.id, client_id, crate::now()).await?;
    Ok(see_other("/?notice=revoked"))
}
