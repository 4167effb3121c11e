//! RP-Initiated Logout 1.0 (the end-session endpoint), `id_token_hint` at the authorization
//! endpoint (Core 1.0 §3.1.2.1), and how incoming JWTs are verified (RFC 8725).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis::oauth::accounts::Lifetimes;
use serde_json::{json, Value};

use crate::helpers::*;

const AFTER: &str = "https://app.example/signed-out";

/// olivia, and a client that registered `AFTER` as its post-logout redirect URI.
async fn setup() -> (TestApp, TestClient) {
    let app = spawn_app().await;
    app.add_user("olivia").await;
    app.add_user("bob").await;
    let client = app
        .client_with_metadata(
            |s| {
                s.name = "Photo Album".into();
                s.scope = "openid read".into();
            },
            Lifetimes::default(),
            json!({ "post_logout_redirect_uris": [AFTER] }),
        )
        .await;
    (app, client)
}

/// Signs `user` in through the code flow in `browser`; returns the id_token.
async fn sign_in(app: &TestApp, c: &TestClient, browser: &reqwest::Client, user: &str) -> String {
    let q = app
        .authorize_in(
            browser,
            user,
            &[
                ("response_type", "code"),
                ("client_id", &c.id),
                ("redirect_uri", &c.redirect_uri),
                ("scope", "openid"),
            ],
        )
        .await;
    let r = app.exchange(c, &q["code"], &[]).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["id_token"].as_str().unwrap().to_string()
}

async fn logout(
    app: &TestApp,
    browser: &reqwest::Client,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    let url = app.url(&format!("/oauth2/logout?{}", encode_pairs(pairs)));
    browser.get(url).send().await.unwrap()
}

/// Whether the browser's session is live: the account page shows, or sends to sign-in.
async fn signed_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    let r = browser.get(app.url("/")).send().await.unwrap();
    r.status() == 200
}

#[tokio::test]
async fn a_hint_for_this_session_signs_out_at_once_and_returns_with_state() {
    let (app, c) = setup().await;
    let browser = app.browser();
    let id_token = sign_in(&app, &c, &browser, "olivia").await;
    assert!(signed_in(&app, &browser).await);

    // RP-Initiated Logout 1.0 §2, §3: the hint names this session, so no question; back to
    // the registered URI with the state.
    let r = logout(
        &app,
        &browser,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", AFTER),
            ("state", "bye-1"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{AFTER}?state=bye-1"));
    assert!(!signed_in(&app, &browser).await);
    assert_eq!(count_rows(&app.pool, "sessions", "1=1").await, 0);

    // Signed out already: nothing to end, the same way back (and POST works like GET, §2).
    let r = browser
        .post(app.url("/oauth2/logout"))
        .form(&[
            ("client_id", c.id.as_str()),
            ("post_logout_redirect_uri", AFTER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), AFTER);
    // No client and no URI: the signed-out page.
    let r = logout(&app, &browser, &[]).await;
    assert_eq!(location(&r), "/signed-out");

    // Discovery names the endpoint (RP-Initiated Logout 1.0 §2.1).
    assert_eq!(
        app.openid_configuration().await["end_session_endpoint"],
        app.url("/oauth2/logout")
    );
}

#[tokio::test]
async fn a_request_not_tied_to_the_session_is_confirmed_first() {
    let (app, c) = setup().await;
    let browser = app.browser();
    // A hint from another sign-in (another browser's, or this one's before it signed out) is
    // not this session: its `sid` differs, and a link cannot sign anyone out.
    let old_token = sign_in(&app, &c, &app.browser(), "olivia").await;
    sign_in(&app, &c, &browser, "olivia").await;
    for pairs in [
        vec![
            ("client_id", c.id.as_str()),
            ("post_logout_redirect_uri", AFTER),
            ("state", "s-2"),
        ],
        vec![
            ("id_token_hint", old_token.as_str()),
            ("post_logout_redirect_uri", AFTER),
            ("state", "s-2"),
        ],
    ] {
        let r = logout(&app, &browser, &pairs).await;
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        assert!(page.contains("Sign out of"), "{page}");
        assert!(page.contains("Photo Album"));
        assert!(signed_in(&app, &browser).await, "only asked");

        // The form posted from elsewhere (or without its token) signs no one out.
        let mut fields = hidden_fields(&page);
        let r = browser
            .post(app.url("/oauth2/logout"))
            .header("origin", "https://evil.example")
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        fields.retain(|(k, _)| k != "csrf_token");
        fields.push(("csrf_token".into(), "0".repeat(64)));
        let r = browser
            .post(app.url("/oauth2/logout"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert!(signed_in(&app, &browser).await);
    }
    // The user confirms: signed out, back to the client with its state.
    let r = logout(
        &app,
        &browser,
        &[
            ("client_id", &c.id),
            ("post_logout_redirect_uri", AFTER),
            ("state", "s-2"),
        ],
    )
    .await;
    let fields = hidden_fields(&r.text().await.unwrap());
    let r = browser
        .post(app.url("/oauth2/logout"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{AFTER}?state=s-2"));
    assert!(!signed_in(&app, &browser).await);
}

#[tokio::test]
async fn bad_sign_out_links_are_shown_and_never_followed() {
    let (app, c) = setup().await;
    let browser = app.browser();
    let id_token = sign_in(&app, &c, &browser, "olivia").await;
    let other = app.confidential_client().await;
    for (pairs, why) in [
        // §3.1: only a registered URI, matched exactly.
        (
            vec![
                ("client_id", c.id.as_str()),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
            "unregistered",
        ),
        (
            vec![
                ("client_id", c.id.as_str()),
                (
                    "post_logout_redirect_uri",
                    "https://app.example/signed-out/",
                ),
            ],
            "not exact",
        ),
        (
            vec![("post_logout_redirect_uri", AFTER)],
            "no client to check it against",
        ),
        (vec![("client_id", "no-such-client")], "unknown client"),
        (vec![("client_id", "é")], "not a client id"),
        // §2: client_id must be the hint's audience.
        (
            vec![
                ("id_token_hint", id_token.as_str()),
                ("client_id", other.id.as_str()),
            ],
            "other client",
        ),
        (vec![("id_token_hint", "not.a.jwt")], "not an id_token"),
    ] {
        let r = logout(&app, &browser, &pairs).await;
        assert_eq!(r.status(), 400, "{why}");
        assert!(r.headers().get("location").is_none());
        assert!(signed_in(&app, &browser).await, "{why}");
    }
    let r = browser
        .post(app.url("/oauth2/logout"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// An id_token with its header and claims changed, signed with `sign` (or unsigned).
fn forge(
    genuine: &str,
    header: Value,
    claims: Option<Value>,
    sign: impl Fn(&[u8]) -> Vec<u8>,
) -> String {
    let payload = match claims {
        Some(c) => URL_SAFE_NO_PAD.encode(c.to_string()),
        None => genuine.split('.').nth(1).unwrap().to_string(),
    };
    let input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header.to_string()));
    let sig = URL_SAFE_NO_PAD.encode(sign(input.as_bytes()));
    format!("{input}.{sig}")
}

fn header_of(token: &str) -> Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

/// RFC 8725 §2.1, §3.1: each classic forgery is refused, at both endpoints that take hints.
#[tokio::test]
async fn forged_id_token_hints_are_refused() {
    use portcullis::keys::{jws, Algorithm, PrivateKey};

    let (app, c) = setup().await;
    let browser = app.browser();
    let genuine = sign_in(&app, &c, &browser, "olivia").await;
    let kid = header_of(&genuine)["kid"].as_str().unwrap().to_string();
    let claims = crate::openid::claims_of(&genuine);
    let jwks: Value = app.get("/oauth2/jwks").await.json().await.unwrap();
    let public_jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .to_string();

    // A key of ours that nobody published: valid signature, unknown kid.
    let stranger =
        PrivateKey::from_pkcs8(Algorithm::Es256, &Algorithm::Es256.generate().unwrap()).unwrap();
    let mut as_bob = claims.clone();
    as_bob["sub"] = json!("someone-else");
    let forgeries = [
        (
            "alg none",
            forge(&genuine, json!({"alg": "none", "kid": kid}), None, |_| {
                Vec::new()
            }),
        ),
        (
            "HS256 keyed with the public key",
            forge(
                &genuine,
                json!({"alg": "HS256", "kid": kid}),
                None,
                |input| {
                    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public_jwk.as_bytes());
                    ring::hmac::sign(&key, input).as_ref().to_vec()
                },
            ),
        ),
        ("unknown kid", jws::sign(&stranger, "JWT", &claims).unwrap()),
        (
            "another algorithm than the key's",
            forge(
                &genuine,
                json!({"alg": "ES256", "kid": kid}),
                None,
                |input| stranger.sign(input).unwrap(),
            ),
        ),
        ("claims changed after signing", {
            let parts: Vec<&str> = genuine.split('.').collect();
            format!(
                "{}.{}.{}",
                parts[0],
                URL_SAFE_NO_PAD.encode(as_bob.to_string()),
                parts[2]
            )
        }),
        (
            "critical extension",
            forge(
                &genuine,
                json!({"alg": "RS256", "kid": kid, "crit": ["exp"]}),
                None,
                |_| vec![0; 256],
            ),
        ),
    ];
    for (why, token) in &forgeries {
        let r = logout(&app, &browser, &[("id_token_hint", token.as_str())]).await;
        assert_eq!(r.status(), 400, "logout: {why}");
        let r = browser
            .get(app.url(&format!(
                "/oauth2/authorize?{}",
                encode_pairs(&[
                    ("response_type", "code"),
                    ("client_id", &c.id),
                    ("redirect_uri", &c.redirect_uri),
                    ("scope", "openid"),
                    ("prompt", "none"),
                    ("id_token_hint", token),
                ])
            )))
            .send()
            .await
            .unwrap();
        let q = query_of(&location(&r));
        assert_eq!(
            q.get("error").map(String::as_str),
            Some("invalid_request"),
            "authorize: {why}"
        );
    }
    assert!(signed_in(&app, &browser).await);
}

#[tokio::test]
async fn id_token_hint_at_the_authorization_endpoint() {
    let (app, c) = setup().await;
    let olivia_browser = app.browser();
    let olivias = sign_in(&app, &c, &olivia_browser, "olivia").await;
    let bobs = sign_in(&app, &c, &app.browser(), "bob").await;
    let authorize = |hint: &str, extra: &[(&str, &str)]| {
        let mut q = vec![
            ("response_type", "code"),
            ("client_id", c.id.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("scope", "openid"),
            ("id_token_hint", hint),
        ];
        q.extend_from_slice(extra);
        app.url(&format!("/oauth2/authorize?{}", encode_pairs(&q)))
    };
    // Core 1.0 §3.1.2.1: the hinted user is the one signed in: a code, silently.
    let r = olivia_browser
        .get(authorize(&olivias, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert!(query_of(&location(&r)).contains_key("code"));
    // Someone else is signed in: login_required without a page, the login page otherwise.
    let r = olivia_browser
        .get(authorize(&bobs, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert_eq!(query_of(&location(&r))["error"], "login_required");
    let r = olivia_browser
        .get(authorize(&bobs, &[]))
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/login?"), "{}", location(&r));
    // A hint issued to another client is refused.
    let other = app
        .client_with(|s| s.scope = "openid".into(), Lifetimes::default())
        .await;
    let for_other = sign_in(&app, &other, &app.browser(), "olivia").await;
    let r = olivia_browser
        .get(authorize(&for_other, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(query_of(&location(&r))["error"], "invalid_request");
}

#[tokio::test]
async fn post_logout_redirect_uris_are_registered_like_redirect_uris() {
    let app = spawn_app_with(|s| {
        s.registration.policy = portcullis::settings::RegistrationPolicy::Open;
        s.registration.allowed_scope = "openid".into();
    })
    .await;
    // RP-Initiated Logout 1.0 §3.1, with RFC 7591's metadata rules.
    let r = app
        .register(
            None,
            &json!({"redirect_uris": [REDIRECT], "post_logout_redirect_uris": [AFTER, "http://127.0.0.1:9/bye"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    assert_eq!(
        reg["post_logout_redirect_uris"],
        json!([AFTER, "http://127.0.0.1:9/bye"])
    );
    for bad in [
        json!(["http://app.example/bye"]),
        json!(["https://a.example/#x"]),
        json!("https://a.example/"),
    ] {
        let r = app
            .register(
                None,
                &json!({"redirect_uris": [REDIRECT], "post_logout_redirect_uris": bad}),
            )
            .await;
        assert_oauth_error(r, 400, "invalid_client_metadata").await;
    }

    // The command line takes them too, checked before anything is written.
    let cli = Cli::for_db(&app.db);
    let out = cli.ok(&[
        "client",
        "add",
        "--name",
        "CLI app",
        "--redirect-uri",
        REDIRECT,
        "--post-logout-redirect-uri",
        AFTER,
        "--json",
    ]);
    let made: Value = serde_json::from_str(out.trim()).unwrap();
    let id = made["client_id"].as_str().unwrap();
    let shown = cli.ok(&["client", "show", id]);
    assert!(shown.contains(AFTER), "{shown}");
    let err = cli.fails(&[
        "client",
        "add",
        "--name",
        "Bad",
        "--redirect-uri",
        REDIRECT,
        "--post-logout-redirect-uri",
        "http://app.example/bye",
    ]);
    assert!(err.contains("loopback"), "{err}");
}
