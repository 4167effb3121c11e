//! A stock OAuth client library (the `oauth2` crate) completes the flow unmodified: its PKCE,
//! code exchange (Basic auth, form-urlencoded credentials) and refresh.

use oauth2::basic::{BasicClient, BasicTokenType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};

use crate::helpers::*;

#[tokio::test]
async fn oauth2_crate_pkce_code_exchange_and_refresh() {
    let app = spawn_app().await;
    app.add_user("xena").await;
    let c = app.confidential_client().await;
    let client = BasicClient::new(ClientId::new(c.id.clone()))
        .set_client_secret(ClientSecret::new(c.secret.clone().unwrap()))
        .set_auth_uri(AuthUrl::new(app.url("/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .add_scope(Scope::new("write".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser part: follow the library's URL through login and consent.
    let query: Vec<(String, String)> = auth_url.query_pairs().into_owned().collect();
    let pairs: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let back = app.authorize_as("xena", &pairs).await;
    assert_eq!(&back["state"], csrf.secret());

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = client
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    assert_eq!(*token.token_type(), BasicTokenType::Bearer);
    assert_eq!(token.expires_in().unwrap().as_secs(), 3600);
    let scopes: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["read", "write"]);

    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.access_token().secret(),
        token.access_token().secret()
    );
    let again = client
        .exchange_refresh_token(refreshed.refresh_token().unwrap())
        .request_async(&http)
        .await;
    assert!(again.is_ok());
    // The rotated-out token is refused with an RFC error the library understands.
    let reused = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&http)
        .await;
    match reused {
        Err(oauth2::RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error().as_ref(), "invalid_grant");
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}
