//! `GET /metrics` (issue 13): a scrape parses as Prometheus text (exposition format 0.0.4) and
//! carries the figures an operator needs. The recorder is global to the process, so counts
//! include other tests' requests: assertions are lower bounds.

use std::collections::HashMap;
use std::time::Duration;

use crate::helpers::*;

/// One sample: the metric name and its labels.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Series {
    name: String,
    labels: Vec<(String, String)>,
}

/// A strict reader of the text format: every line is blank, `# HELP`, `# TYPE` or a sample
/// whose family has a TYPE; names and label names are well-formed; values are numbers.
pub fn parse(text: &str) -> (HashMap<String, String>, HashMap<Series, f64>) {
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut types = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(is_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, vec![]),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let labels = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                        assert!(is_name(k), "{line}");
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(is_name(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE for {line}");
        samples.insert(
            Series {
                name: name.to_string(),
                labels,
            },
            value,
        );
    }
    (types, samples)
}

pub fn value(samples: &HashMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|(s, _)| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no {name} {labels:?}"))
}

#[tokio::test]
async fn a_scrape_parses_as_prometheus_text_and_counts_what_happened() {
    let app = spawn_app_with(|s| {
        s.janitor.interval_secs = 1;
    })
    .await;
    app.add_user("erin").await;
    let client = app.confidential_client().await;
    let ok = app
        .token(
            Some((&client.id, client.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(ok.status(), 200);
    let bad = app
        .token(
            Some((&client.id, "wrong")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(bad.status(), 401);
    assert_eq!(
        app.login(&app.browser(), "erin", "wrong", "/")
            .await
            .status(),
        401
    );

    // The janitor's first pass comes within its 1 s interval.
    let mut scrape = String::new();
    for _ in 0..50 {
        let r = app.get("/metrics").await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        scrape = r.text().await.unwrap();
        if scrape.contains("portcullis_janitor_batch_duration_seconds_count") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (types, samples) = parse(&scrape);

    assert_eq!(types["portcullis_http_requests_total"], "counter");
    // The client-credentials token was stored through a group commit (a batch of at least one).
    let inserts = [("kind", "token_insert")];
    let statements = value(&samples, "portcullis_db_group_commits_total", &inserts);
    let jobs = value(&samples, "portcullis_db_group_commit_jobs_total", &inserts);
    assert!(
        statements >= 1.0 && jobs >= statements,
        "{statements} {jobs}"
    );
    assert_eq!(
        types["portcullis_http_request_duration_seconds"],
        "histogram"
    );
    let token = [("route", "/oauth2/token")];
    assert!(
        value(
            &samples,
            "portcullis_http_requests_total",
            &[token[0], ("status", "200")]
        ) >= 1.0
    );
    assert!(
        value(
            &samples,
            "portcullis_http_requests_total",
            &[token[0], ("status", "401")]
        ) >= 1.0
    );
    assert!(
        value(
            &samples,
            "portcullis_http_request_duration_seconds_bucket",
            &[token[0], ("le", "+Inf")]
        ) >= 2.0
    );
    assert!(
        value(
            &samples,
            "portcullis_tokens_issued_total",
            &[("grant", "client_credentials")]
        ) >= 1.0
    );
    assert!(
        value(
            &samples,
            "portcullis_oauth_errors_total",
            &[("code", "invalid_client")]
        ) >= 1.0
    );
    assert!(
        value(
            &samples,
            "portcullis_login_attempts_total",
            &[("outcome", "failed")]
        ) >= 1.0
    );
    assert!(
        value(
            &samples,
            "portcullis_db_pool_connections",
            &[("state", "max")]
        ) >= 1.0
    );
    assert!(
        value(
            &samples,
            "portcullis_db_pool_connections",
            &[("state", "open")]
        ) >= 1.0
    );
    assert_eq!(
        value(
            &samples,
            "portcullis_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(
        value(
            &samples,
            "portcullis_janitor_batch_duration_seconds_count",
            &[]
        ) >= 1.0
    );
    // Paths are labelled by route template: a probe of random paths adds no label values.
    app.get("/wp-login.php").await;
    let again = app.get("/metrics").await.text().await.unwrap();
    assert!(!again.contains("wp-login"));
    assert!(again.contains("route=\"other\""));
}

#[tokio::test]
async fn metrics_bind_moves_the_scrape_to_its_own_listener() {
    let app = spawn_app_with(|s| s.metrics.bind = "127.0.0.1:0".into()).await;
    let own = app.metrics_addr.expect("a metrics listener");
    assert_ne!(own, app.addr);
    let http = reqwest::Client::new();

    let r = http
        .get(format!("http://{own}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (types, _) = parse(&r.text().await.unwrap());
    assert_eq!(types["portcullis_build_info"], "gauge");
    // Only the scrape is there, and the main listener no longer has it.
    let r = http
        .get(format!("http://{own}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.get("/metrics").await.status(), 404);
    assert_eq!(app.get("/healthz").await.status(), 200);
}
