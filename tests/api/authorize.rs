//! The authorization endpoint's rules (RFC 6749 §4.1.1–4.1.2.1, RFC 7636, RFC 9700).

use crate::helpers::*;

/// GET /oauth2/authorize as a signed-in browser; returns the response.
async fn authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    query: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .get(app.url(&format!("/oauth2/authorize?{}", encode_pairs(query))))
        .send()
        .await
        .unwrap()
}

async fn signed_in(app: &TestApp) -> reqwest::Client {
    app.add_user("erin").await;
    let b = app.browser();
    assert_eq!(app.login(&b, "erin", PASSWORD, "/").await.status(), 303);
    b
}

/// An error page: 400, HTML, and no Location (RFC 6749 §4.1.2.1: MUST NOT redirect).
async fn assert_error_page(r: reqwest::Response, text: &str) {
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().await.unwrap().contains(text));
}

/// An error sent back to the client: 303 to its redirect URI with error, state, iss.
fn assert_error_redirect(app: &TestApp, r: &reqwest::Response, error: &str, state: Option<&str>) {
    assert_eq!(r.status(), 303);
    let loc = location(r);
    assert!(
        loc.starts_with(REDIRECT) || loc.starts_with("http://127.0.0.1"),
        "{loc}"
    );
    let q = query_of(&loc);
    assert_eq!(q["error"], error, "{loc}");
    assert_eq!(q.get("state").map(String::as_str), state);
    assert_eq!(q["iss"], app.base, "RFC 9207: iss on error responses too");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn unknown_client_gets_an_error_page_not_a_redirect() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let r = authorize(
        &app,
        &b,
        &[
            ("response_type", "code"),
            ("client_id", "nope"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_error_page(r, "not registered").await;
    let r = authorize(&app, &b, &[("response_type", "code")]).await;
    assert_error_page(r, "no client_id").await;
}

#[tokio::test]
async fn redirect_uri_mismatch_shows_a_page_and_never_redirects() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let c = app.confidential_client().await;
    for bad in [
        "https://evil.example/cb",
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
        "https://APP.example/cb",
    ] {
        let r = authorize(
            &app,
            &b,
            &[
                ("response_type", "code"),
                ("client_id", &c.id),
                ("redirect_uri", bad),
                ("state", "x"),
            ],
        )
        .await;
        assert_error_page(r, "does not match").await;
    }
}

/// RFC 9700 §4.1.3, RFC 8252 §7.3: a native app's loopback redirect URI may change its port and
/// nothing else; spellings a URL parser would normalise to the same address are refused.
#[tokio::test]
async fn loopback_redirect_uris_match_exactly_but_for_the_port() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let c = app.public_client().await; // registered: http://127.0.0.1/callback
    let (_, challenge) = pkce_pair();
    let ask = |uri: &'static str| {
        let (app, b, id, challenge) = (&app, &b, c.id.clone(), challenge.clone());
        async move {
            authorize(
                app,
                b,
                &[
                    ("response_type", "code"),
                    ("client_id", &id),
                    ("redirect_uri", uri),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await
        }
    };
    for bad in [
        "HTTP://127.0.0.1:9999/callback",
        "http://127.0.0.1.:9999/callback",
        "http://127.0.0.1:9999/x/../callback",
        "http://0x7f000001:9999/callback",
        "http://127.1:9999/callback",
    ] {
        assert_error_page(ask(bad).await, "does not match").await;
    }
    // Another port is the same redirect URI: the consent page, not an error.
    let r = ask("http://127.0.0.1:9999/callback").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn redirect_uri_may_be_omitted_only_with_one_registered() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let one = app.confidential_client().await;
    let r = authorize(
        &app,
        &b,
        &[("response_type", "code"), ("client_id", &one.id)],
    )
    .await;
    assert_eq!(r.status(), 200, "consent page");
    let two = app
        .client_with(
            |s| s.redirect_uris = vec![REDIRECT.into(), "https://app.example/other".into()],
            Default::default(),
        )
        .await;
    let r = authorize(
        &app,
        &b,
        &[("response_type", "code"), ("client_id", &two.id)],
    )
    .await;
    assert_error_page(r, "no redirect_uri").await;
}

#[tokio::test]
async fn response_type_rules() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let c = app.confidential_client().await;
    // RFC 6749 §4.1.2.1: unsupported_response_type (no implicit grant, RFC 9700 §2.1.2).
    let r = authorize(
        &app,
        &b,
        &[
            ("response_type", "token"),
            ("client_id", &c.id),
            ("state", "abc"),
        ],
    )
    .await;
    assert_error_redirect(&app, &r, "unsupported_response_type", Some("abc"));
    // Missing response_type: invalid_request.
    let r = authorize(&app, &b, &[("client_id", &c.id), ("state", "abc")]).await;
    assert_error_redirect(&app, &r, "invalid_request", Some("abc"));
}

#[tokio::test]
async fn scope_outside_the_clients_allowed_scope_is_invalid_scope() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let c = app.confidential_client().await;
    // RFC 6749 §4.1.2.1: invalid_scope.
    let r = authorize(
        &app,
        &b,
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("scope", "read admin"),
        ],
    )
    .await;
    assert_error_redirect(&app, &r, "invalid_scope", None);
}

#[tokio::test]
async fn client_without_the_code_grant_is_unauthorized_client() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let c = app
        .client_with(
            |s| s.grant_types = vec!["client_credentials".into()],
            Default::default(),
        )
        .await;
    let r = authorize(
        &app,
        &b,
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_error_redirect(&app, &r, "unauthorized_client", None);
}

#[tokio::test]
async fn repeated_parameters_are_invalid_request() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let c = app.confidential_client().await;
    // RFC 6749 §3.1: parameters MUST NOT be included more than once.
    let q = format!(
        "/oauth2/authorize?response_type=code&client_id={}&scope=read&scope=write&state=s",
        c.id
    );
    let r = b.get(app.url(&q)).send().await.unwrap();
    assert_error_redirect(&app, &r, "invalid_request", Some("s"));
    // A repeated client_id makes the target unknowable: page, not redirect.
    let q = format!(
        "/oauth2/authorize?response_type=code&client_id={0}&client_id={0}",
        c.id
    );
    assert_error_page(b.get(app.url(&q)).send().await.unwrap(), "repeats").await;
}

#[tokio::test]
async fn pkce_rules() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let public = app.public_client().await;
    let cb = public.redirect_uri.as_str();
    // Required for public clients (RFC 9700 §2.1.1).
    let r = authorize(
        &app,
        &b,
        &[
            ("response_type", "code"),
            ("client_id", &public.id),
            ("redirect_uri", cb),
            ("state", "p"),
        ],
    )
    .await;
    assert_error_redirect(&app, &r, "invalid_request", Some("p"));
    let (_, challenge) = pkce_pair();
    // plain is refused, and a challenge without a method means plain (RFC 7636 §4.3).
    for method in [Some("plain"), None] {
        let mut q = vec![
            ("response_type", "code"),
            ("client_id", public.id.as_str()),
            ("redirect_uri", cb),
            ("code_challenge", challenge.as_str()),
        ];
        if let Some(m) = method {
            q.push(("code_challenge_method", m));
        }
        let r = authorize(&app, &b, &q).await;
        assert_error_redirect(&app, &r, "invalid_request", None);
    }
    // Malformed challenge.
    let r = authorize(
        &app,
        &b,
        &[
            ("response_type", "code"),
            ("client_id", &public.id),
            ("redirect_uri", cb),
            ("code_challenge", "short"),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_error_redirect(&app, &r, "invalid_request", None);
    // S256 works.
    let r = authorize(
        &app,
        &b,
        &[
            ("response_type", "code"),
            ("client_id", &public.id),
            ("redirect_uri", cb),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let c = app.confidential_client().await;
    let r = authorize(
        &app,
        &b,
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("state", "d"),
        ],
    )
    .await;
    let page = r.text().await.unwrap();
    let r = app.submit_consent(&b, &page, "deny", None).await;
    // RFC 6749 §4.1.2.1: access_denied.
    assert_error_redirect(&app, &r, "access_denied", Some("d"));
}

#[tokio::test]
async fn without_a_session_the_user_is_sent_to_login_and_back() {
    let app = spawn_app().await;
    app.add_user("fay").await;
    let c = app.confidential_client().await;
    let b = app.browser();
    let path = format!(
        "/oauth2/authorize?{}",
        encode_pairs(&[
            ("client_id", &c.id),
            ("response_type", "code"),
            ("state", "x")
        ])
    );
    let r = b.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let login = location(&r);
    assert!(login.starts_with("/login?return_to="), "{login}");
    let return_to = query_of(&login)["return_to"].clone();
    assert!(return_to.starts_with("/oauth2/authorize?"));
    let r = app.login(&b, "fay", PASSWORD, &return_to).await;
    assert_eq!(location(&r), return_to);
    assert_eq!(
        b.get(app.url(&return_to)).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn codes_expire_after_60_seconds_by_default() {
    let app = spawn_app().await;
    assert_eq!(app.settings.tokens.code_ttl_secs, 60);
    app.add_user("gus").await;
    let c = app.confidential_client().await;
    let q = app
        .authorize_as("gus", &[("response_type", "code"), ("client_id", &c.id)])
        .await;
    let digest = portcullis::domain::secret::Secret::from_presented(q["code"].as_str()).digest();
    let row = portcullis::store::codes::find(&app.pool, &digest)
        .await
        .unwrap()
        .unwrap();
    assert!(row.expires_at - row.created_at == 60);
    assert!(row.code_hash.len() == 32, "stored as SHA-256");
}
