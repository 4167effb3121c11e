//! `GET/POST /login`, `POST /logout` and `GET /signed-out`.
//!
//! ```text
//! GET  /login?return_to=/oauth2/authorize?...  → the form (names the application), CSRF cookie
//! POST /login    → CSRF cookie + token, same-origin check, password → 303 return_to
//! POST /logout   → session CSRF token, same-origin check → 303 /signed-out
//!                  (or, from "not you?" on the consent page, 303 /login?return_to=<that request>)
//! GET  /signed-out
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
use super::AppState;
use super::{cookies, detached_page, pages, with_state, ApiError};
use crate::domain::clients::could_be_client_id;
use crate::domain::password::Password;
use crate::domain::secret::random_b64;
use crate::oauth::login::{self, ActiveSession, LoginError};
use crate::oauth::params::Params;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let show = warp::path!("login")
        .and(super::request::get_or_head())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with_state(state.clone()))
        .then(|query: String, state: Arc<AppState>| {
            detached_page(state.clone(), show(state, query))
        });
    let submit = warp::path!("login")
        .and(warp::post())
        .and(browser())
        .and(form_body())
        .and(with_state(state.clone()))
        .then(|b, ct: Option<String>, body, state: Arc<AppState>| {
            detached_page(state.clone(), submit(state, b, ct, body))
        });
    let logout = warp::path!("logout")
        .and(warp::post())
        .and(browser())
        .and(form_body())
        .and(with_state(state.clone()))
        .then(|b, _ct: Option<String>, body, state: Arc<AppState>| {
            detached_page(state.clone(), logout(state, b, body))
        });
    let signed_out = warp::path!("signed-out")
        .and(super::request::get_or_head())
        .and(with_state(state))
        .map(|state: Arc<AppState>| {
            html(
                StatusCode::OK,
                pages::render(&pages::SignedOutPage { site: &state.site }),
            )
        });
    show.or(submit)
        .unify()
        .or(logout)
        .unify()
        .or(signed_out)
        .unify()
        .boxed()
}

async fn show(state: Arc<AppState>, query: String) -> Result<Response, ApiError> {
    let return_to = Params::parse(&query)
        .ok()
        .and_then(|p| p.get("return_to").map(str::to_string));
    let return_to = safe_return_to(return_to.as_deref());
    // OpenID Connect Core 1.0 §3.1.2.1 `login_hint`: pre-fills the username when it could be
    // one (a hint may be an e-mail address or anything else; those are not shown).
    let hint = request_param(&return_to, "login_hint")
        .filter(|h| crate::oauth::accounts::check_username(h).is_ok());
    let form = LoginForm {
        username: hint.as_deref().unwrap_or_default(),
        return_to,
        ..LoginForm::default()
    };
    login_form(&state, form, StatusCode::OK).await
}

/// What a login form shows besides its fields.
#[derive(Debug, Default)]
struct LoginForm<'a> {
    error: Option<&'a str>,
    username: &'a str,
    return_to: String,
}

/// A fresh login form with its CSRF cookie (login CSRF: a form posted from elsewhere has no
/// matching cookie value). When the user is on their way to an application, the form names it.
async fn login_form(
    state: &AppState,
    form: LoginForm<'_>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let client = match client_id_in(&form.return_to) {
        Some(id) => state.clients.get(&state.pool, &id).await?.0,
        None => None,
    };
    let csrf = random_b64(24);
    let page = pages::LoginPage {
        site: &state.site,
        app_name: client.as_ref().map(|c| c.name.as_str()),
        error: form.error,
        username: form.username,
        return_to: &form.return_to,
        csrf: &csrf,
    };
    let r = html(status, pages::render(&page));
    Ok(with_cookie(
        r,
        &cookies::set(&state.settings, cookies::LOGIN_CSRF, &csrf, 3600),
    ))
}

/// The `client_id` of an authorization request that `return_to` leads back to, if it could
/// name a client at all (anything else is never looked up: MariaDB refuses to compare
/// non-ASCII text with the ASCII column).
fn client_id_in(return_to: &str) -> Option<String> {
    request_param(return_to, "client_id").filter(|id| could_be_client_id(id))
}

/// A parameter of the authorization request `return_to` leads back to.
fn request_param(return_to: &str, name: &str) -> Option<String> {
    let query = return_to.strip_prefix("/oauth2/authorize?")?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
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
            return Ok(problem_page(
                &state.site,
                StatusCode::BAD_REQUEST,
                Problem {
                    title: "The sign-in form was malformed",
                    message: "The sign-in request did not have the fields the form sends.",
                    next_step: "Open the sign-in page again and use the form there.",
                    client_id: None,
                },
            ))
        }
    };
    let return_to = safe_return_to(params.get("return_to"));
    let username = params.get("username").unwrap_or_default();
    if !form_from_this_site(settings, &b) {
        // Someone else's page posted this form: nothing from it is kept.
        tracing::info!(
            origin = b.origin,
            sec_fetch_site = b.sec_fetch_site,
            "cross-site login post refused"
        );
        let form = LoginForm {
            error: Some("That sign-in attempt came from another site, so it was ignored. Sign in here if you meant to."),
            ..LoginForm::default()
        };
        return login_form(&state, form, StatusCode::FORBIDDEN).await;
    }
    let expected = cookies::get(
        b.cookie.as_deref(),
        &cookies::name(settings, cookies::LOGIN_CSRF),
    );
    let csrf_ok = match (expected, params.get("csrf_token")) {
        (Some(e), Some(p)) => constant_eq(&e, p),
        _ => false,
    };
    if !csrf_ok {
        let form = LoginForm {
            error: Some("This sign-in form expired. Please enter your password again."),
            username,
            return_to,
        };
        return login_form(&state, form, StatusCode::FORBIDDEN).await;
    }
    let password = params.get("password").unwrap_or_default();
    if username.is_empty() || password.is_empty() {
        let form = LoginForm {
            error: Some("Enter your username and password."),
            username,
            return_to,
        };
        return login_form(&state, form, StatusCode::BAD_REQUEST).await;
    }
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
            if let Some(old) = b.session_cookie(settings) {
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
        Err(LoginError::Rejected) => {
            let form = LoginForm {
                error: Some("Invalid username or password."),
                username,
                return_to,
            };
            login_form(&state, form, StatusCode::UNAUTHORIZED).await
        }
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
    match b.session_cookie(&state.settings) {
        Some(value) => {
            Ok(login::resolve(&state.pool, &state.settings, &value, crate::now()).await?)
        }
        None => Ok(None),
    }
}

/// Where to go after signing out: back to the sign-in form for the request the user was on
/// ("not you?" on the consent page), or the signed-out page.
fn after_logout(return_to: Option<&str>) -> String {
    match return_to.map(|r| safe_return_to(Some(r))) {
        Some(r) if r != "/" => format!(
            "/login?{}",
            Params::from_pairs([("return_to".to_string(), r)])
                .unwrap_or_default()
                .to_query()
        ),
        _ => "/signed-out".to_string(),
    }
}

async fn logout(state: Arc<AppState>, b: Browser, body: Bytes) -> Result<Response, ApiError> {
    let settings = &state.settings;
    let params = Params::parse(&String::from_utf8_lossy(&body)).unwrap_or_default();
    let next = after_logout(params.get("return_to"));
    let Some(session) = current_session(&state, &b).await? else {
        return Ok(with_cookie(
            see_other(&next),
            &cookies::clear(settings, cookies::SESSION),
        ));
    };
    let csrf_ok = params
        .get("csrf_token")
        .is_some_and(|t| session.csrf_matches(t));
    if !csrf_ok || !form_from_this_site(settings, &b) {
        return Ok(forged_sign_out(&state));
    }
    login::end_session(&state.pool, &session).await?;
    Ok(with_cookie(
        see_other(&next),
        &cookies::clear(settings, cookies::SESSION),
    ))
}

/// A sign-out form that did not come from this site (here or at the end-session endpoint).
pub fn forged_sign_out(state: &AppState) -> Response {
    problem_page(
        &state.site,
        StatusCode::FORBIDDEN,
        Problem {
            title: "You are still signed in",
            message: "The sign-out request did not come from this site, so it was ignored.",
            next_step: "To sign out, use the Sign out button on your account page.",
            client_id: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::{after_logout, client_id_in, safe_return_to};

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

    #[test]
    fn login_form_knows_the_application_it_leads_to() {
        assert_eq!(
            client_id_in("/oauth2/authorize?response_type=code&client_id=c%2B1&state=x"),
            Some("c+1".into())
        );
        assert_eq!(client_id_in("/?client_id=x"), None);
        assert_eq!(client_id_in("/oauth2/authorize?client_id=%C3%A9"), None);
    }

    #[test]
    fn sign_out_returns_to_login_for_the_same_request_only() {
        assert_eq!(
            after_logout(Some("/oauth2/authorize?client_id=a")),
            "/login?return_to=%2Foauth2%2Fauthorize%3Fclient_id%3Da"
        );
        assert_eq!(after_logout(Some("https://evil.example/")), "/signed-out");
        assert_eq!(after_logout(None), "/signed-out");
    }
}
