//! Typed records at the store boundary: a stored client is parsed once, when it is read, and a
//! row that does not parse is an error that says so, never a client with nothing in it.

use crate::helpers::*;

#[tokio::test]
async fn a_stored_client_comes_back_typed() {
    let app = spawn_app().await;
    let c = app.confidential_client().await;
    let client = portcullis::store::clients::find(&app.pool, &c.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.redirect_uris, vec![c.redirect_uri.clone()]);
    assert_eq!(
        client.grant_types.to_string(),
        "authorization_code client_credentials refresh_token"
    );
    assert_eq!(client.auth_method.as_str(), "client_secret_basic");
    assert!(!client.is_public());
}

#[tokio::test]
async fn a_corrupt_client_row_is_an_error_not_an_empty_client() {
    let app = spawn_app().await;
    let c = app.confidential_client().await;
    let changed = run_sql(
        &app.pool,
        &format!(
            "UPDATE clients SET redirect_uris = 'not a JSON list' WHERE client_id = '{}'",
            c.id
        ),
    )
    .await;
    assert_eq!(changed, 1);

    let err = portcullis::store::clients::find(&app.pool, &c.id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, portcullis::store::StoreError::Corrupt(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("redirect_uris"), "{err}");

    // Over HTTP: the server's fault, said as RFC 6749 §5.2's `server_error` (JSON, no panic),
    // not an `invalid_client` that would send the developer looking at their credentials.
    let r = app
        .token(
            Some((&c.id, c.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
    assert!(
        !body.to_string().contains("redirect_uris"),
        "causes are logged, not sent: {body}"
    );
}
