//! The OpenID Connect authorization parameters that change the sign-in (Core 1.0 §3.1.2.1):
//! `prompt`, `max_age`, `login_hint`, and request objects (§6), which are refused.

use std::collections::HashMap;

use portcullis::oauth::accounts::Lifetimes;

use crate::helpers::*;
use crate::openid::claims_of;

struct Setup {
    app: TestApp,
    client: TestClient,
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    app.add_user("olivia").await;
    let client = app
        .client_with(|s| s.scope = "openid read".into(), Lifetimes::default())
        .await;
    Setup { app, client }
}

impl Setup {
    /// The authorization request for `scope` with `extra` parameters.
    fn path(&self, scope: &str, extra: &[(&str, &str)]) -> String {
        let mut q = vec![
            ("response_type", "code"),
            ("client_id", self.client.id.as_str()),
            ("redirect_uri", self.client.redirect_uri.as_str()),
            ("scope", scope),
            ("state", "s-1"),
        ];
        q.extend_from_slice(extra);
        format!("/oauth2/authorize?{}", encode_pairs(&q))
    }

    async fn get(&self, browser: &reqwest::Client, path: &str) -> reqwest::Response {
        browser.get(self.app.url(path)).send().await.unwrap()
    }

    /// A browser signed in as olivia that allowed the client `openid`.
    async fn signed_in(&self) -> reqwest::Client {
        let browser = self.app.browser();
        let q = [
            ("response_type", "code"),
            ("client_id", self.client.id.as_str()),
            ("redirect_uri", self.client.redirect_uri.as_str()),
            ("scope", "openid"),
        ];
        let back = self.app.authorize_in(&browser, "olivia", &q).await;
        assert!(back.contains_key("code"));
        browser
    }

    /// Makes every session `secs` older, as if the user had signed in that long ago.
    async fn age_sessions(&self, secs: i64) {
        self.app
            .sql(&format!(
                "UPDATE sessions SET created_at = created_at - {secs}"
            ))
            .await;
    }

    /// The id_token's `auth_time` for a code.
    async fn auth_time(&self, code: &str) -> i64 {
        let r = self.app.exchange(&self.client, code, &[]).await;
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        claims_of(body["id_token"].as_str().unwrap())["auth_time"]
            .as_i64()
            .unwrap()
    }
}

/// The parameters of a redirect back to the client (never a page).
fn back_to_client(r: &reqwest::Response, client: &TestClient) -> HashMap<String, String> {
    assert_eq!(r.status(), 303);
    let to = location(r);
    assert!(to.starts_with(&client.redirect_uri), "{to}");
    query_of(&to)
}

fn assert_error(q: &HashMap<String, String>, error: &str, issuer: &str) {
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{q:?}");
    assert_eq!(
        q["state"], "s-1",
        "state comes back with an error (RFC 6749 §4.1.2.1)"
    );
    assert_eq!(q["iss"], issuer, "RFC 9207");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn prompt_none_answers_without_showing_a_page() {
    let s = setup().await;
    let issuer = s.app.base.as_str();
    // Core 1.0 §3.1.2.6: not signed in → login_required, by redirect.
    let fresh = s.app.browser();
    let r = s
        .get(&fresh, &s.path("openid", &[("prompt", "none")]))
        .await;
    assert_error(&back_to_client(&r, &s.client), "login_required", issuer);

    // Signed in and allowed: the code comes at once.
    let browser = s.signed_in().await;
    let r = s
        .get(&browser, &s.path("openid", &[("prompt", "none")]))
        .await;
    assert!(back_to_client(&r, &s.client).contains_key("code"));

    // A scope not allowed yet would need the consent page → consent_required.
    let r = s
        .get(&browser, &s.path("openid read", &[("prompt", "none")]))
        .await;
    assert_error(&back_to_client(&r, &s.client), "consent_required", issuer);

    // A sign-in older than max_age would need the login page → login_required.
    s.age_sessions(120).await;
    let r = s
        .get(
            &browser,
            &s.path("openid", &[("prompt", "none"), ("max_age", "60")]),
        )
        .await;
    assert_error(&back_to_client(&r, &s.client), "login_required", issuer);

    // §3.1.2.1: none with another value is an error; so is a value nobody defined.
    for bad in ["none login", "sideways"] {
        let r = s.get(&browser, &s.path("openid", &[("prompt", bad)])).await;
        assert_error(&back_to_client(&r, &s.client), "invalid_request", issuer);
    }
}

/// Follows a LoginNeeded redirect: signs in on the login page, and returns the request the
/// login page sends the browser back to.
async fn sign_in_again(s: &Setup, browser: &reqwest::Client, r: reqwest::Response) -> String {
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.starts_with("/login?"), "{to}");
    let return_to = query_of(&format!("http://x{to}"))["return_to"].clone();
    assert!(return_to.starts_with("/oauth2/authorize?"), "{return_to}");
    let back = s.app.login(browser, "olivia", PASSWORD, &return_to).await;
    assert_eq!(back.status(), 303);
    assert_eq!(location(&back), return_to);
    return_to
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_a_new_sign_in() {
    let s = setup().await;
    let browser = s.signed_in().await;
    s.age_sessions(300).await;
    let before = portcullis::now();

    // §3.1.2.1 prompt=login: the login page though the session is live; back from it, the
    // same request goes through (no loop) and auth_time is the new sign-in.
    let r = s
        .get(&browser, &s.path("openid", &[("prompt", "login")]))
        .await;
    let again = sign_in_again(&s, &browser, r).await;
    let r = s.get(&browser, &again).await;
    let code = back_to_client(&r, &s.client)["code"].clone();
    assert!(s.auth_time(&code).await >= before);

    // max_age: a sign-in within it is enough...
    let r = s
        .get(&browser, &s.path("openid", &[("max_age", "3600")]))
        .await;
    assert!(back_to_client(&r, &s.client).contains_key("code"));
    // ...an older one is not (and max_age=0 does not loop either).
    s.age_sessions(300).await;
    for max_age in ["60", "0"] {
        let before = portcullis::now();
        let r = s
            .get(&browser, &s.path("openid", &[("max_age", max_age)]))
            .await;
        let again = sign_in_again(&s, &browser, r).await;
        let r = s.get(&browser, &again).await;
        let code = back_to_client(&r, &s.client)["code"].clone();
        // §2: with max_age, auth_time is required in the id_token.
        assert!(s.auth_time(&code).await >= before, "max_age={max_age}");
        s.age_sessions(300).await;
    }

    // The way back is good only for a short while (prompt.rs: ten minutes): replayed later,
    // it asks again even though the session began after the mark.
    let stale = (portcullis::now() - 700).to_string();
    let r = s
        .get(
            &browser,
            &s.path("openid", &[("max_age", "0"), ("login_after", &stale)]),
        )
        .await;
    assert!(location(&r).starts_with("/login?"), "{}", location(&r));

    let r = s
        .get(&browser, &s.path("openid", &[("max_age", "-5")]))
        .await;
    assert_error(
        &back_to_client(&r, &s.client),
        "invalid_request",
        &s.app.base,
    );
}

#[tokio::test]
async fn prompt_consent_asks_again() {
    let s = setup().await;
    let browser = s.signed_in().await;
    // Allowed before, so normally no question...
    let r = s.get(&browser, &s.path("openid", &[])).await;
    assert!(back_to_client(&r, &s.client).contains_key("code"));
    // ...but prompt=consent shows the consent page, and its answer is final.
    let r = s
        .get(&browser, &s.path("openid", &[("prompt", "consent")]))
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let r = s.app.submit_consent(&browser, &page, "deny", None).await;
    assert_error(&back_to_client(&r, &s.client), "access_denied", &s.app.base);
}

#[tokio::test]
async fn login_hint_fills_in_the_username() {
    let s = setup().await;
    let browser = s.app.browser();
    let login_page = |hint: &'static str| {
        let path = s.path("openid", &[("login_hint", hint)]);
        let browser = browser.clone();
        let app = &s.app;
        async move {
            let r = browser.get(app.url(&path)).send().await.unwrap();
            let to = location(&r);
            assert!(to.starts_with("/login?"), "{to}");
            browser
                .get(app.url(&to))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    // Core 1.0 §3.1.2.1: a hint the login form can use...
    let page = login_page("olivia").await;
    assert!(
        page.contains(r#"name="username" type="text" value="olivia""#),
        "{page}"
    );
    // ...and one it cannot (no username has spaces); nothing of it reaches the page.
    let page = login_page("not a username <b>").await;
    assert!(page.contains(r#"name="username" type="text" value="""#));
    assert!(!page.contains("<b>"));
}

#[tokio::test]
async fn request_objects_are_refused() {
    let s = setup().await;
    let browser = s.app.browser();
    // Core 1.0 §6.1, §6.2: not supported, said with the codes §3.1.2.6 defines.
    let r = s
        .get(
            &browser,
            &s.path("openid", &[("request", "eyJhbGciOiJub25lIn0.e30.")]),
        )
        .await;
    assert_error(
        &back_to_client(&r, &s.client),
        "request_not_supported",
        &s.app.base,
    );
    let r = s
        .get(
            &browser,
            &s.path(
                "openid",
                &[("request_uri", "https://rp.example/request.jwt")],
            ),
        )
        .await;
    assert_error(
        &back_to_client(&r, &s.client),
        "request_uri_not_supported",
        &s.app.base,
    );
    // Discovery says which prompt values work (and already says request objects do not).
    let doc = s.app.openid_configuration().await;
    assert_eq!(
        doc["prompt_values_supported"],
        serde_json::json!(["none", "login", "consent", "select_account"])
    );
}
