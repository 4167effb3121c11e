//! `GET/POST /login`, `POST /logout` and the account page at `/`.

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::request::{browser, form_body, html, is_form, see_other, with_cookie, Browser};
use super::{cookies, detached, pages, with_state, ApiError};
use crate::domain::password::Password;
use crate::domain::secret::random_b64;
use crate::oauth::login::{self, ActiveSession, LoginError};
use crate::oauth::params::Params;
use crate::startup::AppState;
use crate::store::models::Consent;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let show = warp::path!("login")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with_state(state.clone()))
        .map(|query: String, state: Arc<AppState>| {
            let return_to = Params::parse(&query)
                .ok()
                .and_then(|p| p.get("return_to").map(str::to_string));
            login_form(
                &state,
                None,
                &safe_return_to(return_to.as_deref()),
                StatusCode::OK,
            )
        });
    let submit = warp::path!("login")
        .and(warp::post())
        .and(browser())
        .and(form_body())
        .and(with_state(state.clone()))
        .then(|b, ct: Option<String>, body, state| detached(submit(state, b, ct, body)));
    let logout = warp::path!("logout")
        .and(warp::post())
        .and(browser())
        .and(form_body())
        .and(with_state(state.clone()))
        .then(|b, _ct: Option<String>, body, state| detached(logout(state, b, body)));
    let account = warp::path::end()
        .and(warp::get())
        .and(browser())
        .and(with_state(state))
        .then(|b, state| detached(account(state, b)));
    show.or(submit)
        .unify()
        .or(logout)
        .unify()
        .or(account)
        .unify()
        .boxed()
}

/// A fresh login form with its CSRF cookie (login CSRF: a form posted from elsewhere has no
/// matching cookie value).
fn login_form(
    state: &AppState,
    error: Option<&str>,
    return_to: &str,
    status: StatusCode,
) -> Response {
    let csrf = random_b64(24);
    let r = html(status, pages::login(error, return_to, &csrf));
    with_cookie(
        r,
        &cookies::set(&state.settings, cookies::LOGIN_CSRF, &csrf, 3600),
    )
}

/// `return_to` may only be a path on this server: no scheme, no `//host`, no backslash tricks.
pub fn safe_return_to(r: Option<&str>) -> String {
    match r {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control) =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

async fn submit(
    state: Arc<AppState>,
    b: Browser,
    ct: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let settings = &state.settings;
    let params = match (
        is_form(ct.as_deref()),
        Params::parse(&String::from_utf8_lossy(&body)),
    ) {
        (true, Ok(p)) => p,
        _ => {
            return Ok(html(
                StatusCode::BAD_REQUEST,
                pages::error("The login form was malformed."),
            ))
        }
    };
    let return_to = safe_return_to(params.get("return_to"));
    let expected = cookies::get(
        b.cookie.as_deref(),
        &cookies::name(settings, cookies::LOGIN_CSRF),
    );
    let csrf_ok = match (expected, params.get("csrf_token")) {
        (Some(e), Some(p)) => constant_eq(&e, p),
        _ => false,
    };
    if !csrf_ok || !cookies::origin_allowed(settings, b.origin.as_deref()) {
        return Ok(login_form(
            &state,
            Some("Your session expired; please sign in again."),
            &return_to,
            StatusCode::FORBIDDEN,
        ));
    }
    let (Some(username), Some(password)) = (params.get("username"), params.get("password")) else {
        return Ok(login_form(
            &state,
            Some("Enter your username and password."),
            &return_to,
            StatusCode::BAD_REQUEST,
        ));
    };
    let now = crate::now();
    match login::authenticate(
        &state.pool,
        settings,
        username,
        Password::new(password),
        b.ip,
        now,
    )
    .await
    {
        Ok(user) => {
            // A new session id at every login; an old session of this browser ends.
            if let Some(old) = cookies::get(
                b.cookie.as_deref(),
                &cookies::name(settings, cookies::SESSION),
            ) {
                login::end(&state.pool, &old).await?;
            }
            let cookie = login::start_session(&state.pool, settings, &user, now).await?;
            let r = see_other(&return_to);
            let r = with_cookie(
                r,
                &cookies::set(
                    settings,
                    cookies::SESSION,
                    cookie.expose(),
                    settings.session.absolute_timeout_secs,
                ),
            );
            Ok(with_cookie(
                r,
                &cookies::clear(settings, cookies::LOGIN_CSRF),
            ))
        }
        Err(LoginError::Rejected) => Ok(login_form(
            &state,
            Some("Invalid username or password."),
            &return_to,
            StatusCode::UNAUTHORIZED,
        )),
        Err(LoginError::Store(e)) => Err(e.into()),
    }
}

fn constant_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The live session of this browser, if any.
pub async fn current_session(
    state: &AppState,
    b: &Browser,
) -> Result<Option<ActiveSession>, ApiError> {
    let name = cookies::name(&state.settings, cookies::SESSION);
    match cookies::get(b.cookie.as_deref(), &name) {
        Some(value) => {
            Ok(login::resolve(&state.pool, &state.settings, &value, crate::now()).await?)
        }
        None => Ok(None),
    }
}

/// The live session of this browser and what its user allowed `client_id`, in one read.
pub async fn current_session_for_client(
    state: &AppState,
    b: &Browser,
    client_id: &str,
) -> Result<Option<(ActiveSession, Option<Consent>)>, ApiError> {
    let name = cookies::name(&state.settings, cookies::SESSION);
    match cookies::get(b.cookie.as_deref(), &name) {
        Some(value) => Ok(login::resolve_for_client(
            &state.pool,
            &state.settings,
            &value,
            client_id,
            crate::now(),
        )
        .await?),
        None => Ok(None),
    }
}

async fn logout(state: Arc<AppState>, b: Browser, body: Bytes) -> Result<Response, ApiError> {
    let settings = &state.settings;
    let Some(session) = current_session(&state, &b).await? else {
        return Ok(with_cookie(
            see_other("/login"),
            &cookies::clear(settings, cookies::SESSION),
        ));
    };
    let params = Params::parse(&String::from_utf8_lossy(&body)).unwrap_or_default();
    let csrf_ok = params
        .get("csrf_token")
        .is_some_and(|t| session.csrf_matches(t));
    if !csrf_ok || !cookies::origin_allowed(settings, b.origin.as_deref()) {
        return Ok(html(
            StatusCode::FORBIDDEN,
            pages::error("The sign-out request did not come from this site."),
        ));
    }
    if let Some(value) = cookies::get(
        b.cookie.as_deref(),
        &cookies::name(settings, cookies::SESSION),
    ) {
        login::end(&state.pool, &value).await?;
    }
    Ok(with_cookie(
        see_other("/login"),
        &cookies::clear(settings, cookies::SESSION),
    ))
}

async fn account(state: Arc<AppState>, b: Browser) -> Result<Response, ApiError> {
    match current_session(&state, &b).await? {
        Some(s) => Ok(html(
            StatusCode::OK,
            pages::account(&s.user.username, &s.csrf_token()),
        )),
        None => Ok(see_other("/login")),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn return_to_stays_on_this_server() {
        assert_eq!(
            safe_return_to(Some("/oauth2/authorize?x=1")),
            "/oauth2/authorize?x=1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_return_to(None), "/");
    }
}
