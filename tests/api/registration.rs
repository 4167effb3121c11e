//! Dynamic client registration (RFC 7591) and management (RFC 7592), in each policy mode.

use portcullis::settings::{RegistrationPolicy, Settings};
use serde_json::{json, Value};

use crate::helpers::*;

impl TestApp {
    pub async fn register(&self, bearer: Option<&str>, body: &Value) -> reqwest::Response {
        let mut req = self.http.post(self.url("/oauth2/register")).json(body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// An initial access token made the way the CLI makes it.
    pub fn initial_token(&self, args: &[&str]) -> String {
        let cli = Cli::for_db(&self.db);
        let mut all = vec!["registration-token", "create"];
        all.extend_from_slice(args);
        cli.ok(&all).trim().to_string()
    }
}

fn web_app() -> Value {
    json!({
        "redirect_uris": ["https://photos.example/cb"],
        "client_name": "Photos <b>Pro</b>",
        "client_uri": "https://photos.example",
        "contacts": ["dev@photos.example"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "read",
    })
}

async fn registered(app: &TestApp) -> Value {
    let token = app.initial_token(&[]);
    let r = app.register(Some(&token), &web_app()).await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

#[tokio::test]
async fn token_policy_registers_with_an_initial_access_token() {
    let app = spawn_app().await;
    assert_eq!(
        app.settings.registration.policy,
        RegistrationPolicy::Token,
        "the default"
    );
    // Without a token: 401.
    let r = app.register(None, &web_app()).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(
        app.register(Some("pc_iat_wrong"), &web_app())
            .await
            .status(),
        401
    );

    let body = registered(&app).await;
    // RFC 7591 §3.2.1: the information response.
    for field in [
        "client_id",
        "client_secret",
        "client_id_issued_at",
        "registration_access_token",
        "registration_client_uri",
    ] {
        assert!(body.get(field).is_some(), "{field} missing: {body}");
    }
    assert_eq!(body["client_secret_expires_at"], 0);
    assert_eq!(body["redirect_uris"], json!(["https://photos.example/cb"]));
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["client_name"], "Photos <b>Pro</b>");
    assert_eq!(
        body["registration_client_uri"],
        format!(
            "{}/oauth2/register/{}",
            app.base,
            body["client_id"].as_str().unwrap()
        )
    );

    // The registered client works at the token endpoint, and the CLI sees it.
    let id = body["client_id"].as_str().unwrap();
    let listed = Cli::for_db(&app.db).ok(&["client", "list"]);
    assert!(listed.contains(id), "{listed}");
    // The registration access token is stored hashed only.
    let row = portcullis::store::clients::find(&app.pool, id)
        .await
        .unwrap()
        .unwrap();
    let rat = portcullis::domain::secret::Secret::from_presented(
        body["registration_access_token"].as_str().unwrap(),
    );
    assert_eq!(row.registration_access_token_hash, Some(rat.digest()));
}

#[tokio::test]
async fn an_expired_or_used_up_initial_token_is_refused() {
    let app = spawn_app().await;
    let once = app.initial_token(&["--uses", "1"]);
    assert_eq!(app.register(Some(&once), &web_app()).await.status(), 201);
    assert_eq!(
        app.register(Some(&once), &web_app()).await.status(),
        401,
        "used up"
    );

    let expiring = app.initial_token(&["--expires-in", "3600"]);
    assert_eq!(
        app.register(Some(&expiring), &web_app()).await.status(),
        201
    );
    app.sql(
        "UPDATE registration_tokens SET expires_at = created_at - 1 WHERE expires_at IS NOT NULL",
    )
    .await;
    assert_eq!(
        app.register(Some(&expiring), &web_app()).await.status(),
        401,
        "expired"
    );

    // A failed validation does not spend a use.
    let twice = app.initial_token(&["--uses", "1"]);
    let r = app
        .register(
            Some(&twice),
            &json!({"redirect_uris": ["http://evil.example/cb"]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(app.register(Some(&twice), &web_app()).await.status(), 201);
}

#[tokio::test]
async fn open_policy_needs_no_token_and_closed_has_no_endpoint() {
    let open = spawn_app_with(|s| s.registration.policy = RegistrationPolicy::Open).await;
    assert_eq!(open.register(None, &web_app()).await.status(), 201);
    let closed = spawn_app_with(|s| s.registration.policy = RegistrationPolicy::Closed).await;
    assert_eq!(closed.register(None, &web_app()).await.status(), 404);
    let meta: Value = closed
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        meta.get("registration_endpoint").is_none(),
        "RFC 8414: only when registration is on"
    );
}

#[tokio::test]
async fn registration_is_rate_limited_per_ip() {
    let app = spawn_app_with(|s| {
        s.registration.policy = RegistrationPolicy::Open;
        s.registration.max_per_ip = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.register(None, &web_app()).await.status(), 201);
    }
    let r = app.register(None, &web_app()).await;
    assert_eq!(r.status(), 429);
    // RFC 6585 §4: a 429 MAY say how long to wait; ours says when the window has passed.
    let window = Settings::default().registration.window_secs.to_string();
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some(window.as_str())
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

/// Issue 12, point 2: the registration limit is counted before the registration is judged,
/// so a burst of 60 at once cannot exceed it on either backend.
#[tokio::test]
async fn a_burst_of_registrations_cannot_exceed_the_limit() {
    let app = spawn_app_with(|s| {
        s.registration.policy = RegistrationPolicy::Open;
        s.registration.max_per_ip = 5;
    })
    .await;
    let body = web_app();
    let burst = (0..60).map(|_| async { app.register(None, &body).await.status().as_u16() });
    let statuses = futures_util::future::join_all(burst).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 429),
        "{statuses:?}"
    );
    assert!(created <= 5, "{created} registrations against a limit of 5");
    let rows = app.sql("UPDATE clients SET name = 'burst'").await;
    assert_eq!(
        rows, created,
        "every 201 is a stored client, and only those"
    );
    // Refused attempts take their rows back: what the burst left of the limit is still there.
    for _ in created..5 {
        assert_eq!(app.register(None, &body).await.status(), 201);
    }
    assert_eq!(app.register(None, &body).await.status(), 429);
}

/// Each limit counts in its own window: a login, whose window is 15 minutes, used to delete
/// every throttle row older than that, registrations of the last hour included.
#[tokio::test]
async fn a_login_does_not_forget_the_registrations_of_the_hour() {
    let app = spawn_app_with(|s| {
        s.registration.policy = RegistrationPolicy::Open;
        s.registration.max_per_ip = 2;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(app.register(None, &web_app()).await.status(), 201);
    }
    // Both registrations were 20 minutes ago: outside the login window, inside the hour.
    let moved = app
        .sql(&format!(
            "UPDATE throttle_events SET occurred_at = {} WHERE subject LIKE 'register:%'",
            portcullis::now() - 20 * 60
        ))
        .await;
    assert_eq!(moved, 2);
    let r = app.login(&app.browser(), "nobody", "wrong", "/").await;
    assert_eq!(r.status(), 401);
    assert_eq!(app.register(None, &web_app()).await.status(), 429);
}

#[tokio::test]
async fn validation_errors_name_the_rfc_code() {
    let app = spawn_app_with(|s| s.registration.policy = RegistrationPolicy::Open).await;
    // RFC 7591 §3.2.2: invalid_redirect_uri.
    for uris in [
        json!(["http://app.example/cb"]),
        json!(["https://app.example/cb#frag"]),
        json!(["com.example.app:/cb"]),
        json!([]),
    ] {
        let r = app.register(None, &json!({ "redirect_uris": uris })).await;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_redirect_uri", "{uris}");
        assert!(body["error_description"].as_str().unwrap().len() > 5);
    }
    // RFC 8252: loopback http and, for native (public) clients, private-use schemes.
    let native = json!({"redirect_uris": ["http://127.0.0.1/cb", "com.example.app:/cb"], "token_endpoint_auth_method": "none"});
    let r = app.register(None, &native).await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert!(
        body.get("client_secret").is_none(),
        "public clients get no secret"
    );
    // invalid_client_metadata.
    for bad in [
        json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
        json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
        json!({"redirect_uris": ["https://a.example/cb"], "scope": "admin"}),
        json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "javascript:alert(1)"}),
        json!({"redirect_uris": "https://a.example/cb"}),
    ] {
        let r = app.register(None, &bad).await;
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "invalid_client_metadata",
            "{bad}"
        );
    }
    // Not JSON at all.
    let r = app
        .http
        .post(app.url("/oauth2/register"))
        .body("redirect_uris=x")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        portcullis::store::clients::list(&app.pool)
            .await
            .unwrap()
            .len(),
        1,
        "nothing half-written"
    );
}

#[tokio::test]
async fn rfc7592_read_update_delete() {
    let app = spawn_app().await;
    let reg = registered(&app).await;
    let uri = reg["registration_client_uri"].as_str().unwrap().to_string();
    let rat = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = reg["client_secret"].as_str().unwrap().to_string();
    let id = reg["client_id"].as_str().unwrap().to_string();

    // Read (RFC 7592 §2.1).
    let r = app.http.get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let read: Value = r.json().await.unwrap();
    assert_eq!(read["client_id"], id.as_str());
    assert!(read.get("client_secret").is_none());
    // A wrong token: 401 (§2), for this client and for another's id alike.
    assert_eq!(
        app.http
            .get(&uri)
            .bearer_auth("pc_rat_wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(app.http.get(&uri).send().await.unwrap().status(), 401);
    let other = registered(&app).await;
    assert_eq!(
        app.http
            .get(other["registration_client_uri"].as_str().unwrap())
            .bearer_auth(&rat)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // Update replaces the metadata (§2.2): omitted fields are gone.
    let update = json!({"client_id": id, "client_secret": secret, "redirect_uris": ["https://photos.example/new"], "client_name": "Photos 2"});
    let r = app
        .http
        .put(&uri)
        .bearer_auth(&rat)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://photos.example/new"])
    );
    assert_eq!(updated["client_name"], "Photos 2");
    assert!(updated.get("client_uri").is_none());
    assert_eq!(updated["grant_types"], json!(["authorization_code"]));
    // A mismatched client_id or secret is refused.
    let wrong_id = json!({"client_id": "other", "redirect_uris": ["https://photos.example/cb"]});
    assert_eq!(
        app.http
            .put(&uri)
            .bearer_auth(&rat)
            .json(&wrong_id)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let wrong_secret = json!({"client_id": id, "client_secret": "nope", "redirect_uris": ["https://photos.example/cb"]});
    assert_eq!(
        app.http
            .put(&uri)
            .bearer_auth(&rat)
            .json(&wrong_secret)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    // Tokens work until the client is deleted (§2.3), then stop.
    let t: Value = app
        .token(
            Some((&id, &secret)),
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["error"], "invalid_grant", "the client authenticates");
    let r = app
        .http
        .delete(&uri)
        .bearer_auth(&rat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.http
            .get(&uri)
            .bearer_auth(&rat)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_oauth_error(
        app.token(
            Some((&id, &secret)),
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
}

#[tokio::test]
async fn a_registered_client_completes_the_code_flow() {
    let app = spawn_app().await;
    app.add_user("dora").await;
    let reg = registered(&app).await;
    let client = TestClient {
        id: reg["client_id"].as_str().unwrap().into(),
        secret: reg["client_secret"].as_str().map(str::to_string),
        redirect_uri: "https://photos.example/cb".into(),
    };
    let browser = app.browser();
    let path = format!(
        "/oauth2/authorize?response_type=code&client_id={}&scope=read",
        client.id
    );
    app.login(&browser, "dora", PASSWORD, &path).await;
    let page = browser
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The consent page shows the client's own words as text, never markup.
    assert!(page.contains("Photos &#60;b&#62;Pro&#60;/b&#62;"), "{page}");
    assert!(page.contains("https://photos.example"));
    let r = app.submit_consent(&browser, &page, "allow", None).await;
    let code = query_of(&location(&r))["code"].clone();
    assert_eq!(app.exchange(&client, &code, &[]).await.status(), 200);
}

#[tokio::test]
async fn rfc7592_bearer_scheme_is_case_insensitive_and_required() {
    let app = spawn_app().await;
    let reg = registered(&app).await;
    let uri = reg["registration_client_uri"].as_str().unwrap().to_string();
    let rat = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let get = |auth: String| app.http.get(&uri).header("authorization", auth).send();
    // RFC 7235 §2.1 / RFC 6750 §2.1: the scheme name is case-insensitive.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        assert_eq!(
            get(format!("{scheme} {rat}")).await.unwrap().status(),
            200,
            "{scheme}"
        );
    }
    // The token under another scheme is no bearer token.
    assert_eq!(get(format!("Basic {rat}")).await.unwrap().status(), 401);
    assert_eq!(get(rat.clone()).await.unwrap().status(), 401);
}

/// Issue 12, point 6 (RFC 9700 §4.11.2): with open registration anyone can register a phishing
/// page as a redirect URI. An error for such a client is not redirected before the user has
/// signed in: the user sees the application's name and where the link goes.
#[tokio::test]
async fn errors_for_self_registered_clients_are_not_an_open_redirector() {
    let app = spawn_app_with(|s| s.registration.policy = RegistrationPolicy::Open).await;
    let r = app
        .register(
            None,
            &json!({"redirect_uris": ["https://phish.example/login"], "client_name": "Totally Legit"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let client_id = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!(
        "/oauth2/authorize?{}",
        encode_pairs(&[
            ("response_type", "token"),
            ("client_id", &client_id),
            ("state", "s1")
        ])
    );

    // Not signed in: a page, no Location.
    let stranger = app.browser();
    let r = stranger.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains("Totally Legit"), "{html}");
    assert!(html.contains("Return to phish.example"), "{html}");
    // The link is the error response RFC 6749 §4.1.2.1 describes, for the user to follow.
    let href = html
        .split("href=\"")
        .map(|s| s.split('"').next().unwrap().replace("&#38;", "&"))
        .find(|h| h.starts_with("https://phish.example/login?"))
        .expect("a link back to the client");
    let q = query_of(&href);
    assert_eq!(q["error"], "unsupported_response_type");
    assert_eq!(q["state"], "s1");
    assert_eq!(q["iss"], app.base);

    // Signed in, the same error is redirected as usual.
    app.add_user("erin").await;
    let b = app.browser();
    assert_eq!(app.login(&b, "erin", PASSWORD, "/").await.status(), 303);
    let r = b.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("https://phish.example/login?error=unsupported_response_type"));

    // A client the operator registered is trusted: redirected at once, signed in or not.
    let vetted = app.confidential_client().await;
    let r = stranger
        .get(app.url(&format!(
            "/oauth2/authorize?{}",
            encode_pairs(&[("response_type", "token"), ("client_id", &vetted.id)])
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(query_of(&location(&r))["error"] == "unsupported_response_type");
}
