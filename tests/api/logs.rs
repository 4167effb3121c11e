//! Request ids and logs (issue 13): `portcullis serve` with `log.format = "json"` writes one
//! JSON object a line; a request's lines carry its id, which the response echoes; an id sent by
//! a peer that is not a trusted proxy is replaced; the log of a flow holds none of its secrets.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::*;

#[tokio::test]
async fn json_logs_carry_the_request_id_and_never_a_secret() {
    let db = TestDb::new().await;
    let cli = Cli::for_db(&db);
    let out = cli.ok(&[
        "client",
        "add",
        "--name",
        "Logs",
        "--grant-type",
        "client_credentials",
        "--json",
    ]);
    let client: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_string(),
        client["client_secret"].as_str().unwrap().to_string(),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .current_dir(db.dir.path())
        .env("PORTCULLIS__DATABASE__URL", &db.url)
        .env("PORTCULLIS__SERVER__BIND", "127.0.0.1:0")
        .env("PORTCULLIS__LOG__FORMAT", "json")
        .envs(
            db.encryption_key()
                .map(|k| ("PORTCULLIS__KEYS__ENCRYPTION_KEY", k)),
        )
        .env("RUST_LOG", "portcullis=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let url = served_url(&mut child).0;

    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/oauth2/token"))
        .basic_auth(&id, Some(&secret))
        // Not from a trusted proxy (none is configured): not believed.
        .header("x-request-id", "chosen-by-the-client")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(request_id, "chosen-by-the-client");
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let other = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_ne!(
        other.headers()["x-request-id"].to_str().unwrap(),
        request_id
    );

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    child.wait().unwrap();
    let lines = log.join().unwrap();

    let mut of_request = Vec::new();
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        if v["span"]["id"] == request_id.as_str() {
            of_request.push(v);
        }
    }
    // The request's closing line: its status, and the client it authenticated.
    let answered = of_request
        .iter()
        .find(|v| v["fields"]["message"] == "answered")
        .unwrap_or_else(|| panic!("no line for {request_id} in {lines:#?}"));
    assert_eq!(answered["fields"]["status"], 200);
    assert_eq!(answered["span"]["client_id"], id.as_str());
    assert_eq!(answered["span"]["path"], "/oauth2/token");
    let all = lines.join("\n");
    for secret_value in [&secret, &token] {
        assert!(
            !all.contains(secret_value.as_str()),
            "a secret is in the log"
        );
    }
}
