//! Server metadata (RFC 8414), a client that knows only the issuer, and CORS.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn metadata_names_every_endpoint_from_the_issuer() {
    // Behind a TLS-terminating proxy (this test's client) at the public URL.
    let app = spawn_app_with(|s| {
        s.server.issuer = "https://auth.example.com/".into();
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let r = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    // RFC 8414 §2: the issuer as configured (behind a proxy the public URL, not ours).
    assert_eq!(m["issuer"], "https://auth.example.com");
    for (key, path) in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        ("introspection_endpoint", "/oauth2/introspect"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("registration_endpoint", "/oauth2/register"),
    ] {
        assert_eq!(m[key], format!("https://auth.example.com{path}"), "{key}");
    }
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    let grants: Vec<&str> = m["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        grants.contains(&"authorization_code")
            && grants.contains(&"refresh_token")
            && grants.contains(&"client_credentials")
    );
    assert!(!grants.contains(&"password") && !grants.contains(&"implicit"));
    for key in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "scopes_supported",
    ] {
        assert!(m[key].as_array().is_some_and(|a| !a.is_empty()), "{key}");
    }
}

#[tokio::test]
async fn a_client_that_knows_only_the_issuer_completes_the_flow() {
    let app = spawn_app().await;
    app.add_user("eve").await;
    let c = app.confidential_client().await;
    let rs = app.resource_server().await;
    // Discover.
    let m: Value = app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            app.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = |k: &str| m[k].as_str().unwrap().to_string();
    assert_eq!(m["issuer"], app.base);

    // Authorize through the discovered endpoint.
    let browser = app.browser();
    let (verifier, challenge) = pkce_pair();
    let auth = format!(
        "{}?{}",
        endpoint("authorization_endpoint"),
        encode_pairs(&[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", REDIRECT),
            ("state", "st"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256")
        ])
    );
    let r = browser.get(&auth).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let login_path = location(&r);
    let return_to = query_of(&login_path)["return_to"].clone();
    app.login(&browser, "eve", PASSWORD, &return_to).await;
    let page = browser
        .get(&auth)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = app.submit_consent(&browser, &page, "allow", None).await;
    let back = query_of(&location(&r));
    assert_eq!(
        back["iss"],
        m["issuer"].as_str().unwrap(),
        "RFC 9207: iss matches the metadata"
    );

    let t: Value = app
        .http
        .post(endpoint("token_endpoint"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &back["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let i: Value = app
        .http
        .post(endpoint("introspection_endpoint"))
        .basic_auth(&rs.id, rs.secret.as_deref())
        .form(&[("token", t["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(i["active"], true);
    assert_eq!(i["username"], "eve");
}

#[tokio::test]
async fn cors_metadata_for_anyone_token_and_revoke_for_configured_origins_only() {
    let app = spawn_app_with(|s| s.cors.allowed_origins = vec!["https://spa.example".into()]).await;
    let c = app.confidential_client().await;
    let acao = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string())
    };

    let r = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .header("origin", "https://anyone.example")
        .send()
        .await
        .unwrap();
    assert_eq!(acao(&r).as_deref(), Some("*"));

    for path in ["/oauth2/token", "/oauth2/revoke"] {
        // Preflight from an allowed origin.
        let r = app
            .http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://spa.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{path}");
        assert_eq!(acao(&r).as_deref(), Some("https://spa.example"));
        assert!(r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST"));
        // Preflight from another origin: refused, no CORS headers.
        let r = app
            .http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(acao(&r), None);
    }
    let form = [("grant_type", "client_credentials")];
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .header("origin", "https://spa.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(acao(&r).as_deref(), Some("https://spa.example"));
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(acao(&r), None);

    // RFC 9700 §2.6: no CORS on the authorization endpoint or the HTML pages.
    for path in ["/oauth2/authorize?client_id=x", "/login", "/"] {
        let r = app
            .http
            .get(app.url(path))
            .header("origin", "https://spa.example")
            .send()
            .await
            .unwrap();
        assert_eq!(acao(&r), None, "{path}");
    }
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/oauth2/authorize"))
        .header("origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert_eq!(acao(&r), None);
}
