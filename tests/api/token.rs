//! The token endpoint's error rules (RFC 6749 §5.2, §4.1.3, §6; RFC 7636 §4.6; RFC 9700).

use portcullis::domain::secret::Secret;

use crate::helpers::*;

async fn code_for(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) -> String {
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
    ];
    q.extend_from_slice(extra);
    app.authorize_as("hal", &q).await["code"].clone()
}

async fn setup() -> (TestApp, TestClient) {
    let app = spawn_app().await;
    app.add_user("hal").await;
    let c = app.confidential_client().await;
    (app, c)
}

#[tokio::test]
async fn invalid_client_is_401_with_www_authenticate() {
    let (app, c) = setup().await;
    // RFC 6749 §5.2: invalid_client, 401, WWW-Authenticate when Basic was used.
    for creds in [(c.id.as_str(), "wrong"), ("no-such-client", "x")] {
        let r = app
            .token(Some(creds), &[("grant_type", "client_credentials")])
            .await;
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        assert_oauth_error(r, 401, "invalid_client").await;
    }
    // No authentication at all.
    let r = app
        .token(None, &[("grant_type", "client_credentials")])
        .await;
    assert_oauth_error(r, 401, "invalid_client").await;
    // A wrong secret by client_secret_post.
    let r = app
        .token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", "x"),
            ],
        )
        .await;
    assert_oauth_error(r, 401, "invalid_client").await;
    // A confidential client that sends no secret.
    let r = app
        .token(
            None,
            &[("grant_type", "client_credentials"), ("client_id", &c.id)],
        )
        .await;
    assert_oauth_error(r, 401, "invalid_client").await;
}

#[tokio::test]
async fn two_authentication_methods_at_once_are_invalid_request() {
    let (app, c) = setup().await;
    let secret = c.secret.as_deref().unwrap();
    // RFC 6749 §2.3: MUST NOT use more than one authentication method in each request.
    let r = app
        .token(
            Some((&c.id, secret)),
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", secret),
            ],
        )
        .await;
    assert_oauth_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn request_shape_errors_are_invalid_request() {
    let (app, c) = setup().await;
    let secret = c.secret.as_deref().unwrap();
    // Missing grant_type.
    let r = app.token(Some((&c.id, secret)), &[("scope", "read")]).await;
    assert_oauth_error(r, 400, "invalid_request").await;
    // RFC 6749 §3.2: repeated parameters.
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&c.id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=read&scope=write")
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, 400, "invalid_request").await;
    // RFC 6749 §3.2: the body is application/x-www-form-urlencoded.
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&c.id, Some(secret))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, 400, "invalid_request").await;
    // Missing code / refresh_token.
    let r = app
        .token(
            Some((&c.id, secret)),
            &[("grant_type", "authorization_code")],
        )
        .await;
    assert_oauth_error(r, 400, "invalid_request").await;
    let r = app
        .token(Some((&c.id, secret)), &[("grant_type", "refresh_token")])
        .await;
    assert_oauth_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn unsupported_grant_types() {
    let (app, c) = setup().await;
    // RFC 6749 §5.2 unsupported_grant_type; RFC 9700 §2.4: no password grant.
    for g in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let r = app
            .token(
                Some((&c.id, c.secret.as_deref().unwrap())),
                &[
                    ("grant_type", g),
                    ("username", "hal"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_oauth_error(r, 400, "unsupported_grant_type").await;
    }
}

#[tokio::test]
async fn grants_the_client_may_not_use_are_unauthorized_client() {
    let app = spawn_app().await;
    let code_only = app
        .client_with(
            |s| s.grant_types = vec!["authorization_code".into()],
            Default::default(),
        )
        .await;
    let r = app
        .token(
            Some((&code_only.id, code_only.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_oauth_error(r, 400, "unauthorized_client").await;
    let r = app
        .token(
            Some((&code_only.id, code_only.secret.as_deref().unwrap())),
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    assert_oauth_error(r, 400, "unauthorized_client").await;
    // RFC 6749 §4.4: client_credentials is for confidential clients only.
    let public = app.public_client().await;
    let r = app
        .token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &public.id),
            ],
        )
        .await;
    assert_oauth_error(r, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn scope_beyond_the_client_is_invalid_scope() {
    let (app, c) = setup().await;
    let r = app
        .token(
            Some((&c.id, c.secret.as_deref().unwrap())),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read admin"),
            ],
        )
        .await;
    assert_oauth_error(r, 400, "invalid_scope").await;
}

#[tokio::test]
async fn bad_codes_are_invalid_grant() {
    let (app, c) = setup().await;
    // Unknown code.
    let r = app.exchange(&c, "pc_ac_nonsense", &[]).await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    // A code issued to another client (RFC 6749 §4.1.3: ensure it was issued to this client).
    let other = app.confidential_client().await;
    let code = code_for(&app, &c, &[]).await;
    let r = app.exchange(&other, &code, &[]).await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    // A different redirect_uri than in the authorization request.
    let r = app
        .exchange(
            &TestClient {
                redirect_uri: "https://app.example/other".into(),
                ..c.clone()
            },
            &code,
            &[],
        )
        .await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    // The code survived those attempts (they were refused before redemption).
    assert_eq!(app.exchange(&c, &code, &[]).await.status(), 200);
}

#[tokio::test]
async fn redirect_uri_is_required_if_it_was_in_the_authorization_request() {
    let (app, c) = setup().await;
    let code = code_for(&app, &c, &[]).await;
    let secret = c.secret.as_deref().unwrap();
    // RFC 6749 §4.1.3: REQUIRED if included in the authorization request.
    let r = app
        .token(
            Some((&c.id, secret)),
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
    assert_oauth_error(r, 400, "invalid_request").await;
    // Not in the authorization request: not required.
    let q = app
        .authorize_as("hal", &[("response_type", "code"), ("client_id", &c.id)])
        .await;
    let r = app
        .token(
            Some((&c.id, secret)),
            &[("grant_type", "authorization_code"), ("code", &q["code"])],
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let (app, c) = setup().await;
    let code = code_for(&app, &c, &[]).await;
    // Make the stored row already expired instead of sleeping.
    let digest = Secret::from_presented(code.as_str()).digest();
    let n = app
        .sql(&format!(
            "UPDATE authorization_codes SET expires_at = created_at - 1 WHERE code_hash = X'{}'",
            hex::encode(digest.as_bytes())
        ))
        .await;
    assert_eq!(n, 1);
    let r = app.exchange(&c, &code, &[]).await;
    assert_oauth_error(r, 400, "invalid_grant").await;
}

#[tokio::test]
async fn pkce_verification() {
    let (app, c) = setup().await;
    let (verifier, challenge) = pkce_pair();
    let with_pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // RFC 7636 §4.6: a wrong verifier is invalid_grant.
    let code = code_for(&app, &c, &with_pkce).await;
    let (other_verifier, _) = pkce_pair();
    assert_oauth_error(
        app.exchange(&c, &code, &[("code_verifier", &other_verifier)])
            .await,
        400,
        "invalid_grant",
    )
    .await;
    // A challenge was sent, so the verifier is required.
    assert_oauth_error(app.exchange(&c, &code, &[]).await, 400, "invalid_grant").await;
    assert_eq!(
        app.exchange(&c, &code, &[("code_verifier", &verifier)])
            .await
            .status(),
        200
    );
    // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is refused (downgrade).
    let plain_code = code_for(&app, &c, &[]).await;
    assert_oauth_error(
        app.exchange(&c, &plain_code, &[("code_verifier", &verifier)])
            .await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let (app, c) = setup().await;
    let code = code_for(&app, &c, &[]).await;
    let first: serde_json::Value = app.exchange(&c, &code, &[]).await.json().await.unwrap();
    // RFC 6749 §4.1.2: single use; tokens issued from it SHOULD be revoked.
    assert_oauth_error(app.exchange(&c, &code, &[]).await, 400, "invalid_grant").await;
    let access = Secret::from_presented(first["access_token"].as_str().unwrap()).digest();
    let row = portcullis::store::tokens::find(&app.pool, &access)
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.revoked_at.is_some(),
        "the access token from the code is revoked"
    );
    let r = app
        .refresh(&c, first["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_oauth_error(r, 400, "invalid_grant").await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_family() {
    let (app, c) = setup().await;
    let first = app.tokens_for(&c, "hal", "read write").await;
    let old = first["refresh_token"].as_str().unwrap();
    let second: serde_json::Value = app.refresh(&c, old, &[]).await.json().await.unwrap();
    // RFC 9700 §4.14.2: the old one is dead, and presenting it revokes the family.
    assert_oauth_error(app.refresh(&c, old, &[]).await, 400, "invalid_grant").await;
    let r = app
        .refresh(&c, second["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    for t in [&first["access_token"], &second["access_token"]] {
        let d = Secret::from_presented(t.as_str().unwrap()).digest();
        assert!(portcullis::store::tokens::find(&app.pool, &d)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some());
    }
}

/// `tokens.refresh_reuse_grace_secs`: inside the window a reuse is `invalid_grant` and
/// revokes nothing; after it, the same reuse revokes the family (RFC 9700 §4.14.2).
#[tokio::test]
async fn a_reuse_inside_the_grace_period_is_refused_without_revoking() {
    let app = spawn_app_with(|s| s.tokens.refresh_reuse_grace_secs = 2).await;
    app.add_user("hal").await;
    let c = app.confidential_client().await;
    let first = app.tokens_for(&c, "hal", "read").await;
    let old = first["refresh_token"].as_str().unwrap();
    let second: serde_json::Value = app.refresh(&c, old, &[]).await.json().await.unwrap();
    assert_oauth_error(app.refresh(&c, old, &[]).await, 400, "invalid_grant").await;
    let live = second["refresh_token"].as_str().unwrap();
    let d = Secret::from_presented(live).digest();
    let row = portcullis::store::tokens::find(&app.pool, &d)
        .await
        .unwrap()
        .unwrap();
    assert!(row.revoked_at.is_none(), "inside the grace period");

    // Times are whole seconds: wait until the window has surely closed.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_oauth_error(app.refresh(&c, old, &[]).await, 400, "invalid_grant").await;
    assert_oauth_error(app.refresh(&c, live, &[]).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn refresh_scope_may_only_narrow() {
    let (app, c) = setup().await;
    let t = app.tokens_for(&c, "hal", "read").await;
    // RFC 6749 §6: MUST NOT include any scope not originally granted.
    let r = app
        .refresh(
            &c,
            t["refresh_token"].as_str().unwrap(),
            &[("scope", "read write")],
        )
        .await;
    assert_oauth_error(r, 400, "invalid_scope").await;
    let t = app.tokens_for(&c, "hal", "read write").await;
    let narrowed: serde_json::Value = app
        .refresh(
            &c,
            t["refresh_token"].as_str().unwrap(),
            &[("scope", "read")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(narrowed["scope"], "read");
    // The new refresh token keeps the original grant.
    let again: serde_json::Value = app
        .refresh(&c, narrowed["refresh_token"].as_str().unwrap(), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["scope"], "read write");
}

#[tokio::test]
async fn bad_refresh_tokens_are_invalid_grant() {
    let (app, c) = setup().await;
    assert_oauth_error(
        app.refresh(&c, "pc_rt_nonsense", &[]).await,
        400,
        "invalid_grant",
    )
    .await;
    let t = app.tokens_for(&c, "hal", "read").await;
    // An access token is not a refresh token.
    assert_oauth_error(
        app.refresh(&c, t["access_token"].as_str().unwrap(), &[])
            .await,
        400,
        "invalid_grant",
    )
    .await;
    // Another client's refresh token.
    let other = app.confidential_client().await;
    assert_oauth_error(
        app.refresh(&other, t["refresh_token"].as_str().unwrap(), &[])
            .await,
        400,
        "invalid_grant",
    )
    .await;
    // Expired.
    app.sql("UPDATE tokens SET expires_at = 0").await;
    assert_oauth_error(
        app.refresh(&c, t["refresh_token"].as_str().unwrap(), &[])
            .await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_disabled_user_can_no_longer_refresh() {
    let (app, c) = setup().await;
    let t = app.tokens_for(&c, "hal", "read").await;
    portcullis::store::users::disable(&app.pool, "hal")
        .await
        .unwrap();
    assert_oauth_error(
        app.refresh(&c, t["refresh_token"].as_str().unwrap(), &[])
            .await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_rotated_secret_works_at_once_even_with_the_client_cached() {
    let (app, c) = setup().await;
    let old = c.secret.clone().unwrap();
    // Warm the in-process client cache with the old secret.
    let form = [("grant_type", "client_credentials")];
    assert_eq!(app.token(Some((&c.id, &old)), &form).await.status(), 200);
    // Rotate from another process, as an operator would.
    let out = Cli::for_db(&app.db).ok(&["client", "rotate-secret", &c.id, "--json"]);
    let new: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let new = new["client_secret"].as_str().unwrap();
    assert_eq!(app.token(Some((&c.id, new)), &form).await.status(), 200);
}

#[tokio::test]
async fn without_the_cache_an_old_secret_fails_at_once() {
    let app = spawn_app_with(|s| s.cache.client_ttl_secs = 0).await;
    let c = app.confidential_client().await;
    let old = c.secret.clone().unwrap();
    let form = [("grant_type", "client_credentials")];
    assert_eq!(app.token(Some((&c.id, &old)), &form).await.status(), 200);
    Cli::for_db(&app.db).ok(&["client", "rotate-secret", &c.id]);
    assert_oauth_error(
        app.token(Some((&c.id, &old)), &form).await,
        401,
        "invalid_client",
    )
    .await;
}
