//! `--scenarios soak` (issue 13): does the token table stay bounded, and the server as fast,
//! after minutes of full load? Half the workers run client-credentials, half refresh chains,
//! against a server whose tokens live seconds instead of hours and whose janitor runs every
//! 5 s keeping nothing past expiry: the table reaches its working size within the first
//! sample, and an hour of traffic's turnover happens in minutes. Every interval it records the `tokens` row count, the
//! rate and latency of that interval, and the janitor's deletions (read from `/metrics`).
//!
//! Verdict: the row count levels off (the largest count of the last third of the run is within
//! 10 % of the middle third's) and the rate of the last two intervals is within 10 % of the
//! first two's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis::store::tokens;

use crate::http::{self, Conn};
use crate::scenarios::{chrono_free_date, step_for, Context};
use crate::{Args, Backend};

pub const NAME: &str = "soak";

/// The server's settings for a soak: an access token lives 15 s, a refresh token 30 s, and
/// the janitor keeps no expired row.
pub const SERVER_ENV: [(&str, &str); 4] = [
    ("PORTCULLIS__TOKENS__ACCESS_TOKEN_TTL_SECS", "15"),
    ("PORTCULLIS__TOKENS__REFRESH_TOKEN_TTL_SECS", "30"),
    ("PORTCULLIS__JANITOR__INTERVAL_SECS", "5"),
    ("PORTCULLIS__JANITOR__RETENTION_SECS", "0"),
];

/// One interval of the run.
pub struct Sample {
    pub at_secs: u64,
    pub rows: i64,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub deleted: u64,
}

pub struct Soak {
    pub samples: Vec<Sample>,
    pub interval: Duration,
}

/// Shared by the workers and the sampler.
#[derive(Default)]
struct Tally {
    done: AtomicU64,
    failed: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
}

pub async fn run(ctx: &Arc<Context>, duration: Duration) -> anyhow::Result<Soak> {
    let interval = Duration::from_secs((duration.as_secs() / 20).max(5));
    let steps = [
        step_for(ctx, "client-credentials", false)?,
        step_for(ctx, "refresh", false)?,
    ];
    let tally = Arc::new(Tally::default());
    let stop_at = Instant::now() + duration;
    let mut workers = Vec::new();
    for i in 0..ctx.concurrency {
        let kind = i % 2;
        let state = ctx.worker(["client-credentials", "refresh"][kind]).await?;
        let (step, tally) = (steps[kind].clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < stop_at {
                let t0 = Instant::now();
                if step(i, state.clone()).await {
                    tally.done.fetch_add(1, Ordering::Relaxed);
                    let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    if let Ok(mut l) = tally.latencies_us.lock() {
                        l.push(us);
                    }
                } else {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut metrics = Conn::connect(ctx.addr).await?;
    let mut last = Instant::now();
    while Instant::now() + interval / 2 < stop_at {
        tokio::time::sleep_until((last + interval).into()).await;
        let now = Instant::now();
        let done = tally.done.swap(0, Ordering::Relaxed);
        let errors = tally.failed.swap(0, Ordering::Relaxed);
        let mut latencies = tally
            .latencies_us
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len().saturating_sub(1)) as f64 * p).round() as usize)
                .map_or(0.0, |us| *us as f64 / 1000.0)
        };
        samples.push(Sample {
            at_secs: (now - started).as_secs(),
            rows: tokens::count(&ctx.pool).await?,
            rate: done as f64 / (now - last).as_secs_f64(),
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            errors,
            deleted: janitor_deleted(&mut metrics).await?,
        });
        if let Some(s) = samples.last() {
            eprintln!(
                "  {:>4} s  {:>8} rows  {:>7.0}/s  p99 {:>6.2} ms  {} errors  {} deleted",
                s.at_secs, s.rows, s.rate, s.p99_ms, s.errors, s.deleted
            );
        }
        last = now;
    }
    for w in workers {
        w.await?;
    }
    Ok(Soak { samples, interval })
}

/// The janitor's deletions so far, all tables, from the server's own metrics.
async fn janitor_deleted(conn: &mut Conn) -> anyhow::Result<u64> {
    let r = conn.send(&http::get("/metrics", "")).await?;
    let text = String::from_utf8_lossy(&r.body);
    Ok(text
        .lines()
        .filter(|l| l.starts_with("portcullis_janitor_rows_deleted_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

impl Soak {
    /// The largest row count of the last third against the middle third's.
    fn growth(&self) -> Option<f64> {
        let n = self.samples.len();
        if n < 3 {
            return None;
        }
        let max = |s: &[Sample]| s.iter().map(|s| s.rows).max().unwrap_or(0) as f64;
        let middle = max(&self.samples[n / 3..2 * n / 3]);
        let last = max(&self.samples[2 * n / 3..]);
        (middle > 0.0).then(|| last / middle - 1.0)
    }

    /// The rate of the last two intervals against the first two's.
    fn slowdown(&self) -> Option<f64> {
        let n = self.samples.len();
        if n < 4 {
            return None;
        }
        let mean = |s: &[Sample]| s.iter().map(|s| s.rate).sum::<f64>() / s.len() as f64;
        let first = mean(&self.samples[..2]);
        (first > 0.0).then(|| mean(&self.samples[n - 2..]) / first - 1.0)
    }

    pub fn errors(&self) -> u64 {
        self.samples.iter().map(|s| s.errors).sum()
    }

    pub fn passed(&self) -> bool {
        self.growth().is_some_and(|g| g <= 0.10)
            && self.slowdown().is_some_and(|d| d >= -0.10)
            && self.errors() == 0
    }

    pub fn report(&self, args: &Args) -> String {
        let backend = match args.backend {
            Backend::Sqlite => "SQLite (WAL, bundled)",
            Backend::Mysql => "MariaDB",
        };
        let commit = std::process::Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let settings = SERVER_ENV
            .iter()
            .map(|(k, v)| format!("`{}={v}`", k.trim_start_matches("PORTCULLIS__")))
            .collect::<Vec<_>>()
            .join(", ");
        let mut s = format!(
            "## Soak, {backend}, concurrency {}\n\nCommit `{commit}`, {}; {} s, half the workers \
             client-credentials and half refresh chains; server settings {settings}; a sample \
             every {} s.\n\n\
             | s | tokens rows | per s | p50 ms | p99 ms | errors | janitor rows deleted |\n\
             |---|---|---|---|---|---|---|\n",
            args.concurrency,
            chrono_free_date(),
            args.duration,
            self.interval.as_secs(),
        );
        for x in &self.samples {
            s.push_str(&format!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} |\n",
                x.at_secs, x.rows, x.rate, x.p50_ms, x.p99_ms, x.errors, x.deleted
            ));
        }
        let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:+.1} %", v * 100.0));
        s.push_str(&format!(
            "\nRows, largest of the last third against the middle third: {} (bound +10 %). \
             Rate, last two samples against the first two: {} (bound −10 %). Errors: {}. \
             **{}**.\n",
            pct(self.growth()),
            pct(self.slowdown()),
            self.errors(),
            if self.passed() { "Passed" } else { "Failed" }
        ));
        s
    }
}
