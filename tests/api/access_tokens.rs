//! RFC 9068 JWT access tokens (per client `access_token_format`), RFC 8707 resource indicators
//! (`[[resources]]`, `invalid_target`, the audience), and the id_token's `sid`.

use portcullis::oauth::accounts::Lifetimes;
use portcullis::settings::{ResourceSettings, Settings};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::openid::claims_of;

const API: &str = "https://api.example.com";
const REPORTS: &str = "https://reports.example.com/v1";

fn with_resources(s: &mut Settings) {
    s.resources = vec![
        ResourceSettings {
            identifier: API.into(),
            scopes: vec!["read".into(), "write".into()],
        },
        ResourceSettings {
            identifier: REPORTS.into(),
            scopes: vec!["reports".into()],
        },
    ];
}

/// A confidential client with scopes "openid profile read write reports", and `metadata`.
async fn client(app: &TestApp, metadata: Value) -> TestClient {
    app.client_with_metadata(
        |s| s.scope = "openid profile read write reports".into(),
        Lifetimes::default(),
        metadata,
    )
    .await
}

async fn client_credentials(
    app: &TestApp,
    c: &TestClient,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    app.token(Some((&c.id, c.secret.as_deref().unwrap())), &form)
        .await
}

/// Verifies an access token with jsonwebtoken (RustCrypto), an independent JOSE library, the
/// key found by kid in the served JWKS, as a resource server for `audience` would.
async fn verify_access_token(
    app: &TestApp,
    token: &str,
    audience: &str,
) -> (jsonwebtoken::Header, Value) {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = app.get("/oauth2/jwks").await.json().await.unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in the JWKS");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[app.settings.issuer()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap_or_else(|e| panic!("{e}: {token}"));
    (header, data.claims)
}

#[tokio::test]
async fn a_jwt_client_gets_rfc_9068_access_tokens_signed_with_each_algorithm() {
    let app = spawn_app_with(with_resources).await;
    let rs = app.resource_server().await;
    for alg in ["RS256", "ES256", "EdDSA"] {
        let c = client(
            &app,
            json!({ "access_token_format": "jwt", "id_token_signed_response_alg": alg }),
        )
        .await;
        let r = client_credentials(&app, &c, &[("scope", "read"), ("resource", API)]).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        let (header, claims) = verify_access_token(&app, token, API).await;
        // RFC 9068 §2.1: typ at+jwt, so an id_token never passes for an access token.
        assert_eq!(header.typ.as_deref(), Some("at+jwt"), "{alg}");
        assert_eq!(
            format!("{:?}", header.alg).to_uppercase(),
            alg.to_uppercase()
        );
        // §2.2: iss, exp, aud, sub, client_id, iat, jti; scope as granted. Client
        // credentials act for no user: sub is the client.
        assert_eq!(claims["iss"], app.settings.issuer());
        assert_eq!(claims["aud"], API);
        assert_eq!(claims["sub"], c.id);
        assert_eq!(claims["client_id"], c.id);
        assert_eq!(claims["scope"], "read");
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
        assert!(claims.get("auth_time").is_none());
        // Short-lived by default (tokens.jwt_access_token_ttl_secs), and the response agrees.
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert_eq!(lifetime, 300);
        assert_eq!(body["expires_in"], 300);
        assert_eq!(body["token_type"], "Bearer");

        // Stored by its digest: introspection and revocation work as for opaque tokens.
        let info: Value = app.introspect(&rs, token, None).await.json().await.unwrap();
        assert_eq!(info["active"], true);
        assert_eq!(info["aud"], API);
        assert_eq!(info["client_id"], c.id);
        assert_eq!(app.revoke(&c, token).await.status(), 200);
        let info: Value = app.introspect(&rs, token, None).await.json().await.unwrap();
        assert_eq!(info, json!({ "active": false }));
    }

    // A JWT no one issued (its payload altered) is not a token introspection knows.
    let c = client(&app, json!({ "access_token_format": "jwt" })).await;
    let body: Value = client_credentials(&app, &c, &[])
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut claims = claims_of(token);
    claims["scope"] = json!("read write");
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged = parts.join(".");
    let info: Value = app
        .introspect(&rs, &forged, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info, json!({ "active": false }));
    // Without a resource, the audience is the issuer (tokens.default_audience unset).
    let (_, claims) = verify_access_token(&app, token, app.settings.issuer()).await;
    assert_eq!(claims["scope"], body["scope"]);
}

#[tokio::test]
async fn an_opaque_client_is_unchanged_and_the_default_audience_applies_to_jwts() {
    let app = spawn_app_with(|s| {
        with_resources(s);
        s.tokens.default_audience = "https://apis.example.com".into();
    })
    .await;
    let opaque = client(&app, json!({})).await;
    let body: Value = client_credentials(&app, &opaque, &[("scope", "read")])
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("pc_at_"));
    assert_eq!(body["expires_in"], 3600);
    let jwt = client(&app, json!({ "access_token_format": "jwt" })).await;
    let body: Value = client_credentials(&app, &jwt, &[("scope", "read")])
        .await
        .json()
        .await
        .unwrap();
    let (_, claims) = verify_access_token(
        &app,
        body["access_token"].as_str().unwrap(),
        "https://apis.example.com",
    )
    .await;
    assert_eq!(claims["aud"], "https://apis.example.com");
}

#[tokio::test]
async fn a_code_flow_gives_a_jwt_for_the_user_that_userinfo_and_refresh_accept() {
    let app = spawn_app_with(with_resources).await;
    app.add_user("alice").await;
    let c = client(&app, json!({ "access_token_format": "jwt" })).await;
    let q = app
        .authorize_as(
            "alice",
            &[
                ("response_type", "code"),
                ("client_id", &c.id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid read write reports"),
                ("resource", API),
                ("nonce", "n-1"),
            ],
        )
        .await;
    let r = app.exchange(&c, &q["code"], &[("resource", API)]).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let body: Value = r.json().await.unwrap();
    // RFC 8707 + RFC 6749 §3.3: the grant is narrowed to what the resource accepts; openid
    // stays (the server's own scope).
    assert_eq!(body["scope"], "openid read write");
    let access = body["access_token"].as_str().unwrap();
    let (_, claims) = verify_access_token(&app, access, API).await;
    let user_id = claims_of(body["id_token"].as_str().unwrap())["sub"].clone();
    assert_eq!(claims["sub"], user_id);
    assert_eq!(claims["client_id"], c.id);
    assert_eq!(claims["scope"], "openid read write");
    // RFC 9068 §2.2.1: when the user signed in.
    let id_claims = claims_of(body["id_token"].as_str().unwrap());
    assert_eq!(claims["auth_time"], id_claims["auth_time"]);
    // The id_token's at_hash is of the JWT (Core 1.0 §3.1.3.6).
    assert_eq!(
        id_claims["at_hash"],
        portcullis::oauth::id_token::at_hash(portcullis::keys::Algorithm::Rs256, access)
    );

    // Userinfo takes it like any access token granted openid.
    let r = app
        .http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["sub"], user_id);

    // RFC 8707 §2.2: a refresh for another resource than the grant's is invalid_target; for
    // the same (or none named) it gets a JWT for the same audience and user.
    let refresh = body["refresh_token"].as_str().unwrap();
    let r = app.refresh(&c, refresh, &[("resource", REPORTS)]).await;
    assert_oauth_error(r, 400, "invalid_target").await;
    let r = app.refresh(&c, refresh, &[("resource", API)]).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let (_, again) = verify_access_token(&app, body["access_token"].as_str().unwrap(), API).await;
    assert_eq!(again["sub"], user_id);
    assert_eq!(again["auth_time"], claims["auth_time"]);
    assert_ne!(again["jti"], claims["jti"]);
}

#[tokio::test]
async fn resource_indicators_are_checked_at_both_endpoints() {
    let app = spawn_app_with(with_resources).await;
    app.add_user("alice").await;
    let c = client(&app, json!({})).await;
    let rs = app.resource_server().await;

    // RFC 8707 §2: an unknown resource at the authorization endpoint is invalid_target, sent
    // back to the client; so is a second resource (one audience per token).
    for query in [
        format!("resource={}", urlencode("https://unknown.example.com")),
        format!("resource={}", urlencode("https://api.example.com/")),
        format!(
            "resource={}&resource={}",
            urlencode(API),
            urlencode(REPORTS)
        ),
    ] {
        let path = format!(
            "/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read&state=s1&{query}",
            c.id,
            urlencode(REDIRECT)
        );
        let r = app.browser().get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{query}");
        let back = query_of(&location(&r));
        assert_eq!(back["error"], "invalid_target", "{query}");
        assert_eq!(back["state"], "s1");
    }
    // Nothing the resource accepts in the scope: invalid_scope.
    let path = format!(
        "/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read&resource={}",
        c.id,
        urlencode(REDIRECT),
        urlencode(REPORTS)
    );
    let r = app.browser().get(app.url(&path)).send().await.unwrap();
    assert_eq!(query_of(&location(&r))["error"], "invalid_scope");

    // At the token endpoint (RFC 8707 §2.2, RFC 6749 §5.2 shape): 400 invalid_target.
    let r = client_credentials(&app, &c, &[("resource", "https://unknown.example.com")]).await;
    assert_oauth_error(r, 400, "invalid_target").await;
    let r = client_credentials(&app, &c, &[("resource", "not a uri")]).await;
    assert_oauth_error(r, 400, "invalid_target").await;
    let r = client_credentials(&app, &c, &[("resource", API), ("scope", "reports")]).await;
    assert_oauth_error(r, 400, "invalid_scope").await;
    // Without a scope, the client's whole scope narrowed to the resource's.
    let r = client_credentials(&app, &c, &[("resource", REPORTS)]).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["scope"], "openid profile reports");
    // An opaque token for a resource introspects with that audience (RFC 7662 §2.2 `aud`).
    let info: Value = app
        .introspect(&rs, body["access_token"].as_str().unwrap(), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["aud"], REPORTS);

    // A code issued for one resource is not exchanged for another, nor for one when it was
    // issued for none; the failed attempts leave it usable.
    let q = app
        .authorize_as(
            "alice",
            &[
                ("response_type", "code"),
                ("client_id", &c.id),
                ("redirect_uri", REDIRECT),
                ("scope", "read"),
                ("resource", API),
            ],
        )
        .await;
    let r = app.exchange(&c, &q["code"], &[("resource", REPORTS)]).await;
    assert_oauth_error(r, 400, "invalid_target").await;
    let r = app.exchange(&c, &q["code"], &[]).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let info: Value = app
        .introspect(&rs, body["access_token"].as_str().unwrap(), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["aud"], API);
    let plain = app.tokens_for(&c, "alice", "read").await;
    let info: Value = app
        .introspect(&rs, plain["access_token"].as_str().unwrap(), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(info.get("aud").is_none(), "{info}");
    let r = app
        .refresh(
            &c,
            plain["refresh_token"].as_str().unwrap(),
            &[("resource", API)],
        )
        .await;
    assert_oauth_error(r, 400, "invalid_target").await;
}

#[tokio::test]
async fn the_id_token_names_the_sign_in_with_sid() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let c = client(&app, json!({})).await;
    let other = client(&app, json!({})).await;
    let browser = app.browser();
    let mut sids = Vec::new();
    let mut refresh_token = String::new();
    for client in [&c, &other] {
        let q = app
            .authorize_in(
                &browser,
                "alice",
                &[
                    ("response_type", "code"),
                    ("client_id", &client.id),
                    ("redirect_uri", REDIRECT),
                    ("scope", "openid"),
                ],
            )
            .await;
        let body: Value = app
            .exchange(client, &q["code"], &[])
            .await
            .json()
            .await
            .unwrap();
        sids.push(claims_of(body["id_token"].as_str().unwrap())["sid"].clone());
        refresh_token = body["refresh_token"].as_str().unwrap().to_string();
    }
    // One sign-in, one sid, whichever client it signed in to (Front-Channel Logout 1.0 §3).
    assert!(sids[0].as_str().is_some_and(|s| s.len() >= 22), "{sids:?}");
    assert_eq!(sids[0], sids[1]);
    // A refresh keeps it (Core 1.0 §12.2: the same sign-in).
    let body: Value = app
        .refresh(&other, &refresh_token, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims_of(body["id_token"].as_str().unwrap())["sid"],
        sids[0]
    );
    // Another browser's sign-in has its own, and it reveals nothing of the session cookie.
    let body = app.tokens_for(&c, "alice", "openid").await;
    let sid = claims_of(body["id_token"].as_str().unwrap())["sid"].clone();
    assert_ne!(sid, sids[0]);
}

#[tokio::test]
async fn registration_and_the_cli_set_the_access_token_format() {
    let app = spawn_app_with(|s| {
        s.registration.policy = portcullis::settings::RegistrationPolicy::Open;
    })
    .await;
    let register = |body: Value| {
        app.http
            .post(app.url("/oauth2/register"))
            .json(&body)
            .send()
    };
    let r = register(json!({
        "redirect_uris": [REDIRECT],
        "access_token_format": "jwt",
    }))
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["access_token_format"], "jwt");
    // RFC 7591 §3.2.2: a value the server does not accept is invalid_client_metadata.
    for bad in [json!("JWT"), json!("paseto"), json!(1)] {
        let r = register(json!({ "redirect_uris": [REDIRECT], "access_token_format": bad }))
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_client_metadata", "{bad}");
    }

    let cli = Cli::for_db(&app.db);
    let out = cli.ok(&[
        "client",
        "add",
        "--name",
        "api",
        "--scope",
        "read",
        "--grant-type",
        "client_credentials",
        "--access-token-format",
        "jwt",
        "--json",
    ]);
    let added: Value = serde_json::from_str(&out).unwrap();
    let id = added["client_id"].as_str().unwrap();
    let shown: Value = serde_json::from_str(&cli.ok(&["client", "show", id])).unwrap();
    assert_eq!(shown["access_token_format"], "jwt");
    let err = cli.fails(&[
        "client",
        "add",
        "--name",
        "x",
        "--access-token-format",
        "paseto",
    ]);
    assert!(err.contains("paseto"), "{err}");
}
