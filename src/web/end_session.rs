//! `GET|POST /oauth2/logout`: RP-Initiated Logout 1.0's end-session endpoint. `oauth::end_session`
//! decides; this renders its `Outcome`:
//!
//! ```text
//! ErrorPage  → error page (400)        Forged  → error page (403)
//! SignedOut  → 303 to the client's post_logout_redirect_uri or /signed-out, cookie cleared
//! Confirm    → the "Sign out?" page (CSRF token bound to the session)
//! ```

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::{problem_page, Problem};
use super::request::{browser, form_body, html, is_form, see_other, with_cookie, Browser};
use super::same_origin::form_from_this_site;
use super::{cookies, detached_page, pages, with_state, ApiError, AppState};
use crate::oauth::end_session::{self, Incoming, Outcome};

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let get = warp::path!("oauth2" / "logout")
        .and(super::request::get_or_head())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(browser())
        .and(with_state(state.clone()))
        .then(|query: String, b, state: Arc<AppState>| {
            detached_page(state.clone(), handle(state, b, query, false))
        });
    let post = warp::path!("oauth2" / "logout")
        .and(warp::post())
        .and(browser())
        .and(form_body())
        .and(with_state(state))
        .then(
            |b, ct: Option<String>, body: Bytes, state: Arc<AppState>| async move {
                if !is_form(ct.as_deref()) {
                    return bad_link(&state, "A sign-out request sent by POST must be a form.");
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
    let outcome = end_session::end_session(
        &state.pool,
        &state.clients,
        &state.keys,
        settings,
        incoming,
        crate::now(),
    )
    .await?;
    Ok(match outcome {
        Outcome::ErrorPage(message) => bad_link(&state, &message),
        Outcome::Forged => super::login::forged_sign_out(&state),
        Outcome::SignedOut { to } => {
            with_cookie(see_other(&to), &cookies::clear(settings, cookies::SESSION))
        }
        Outcome::Confirm(c) => {
            let page = pages::EndSessionPage {
                site: &state.site,
                username: &c.session.user.username,
                client_name: c.client.as_ref().map(|c| c.name.as_str()),
                hidden: &c.hidden,
                csrf: c.session.csrf_token(),
            };
            html(StatusCode::OK, pages::render(&page))
        }
    })
}

fn bad_link(state: &AppState, message: &str) -> Response {
    problem_page(
        &state.site,
        StatusCode::BAD_REQUEST,
        Problem {
            title: "This sign-out link does not work",
            message,
            next_step:
                "Nothing was changed. To sign out, use the Sign out button on your account page.",
            client_id: None,
        },
    )
}
