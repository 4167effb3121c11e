//! `/healthz` and `/readyz`, security headers and the JSON error shape.

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_200() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_answers_200_when_the_database_answers() {
    let app = spawn_app().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["database"],
        if app.db.is_mysql() { "mysql" } else { "sqlite" }
    );
}

#[tokio::test]
async fn unknown_path_is_a_json_404_with_security_headers() {
    let app = spawn_app().await;
    let r = app.get("/no-such-thing").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["referrer-policy"], "same-origin");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn wrong_method_is_405() {
    let app = spawn_app().await;
    let r = app.http.post(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}
