//! Behind a reverse proxy (issue 13): only a trusted proxy's `Forwarded` / `X-Forwarded-For`
//! names the client whose rate limits apply; anyone else's is ignored.

use portcullis::settings::RegistrationPolicy;

use crate::helpers::*;

async fn register_as(app: &TestApp, header: Option<(&str, &str)>) -> u16 {
    let mut req = app
        .http
        .post(app.url("/oauth2/register"))
        .json(&serde_json::json!({"redirect_uris": ["https://app.example/cb"]}));
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn app_trusting(proxies: &[&str]) -> TestApp {
    let proxies: Vec<String> = proxies.iter().map(|p| p.to_string()).collect();
    spawn_app_with(|s| {
        s.registration.policy = RegistrationPolicy::Open;
        s.registration.max_per_ip = 2;
        s.server.trusted_proxies = proxies;
    })
    .await
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let app = app_trusting(&["127.0.0.0/8"]).await;
    let a = Some(("x-forwarded-for", "198.51.100.7"));
    assert_eq!(register_as(&app, a).await, 201);
    assert_eq!(register_as(&app, a).await, 201);
    assert_eq!(register_as(&app, a).await, 429);
    // Another client behind the same proxy, named either way (RFC 7239 §4 for Forwarded).
    assert_eq!(
        register_as(&app, Some(("x-forwarded-for", "198.51.100.8"))).await,
        201
    );
    let fwd = r#"for="[2001:db8::8]:4711";proto=https"#;
    assert_eq!(register_as(&app, Some(("forwarded", fwd))).await, 201);
    // A client that writes its own header is named by the proxy's entry, the last one.
    let spoofed = Some(("x-forwarded-for", "203.0.113.1, 198.51.100.7"));
    assert_eq!(register_as(&app, spoofed).await, 429);
}

#[tokio::test]
async fn an_untrusted_peer_cannot_name_another_client() {
    let app = app_trusting(&["10.0.0.0/8"]).await;
    assert_eq!(
        register_as(&app, Some(("x-forwarded-for", "198.51.100.7"))).await,
        201
    );
    assert_eq!(
        register_as(&app, Some(("x-forwarded-for", "198.51.100.8"))).await,
        201
    );
    // Both counted against the peer, 127.0.0.1, whatever the header says.
    assert_eq!(
        register_as(&app, Some(("forwarded", "for=198.51.100.9"))).await,
        429
    );
    assert_eq!(register_as(&app, None).await, 429);
}

#[tokio::test]
async fn login_failures_are_counted_per_forwarded_client() {
    let app = spawn_app_with(|s| {
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
        s.login.max_failures_per_ip = 3;
    })
    .await;
    app.add_user("erin").await;
    let try_login = |forwarded: &'static str, password: &'static str| {
        let b = app.browser();
        let app = &app;
        async move {
            let page = b.get(app.url("/login")).send().await.unwrap();
            let csrf = hidden_field(&page.text().await.unwrap(), "csrf_token").unwrap();
            b.post(app.url("/login"))
                .header("x-forwarded-for", forwarded)
                .form(&[
                    ("username", "erin"),
                    ("password", password),
                    ("csrf_token", &csrf),
                    ("return_to", "/"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for _ in 0..3 {
        assert_eq!(try_login("198.51.100.7", "wrong").await, 401);
    }
    // That client's address is refused now, even with the right password (the page does
    // not say why) ...
    assert_eq!(try_login("198.51.100.7", PASSWORD).await, 401);
    // ... but the proxy's other clients are not.
    assert_eq!(try_login("198.51.100.8", PASSWORD).await, 303);
}
