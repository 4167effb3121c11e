//! The whole code flow as a browser and an app do it, for a confidential and a public client.

use crate::helpers::*;

fn assert_token_response(body: &serde_json::Value, scope: &str, with_refresh: bool) {
    // RFC 6749 §5.1
    assert!(body["access_token"].as_str().unwrap().starts_with("pc_at_"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], scope);
    assert_eq!(body.get("refresh_token").is_some(), with_refresh, "{body}");
    if with_refresh {
        assert!(body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("pc_rt_"));
    }
}

#[tokio::test]
async fn confidential_client_authorize_login_consent_token_refresh_refresh() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.confidential_client().await;

    // RFC 6749 §4.1.1, §4.1.2: state is echoed exactly; RFC 9207: iss is present.
    let state = "s t&a=te/ü";
    let q = app
        .authorize_as(
            "alice",
            &[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", REDIRECT),
                ("scope", "write read"),
                ("state", state),
            ],
        )
        .await;
    assert_eq!(q["state"], state);
    assert_eq!(q["iss"], app.base);
    assert!(q["code"].starts_with("pc_ac_"));

    let r = app.exchange(&client, &q["code"], &[]).await;
    assert_eq!(r.status(), 200);
    // RFC 6749 §5.1: Cache-Control: no-store, Pragma: no-cache.
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let first: serde_json::Value = r.json().await.unwrap();
    assert_token_response(&first, "read write", true);

    let r = app
        .refresh(&client, first["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(r.status(), 200);
    let second: serde_json::Value = r.json().await.unwrap();
    assert_token_response(&second, "read write", true);
    assert_ne!(
        second["refresh_token"], first["refresh_token"],
        "RFC 9700 §4.14.2: rotation"
    );

    let r = app
        .refresh(&client, second["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(r.status(), 200);
    let third: serde_json::Value = r.json().await.unwrap();
    assert_token_response(&third, "read write", true);

    // Rows are keyed by digest: the token itself is never stored.
    let digest =
        portcullis::domain::secret::Secret::from_presented(third["access_token"].as_str().unwrap())
            .digest();
    let row = portcullis::store::tokens::find(&app.pool, &digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.scope, "read write");
    assert_eq!(
        app.sql("UPDATE tokens SET scope = scope").await,
        6,
        "three access and three refresh tokens"
    );
}

#[tokio::test]
async fn public_client_with_pkce() {
    let app = spawn_app().await;
    app.add_user("bob").await;
    let client = app.public_client().await;
    let (verifier, challenge) = pkce_pair();
    // RFC 8252 §7.3: a loopback redirect URI may use any port.
    let redirect = "http://127.0.0.1:49152/callback";
    let q = app
        .authorize_as(
            "bob",
            &[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", redirect),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("scope", "read"),
            ],
        )
        .await;
    let client = TestClient {
        redirect_uri: redirect.into(),
        ..client
    };
    let r = app
        .exchange(&client, &q["code"], &[("code_verifier", &verifier)])
        .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_token_response(&body, "read", true);
    let r = app
        .refresh(&client, body["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r2: serde_json::Value = r.json().await.unwrap();
    let r = app
        .refresh(&client, r2["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn remembered_consent_skips_the_page_and_only_covers_what_was_allowed() {
    let app = spawn_app().await;
    app.add_user("carol").await;
    let client = app.confidential_client().await;
    let browser = app.browser();
    let read = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("scope", "read"),
    ];
    app.authorize_in(&browser, "carol", &read).await;

    // Same scope again: straight back to the client, no page.
    let r = browser
        .get(app.url(&format!("/oauth2/authorize?{}", encode_pairs(&read))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with(REDIRECT));

    // A wider scope asks again.
    let wider = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("scope", "read write"),
    ];
    let r = browser
        .get(app.url(&format!("/oauth2/authorize?{}", encode_pairs(&wider))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Allow access?"));
}

#[tokio::test]
async fn client_name_on_the_consent_page_is_escaped_text() {
    let app = spawn_app().await;
    app.add_user("dan").await;
    let client = app
        .client_with(
            |s| s.name = "<script>alert(1)</script>".into(),
            Default::default(),
        )
        .await;
    let browser = app.browser();
    let path = format!(
        "/oauth2/authorize?response_type=code&client_id={}",
        client.id
    );
    app.login(&browser, "dan", PASSWORD, &path).await;
    let r = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert!(!r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("unsafe-inline"));
    // No Referer to other sites, and a real Origin on our own form posts (web::same_origin).
    assert_eq!(r.headers()["referrer-policy"], "same-origin");
    let page = r.text().await.unwrap();
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(!page.contains("<script>"));
}

#[tokio::test]
async fn per_client_token_lifetimes() {
    let app = spawn_app().await;
    let client = app
        .client_with(
            |_| {},
            portcullis::oauth::accounts::Lifetimes {
                access_token_ttl: Some(120),
                refresh_token_ttl: None,
            },
        )
        .await;
    let r = app
        .token(
            Some((&client.id, client.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
}

#[tokio::test]
async fn client_credentials_grant() {
    let app = spawn_app().await;
    let client = app.confidential_client().await;
    let secret = client.secret.as_deref().unwrap();
    // RFC 6749 §4.4.3: no refresh token.
    let r = app
        .token(
            Some((&client.id, secret)),
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_token_response(&body, "read", false);
    // client_secret_post works as well (RFC 6749 §2.3.1).
    let r = app
        .token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client.id),
                ("client_secret", secret),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["scope"], "read write",
        "no scope asked: the client's whole scope"
    );
}
