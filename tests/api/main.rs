//! The integration suite: one binary, the real server on port 0, a fresh database per test.
//! SQLite by default; set PORTCULLIS_TEST_DATABASE_URL=mysql://root@127.0.0.1:3306 to run the
//! same tests against MariaDB (a new database per test, dropped afterwards).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod access_tokens;
mod authorize;
mod browser;
mod browser_headers;
mod cli;
mod concurrency;
mod connections;
mod discovery;
mod exchange;
mod flows;
mod health;
mod helpers;
mod hostile_input;
mod http_details;
mod http_fuzz;
mod interop;
mod introspection;
mod janitor;
mod key_layout;
mod keys;
mod logout;
mod logs;
mod metrics;
mod migrations;
mod openid;
mod oxide_auth_pins;
mod pages;
mod prompt;
mod proxies;
mod records;
mod registration;
mod resilience;
mod sessions;
mod settings;
mod tls;
mod token;
mod userinfo;
