//! Every admin command, run as the real binary against the backend under test.

use crate::helpers::{mysql_base_url, served_url, Cli, TestDb};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn migrate_status_run_revert_redo() {
    let db = TestDb::new().await;
    let cli = Cli::for_db(&db);
    let status = cli.ok(&["migrate", "status"]);
    assert!(
        status.lines().all(|l| l.starts_with("pending ")),
        "{status}"
    );
    let versions: Vec<String> = status
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    let newest = versions.last().unwrap().clone();

    let run = cli.ok(&["migrate", "run"]);
    assert_eq!(run.lines().count(), versions.len(), "{run}");
    assert!(run.contains("applied 20261126000001"), "{run}");
    assert_eq!(cli.ok(&["migrate", "run"]).trim(), "nothing to do");
    assert!(cli
        .ok(&["migrate", "status"])
        .lines()
        .all(|l| l.starts_with("applied ")));

    // redo and revert act on the newest migration only.
    assert!(cli
        .ok(&["migrate", "redo"])
        .contains(&format!("redone {newest}")));
    assert!(cli
        .ok(&["migrate", "revert"])
        .contains(&format!("reverted {newest}")));
    let status = cli.ok(&["migrate", "status"]);
    assert!(
        status.lines().last().unwrap().starts_with("pending "),
        "{status}"
    );
    for _ in 1..versions.len() {
        cli.ok(&["migrate", "revert"]);
    }
    assert!(cli
        .ok(&["migrate", "status"])
        .lines()
        .all(|l| l.starts_with("pending ")));
    let err = cli.fails(&["migrate", "revert"]);
    assert!(err.contains("no migration is applied"), "{err}");

    cli.ok(&["migrate", "run"]);
    cli.ok(&["migrate", "revert", "--all"]);
    assert!(cli
        .ok(&["migrate", "status"])
        .lines()
        .all(|l| l.starts_with("pending ")));
    cli.ok(&["migrate", "run"]);
    // --to the newest applied version reverts nothing; --to the first reverts the rest.
    assert_eq!(
        cli.ok(&["migrate", "revert", "--to", &newest]).trim(),
        "nothing to do"
    );
    let reverted = cli.ok(&["migrate", "revert", "--to", &versions[0]]);
    assert_eq!(reverted.lines().count(), versions.len() - 1, "{reverted}");
    assert!(cli
        .ok(&["migrate", "status"])
        .lines()
        .next()
        .unwrap()
        .starts_with("applied "));
    assert!(cli
        .fails(&["migrate", "revert", "--to", "19990101000000"])
        .contains("is not applied"));
}

#[tokio::test]
async fn user_commands() {
    let db = TestDb::new().await;
    let cli = Cli::for_db(&db);
    let out = cli.ok_stdin(
        &["user", "add", "alice", "--password-stdin"],
        "wonderland\n",
    );
    assert!(out.contains("created user alice"), "{out}");
    let err = cli.run_with_stdin(&["user", "add", "alice", "--password-stdin"], Some("x\n"));
    assert!(String::from_utf8_lossy(&err.stderr).contains("already exists"));
    assert!(
        cli.run_with_stdin(&["user", "add", "bob", "--password-stdin"], Some("\n"))
            .status
            .code()
            == Some(1),
        "empty password refused"
    );
    assert!(String::from_utf8_lossy(
        &cli.run(&["user", "add", "has space", "--password-stdin"])
            .stderr
    )
    .contains("spaces"));

    let list = cli.ok(&["user", "list"]);
    assert!(list.contains("alice") && list.contains("active"), "{list}");
    assert!(!list.contains("bob"));

    let pool = portcullis::store::Pool::build(&db.settings().database).unwrap();
    let before = portcullis::store::users::find_by_username(&pool, "alice")
        .await
        .unwrap()
        .unwrap();
    assert!(
        before.password_hash.starts_with("$pbkdf2-sha256$i=1000$"),
        "parameters are stored in the hash"
    );
    assert!(!before.password_hash.contains("wonderland"));
    use portcullis::domain::password::{verify, Password};
    assert!(verify(&Password::new("wonderland"), &before.password_hash));

    cli.ok_stdin(
        &["user", "set-password", "alice", "--password-stdin"],
        "looking-glass\n",
    );
    let after = portcullis::store::users::find_by_username(&pool, "alice")
        .await
        .unwrap()
        .unwrap();
    assert!(verify(
        &Password::new("looking-glass"),
        &after.password_hash
    ));
    assert!(!verify(&Password::new("wonderland"), &after.password_hash));
    assert!(
        cli.run_with_stdin(
            &["user", "set-password", "nobody", "--password-stdin"],
            Some("x\n")
        )
        .status
        .code()
            == Some(1)
    );

    cli.ok(&["user", "disable", "alice"]);
    assert!(cli.ok(&["user", "list"]).contains("disabled"));
    assert!(cli
        .fails(&["user", "disable", "nobody"])
        .contains("no user named"));
}

#[tokio::test]
async fn client_commands() {
    let db = TestDb::new().await;
    let cli = Cli::for_db(&db);
    let added = json(&cli.ok(&[
        "client",
        "add",
        "--name",
        "Photo App",
        "--redirect-uri",
        "https://photos.example/cb",
        "--redirect-uri",
        "http://127.0.0.1:8000/cb",
        "--scope",
        "write read",
        "--json",
    ]));
    let id = added["client_id"].as_str().unwrap().to_string();
    let secret = added["client_secret"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with("pc_cs_") && secret.len() >= 43,
        "256-bit secret: {secret}"
    );
    assert_eq!(added["scope"], "read write");
    assert_eq!(added["token_endpoint_auth_method"], "client_secret_basic");

    // Only the SHA-256 digest is stored.
    let pool = portcullis::store::Pool::build(&db.settings().database).unwrap();
    let row = portcullis::store::clients::find(&pool, &id)
        .await
        .unwrap()
        .unwrap();
    let digest = portcullis::domain::secret::Secret::from_presented(secret.clone()).digest();
    assert_eq!(row.secret_hash, Some(digest));

    let public = json(&cli.ok(&[
        "client",
        "add",
        "--name",
        "CLI",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--json",
    ]));
    assert!(public.get("client_secret").is_none());
    assert_eq!(public["token_endpoint_auth_method"], "none");

    let text = cli.ok(&[
        "client",
        "add",
        "--name",
        "Batch",
        "--grant-type",
        "client_credentials",
    ]);
    assert!(
        text.contains("client_id: ") && text.contains("client_secret: pc_cs_"),
        "{text}"
    );

    let list = cli.ok(&["client", "list"]);
    assert!(
        list.contains("Photo App") && list.contains("CLI") && list.contains("Batch"),
        "{list}"
    );
    let shown = json(&cli.ok(&["client", "show", &id]));
    assert_eq!(shown["client_name"], "Photo App");
    assert!(
        !shown.to_string().contains(&secret),
        "show never prints the secret"
    );

    let rotated = json(&cli.ok(&["client", "rotate-secret", &id, "--json"]));
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let row = portcullis::store::clients::find(&pool, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(!digest.matches(row.secret_hash.unwrap().as_bytes()));
    let public_id = public["client_id"].as_str().unwrap();
    assert!(cli
        .fails(&["client", "rotate-secret", public_id])
        .contains("public"));

    cli.ok(&["client", "remove", &id]);
    assert!(cli.fails(&["client", "show", &id]).contains("no client"));
    assert!(cli.fails(&["client", "remove", &id]).contains("no client"));
    // An id that starts with '-' (base64url allows it) is an id, not an option.
    assert!(cli.fails(&["client", "show", "-Ucx"]).contains("no client"));

    // Validation: one clear sentence, nothing stored.
    assert!(cli
        .fails(&[
            "client",
            "add",
            "--name",
            "Bad",
            "--redirect-uri",
            "http://evil.example/cb"
        ])
        .contains("loopback"));
    assert!(cli
        .fails(&["client", "add", "--name", "Bad", "--grant-type", "password"])
        .contains("unknown grant type"));
    assert!(cli
        .fails(&[
            "client",
            "add",
            "--name",
            "Bad",
            "--public",
            "--grant-type",
            "client_credentials"
        ])
        .contains("public"));
    assert_eq!(
        portcullis::store::clients::list(&pool).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn config_check_and_show() {
    let db = TestDb::new().await;
    let cli = Cli::for_db(&db);
    assert!(cli.ok(&["config", "check"]).contains("configuration OK"));
    let shown = cli.ok(&["config", "show"]);
    assert!(
        shown.contains("[database]") && shown.contains("[server]"),
        "{shown}"
    );

    let file = db.dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nbindd = \"x\"\n").unwrap();
    let err = cli.fails(&["--config", file.to_str().unwrap(), "config", "check"]);
    assert!(err.contains("bindd"), "{err}");
    std::fs::write(&file, "[server]\nissuer = \"ftp://x\"\n").unwrap();
    assert!(cli
        .fails(&["--config", file.to_str().unwrap(), "config", "check"])
        .contains("server.issuer"));
    assert!(cli
        .fails(&["--config", "/no/such/file.toml", "config", "check"])
        .contains("does not exist"));

    let mut with_typo = Cli::for_db(&db);
    with_typo
        .env
        .push(("PORTCULLIS__SERVER__BINDD".into(), "1".into()));
    assert!(with_typo
        .ok(&["config", "check"])
        .contains("PORTCULLIS__SERVER__BINDD"));

    let with_secret = Cli {
        db_url: "mysql://app:s3cret@127.0.0.1:3306/x".into(),
        cwd: db.dir.path().into(),
        env: vec![],
    };
    let shown = with_secret.ok(&["config", "show"]);
    assert!(
        !shown.contains("s3cret") && shown.contains("REDACTED"),
        "{shown}"
    );

    let unsupported = Cli {
        db_url: "postgres://x/y".into(),
        cwd: db.dir.path().into(),
        env: vec![],
    };
    assert!(unsupported
        .fails(&["config", "check"])
        .contains("not supported"));
}

#[tokio::test]
async fn dump_and_load_round_trip_across_backends() {
    // Source: always SQLite, the default install. Target: MariaDB when the suite runs on it.
    let source = TestDb::sqlite();
    let src = Cli::for_db(&source);
    src.ok_stdin(&["user", "add", "carol", "--password-stdin"], "pw\n");
    src.ok(&[
        "client",
        "add",
        "--name",
        "App",
        "--redirect-uri",
        "https://app.example/cb",
        "--scope",
        "a b",
    ]);
    src.ok(&[
        "client",
        "add",
        "--name",
        "Native",
        "--public",
        "--redirect-uri",
        "com.example.app:/cb",
    ]);
    let dump_file = source.dir.path().join("dump.json");
    let first_out = src.run(&["db", "dump", "--output", dump_file.to_str().unwrap()]);
    crate::helpers::assert_success(&first_out, &["db", "dump"]);
    let first = std::fs::read_to_string(&dump_file).unwrap();
    // A dump holds password hashes and token digests: owner only (issue 12, point 9).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dump_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    let doc = json(&first);
    assert_eq!(doc["format"], "portcullis-dump");
    assert_eq!(doc["tables"]["users"].as_array().unwrap().len(), 1);
    assert_eq!(doc["tables"]["clients"].as_array().unwrap().len(), 2);
    assert!(!first.contains("\"pw\""));

    let target = TestDb::new().await;
    let dst = Cli::for_db(&target);
    dst.ok(&["migrate", "run"]);
    let loaded = dst.ok(&["db", "load", dump_file.to_str().unwrap()]);
    assert!(loaded.contains("loaded 3 rows"), "{loaded}");
    let second = dst.ok(&["db", "dump"]);
    assert_eq!(first, second, "a round trip must give the same document");

    // The loaded user can still be found and its password still verifies.
    let pool = portcullis::store::Pool::build(&target.settings().database).unwrap();
    let carol = portcullis::store::users::find_by_username(&pool, "carol")
        .await
        .unwrap()
        .unwrap();
    assert!(portcullis::domain::password::verify(
        &portcullis::domain::password::Password::new("pw"),
        &carol.password_hash
    ));

    // A non-empty target is refused and left as it was.
    let err = dst.fails(&["db", "load", dump_file.to_str().unwrap()]);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(dst.ok(&["db", "dump"]), first);

    // A file that is not a dump is refused with a clear sentence.
    let junk = target.dir.path().join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    assert!(dst
        .fails(&["db", "load", junk.to_str().unwrap()])
        .contains("not a Portcullis dump"));
}

#[tokio::test]
async fn db_init_creates_database_and_user_and_is_safe_twice() {
    let Some(base) = mysql_base_url() else {
        eprintln!(
            "db init needs MariaDB: set PORTCULLIS_TEST_DATABASE_URL (the MariaDB run covers it)"
        );
        return;
    };
    let scratch = TestDb::sqlite();
    let name = format!("pci_{}", crate::helpers::hex_id());
    let cli = Cli {
        db_url: scratch.url.clone(),
        cwd: scratch.dir.path().into(),
        env: vec![],
    };
    let args = [
        "db",
        "init",
        "--admin-url",
        &base,
        "--database",
        &name,
        "--user",
        &name,
        "--user-host",
        "127.0.0.1",
    ];
    let first = cli.ok(&args);
    assert!(
        first.contains("generated password is shown only now"),
        "{first}"
    );
    let url = first
        .lines()
        .find_map(|l| l.strip_prefix("url = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    assert!(url.starts_with(&format!("mysql://{name}:")), "{url}");

    // The printed URL works: migrate and add a user through it.
    let app = Cli {
        db_url: url.clone(),
        cwd: scratch.dir.path().into(),
        env: vec![(
            "PORTCULLIS__LOGIN__PASSWORD_HASH_ITERATIONS".into(),
            "1000".into(),
        )],
    };
    app.ok(&["migrate", "run"]);
    app.ok_stdin(&["user", "add", "dave", "--password-stdin"], "pw\n");

    // Second run: no error, password unchanged, so the first URL still works.
    let second = cli.ok(&args);
    assert!(second.contains("password is unchanged"), "{second}");
    assert!(app.ok(&["user", "list"]).contains("dave"));

    // The new user has rights on its own database only.
    let err = Cli {
        db_url: url.replace(&format!("/{name}"), "/mysql"),
        cwd: scratch.dir.path().into(),
        env: vec![],
    }
    .fails(&["migrate", "status"]);
    assert!(err.contains("denied") || err.contains("1044"), "{err}");

    let bad = cli.fails(&[
        "db",
        "init",
        "--admin-url",
        &base,
        "--database",
        "x;drop",
        "--user",
        "u",
    ]);
    assert!(bad.contains("letters, digits or underscores"), "{bad}");

    use diesel_async::SimpleAsyncConnection;
    let mut admin = portcullis::store::connect_mysql(&base, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "DROP DATABASE `{name}`; DROP USER '{name}'@'127.0.0.1'"
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn serve_prints_its_url_answers_and_stops_on_sigterm() {
    let db = TestDb::new().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .current_dir(db.dir.path())
        .env("PORTCULLIS__DATABASE__URL", &db.url)
        .env("PORTCULLIS__SERVER__BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .envs(
            db.encryption_key()
                .map(|k| ("PORTCULLIS__KEYS__ENCRYPTION_KEY", k)),
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (url, line) = served_url(&mut child);
    let ready = reqwest::get(format!("{url}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200, "{line}");

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop on SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}
