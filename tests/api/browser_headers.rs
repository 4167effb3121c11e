//! What real browsers send on our form posts, asserted with a scripted client: `Sec-Fetch-Site`
//! and `Origin: null` (issue 9), the logout destinations, the stylesheet and its CSP, and the
//! account page's revocation. The same flows in Chromium itself are in `pages`.

use crate::helpers::*;

/// A login form's token, fetched by browser `b` (which keeps the form's CSRF cookie).
async fn login_token(app: &TestApp, b: &reqwest::Client) -> String {
    let page = b
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    hidden_field(&page, "csrf_token").unwrap()
}

async fn post_login(
    app: &TestApp,
    b: &reqwest::Client,
    headers: &[(&str, &str)],
    user: &str,
) -> reqwest::Response {
    let csrf = login_token(app, b).await;
    let mut req = b.post(app.url("/login")).form(&[
        ("username", user),
        ("password", PASSWORD),
        ("csrf_token", csrf.as_str()),
        ("return_to", "/"),
    ]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn chromium_login_post_with_origin_null_is_accepted() {
    // Exactly what Chromium 156 sent in the issue's report: the page's referrer policy made
    // Origin null, and Fetch Metadata says the post came from our own origin.
    let app = spawn_app().await;
    app.add_user("alice").await;
    let r = post_login(
        &app,
        &app.browser(),
        &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        "alice",
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/");
}

#[tokio::test]
async fn login_posts_from_other_origins_are_refused_even_with_the_token() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let sibling = "http://127.0.0.1:1";
    for headers in [
        vec![
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ],
        vec![("sec-fetch-site", "cross-site"), ("origin", "null")],
        // Same site, other origin: SameSite=Lax cookies go along, so only this check holds.
        vec![("sec-fetch-site", "same-site"), ("origin", sibling)],
        // A browser without Fetch Metadata: Origin decides, and null proves nothing.
        vec![("origin", "null")],
        vec![("origin", "https://evil.example")],
    ] {
        let b = app.browser();
        let r = post_login(&app, &b, &headers, "alice").await;
        assert_eq!(r.status(), 403, "{headers:?}");
        let page = r.text().await.unwrap();
        assert!(page.contains("came from another site"), "{headers:?}");
        assert!(
            !page.contains("value=\"alice\""),
            "a forged username is not kept"
        );
        assert!(b.get(app.url("/")).send().await.unwrap().status() == 303);
    }
}

#[tokio::test]
async fn consent_post_with_origin_null_from_our_page_issues_a_code() {
    let app = spawn_app().await;
    app.add_user("bo").await;
    let c = app.confidential_client().await;
    let b = app.browser();
    let path = format!(
        "/oauth2/authorize?response_type=code&client_id={}&state=s",
        c.id
    );
    app.login(&b, "bo", PASSWORD, &path).await;
    let page = b
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut fields = hidden_fields(&page);
    fields.push(("decision".into(), "allow".into()));
    let send = |site: &'static str| {
        b.post(app.url("/oauth2/authorize"))
            .header("origin", "null")
            .header("sec-fetch-site", site)
            .form(&fields)
            .send()
    };
    assert_eq!(send("same-site").await.unwrap().status(), 403);
    assert_eq!(send("cross-site").await.unwrap().status(), 403);
    let r = send("same-origin").await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(query_of(&location(&r)).contains_key("code"));
}

#[tokio::test]
async fn logout_goes_to_the_signed_out_page_or_back_to_sign_in() {
    let app = spawn_app().await;
    app.add_user("cy").await;
    for (return_to, expected) in [
        (None, "/signed-out".to_string()),
        (
            Some("/oauth2/authorize?client_id=x"),
            format!(
                "/login?return_to={}",
                urlencode("/oauth2/authorize?client_id=x")
            ),
        ),
        (Some("https://evil.example/"), "/signed-out".to_string()),
    ] {
        let b = app.browser();
        app.login(&b, "cy", PASSWORD, "/").await;
        let page = b
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut form = vec![("csrf_token", hidden_field(&page, "csrf_token").unwrap())];
        if let Some(r) = return_to {
            form.push(("return_to", r.to_string()));
        }
        let r = b.post(app.url("/logout")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), expected);
        let out = b.get(app.url("/signed-out")).send().await.unwrap();
        assert_eq!(out.status(), 200);
        assert!(out.text().await.unwrap().contains("You are signed out"));
    }
}

#[tokio::test]
async fn the_stylesheet_is_served_under_its_hash_and_the_csp_allows_only_it() {
    let app = spawn_app().await;
    let r = app.get("/login").await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'self';"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    let page = r.text().await.unwrap();
    assert!(!page.contains("<style") && !page.contains("style=") && !page.contains("<script"));
    let href = page
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    assert!(
        href.starts_with("/assets/portcullis.") && href.ends_with(".css"),
        "{href}"
    );
    let css = app.get(&href).await;
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(
        css.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let text = css.text().await.unwrap();
    assert!(text.starts_with(":root { --accent: #1f4fd1; }"), "{text}");
    assert!(text.contains("prefers-color-scheme: dark"));
    assert_eq!(app.get("/assets/portcullis.0000.css").await.status(), 404);
    assert_eq!(app.get("/assets/../Cargo.toml").await.status(), 404);
}

#[tokio::test]
async fn branding_comes_from_settings() {
    let app = spawn_app_with(|s| {
        s.branding.product_name = "Acme ID".into();
        s.branding.organisation = "Acme Corp".into();
        s.branding.logo_url = "https://cdn.acme.example/logo.svg".into();
        s.branding.language = "de".into();
    })
    .await;
    let r = app.get("/login").await;
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("img-src 'self' https://cdn.acme.example;"));
    let page = r.text().await.unwrap();
    assert!(page.contains("<html lang=\"de\">"));
    assert!(page.contains("<title>Sign in · Acme ID</title>"));
    assert!(
        page.contains("Acme Corp") && page.contains("src=\"https://cdn.acme.example/logo.svg\"")
    );
}

#[tokio::test]
async fn revoking_a_grant_kills_its_tokens_and_unredeemed_codes() {
    let app = spawn_app().await;
    app.add_user("dee").await;
    let c = app.resource_server().await;
    let b = app.browser();
    let query = [
        ("response_type", "code"),
        ("client_id", c.id.as_str()),
        ("scope", "read"),
    ];
    // One code redeemed (tokens live), then a second code left unredeemed.
    let first = app.authorize_in(&b, "dee", &query).await;
    let tokens: serde_json::Value = app
        .exchange(&c, &first["code"], &[])
        .await
        .json()
        .await
        .unwrap();
    let second = app.authorize_in(&b, "dee", &query).await;

    let page = b
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Test App"), "{page}");
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    // Without the token, or from another site: nothing changes.
    let forged = b
        .post(app.url("/account/grants/revoke"))
        .form(&[("client_id", c.id.as_str()), ("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let cross = b
        .post(app.url("/account/grants/revoke"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("client_id", c.id.as_str()), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);

    let r = b
        .post(app.url("/account/grants/revoke"))
        .form(&[("client_id", c.id.as_str()), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/?notice=revoked");
    let page = b
        .get(app.url("/?notice=revoked"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Access revoked") && !page.contains("Test App"),
        "{page}"
    );

    // RFC 6749 §5.2: a grant that was revoked is invalid_grant; RFC 7662: inactive.
    let r = app
        .refresh(&c, tokens["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    let r = app.exchange(&c, &second["code"], &[]).await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    let r = app
        .http
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"active": false})
    );
    // And the next request asks for consent again.
    let again = b
        .get(app.url(&format!("/oauth2/authorize?{}", encode_pairs(&query))))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("to use your account?"));
}

#[tokio::test]
async fn the_account_page_lists_sessions_and_shows_only_fixed_notices() {
    let app = spawn_app().await;
    app.add_user("eve").await;
    let here = app.browser();
    app.login(&here, "eve", PASSWORD, "/").await;
    app.login(&app.browser(), "eve", PASSWORD, "/").await;
    let page = here
        .get(app.url("/?notice=%3Cb%3Epwned%3C%2Fb%3E"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("<tr><td>").count(), 2, "two sessions: {page}");
    assert_eq!(page.matches("This browser").count(), 1);
    assert!(!page.contains("pwned"));
}

#[tokio::test]
async fn client_ids_that_name_no_client_get_no_500_on_either_backend() {
    // MariaDB refuses to compare non-ASCII text with the ASCII client_id column; such input
    // must never reach it.
    let app = spawn_app().await;
    app.add_user("fay").await;
    let return_to = urlencode("/oauth2/authorize?client_id=é&response_type=code");
    let r = app.get(&format!("/login?return_to={return_to}")).await;
    assert_eq!(r.status(), 200);

    let b = app.browser();
    app.login(&b, "fay", PASSWORD, "/").await;
    let page = b
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    for id in ["é", &"x".repeat(300)] {
        let r = b
            .post(app.url("/account/grants/revoke"))
            .form(&[("client_id", id), ("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{id}");
        assert!(r.text().await.unwrap().contains("which application"));
    }
}
