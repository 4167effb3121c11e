//! Tracing setup: text for people, JSON for machines; `RUST_LOG` overrides the configured level.

use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

pub fn init(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in a log file or journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The process's metrics recorder (Prometheus text), installed on first use. Global because the
/// `metrics` macros record to the global recorder; several servers in one process (the test
/// suite) share it.
pub fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        use metrics_exporter_prometheus::PrometheusBuilder;
        // Seconds, from 1 ms to 10 s: what a request or a janitor batch takes. (Only an empty
        // list is refused; then histograms would be summaries.)
        const BUCKETS: [f64; 13] = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        metrics::gauge!("portcullis_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "portcullis_http_requests_total",
        "HTTP requests answered, by route and status"
    );
    describe_histogram!(
        "portcullis_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer, by route"
    );
    describe_counter!(
        "portcullis_http_connection_errors_total",
        "Connections that ended with an error (malformed HTTP, timeouts, resets)"
    );
    describe_counter!(
        "portcullis_http_connections_refused_total",
        "Connections closed at once: too many from one address"
    );
    describe_counter!(
        "portcullis_http_idle_connections_closed_total",
        "HTTP/2 connections closed for being idle for server.header_read_timeout_secs"
    );
    describe_counter!(
        "portcullis_tokens_issued_total",
        "Token responses, by grant type"
    );
    describe_counter!(
        "portcullis_oauth_errors_total",
        "JSON error responses, by error code"
    );
    describe_counter!(
        "portcullis_login_attempts_total",
        "Sign-in attempts, by outcome (succeeded, failed, throttled, slowed)"
    );
    describe_gauge!(
        "portcullis_db_pool_connections",
        "Database pool connections, by state (open, idle, max)"
    );
    describe_gauge!(
        "portcullis_db_pool_waiting",
        "Requests waiting for a database connection"
    );
    describe_counter!(
        "portcullis_db_group_commits_total",
        "Statements that served a batch of token writes or grant reads, by kind"
    );
    describe_counter!(
        "portcullis_db_group_commit_jobs_total",
        "Writes or reads served by those statements, by kind: divided by the statements, the mean batch"
    );
    describe_counter!(
        "portcullis_janitor_rows_deleted_total",
        "Expired rows deleted, by table"
    );
    describe_histogram!(
        "portcullis_janitor_batch_duration_seconds",
        Unit::Seconds,
        "Time per janitor batch"
    );
    describe_gauge!("portcullis_build_info", "Always 1; the version is a label");
}
