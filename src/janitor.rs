//! The janitor (issue 13): deletes what has expired, so the tables stop growing with traffic.
//! It runs inside `serve` every `janitor.interval_secs` (on every node: batches are short and
//! by primary key, a deadlock victim runs its batch again) and once per `portcullis db purge`.
//!
//! A row goes `janitor.retention_secs` after it expired; a throttle event once no window counts
//! it. A token goes only with or after the grant it came from (`store::purge`: once the grant
//! is gone or past its own expiry and the retention), so a rotated refresh token's successor
//! outlives it and presenting the old one is recognised as reuse for as long as it could be
//! presented at all.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::settings::Settings;
use crate::store::purge::{self, Table};
use crate::store::{retry_on_deadlock, Pool, StoreResult};

/// Rows per table that a pass deleted (or, for `due`, that are due now).
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<(Table, u64)>,
    pub elapsed: Duration,
}

impl Report {
    pub fn total(&self) -> u64 {
        self.rows.iter().map(|(_, n)| n).sum()
    }

    /// `table=rows` pairs, for logs and the CLI.
    pub fn summary(&self) -> String {
        self.rows
            .iter()
            .map(|(t, n)| format!("{}={n}", t.name()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Rows of `table` older than this at `now` are due.
fn cutoff(settings: &Settings, table: Table, now: i64) -> i64 {
    match table {
        // Throttle events count only within the longest window that reads them.
        Table::ThrottleEvents => {
            now - settings
                .login
                .throttle_window_secs
                .max(settings.registration.window_secs)
        }
        // A signing key goes once its publication after retirement is over.
        Table::SigningKeys => now - settings.keys.retired_publish_secs,
        _ => now - settings.janitor.retention_secs,
    }
}

/// One pass over every table, in batches until a batch finds nothing. Stops between batches
/// once `stop` is set.
pub async fn pass(
    pool: &Pool,
    settings: &Settings,
    now: i64,
    stop: &watch::Receiver<bool>,
) -> StoreResult<Report> {
    let started = Instant::now();
    let limit = settings.janitor.batch_size;
    let mut report = Report::default();
    for table in Table::ALL {
        let cutoff = cutoff(settings, table, now);
        let mut total = 0u64;
        while !*stop.borrow() {
            let batch = Instant::now();
            let n = retry_on_deadlock(|| purge::delete_batch(pool, table, cutoff, limit)).await?;
            let took = batch.elapsed();
            tracing::debug!(
                table = table.name(),
                rows = n,
                elapsed_ms = took.as_millis() as u64,
                "janitor batch"
            );
            metrics::counter!("portcullis_janitor_rows_deleted_total", "table" => table.name())
                .increment(n as u64);
            metrics::histogram!("portcullis_janitor_batch_duration_seconds")
                .record(took.as_secs_f64());
            total += n as u64;
            if n == 0 {
                break;
            }
        }
        report.rows.push((table, total));
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// What a pass at `now` would find due, without deleting (`db purge --dry-run`).
pub async fn due(pool: &Pool, settings: &Settings, now: i64) -> StoreResult<Report> {
    let started = Instant::now();
    let mut report = Report::default();
    for table in Table::ALL {
        let n = purge::count_due(pool, table, cutoff(settings, table, now)).await?;
        report.rows.push((table, n.max(0) as u64));
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Runs a pass every `janitor.interval_secs` (the first after a random part of it, so nodes
/// started together do not run together) until `stop` is set. A pass in progress finishes its
/// batch: no query is ever cut off. A failed pass is logged and the next one tries again.
pub async fn run(pool: Pool, settings: Settings, mut stop: watch::Receiver<bool>) {
    let interval = Duration::from_secs(settings.janitor.interval_secs);
    let mut wait = interval.mul_f64(rand::random::<f64>());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        match pass(&pool, &settings, crate::now(), &stop).await {
            Ok(r) if r.total() > 0 => tracing::info!(
                deleted = %r.summary(),
                elapsed_ms = r.elapsed.as_millis() as u64,
                "janitor pass"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "janitor pass failed; trying again next interval"),
        }
        wait = interval;
    }
}
