//! The pages people use, in headless Chromium: the authorization-code flow typed at the
//! keyboard (with and without JavaScript, desktop and phone), wrong password, an expired form,
//! Deny, "not you?", the account page, sign-out, error pages, and forms posted by other sites.
//! Every page is screenshotted (target/screenshots/) and checked with axe-core.
//!
//! A real browser sends what scripts do not: `Sec-Fetch-Site`, `Origin` as its referrer policy
//! dictates, cookies only as SameSite allows. The applications' side is a small server on
//! `localhost` (another site); forged forms come from `127.0.0.1` on another port (the same
//! site, so SameSite=Lax cookies do go along, and only the same-origin check stands between).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fantoccini::key::Key;
use fantoccini::Locator;
use warp::Filter;

use crate::browser::{Browser, Options};
use crate::helpers::*;

/// The application's side: its redirect URI and pages that forge form posts.
struct ClientSite {
    port: u16,
    pages: Arc<Mutex<HashMap<String, String>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl ClientSite {
    async fn start() -> Self {
        let pages: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let served = pages.clone();
        let callback = warp::path!("cb").map(|| {
            warp::reply::html(
                "<!doctype html><html lang=\"en\"><title>Photo Album</title>\
                 <h1>Back at Photo Album</h1></html>",
            )
        });
        let page = warp::path!("page" / String).map(move |name: String| {
            let body = served.lock().unwrap().get(&name).cloned();
            warp::reply::html(body.unwrap_or_default())
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(
            warp::serve(callback.or(page))
                .incoming(listener)
                .graceful(async {
                    let _ = rx.await;
                })
                .run(),
        );
        ClientSite {
            port,
            pages,
            _shutdown: tx,
        }
    }

    /// The redirect URI, on `localhost`: another site than the server's `127.0.0.1`.
    fn callback(&self) -> String {
        format!("http://localhost:{}/cb", self.port)
    }

    /// A page that posts `fields` to `action` as soon as it loads; returns its URL on
    /// `127.0.0.1:<port>` (same site as the server, another origin) or on `localhost`.
    fn forged_post(&self, name: &str, action: &str, fields: &[(&str, &str)], host: &str) -> String {
        let inputs: String = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    html_escape(k),
                    html_escape(v)
                )
            })
            .collect();
        let html = format!(
            "<!doctype html><html lang=\"en\"><title>Win a prize</title>\
             <form id=\"f\" method=\"post\" action=\"{}\">{inputs}</form>\
             <script>document.getElementById('f').submit()</script></html>",
            html_escape(action)
        );
        self.pages.lock().unwrap().insert(name.to_string(), html);
        format!("http://{host}:{}/page/{name}", self.port)
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

/// A server with alice, the "Photo Album" client and its side, and the request it starts.
struct Scene {
    app: TestApp,
    client: TestClient,
    site: ClientSite,
    verifier: String,
    authorize_url: String,
}

async fn scene() -> Scene {
    let site = ClientSite::start().await;
    let app = spawn_app_with(|s| {
        s.scopes
            .descriptions
            .insert("photos".into(), "See and download your photos".into());
        s.branding.support_contact = "help@portcullis.example".into();
    })
    .await;
    app.add_user("alice").await;
    let callback = site.callback();
    let client = app
        .client_with(
            |s| {
                s.name = "Photo Album".into();
                s.redirect_uris = vec![callback];
                s.scope = "openid profile photos".into();
            },
            Default::default(),
        )
        .await;
    let (verifier, challenge) = pkce_pair();
    let authorize_url = app.url(&format!(
        "/oauth2/authorize?{}",
        encode_pairs(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", &client.redirect_uri),
            ("scope", "openid profile photos"),
            ("state", "st-42"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    ));
    Scene {
        app,
        client,
        site,
        verifier,
        authorize_url,
    }
}

impl Browser {
    /// Presses Enter and waits for the next page to load.
    async fn enter_and_wait(&self) {
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        self.press_enter().await;
        for _ in 0..200 {
            if old.tag_name().await.is_err() {
                // The old document is gone; wait for the new one's body.
                let _ = self.client.find(Locator::Css("body")).await;
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the page did not change after Enter");
    }

    /// Signs in at the keyboard: types the username (unless the form kept it, when the focus
    /// is already on the password), Tab, the password, Enter.
    async fn sign_in(&self, username: &str, password: &str) {
        let kept = self.value_of("#username").await;
        if kept != username {
            if self.focused().await != "username" {
                self.tab_to("username").await;
            }
            if !kept.is_empty() {
                // Select what is there and type over it.
                let select_all = format!("{}a{}", Key::Control, Key::Null);
                self.type_keys(&select_all).await;
            }
            self.type_keys(username).await;
            self.press_tab().await;
        }
        assert_eq!(self.focused().await, "password");
        self.type_keys(password).await;
        self.enter_and_wait().await;
    }

    /// A screenshot, the touch-target size of every control, and axe-core.
    async fn check(&self, page: &str) {
        self.screenshot(page).await;
        for control in self
            .client
            .find_all(Locator::Css("button, input:not([type=hidden]), a.button"))
            .await
            .unwrap()
        {
            let (_, _, width, height) = control.rectangle().await.unwrap();
            let label = control.text().await.unwrap_or_default();
            assert!(
                width >= 44.0 && height >= 44.0,
                "{page}: {label:?} is {width}x{height}, under the 44px touch target"
            );
        }
        if self.options.javascript {
            self.assert_accessible(page).await;
        }
    }
}

/// Every page at one viewport, in the order a person meets them: a broken link, sign-in with
/// a wrong password, an expired form, the right password, consent, the application, the
/// account page, sign-out.
async fn tour(options: Options) {
    let s = scene().await;
    let b = Browser::start(options).await;

    // An error page: one sentence, what to do, a reference and the client_id to quote.
    b.goto(
        &s.app
            .url("/oauth2/authorize?response_type=code&client_id=no-such-app"),
    )
    .await;
    assert_eq!(b.h1().await, "This sign-in link does not work");
    let text = b.text().await;
    assert!(
        text.contains("The application that sent you here is not registered."),
        "{text}"
    );
    assert!(text.contains("Go back to the application"), "{text}");
    assert!(text.contains("help@portcullis.example"), "{text}");
    assert!(
        text.contains("reference") && text.contains("no-such-app"),
        "{text}"
    );
    b.check("error").await;

    // The login page names the application.
    b.goto(&s.authorize_url).await;
    assert_eq!(b.url().await.path(), "/login");
    assert_eq!(b.h1().await, "Sign in");
    assert!(b.text().await.contains("to continue to Photo Album"));
    assert_eq!(
        b.focused().await,
        "username",
        "the username field has the focus"
    );
    b.check("login").await;

    // Wrong password: its own message, the username kept, the focus on the password.
    b.sign_in("alice", "not the password").await;
    assert!(b.text().await.contains("Invalid username or password."));
    assert_eq!(b.value_of("#username").await, "alice");
    assert_eq!(b.focused().await, "password");
    assert!(b.text().await.contains("to continue to Photo Album"));
    b.check("login-failed").await;

    // An expired form (its CSRF cookie is gone): said so, the username kept.
    b.client
        .delete_cookie("portcullis_login_csrf")
        .await
        .unwrap();
    b.sign_in("alice", PASSWORD).await;
    assert!(
        b.text().await.contains("This sign-in form expired"),
        "{}",
        b.text().await
    );
    assert_eq!(b.value_of("#username").await, "alice");
    b.check("login-expired").await;

    // The right password: the consent page.
    b.sign_in("alice", PASSWORD).await;
    assert_eq!(b.url().await.path(), "/oauth2/authorize");
    assert_eq!(b.h1().await, "Allow Photo Album to use your account?");
    let text = b.text().await;
    assert!(text.contains("you will go back to localhost"), "{text}");
    assert!(text.contains("Confirm who you are"), "{text}");
    assert!(text.contains("See and download your photos"), "{text}");
    assert!(text.contains("Signed in as alice"), "{text}");
    b.check("consent").await;

    // Allow, from the keyboard: back at the application with code, state and iss.
    b.tab_to("Allow").await;
    b.enter_and_wait().await;
    let back = b.url().await;
    assert_eq!(
        back.as_str().split('?').next().unwrap(),
        s.client.redirect_uri
    );
    let q = query_of(back.as_str());
    assert_eq!(q["state"], "st-42");
    assert_eq!(q["iss"], s.app.base); // RFC 9207 §2
    let r = s
        .app
        .exchange(&s.client, &q["code"], &[("code_verifier", &s.verifier)])
        .await;
    assert_eq!(r.status(), 200, "the code from the browser is good");

    // The account page.
    b.goto(&s.app.url("/")).await;
    assert_eq!(b.h1().await, "Your account");
    let text = b.text().await;
    assert!(text.contains("Signed in as alice"), "{text}");
    assert!(
        text.contains("Photo Album") && text.contains("This browser"),
        "{text}"
    );
    b.check("account").await;

    // Sign out, from the keyboard.
    b.tab_to("Sign out").await;
    b.enter_and_wait().await;
    assert_eq!(b.url().await.path(), "/signed-out");
    assert_eq!(b.h1().await, "You are signed out");
    b.check("signed-out").await;
    b.goto(&s.app.url("/")).await;
    assert_eq!(b.url().await.path(), "/login", "the session is gone");
    b.close().await;
}

#[tokio::test]
async fn every_page_at_desktop_size() {
    tour(Options::desktop()).await;
}

#[tokio::test]
async fn every_page_at_phone_size() {
    tour(Options::mobile()).await;
}

#[tokio::test]
async fn every_page_in_dark_mode() {
    // prefers-color-scheme: dark; axe checks the dark palette's contrast too.
    tour(Options::mobile().dark()).await;
}

/// The flow needs no JavaScript: sign in, allow, back at the application.
async fn flow_without_javascript(options: Options) {
    let s = scene().await;
    let b = Browser::start(options.without_javascript()).await;
    b.goto(&s.authorize_url).await;
    b.screenshot("login").await;
    b.sign_in("alice", PASSWORD).await;
    assert_eq!(b.h1().await, "Allow Photo Album to use your account?");
    b.screenshot("consent").await;
    b.tab_to("Allow").await;
    b.enter_and_wait().await;
    let q = query_of(b.url().await.as_str());
    assert_eq!(q["state"], "st-42");
    assert_eq!(q["iss"], s.app.base);
    let r = s
        .app
        .exchange(&s.client, &q["code"], &[("code_verifier", &s.verifier)])
        .await;
    assert_eq!(r.status(), 200);
    b.close().await;
}

#[tokio::test]
async fn flow_without_javascript_at_desktop_size() {
    flow_without_javascript(Options::desktop()).await;
}

#[tokio::test]
async fn flow_without_javascript_at_phone_size() {
    flow_without_javascript(Options::mobile()).await;
}

#[tokio::test]
async fn deny_sends_access_denied_back_to_the_application() {
    let s = scene().await;
    let b = Browser::start(Options::desktop()).await;
    b.goto(&s.authorize_url).await;
    b.sign_in("alice", PASSWORD).await;
    b.tab_to("Deny").await;
    b.enter_and_wait().await;
    let back = b.url().await;
    assert_eq!(back.host_str(), Some("localhost"));
    let q = query_of(back.as_str());
    // RFC 6749 §4.1.2.1: access_denied, with the state; RFC 9207: iss.
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-42");
    assert_eq!(q["iss"], s.app.base);
    assert!(!q.contains_key("code"));
    b.close().await;
}

#[tokio::test]
async fn not_you_signs_out_and_returns_to_sign_in_for_the_same_application() {
    let s = scene().await;
    let b = Browser::start(Options::desktop()).await;
    b.goto(&s.authorize_url).await;
    b.sign_in("alice", PASSWORD).await;
    b.tab_to("not you?").await;
    b.enter_and_wait().await;
    assert_eq!(b.url().await.path(), "/login");
    assert!(b.text().await.contains("to continue to Photo Album"));
    // Signing in again continues the same request.
    b.sign_in("alice", PASSWORD).await;
    assert_eq!(b.h1().await, "Allow Photo Album to use your account?");
    b.close().await;
}

#[tokio::test]
async fn account_page_revokes_an_applications_access() {
    let s = scene().await;
    let b = Browser::start(Options::desktop()).await;
    b.goto(&s.authorize_url).await;
    b.sign_in("alice", PASSWORD).await;
    b.tab_to("Allow").await;
    b.enter_and_wait().await;
    let q = query_of(b.url().await.as_str());
    let tokens: serde_json::Value = s
        .app
        .exchange(&s.client, &q["code"], &[("code_verifier", &s.verifier)])
        .await
        .json()
        .await
        .unwrap();

    b.goto(&s.app.url("/")).await;
    b.tab_to("Revoke access").await;
    b.enter_and_wait().await;
    let text = b.text().await;
    assert!(text.contains("Access revoked"), "{text}");
    assert!(
        text.contains("You have not allowed any application"),
        "{text}"
    );
    b.check("account-revoked").await;

    // The tokens it held are dead (RFC 7662 §2.2: inactive is just {"active": false}).
    let rs = s.app.resource_server().await;
    let secret = rs.secret.clone().unwrap();
    let r = s
        .app
        .http
        .post(s.app.url("/oauth2/introspect"))
        .basic_auth(&rs.id, Some(&secret))
        .form(&[("token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"active": false})
    );
    let r = s
        .app
        .refresh(&s.client, tokens["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_oauth_error(r, 400, "invalid_grant").await;

    // And the next authorization asks again.
    b.goto(&s.authorize_url).await;
    assert_eq!(b.h1().await, "Allow Photo Album to use your account?");
    b.close().await;
}

/// Forms posted by another origin's page are refused, even when that page knows the CSRF
/// token and the browser sends our cookies along (same site, SameSite=Lax): the browser's
/// `Sec-Fetch-Site` gives it away.
#[tokio::test]
async fn forms_posted_from_other_sites_are_refused() {
    let s = scene().await;
    let b = Browser::start(Options::desktop()).await;

    // Login CSRF, from another site entirely (no cookies go along) ...
    let forged = s.site.forged_post(
        "login-x",
        &s.app.url("/login"),
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", "x"),
        ],
        "localhost",
    );
    b.goto(&forged).await;
    b.client.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(b.url().await.host_str(), Some("127.0.0.1"));
    assert!(
        b.text().await.contains("came from another site"),
        "{}",
        b.text().await
    );
    b.screenshot("login-cross-site").await;

    // ... and from a sibling origin that knows the form's token and gets its cookie.
    b.goto(&s.app.url("/login")).await;
    let token = b.value_of("input[name=csrf_token]").await;
    let forged = s.site.forged_post(
        "login-same-site",
        &s.app.url("/login"),
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ],
        "127.0.0.1",
    );
    b.goto(&forged).await;
    b.client.find(Locator::Css("h1")).await.unwrap();
    assert!(b.text().await.contains("came from another site"));
    b.goto(&s.app.url("/")).await;
    assert_eq!(b.url().await.path(), "/login", "no session was made");

    // Consent: the user is signed in and looking at the consent page.
    b.goto(&s.authorize_url).await;
    b.sign_in("alice", PASSWORD).await;
    let mut fields: Vec<(String, String)> = Vec::new();
    for input in b
        .client
        .find_all(Locator::Css(
            "form[action='/oauth2/authorize'] input[type=hidden]",
        ))
        .await
        .unwrap()
    {
        let name = input.attr("name").await.unwrap().unwrap();
        let value = input.prop("value").await.unwrap().unwrap_or_default();
        fields.push((name, value));
    }
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.clone())
        .unwrap();
    fields.push(("decision".into(), "allow".into()));
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let forged = s.site.forged_post(
        "consent",
        &s.app.url("/oauth2/authorize"),
        &pairs,
        "127.0.0.1",
    );
    b.goto(&forged).await;
    b.client.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(b.url().await.host_str(), Some("127.0.0.1"));
    assert_eq!(
        b.url().await.port(),
        Some(s.app.addr.port()),
        "not sent to the application"
    );
    assert_eq!(b.h1().await, "Nothing was allowed");
    b.check("consent-cross-site").await;

    // Logout.
    let forged = s.site.forged_post(
        "logout",
        &s.app.url("/logout"),
        &[("csrf_token", &csrf)],
        "127.0.0.1",
    );
    b.goto(&forged).await;
    b.client.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(b.h1().await, "You are still signed in");
    b.goto(&s.app.url("/")).await;
    assert_eq!(b.h1().await, "Your account", "still signed in");
    b.close().await;
}

/// OpenID Connect Core 1.0 §3.1.2.1 in a real browser: `login_hint` fills in the username
/// (and the focus goes to the password), and `prompt=login` brings the login form back though
/// the session is live; after it the application gets its code with no further question.
#[tokio::test]
async fn login_hint_and_prompt_login_in_a_browser() {
    let s = scene().await;
    let b = Browser::start(Options::desktop()).await;
    b.goto(&format!("{}&login_hint=alice", s.authorize_url))
        .await;
    assert_eq!(b.url().await.path(), "/login");
    assert_eq!(b.value_of("#username").await, "alice");
    assert_eq!(b.focused().await, "password");
    b.check("login-hint").await;
    b.sign_in("alice", PASSWORD).await;
    b.tab_to("Allow").await;
    b.enter_and_wait().await;
    assert!(query_of(b.url().await.as_str()).contains_key("code"));

    b.goto(&format!("{}&prompt=login", s.authorize_url)).await;
    assert_eq!(b.url().await.path(), "/login", "signed in, but asked again");
    assert!(b.text().await.contains("to continue to Photo Album"));
    b.sign_in("alice", PASSWORD).await;
    let back = b.url().await;
    assert_eq!(
        back.as_str().split('?').next().unwrap(),
        s.client.redirect_uri,
        "allowed before: straight back to the application"
    );
    let q = query_of(back.as_str());
    assert_eq!(q["state"], "st-42");
    assert!(q.contains_key("code"));
    b.close().await;
}

/// RP-Initiated Logout 1.0 in a real browser: a sign-out link that cannot be tied to the
/// session asks first; the form, posted from the page itself, ends the session.
#[tokio::test]
async fn an_application_asks_to_sign_out_and_the_user_confirms() {
    let s = scene().await;
    let b = Browser::start(Options::desktop()).await;
    b.goto(&s.authorize_url).await;
    b.sign_in("alice", PASSWORD).await;
    b.tab_to("Allow").await;
    b.enter_and_wait().await;

    b.goto(
        &s.app
            .url(&format!("/oauth2/logout?client_id={}", s.client.id)),
    )
    .await;
    assert_eq!(b.h1().await, "Sign out of Portcullis?");
    let text = b.text().await;
    assert!(
        text.contains("Photo Album asks to end your session here"),
        "{text}"
    );
    assert!(text.contains("Signed in as alice"), "{text}");
    b.check("end-session").await;
    b.tab_to("Sign out").await;
    b.enter_and_wait().await;
    assert_eq!(b.url().await.path(), "/signed-out");
    b.goto(&s.app.url("/")).await;
    assert_eq!(b.url().await.path(), "/login", "the session is over");
    b.close().await;
}
