//! OpenID Connect on the authorization-code flow (issue 11): id_tokens, `nonce`, discovery. A
//! stock relying party (the `openidconnect` crate) and an independent JOSE library
//! (jsonwebtoken on RustCrypto) check what Portcullis issues.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

use crate::helpers::*;

async fn openid_client(app: &TestApp) -> TestClient {
    app.client_with(
        |s| s.scope = "openid profile read write".into(),
        portcullis::oauth::accounts::Lifetimes::default(),
    )
    .await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_stock_relying_party_discovers_signs_in_and_verifies_the_id_token() {
    let app = spawn_app().await;
    app.add_user("olivia").await;
    let c = openid_client(&app).await;
    let http = http();
    // OpenID Connect Discovery 1.0 §4: from the issuer alone, with the JWKS.
    let provider =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        provider,
        ClientId::new(c.id.clone()),
        Some(ClientSecret::new(c.secret.clone().unwrap())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("read".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let query: Vec<(String, String)> = auth_url.query_pairs().into_owned().collect();
    let pairs: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let signed_in_before = portcullis::now();
    let back = app.authorize_as("olivia", &pairs).await;
    assert_eq!(&back["state"], csrf.secret());

    let token = client
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = token.id_token().expect("an id_token with the openid scope");
    // Core 1.0 §3.1.3.7: signature from the JWKS, iss, aud, exp, iat and the nonce.
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("a valid id_token");
    let user = portcullis::store::users::find_by_username(&app.pool, "olivia")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims.subject().as_str(), user.id);
    let auth_time = claims.auth_time().expect("auth_time").timestamp();
    assert!(auth_time >= signed_in_before - 1 && auth_time <= portcullis::now());
    // §3.1.3.8: at_hash binds the access token issued with it.
    let expected = AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));
    // Another nonce (a replayed id_token) is refused by the library.
    assert!(id_token
        .claims(&id_verifier, &Nonce::new("other".into()))
        .is_err());

    // Refresh (Core 1.0 §12): the library verifies the new id_token, same user and sign-in.
    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    let again = refreshed
        .id_token()
        .expect("a refreshed id_token")
        .claims(&id_verifier, |nonce: Option<&Nonce>| match nonce {
            None => Ok(()),
            Some(_) => Err("a refreshed id_token carries no nonce".to_string()),
        })
        .expect("a valid refreshed id_token");
    assert_eq!(again.subject(), claims.subject());
    assert_eq!(again.auth_time(), claims.auth_time());

    // Core 1.0 §5.3: userinfo from the discovered endpoint; the library checks that its `sub`
    // is the id_token's (§5.3.2) and reads the profile claims.
    let info: openidconnect::core::CoreUserInfoClaims = client
        .user_info(
            refreshed.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .expect("userinfo_endpoint in discovery")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(
        info.preferred_username().map(|u| u.as_str()),
        Some("olivia")
    );
}

#[tokio::test]
async fn the_id_token_carries_the_claims_core_requires() {
    let app = spawn_app().await;
    app.add_user("pat").await;
    let c = openid_client(&app).await;
    let back = app
        .authorize_as(
            "pat",
            &[
                ("response_type", "code"),
                ("client_id", &c.id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid read"),
                ("state", "s1"),
                ("nonce", "n-0S6_WzA2Mj"),
            ],
        )
        .await;
    let r = app.exchange(&c, &back["code"], &[]).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let id_token = body["id_token"].as_str().expect("id_token");

    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "the default (Core 1.0 §3.1.3.7)"
    );
    let jwks: jsonwebtoken::jwk::JwkSet = app.get("/oauth2/jwks").await.json().await.unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in the JWKS");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&c.id]);
    validation.set_issuer(&[&app.base]);
    let claims: Value = jsonwebtoken::decode(
        id_token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    // Core 1.0 §2.
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["aud"], c.id.as_str());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3600);
    assert!(claims["auth_time"].as_i64().unwrap() <= iat);
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        claims["at_hash"].as_str().unwrap(),
        portcullis::oauth::id_token::at_hash(
            portcullis::keys::Algorithm::Rs256,
            body["access_token"].as_str().unwrap()
        )
    );
}

#[tokio::test]
async fn without_the_openid_scope_there_is_no_id_token() {
    let app = spawn_app().await;
    app.add_user("quinn").await;
    let c = openid_client(&app).await;
    let back = app
        .authorize_as(
            "quinn",
            &[
                ("response_type", "code"),
                ("client_id", &c.id),
                ("redirect_uri", REDIRECT),
                ("scope", "read"),
                ("nonce", "n"),
            ],
        )
        .await;
    let body: Value = app
        .exchange(&c, &back["code"], &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(body["access_token"].is_string());
    assert!(body.get("id_token").is_none(), "{body}");
}

#[tokio::test]
async fn a_nonce_of_255_characters_is_kept_and_a_longer_one_refused() {
    let app = spawn_app().await;
    app.add_user("rory").await;
    let c = openid_client(&app).await;
    // Multi-byte: MariaDB's column counts characters, not bytes; nothing is truncated.
    let longest = "é".repeat(255);
    let back = app
        .authorize_as(
            "rory",
            &[
                ("response_type", "code"),
                ("client_id", &c.id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("nonce", &longest),
            ],
        )
        .await;
    let body: Value = app
        .exchange(&c, &back["code"], &[])
        .await
        .json()
        .await
        .unwrap();
    let claims = claims_of(body["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], longest.as_str());

    // One more: refused by redirect (RFC 6749 §4.1.2.1 invalid_request), state kept.
    let too_long = "é".repeat(256);
    let browser = app.browser();
    let path = format!(
        "/oauth2/authorize?{}",
        encode_pairs(&[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s2"),
            ("nonce", &too_long),
        ])
    );
    let r = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let q = query_of(&location(&r));
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "s2");
}

#[tokio::test]
async fn openid_discovery_extends_the_rfc_8414_document() {
    let app = spawn_app().await;
    let oauth: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    let r = app.get("/.well-known/openid-configuration").await;
    assert_eq!(r.status(), 200);
    let openid: Value = r.json().await.unwrap();
    // Same source: every RFC 8414 member is there with the same value.
    for (k, v) in oauth.as_object().unwrap() {
        assert_eq!(&openid[k], v, "{k}");
    }
    // Discovery 1.0 §3: the required members, and what is not supported said so.
    assert_eq!(openid["issuer"], app.base);
    assert_eq!(openid["jwks_uri"], app.url("/oauth2/jwks"));
    assert_eq!(
        openid["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        openid["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        openid["response_modes_supported"],
        serde_json::json!(["query"])
    );
    assert!(openid["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&"RS256".into()));
    assert!(openid["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&"openid".into()));
    assert_eq!(openid["request_uri_parameter_supported"], false);
    assert_eq!(openid["request_parameter_supported"], false);
}

/// The id_token from a code flow for `client` with `scope`, and the whole token response.
async fn id_token_for(
    app: &TestApp,
    user: &str,
    client: &TestClient,
    scope: &str,
) -> (String, Value) {
    let body = app.tokens_for(client, user, scope).await;
    (
        body["id_token"].as_str().expect("id_token").to_string(),
        body,
    )
}

/// Verifies with jsonwebtoken (RustCrypto), the key found by kid in the served JWKS.
async fn verify_id_token(app: &TestApp, token: &str, client_id: &str) -> jsonwebtoken::Algorithm {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = app.get("/oauth2/jwks").await.json().await.unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap();
    header.alg
}

#[tokio::test]
async fn a_client_registered_for_es256_or_eddsa_gets_id_tokens_signed_so() {
    let app = spawn_app_with(|s| {
        s.registration.policy = portcullis::settings::RegistrationPolicy::Open;
        s.registration.allowed_scope = "openid read".into();
    })
    .await;
    app.add_user("sam").await;
    for (alg, expected) in [
        ("ES256", jsonwebtoken::Algorithm::ES256),
        ("EdDSA", jsonwebtoken::Algorithm::EdDSA),
        ("RS256", jsonwebtoken::Algorithm::RS256),
    ] {
        // OpenID Connect Dynamic Client Registration 1.0 §2.
        let r = app
            .register(
                None,
                &serde_json::json!({
                    "redirect_uris": [REDIRECT],
                    "scope": "openid",
                    "id_token_signed_response_alg": alg,
                }),
            )
            .await;
        assert_eq!(r.status(), 201);
        let reg: Value = r.json().await.unwrap();
        assert_eq!(reg["id_token_signed_response_alg"], alg);
        let client = TestClient {
            id: reg["client_id"].as_str().unwrap().into(),
            secret: reg["client_secret"].as_str().map(String::from),
            redirect_uri: REDIRECT.into(),
        };
        let (token, body) = id_token_for(&app, "sam", &client, "openid").await;
        assert_eq!(verify_id_token(&app, &token, &client.id).await, expected);
        let claims = claims_of(&token);
        // Core 1.0 §3.1.3.6: the hash of the signature's algorithm (SHA-512 for Ed25519).
        let ours = portcullis::keys::Algorithm::from_name(alg).unwrap();
        assert_eq!(
            claims["at_hash"].as_str().unwrap(),
            portcullis::oauth::id_token::at_hash(ours, body["access_token"].as_str().unwrap())
        );
    }
    // `none`, HMAC and unknown names are refused (RFC 7591 §3.2.2 invalid_client_metadata).
    for alg in ["none", "HS256", "rs256", "PS256"] {
        let r = app
            .register(
                None,
                &serde_json::json!({
                    "redirect_uris": [REDIRECT],
                    "scope": "openid",
                    "id_token_signed_response_alg": alg,
                }),
            )
            .await;
        assert_eq!(r.status(), 400, "{alg}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_client_metadata", "{alg}");
    }
}

#[tokio::test]
async fn the_cli_sets_a_clients_id_token_algorithm() {
    let app = spawn_app().await;
    app.add_user("tess").await;
    let cli = Cli::for_db(&app.db);
    let out = cli.ok(&[
        "client",
        "add",
        "--name",
        "Edwards",
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "openid",
        "--id-token-alg",
        "EdDSA",
        "--json",
    ]);
    let c: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(c["id_token_signed_response_alg"], "EdDSA");
    let client = TestClient {
        id: c["client_id"].as_str().unwrap().into(),
        secret: c["client_secret"].as_str().map(String::from),
        redirect_uri: REDIRECT.into(),
    };
    let (token, _) = id_token_for(&app, "tess", &client, "openid").await;
    assert_eq!(
        verify_id_token(&app, &token, &client.id).await,
        jsonwebtoken::Algorithm::EdDSA
    );
    let err = cli.fails(&[
        "client",
        "add",
        "--name",
        "X",
        "--redirect-uri",
        REDIRECT,
        "--id-token-alg",
        "HS256",
    ]);
    assert!(err.contains("not one of RS256, ES256, EdDSA"), "{err}");
}

pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_refresh_brings_a_new_id_token_for_the_same_sign_in() {
    let app = spawn_app().await;
    app.add_user("uma").await;
    let c = openid_client(&app).await;
    let (first, body) = id_token_for(&app, "uma", &c, "openid read").await;
    let first = claims_of(&first);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = app
        .refresh(&c, body["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(r.status(), 200);
    let refreshed: Value = r.json().await.unwrap();
    let token = refreshed["id_token"].as_str().expect("a new id_token");
    verify_id_token(&app, token, &c.id).await;
    let again = claims_of(token);
    // OpenID Connect Core 1.0 §12.2: same iss, sub, aud and auth_time; a new iat; no nonce.
    for claim in ["iss", "sub", "aud", "auth_time"] {
        assert_eq!(again[claim], first[claim], "{claim}");
    }
    assert!(again["iat"].as_i64() > first["iat"].as_i64());
    assert!(again.get("nonce").is_none(), "{again}");
    assert_eq!(
        again["at_hash"].as_str().unwrap(),
        portcullis::oauth::id_token::at_hash(
            portcullis::keys::Algorithm::Rs256,
            refreshed["access_token"].as_str().unwrap()
        )
    );
    // A refresh narrowed to a scope without openid (RFC 6749 §6) brings none.
    let r = app
        .refresh(
            &c,
            refreshed["refresh_token"].as_str().unwrap(),
            &[("scope", "read")],
        )
        .await;
    let narrowed: Value = r.json().await.unwrap();
    assert_eq!(narrowed["scope"], "read", "{narrowed}");
    assert!(narrowed.get("id_token").is_none(), "{narrowed}");
}
