//! Several Portcullis nodes on one database (issue 14): each test runs two servers with their
//! own pools and caches, as behind a load balancer.
//!
//! - `one_database::*` put both nodes on the suite's database (SQLite, or MariaDB with
//!   PORTCULLIS_TEST_DATABASE_URL), so they run in both passes of `cargo test`.
//! - `galera::*` put each node on a different member of a Galera cluster named by
//!   PORTCULLIS_TEST_GALERA_URLS (comma-separated server URLs; `deploy/galera/cluster.sh urls`).
//!   `.ci/run` starts the cluster and runs them; without the variable they say so and pass, so
//!   that a plain `cargo test` needs no cluster. With it set, an unreachable cluster fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

#[path = "../api/helpers.rs"]
mod helpers;

mod cross_node;
mod galera;
mod keys;
mod one_database;
mod races;
