//! Races: one code redeemed 20 times at once, one refresh token used 20 times at once.

use crate::helpers::*;

async fn statuses(
    app: &TestApp,
    client: &TestClient,
    form: Vec<(String, String)>,
) -> Vec<(u16, String)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (http, url, form, barrier) = (
            app.http.clone(),
            app.url("/oauth2/token"),
            form.clone(),
            barrier.clone(),
        );
        let (id, secret) = (client.id.clone(), client.secret.clone().unwrap());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = http
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body["error"].as_str().unwrap_or("").to_string())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

fn assert_exactly_one_success(results: &[(u16, String)]) {
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    for (s, e) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(
            (*s, e.as_str()),
            (400, "invalid_grant"),
            "never a 5xx: {results:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_redemptions_of_one_code() {
    let app = spawn_app().await;
    app.add_user("vic").await;
    let c = app.confidential_client().await;
    let q = app
        .authorize_as("vic", &[("response_type", "code"), ("client_id", &c.id)])
        .await;
    let form = vec![
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("code".to_string(), q["code"].clone()),
    ];
    assert_exactly_one_success(&statuses(&app, &c, form).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_refreshes_of_one_token() {
    let app = spawn_app().await;
    app.add_user("wes").await;
    let c = app.confidential_client().await;
    let t = app.tokens_for(&c, "wes", "read").await;
    let form = vec![
        ("grant_type".to_string(), "refresh_token".to_string()),
        (
            "refresh_token".to_string(),
            t["refresh_token"].as_str().unwrap().to_string(),
        ),
    ];
    assert_exactly_one_success(&statuses(&app, &c, form).await);
}
