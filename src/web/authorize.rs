//! `GET/POST /oauth2/authorize`: the browser-facing half of the code flow. `oauth::authorize`
//! decides (see its table); this renders its `Outcome`:
//!
//! ```text
//! ErrorPage, ForgedDecision          → error page (400, 403)
//! ErrorRedirect, RedirectWithCode    → 303 to the client
//! UnvettedErrorRedirect              → error page (400) with a link to the client
//! LoginNeeded                        → 303 /login?return_to=...
//! ConsentNeeded                      → consent page (CSRF token bound to the session)
//! ```

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::{problem_page, problem_page_with_link, Problem};
use super::pages::PageLink;
use super::request::{browser, form_body, html, is_form, see_other, Browser};
use super::same_origin::form_from_this_site;
use super::{detached_page, pages, with_state, ApiError, AppState};
use crate::oauth::authorize::{
    self, AuthorizeError, ConsentQuestion, Incoming, Outcome, REQUEST_PARAMS,
};
use crate::oauth::params::Params;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let get = warp::path!("oauth2" / "authorize")
        .and(super::request::get_or_head())
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
    let cookie = b.session_cookie(settings);
    let incoming = Incoming {
        raw: &raw,
        is_post,
        session_cookie: cookie.as_deref(),
        from_this_site: form_from_this_site(settings, &b),
    };
    let outcome = authorize::authorize(
        &state.pool,
        &state.clients,
        &state.keys,
        settings,
        incoming,
        crate::now(),
    )
    .await;
    Ok(match outcome {
        Ok(Outcome::ErrorPage { message, client_id }) => problem_page(
            &state.site,
            StatusCode::BAD_REQUEST,
            Problem {
                title: "This sign-in link does not work",
                message: &message,
                next_step: "Go back to the application and try again. If it keeps happening, tell the application's developers.",
                client_id: client_id.as_deref(),
            },
        ),
        Ok(Outcome::ForgedDecision { client_id }) => problem_page(
            &state.site,
            StatusCode::FORBIDDEN,
            Problem {
                title: "Nothing was allowed",
                message: "The answer to the consent question did not come from this site, so it was ignored.",
                next_step: "Go back to the application and sign in again.",
                client_id: Some(&client_id),
            },
        ),
        Ok(Outcome::ErrorRedirect(to) | Outcome::RedirectWithCode(to)) => see_other(&to),
        Ok(Outcome::UnvettedErrorRedirect {
            client_id,
            client_name,
            host,
            to,
        }) => problem_page_with_link(
            &state.site,
            StatusCode::BAD_REQUEST,
            Problem {
                title: "This sign-in link does not work",
                message: &format!("The application “{client_name}” sent a request this site cannot accept."),
                next_step: "You have not signed in and nothing was shared. The link below takes you back to the application's site; follow it only if you trust it.",
                client_id: Some(&client_id),
            },
            PageLink {
                href: &to,
                text: &format!("Return to {host}"),
            },
        ),
        Ok(Outcome::LoginNeeded { return_to }) => see_other(&format!(
            "/login?{}",
            Params::from_pairs([("return_to".to_string(), return_to)])
                .unwrap_or_default()
                .to_query()
        )),
        Ok(Outcome::ConsentNeeded(question)) => consent_page(&state, &question),
        Err(AuthorizeError::Store(e)) => return Err(e.into()),
        Err(AuthorizeError::Internal(cause)) => return Err(ApiError::Internal(cause)),
    })
}

fn consent_page(state: &AppState, q: &ConsentQuestion) -> Response {
    let req = &q.request;
    let csrf = q.session.csrf_token();
    let redirect_host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| req.redirect_uri.clone());
    let hidden: Vec<(&str, &str)> = req
        .params
        .iter()
        .filter(|(k, _)| REQUEST_PARAMS.contains(k))
        .collect();
    let page = pages::ConsentPage {
        site: &state.site,
        username: &q.session.user.username,
        client_name: &req.client.name,
        redirect_host: &redirect_host,
        client_uri: req.client.client_uri(),
        scopes: pages::describe_scopes(&req.scope, &state.settings.scopes),
        hidden,
        csrf,
        return_to: &q.return_to,
    };
    html(StatusCode::OK, pages::render(&page))
}
