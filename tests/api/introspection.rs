//! Resource servers: introspection (RFC 7662) and revocation (RFC 7009).

use crate::helpers::*;

impl TestApp {
    pub async fn introspect(
        &self,
        caller: &TestClient,
        token: &str,
        hint: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![("token", token)];
        if let Some(h) = hint {
            form.push(("token_type_hint", h));
        }
        self.token_like("/oauth2/introspect", caller, &form).await
    }

    pub async fn revoke(&self, caller: &TestClient, token: &str) -> reqwest::Response {
        self.token_like("/oauth2/revoke", caller, &[("token", token)])
            .await
    }

    async fn token_like(
        &self,
        path: &str,
        caller: &TestClient,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path));
        let mut form: Vec<(&str, &str)> = form.to_vec();
        match &caller.secret {
            Some(s) => req = req.basic_auth(&caller.id, Some(s)),
            None => form.push(("client_id", &caller.id)),
        }
        req.form(&form).send().await.unwrap()
    }
}

async fn active(app: &TestApp, rs: &TestClient, token: &str) -> serde_json::Value {
    let r = app.introspect(rs, token, None).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn inactive() -> serde_json::Value {
    serde_json::json!({"active": false})
}

#[tokio::test]
async fn issue_introspect_revoke_introspect() {
    let app = spawn_app().await;
    app.add_user("yara").await;
    let client = app.confidential_client().await;
    let rs = app
        .client_with(
            |s| {
                s.name = "API".into();
                s.grant_types = vec!["client_credentials".into()];
                s.redirect_uris = vec![];
                s.resource_server = true;
            },
            Default::default(),
        )
        .await;
    let t = app.tokens_for(&client, "yara", "read").await;
    let access = t["access_token"].as_str().unwrap();

    // RFC 7662 §2.2: the active response.
    let body = active(&app, &rs, access).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "read");
    assert_eq!(body["client_id"], client.id);
    assert_eq!(body["username"], "yara");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], app.base);
    assert!(body["sub"].as_str().unwrap().len() > 10);
    assert_eq!(
        body["exp"].as_i64().unwrap() - body["iat"].as_i64().unwrap(),
        3600
    );

    // RFC 7009 §2.1: the client it was issued to revokes it; the effect is immediate.
    assert_eq!(app.revoke(&client, access).await.status(), 200);
    assert_eq!(active(&app, &rs, access).await, inactive());
}

#[tokio::test]
async fn refresh_tokens_introspect_and_their_revocation_reaches_the_family() {
    let app = spawn_app().await;
    app.add_user("zed").await;
    let client = app.confidential_client().await;
    let rs = app.resource_server().await;
    let t = app.tokens_for(&client, "zed", "read write").await;
    let (access, refresh) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    let body = active(&app, &rs, refresh).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");
    // A wrong hint still finds the token (RFC 7662 §2.1).
    let r: serde_json::Value = app
        .introspect(&rs, access, Some("refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["active"], true);

    // Revoking the refresh token revokes the access tokens of its family (RFC 7009 §2.1).
    assert_eq!(app.revoke(&client, refresh).await.status(), 200);
    assert_eq!(active(&app, &rs, access).await, inactive());
    assert_eq!(active(&app, &rs, refresh).await, inactive());
    // And the token endpoint refuses it at once.
    assert_oauth_error(
        app.refresh(&client, refresh, &[]).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn expired_unknown_malformed_and_rotated_tokens_are_just_inactive() {
    let app = spawn_app().await;
    app.add_user("abe").await;
    let client = app.confidential_client().await;
    let rs = app.resource_server().await;
    let t = app.tokens_for(&client, "abe", "read").await;
    for junk in ["pc_at_unknown", "", "%%%", "a".repeat(5000).as_str()] {
        let r = app.introspect(&rs, junk, None).await;
        if junk.is_empty() {
            assert_oauth_error(r, 400, "invalid_request").await;
        } else {
            assert_eq!(
                r.json::<serde_json::Value>().await.unwrap(),
                inactive(),
                "{junk:.20}"
            );
        }
    }
    // A rotated refresh token is no longer active.
    let old = t["refresh_token"].as_str().unwrap();
    app.refresh(&client, old, &[]).await;
    assert_eq!(active(&app, &rs, old).await, inactive());
    // Expiry makes a token inactive.
    app.sql("UPDATE tokens SET expires_at = created_at - 1")
        .await;
    assert_eq!(
        active(&app, &rs, t["access_token"].as_str().unwrap()).await,
        inactive()
    );
}

#[tokio::test]
async fn client_credentials_tokens_have_the_client_as_subject() {
    let app = spawn_app().await;
    let client = app.resource_server().await;
    let r: serde_json::Value = app
        .token(
            Some((&client.id, client.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await
        .json()
        .await
        .unwrap();
    let body = active(&app, &client, r["access_token"].as_str().unwrap()).await;
    assert_eq!(body["sub"], client.id);
    assert!(body.get("username").is_none());
}

#[tokio::test]
async fn introspection_needs_an_authenticated_confidential_client() {
    let app = spawn_app().await;
    let client = app.resource_server().await;
    let r: serde_json::Value = app
        .token(
            Some((&client.id, client.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await
        .json()
        .await
        .unwrap();
    let token = r["access_token"].as_str().unwrap();
    // RFC 7662 §2.1: the endpoint requires authorization; no token data without it.
    let r = app
        .http
        .post(app.url("/oauth2/introspect"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, 401, "invalid_client").await;
    let wrong = TestClient {
        secret: Some("wrong".into()),
        ..client.clone()
    };
    assert_oauth_error(
        app.introspect(&wrong, token, None).await,
        401,
        "invalid_client",
    )
    .await;
    let public = app.public_client().await;
    assert_oauth_error(
        app.introspect(&public, token, None).await,
        401,
        "invalid_client",
    )
    .await;
    // client_secret_post works too.
    let r = app
        .http
        .post(app.url("/oauth2/introspect"))
        .form(&[
            ("token", token),
            ("client_id", &client.id),
            ("client_secret", client.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["active"], true);
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let app = spawn_app().await;
    app.add_user("bea").await;
    let owner = app.confidential_client().await;
    app.allow_introspection(&owner).await;
    let other = app.confidential_client().await;
    let t = app.tokens_for(&owner, "bea", "read").await;
    let access = t["access_token"].as_str().unwrap();
    // RFC 7009 §2.2: still 200, nothing revoked.
    assert_eq!(app.revoke(&other, access).await.status(), 200);
    assert_eq!(active(&app, &owner, access).await["active"], true);
    // Unknown tokens: 200 as well.
    assert_eq!(app.revoke(&other, "pc_at_nothing").await.status(), 200);
    // Wrong credentials: 401 (RFC 7009 §2.2.1 refers to RFC 6749 §5.2).
    let bad = TestClient {
        secret: Some("x".into()),
        ..owner.clone()
    };
    assert_oauth_error(app.revoke(&bad, access).await, 401, "invalid_client").await;
    // Revoking an access token leaves the refresh token alone.
    assert_eq!(app.revoke(&owner, access).await.status(), 200);
    assert_eq!(
        active(&app, &owner, t["refresh_token"].as_str().unwrap()).await["active"],
        true
    );
}

#[tokio::test]
async fn public_clients_can_revoke_their_own_tokens() {
    let app = spawn_app().await;
    app.add_user("cy").await;
    let public = app.public_client().await;
    let rs = app.resource_server().await;
    let (verifier, challenge) = pkce_pair();
    let q = app
        .authorize_as(
            "cy",
            &[
                ("response_type", "code"),
                ("client_id", &public.id),
                ("redirect_uri", &public.redirect_uri),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    let t: serde_json::Value = app
        .exchange(&public, &q["code"], &[("code_verifier", &verifier)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        app.revoke(&public, t["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(
        active(&app, &rs, t["access_token"].as_str().unwrap()).await,
        inactive()
    );
}

#[tokio::test]
async fn removing_a_client_kills_its_tokens() {
    let app = spawn_app().await;
    let client = app.confidential_client().await;
    let rs = app.resource_server().await;
    let r: serde_json::Value = app
        .token(
            Some((&client.id, client.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await
        .json()
        .await
        .unwrap();
    portcullis::store::clients::remove(&app.pool, &client.id)
        .await
        .unwrap();
    assert_eq!(
        active(&app, &rs, r["access_token"].as_str().unwrap()).await,
        inactive()
    );
}

/// Issue 12, point 8: an introspection answer names the user, so only clients an operator
/// marked as resource servers may ask (RFC 7662 §4 and RFC 9700 §2.3: the server decides who
/// may introspect; §2.3 lets it refuse). A client cannot grant itself the role by registering.
#[tokio::test]
async fn only_resource_servers_may_introspect() {
    // No client cache: the CLI below is another process, and the server must see its change.
    let app = spawn_app_with(|s| {
        s.registration.policy = portcullis::settings::RegistrationPolicy::Open;
        s.cache.client_ttl_secs = 0;
    })
    .await;
    app.add_user("dee").await;
    let client = app.confidential_client().await;
    let t = app.tokens_for(&client, "dee", "read").await;
    let access = t["access_token"].as_str().unwrap();

    // An ordinary confidential client, even the token's own: 403, nothing about the token.
    let r = app.introspect(&client, access, None).await;
    let body = assert_oauth_error(r, 403, "unauthorized_client").await;
    assert!(body.get("active").is_none() && body.get("username").is_none());

    // A self-registered client asking for the role in its metadata does not get it.
    let r = app
        .http
        .post(app.url("/oauth2/register"))
        .json(&serde_json::json!({
            "redirect_uris": ["https://rs.example/cb"],
            "grant_types": ["client_credentials"],
            "resource_server": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let reg: serde_json::Value = r.json().await.unwrap();
    let registered = TestClient {
        id: reg["client_id"].as_str().unwrap().into(),
        secret: reg["client_secret"].as_str().map(str::to_string),
        redirect_uri: String::new(),
    };
    assert_oauth_error(
        app.introspect(&registered, access, None).await,
        403,
        "unauthorized_client",
    )
    .await;

    // The operator's command makes it one.
    let cli = Cli::for_db(&app.db);
    cli.ok(&["client", "resource-server", &registered.id, "on"]);
    let body = app
        .introspect(&registered, access, None)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["username"], "dee");
    cli.ok(&["client", "resource-server", &registered.id, "off"]);
    assert_oauth_error(
        app.introspect(&registered, access, None).await,
        403,
        "unauthorized_client",
    )
    .await;
    // A public client cannot be one.
    let public = app.public_client().await;
    let err = cli.fails(&["client", "resource-server", &public.id, "on"]);
    assert!(err.contains("public"), "{err}");
}
