//! Input no client or user can have is answered with the endpoint's own error on both
//! backends, never a 500: MariaDB refuses to compare non-ASCII text with the ASCII `client_id`
//! column, and refuses a throttle subject longer than its column (issue 12, point 5).

use crate::helpers::*;

const NOT_ASCII: &str = "clïent-é";

async fn assert_invalid_client(r: reqwest::Response) {
    // RFC 6749 §5.2: invalid_client is 401.
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn a_client_id_no_client_can_have_is_invalid_client_everywhere() {
    let app = spawn_app().await;
    let form_id = [
        ("grant_type", "client_credentials"),
        ("client_id", NOT_ASCII),
        ("client_secret", "x"),
    ];
    assert_invalid_client(app.token(None, &form_id).await).await;
    assert_invalid_client(
        app.token(
            Some((NOT_ASCII, "x")),
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    for path in ["/oauth2/introspect", "/oauth2/revoke"] {
        let r = app
            .http
            .post(app.url(path))
            .basic_auth(urlencode(NOT_ASCII), Some("x"))
            .form(&[("token", "pc_at_x")])
            .send()
            .await
            .unwrap();
        assert_invalid_client(r).await;
    }
    let long = "a".repeat(300);
    assert_invalid_client(app.token(Some((&long, "x")), &form_id[..1]).await).await;
}

#[tokio::test]
async fn an_authorization_request_from_no_possible_client_is_an_error_page() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url(&format!(
            "/oauth2/authorize?{}",
            encode_pairs(&[
                ("response_type", "code"),
                ("client_id", NOT_ASCII),
                ("redirect_uri", "https://app.example/cb"),
            ])
        )))
        .send()
        .await
        .unwrap();
    // RFC 6749 §4.1.2.1: an unknown client is told to the user, never redirected.
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("not registered"));
}

#[tokio::test]
async fn a_username_no_user_can_have_is_an_ordinary_failed_login() {
    let app = spawn_app().await;
    app.add_user("erin").await;
    for name in ["x".repeat(300), "ünïcödé".to_string()] {
        let b = app.browser();
        let r = app.login(&b, &name, PASSWORD, "/").await;
        assert_eq!(r.status(), 401, "{name}");
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("Invalid username or password"));
    }
    // The real user still gets in.
    let b = app.browser();
    assert_eq!(app.login(&b, "erin", PASSWORD, "/").await.status(), 303);
}

/// Issue 12, point 5: MariaDB's binary collations of the first schema were PAD SPACE, so
/// `pad ` found the user `pad` and `<client id> ` found the client. The store must compare
/// every byte on both backends, whatever the boundary checks let through.
#[tokio::test]
async fn trailing_spaces_are_part_of_an_identifier_on_both_backends() {
    let app = spawn_app().await;
    app.add_user("pad").await;
    let c = app.confidential_client().await;

    let users = |name: &'static str| portcullis::store::users::find_by_username(&app.pool, name);
    assert!(users("pad").await.unwrap().is_some());
    assert!(users("pad ").await.unwrap().is_none());
    assert!(users("pad  ").await.unwrap().is_none());

    let padded_id = format!("{} ", c.id);
    assert!(portcullis::store::clients::find(&app.pool, &c.id)
        .await
        .unwrap()
        .is_some());
    assert!(portcullis::store::clients::find(&app.pool, &padded_id)
        .await
        .unwrap()
        .is_none());

    // And the unique key no longer treats them as one name.
    let inserted = app
        .sql(
            "INSERT INTO users (id, username, password_hash, disabled, created_at) \
              VALUES ('u-pad-space', 'pad ', 'x', FALSE, 0)",
        )
        .await;
    assert_eq!(inserted, 1);
}
