//! The UserInfo endpoint (OpenID Connect Core 1.0 §5.3) and the bearer rules it follows
//! (RFC 6750), plus the profile claims users carry (`user add/set`).

use portcullis::domain::password::Password;
use portcullis::oauth::accounts::{self, Lifetimes};
use portcullis::store::models::Profile;
use serde_json::Value;

use crate::helpers::*;

/// A user with every profile claim set, and a client that may ask for them.
async fn app_with_profile() -> (TestApp, TestClient) {
    let app = spawn_app().await;
    let profile = Profile {
        email: Some("quinn@example.com".into()),
        email_verified: true,
        name: Some("Quinn Ó Briain".into()),
        given_name: Some("Quinn".into()),
        family_name: Some("Ó Briain".into()),
        ..Profile::default()
    };
    accounts::create_user_with(
        &app.pool,
        "quinn",
        &Password::new(PASSWORD),
        profile,
        1000,
        portcullis::now(),
    )
    .await
    .unwrap();
    let c = app
        .client_with(
            |s| s.scope = "openid profile email read".into(),
            Lifetimes::default(),
        )
        .await;
    (app, c)
}

async fn access_token(app: &TestApp, c: &TestClient, scope: &str) -> String {
    app.tokens_for(c, "quinn", scope).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn userinfo_get(app: &TestApp, token: &str) -> reqwest::Response {
    app.http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn claims(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 200);
    // Personal data is never cached (Core 1.0 §5.3.2 returns it as JSON).
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    r.json().await.unwrap()
}

#[tokio::test]
async fn scopes_release_the_claims_they_name() {
    let (app, c) = app_with_profile().await;
    let user = portcullis::store::users::find_by_username(&app.pool, "quinn")
        .await
        .unwrap()
        .unwrap();

    // Core 1.0 §5.3.2: `sub` always, and the same `sub` as the id_token.
    let only_openid =
        claims(userinfo_get(&app, &access_token(&app, &c, "openid").await).await).await;
    assert_eq!(only_openid, serde_json::json!({ "sub": user.id }));

    // §5.4: `profile` releases the name claims and updated_at, not the e-mail address.
    let t = access_token(&app, &c, "openid profile").await;
    let profile = claims(userinfo_get(&app, &t).await).await;
    assert_eq!(profile["sub"], user.id);
    assert_eq!(
        profile["preferred_username"], "quinn",
        "the username by default"
    );
    assert_eq!(profile["name"], "Quinn Ó Briain");
    assert_eq!(profile["given_name"], "Quinn");
    assert_eq!(profile["family_name"], "Ó Briain");
    assert_eq!(profile["updated_at"], user.profile.updated_at);
    assert!(user.profile.updated_at >= user.created_at);
    assert!(profile.get("email").is_none(), "{profile}");

    // `email` releases email and email_verified only.
    let t = access_token(&app, &c, "openid email").await;
    let email = claims(userinfo_get(&app, &t).await).await;
    assert_eq!(
        email,
        serde_json::json!({ "sub": user.id, "email": "quinn@example.com", "email_verified": true })
    );

    // A claim the user does not have is left out, not sent as null (§5.3.2).
    let (app2, c2) = {
        let app = spawn_app().await;
        app.add_user("quinn").await;
        let c = app
            .client_with(
                |s| s.scope = "openid profile email".into(),
                Lifetimes::default(),
            )
            .await;
        (app, c)
    };
    let t = access_token(&app2, &c2, "openid profile email").await;
    let bare = claims(userinfo_get(&app2, &t).await).await;
    let keys: Vec<&str> = bare
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["preferred_username", "sub", "updated_at"], "{bare}");
}

#[tokio::test]
async fn the_token_may_come_in_the_header_or_a_form_body() {
    let (app, c) = app_with_profile().await;
    let t = access_token(&app, &c, "openid email").await;
    let url = app.url("/oauth2/userinfo");
    // RFC 6750 §2.1: the scheme is case-insensitive (RFC 7235 §2.1).
    let r = app
        .http
        .get(&url)
        .header("authorization", format!("bearer {t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(claims(r).await["email"], "quinn@example.com");
    // §5.3.1: POST too; with the header and no body...
    let r = app.http.post(&url).bearer_auth(&t).send().await.unwrap();
    assert_eq!(claims(r).await["email"], "quinn@example.com");
    // ...and RFC 6750 §2.2: `access_token` in a form body.
    let r = app
        .http
        .post(&url)
        .form(&[("access_token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(claims(r).await["email"], "quinn@example.com");
}

/// RFC 6750 §3: the challenge a refusal carries.
fn challenge(r: &reqwest::Response) -> String {
    r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string()
}

async fn assert_invalid_token(r: reqwest::Response, why: &str) {
    // §3.1: invalid_token is 401 with the error in the challenge.
    assert_eq!(r.status(), 401, "{why}");
    assert!(
        challenge(&r).starts_with("Bearer error=\"invalid_token\""),
        "{why}: {}",
        challenge(&r)
    );
    assert_oauth_error(r, 401, "invalid_token").await;
}

#[tokio::test]
async fn refusals_follow_rfc_6750() {
    let (app, c) = app_with_profile().await;
    let url = app.url("/oauth2/userinfo");

    // §3.1: no credentials (or another scheme) is a bare challenge with no error code.
    for req in [
        app.http.get(&url),
        app.http.get(&url).basic_auth("quinn", Some(PASSWORD)),
        app.http.post(&url),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(challenge(&r), "Bearer");
    }

    assert_invalid_token(userinfo_get(&app, "no-such-token").await, "unknown").await;

    let body = app.tokens_for(&c, "quinn", "openid profile").await;
    let access = body["access_token"].as_str().unwrap().to_string();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    // A refresh token is not a bearer credential (RFC 6749 §1.5).
    assert_invalid_token(userinfo_get(&app, &refresh).await, "refresh token").await;

    // §3.1 insufficient_scope: 403, naming the scope the endpoint needs.
    let read_only = access_token(&app, &c, "read").await;
    let r = userinfo_get(&app, &read_only).await;
    assert_eq!(r.status(), 403);
    let ch = challenge(&r);
    assert!(
        ch.starts_with("Bearer error=\"insufficient_scope\"") && ch.ends_with("scope=\"openid\""),
        "{ch}"
    );
    assert_oauth_error(r, 403, "insufficient_scope").await;

    // §2: one method per request; a token in the URL is refused, not used (§2.3, §5.3).
    let r = app
        .http
        .post(&url)
        .bearer_auth(&access)
        .form(&[("access_token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, 400, "invalid_request").await;
    let r = app
        .http
        .get(format!("{url}?access_token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(challenge(&r).starts_with("Bearer error=\"invalid_request\""));
    assert_oauth_error(r, 400, "invalid_request").await;
    // A body that is not a form is a plain RFC 6749 invalid_request.
    let r = app
        .http
        .post(&url)
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body(r#"{"access_token":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, 400, "invalid_request").await;

    // Still good here; then revoked (RFC 7009), expired, or its user disabled: invalid_token.
    assert_eq!(userinfo_get(&app, &access).await.status(), 200);
    let r = app.revoke(&c, &refresh).await;
    assert_eq!(r.status(), 200);
    assert_invalid_token(userinfo_get(&app, &access).await, "revoked").await;

    let expiring = access_token(&app, &c, "openid").await;
    assert_eq!(userinfo_get(&app, &expiring).await.status(), 200);
    app.sql("UPDATE tokens SET expires_at = 1 WHERE revoked_at IS NULL")
        .await;
    assert_invalid_token(userinfo_get(&app, &expiring).await, "expired").await;

    let live = access_token(&app, &c, "openid").await;
    assert_eq!(userinfo_get(&app, &live).await.status(), 200);
    portcullis::store::users::disable(&app.pool, "quinn")
        .await
        .unwrap();
    assert_invalid_token(userinfo_get(&app, &live).await, "user disabled").await;
}

#[tokio::test]
async fn a_clients_own_token_describes_no_user() {
    let app = spawn_app().await;
    let c = app
        .client_with(|s| s.scope = "openid read".into(), Lifetimes::default())
        .await;
    let r = app
        .token(
            Some((&c.id, c.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials"), ("scope", "openid")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let t = body["access_token"].as_str().unwrap();
    assert_invalid_token(userinfo_get(&app, t).await, "client_credentials token").await;
}

#[tokio::test]
async fn single_page_apps_may_call_it_from_any_origin() {
    let (app, c) = app_with_profile().await;
    let t = access_token(&app, &c, "openid").await;
    // The token, not a cookie, is the credential: any origin may read the answer.
    let r = app
        .http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(&t)
        .header("origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = app
        .http
        .get(app.url("/oauth2/userinfo"))
        .header("origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    // The page may read the challenge that says why (Fetch: not a safelisted header).
    assert_eq!(
        r.headers()["access-control-expose-headers"],
        "WWW-Authenticate"
    );
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/oauth2/userinfo"))
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-methods"], "GET, POST");
    assert!(r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
}

#[tokio::test]
async fn profile_claims_are_set_from_the_command_line() {
    let db = TestDb::new().await;
    let cli = Cli::for_db(&db);
    cli.ok_stdin(
        &[
            "user",
            "add",
            "rosa",
            "--password-stdin",
            "--email",
            "rosa@example.com",
            "--email-verified",
            "true",
            "--name",
            "Rosa Parks",
            "--given-name",
            "Rosa",
        ],
        "montgomery\n",
    );
    let pool = portcullis::store::Pool::build(&db.settings().database).unwrap();
    let find = |pool: portcullis::store::Pool| async move {
        portcullis::store::users::find_by_username(&pool, "rosa")
            .await
            .unwrap()
            .unwrap()
            .profile
    };
    let p = find(pool.clone()).await;
    assert_eq!(p.email.as_deref(), Some("rosa@example.com"));
    assert!(p.email_verified);
    assert_eq!(p.name.as_deref(), Some("Rosa Parks"));
    assert_eq!(p.given_name.as_deref(), Some("Rosa"));
    assert_eq!(p.family_name, None);
    assert!(p.updated_at > 0);
    assert!(cli
        .ok(&["user", "list"])
        .contains("rosa@example.com (verified)"));

    // A new address is unverified unless said otherwise; "" clears a claim; the rest stays.
    cli.ok(&[
        "user",
        "set",
        "rosa",
        "--email",
        "rosa@new.example",
        "--name",
        "",
        "--preferred-username",
        "rosa.p",
    ]);
    let p = find(pool.clone()).await;
    assert_eq!(p.email.as_deref(), Some("rosa@new.example"));
    assert!(!p.email_verified);
    assert_eq!(p.name, None);
    assert_eq!(p.given_name.as_deref(), Some("Rosa"));
    assert_eq!(p.preferred_username.as_deref(), Some("rosa.p"));

    // Refused with a clear message, and nothing changes (checked before anything is written).
    for (args, says) in [
        (vec!["--email", "not-an-address"], "not an e-mail address"),
        (vec!["--email", "a@b@c"], "not an e-mail address"),
        (vec!["--name", "tab\there"], "control characters"),
        (vec![], "nothing to change"),
    ] {
        let mut all = vec!["user", "set", "rosa"];
        all.extend(args);
        let err = cli.fails(&all);
        assert!(err.contains(says), "{all:?}: {err}");
    }
    let long = "x".repeat(256);
    assert!(cli
        .fails(&["user", "set", "rosa", "--family-name", &long])
        .contains("1 to 255 characters"));
    assert!(cli
        .fails(&["user", "set", "nobody", "--name", "N"])
        .contains("no user named"));
    assert_eq!(find(pool.clone()).await, p);
    // email_verified means nothing without an address.
    assert!(
        cli.run_with_stdin(
            &[
                "user",
                "add",
                "sam",
                "--password-stdin",
                "--email-verified",
                "true"
            ],
            Some("pw\n"),
        )
        .status
        .code()
            == Some(1)
    );
    assert!(portcullis::store::users::find_by_username(&pool, "sam")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn discovery_names_the_endpoint_and_the_claims() {
    let app = spawn_app().await;
    let doc = app.openid_configuration().await;
    // OpenID Connect Discovery 1.0 §3.
    assert_eq!(
        doc["userinfo_endpoint"],
        format!("{}/oauth2/userinfo", app.base)
    );
    for scope in ["openid", "profile", "email"] {
        assert!(
            doc["scopes_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == scope),
            "{scope}"
        );
    }
    for claim in [
        "sub",
        "email",
        "email_verified",
        "preferred_username",
        "name",
        "updated_at",
    ] {
        assert!(
            doc["claims_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == claim),
            "{claim}"
        );
    }
}
