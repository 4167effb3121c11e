//! Races: one code redeemed 20 times at once, one refresh token used 20 times at once.

use portcullis::domain::secret::Secret;

use crate::helpers::*;

async fn statuses(
    app: &TestApp,
    client: &TestClient,
    form: Vec<(String, String)>,
) -> Vec<(u16, serde_json::Value)> {
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
            (status, body)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

/// The one success's body; every other answer is RFC 6749 §5.2 `invalid_grant`.
fn exactly_one_success(results: &[(u16, serde_json::Value)]) -> serde_json::Value {
    let ok: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    for (s, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(
            (*s, body["error"].as_str().unwrap_or("")),
            (400, "invalid_grant"),
            "never a 5xx: {results:?}"
        );
    }
    ok[0].1.clone()
}

/// Whether the token is stored revoked.
async fn is_revoked(app: &TestApp, token: &serde_json::Value) -> bool {
    let digest = Secret::from_presented(token.as_str().unwrap()).digest();
    portcullis::store::tokens::find(&app.pool, &digest)
        .await
        .unwrap()
        .expect("the token is stored")
        .revoked_at
        .is_some()
}

async fn race_refreshes(app: &TestApp) -> (TestClient, serde_json::Value, serde_json::Value) {
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
    let winner = exactly_one_success(&statuses(app, &c, form).await);
    (c, t, winner)
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
    exactly_one_success(&statuses(&app, &c, form).await);
}

/// RFC 9700 §4.14.2: the 19 losers presented a rotated token, so the whole family is revoked,
/// the winner's new tokens too, whether a loser saw the rotation at its read or lost the race
/// at the exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_refreshes_of_one_token_revoke_the_family() {
    let app = spawn_app().await;
    let (c, first, winner) = race_refreshes(&app).await;
    for token in [
        &first["access_token"],
        &first["refresh_token"],
        &winner["access_token"],
        &winner["refresh_token"],
    ] {
        assert!(is_revoked(&app, token).await, "{token}");
    }
    let again = app
        .refresh(&c, winner["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(again.status(), 400);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

/// With `tokens.refresh_reuse_grace_secs`, reuses inside the window are refused without
/// revoking: the winner's tokens live on (several tabs refreshing at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_refreshes_within_the_grace_period_keep_the_winner() {
    let app = spawn_app_with(|s| s.tokens.refresh_reuse_grace_secs = 60).await;
    let (c, first, winner) = race_refreshes(&app).await;
    assert!(!is_revoked(&app, &winner["access_token"]).await);
    assert!(!is_revoked(&app, &winner["refresh_token"]).await);
    assert!(!is_revoked(&app, &first["refresh_token"]).await);
    let next = app
        .refresh(&c, winner["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(next.status(), 200);
}
