//! `portcullis-bench`: a load benchmark a person runs (never a test). It starts a release
//! `portcullis serve` on SQLite or MariaDB, seeds what each scenario needs through the store,
//! drives the server over loopback HTTP/1.1 keep-alive with N connections for a bounded time,
//! and writes the table to BENCHMARKS.md.
//!
//!     cargo build --release --bins
//!     target/release/portcullis-bench --backend mysql --concurrency 64 --duration 10
//!     target/release/portcullis-bench --backend mysql --scenarios soak --duration 600
//!
//! With `--target URL,URL…` it starts nothing: the servers are already running (several nodes
//! behind what would be a load balancer; `bench/galera.sh` starts two on a Galera cluster), and
//! `--database-url` names the database they share, where the fixtures are seeded.

mod counts;
mod http;
mod prefill;
mod procstat;
mod scenarios;
mod soak;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Mysql,
}

#[derive(Debug, Parser)]
#[command(
    name = "portcullis-bench",
    about = "Load benchmark for a release portcullis server"
)]
pub struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// MariaDB administrator URL; a database `portcullis_bench` is created afresh there.
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306")]
    pub mysql_admin_url: String,
    /// Concurrent connections (workers).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Unmeasured seconds before each scenario.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Idle seconds between scenarios, so the database's background work (flushing, purge)
    /// from one does not bill the next.
    #[arg(long, default_value_t = 5)]
    pub settle: u64,
    /// Scenarios to run, in order (default: all but soak). `soak` runs alone, for the whole
    /// duration, against a server with short token lifetimes and a busy janitor.
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// The server binary (default: `portcullis` next to this one).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Database pool size for the server and the store-insert scenario.
    #[arg(long, default_value_t = 16)]
    pub pool_size: usize,
    /// Count instead of time: run the server under callgrind and report the instructions it
    /// executes per iteration, which do not move with the machine's load. The server runs tens
    /// of times slower: use a low concurrency and a longer duration.
    #[arg(long)]
    pub callgrind: bool,
    /// Keep the run's folder (the SQLite file and callgrind's dumps, one per
    /// measured window) and print where it is, for `callgrind_annotate`.
    #[arg(long)]
    pub keep: bool,
    /// Where to write the results (the section for this backend is replaced).
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub output: PathBuf,
    /// Running servers to benchmark instead of starting one (`http://host:port`, comma-separated
    /// or repeated); workers connect to each in turn. They must share one database and issuer.
    #[arg(long, value_delimiter = ',')]
    pub target: Vec<String>,
    /// With `--target`: the database those servers use (the fixtures are written there). A
    /// `mysql://` URL also makes the report say MariaDB.
    #[arg(long)]
    pub database_url: Option<String>,
    /// With `--target`: names the run's section in the output (`target-<label>`).
    #[arg(long, default_value = "nodes")]
    pub label: Option<String>,
    /// node-oidc-provider as `bench/peer.sh` starts it (`http://IP:PORT`): each of
    /// client-credentials, introspect, code-exchange and refresh also runs against it, right
    /// after Portcullis, and the report gains their ratios.
    #[arg(long)]
    pub peer: Option<String>,
    /// Authorization codes minted before code-exchange, per second of the scenario (warm-up and
    /// measured): more than the fastest exchange rate, or workers run out (and the run fails).
    #[arg(long, default_value_t = 15_000)]
    pub codes_per_second: u64,
    /// Live access tokens written into `tokens` before the scenarios (whole chunks of 50,000),
    /// to measure on a grown table; the section is then `<backend>-prefilled`.
    #[arg(long, default_value_t = 0)]
    pub prefill: u64,
    /// With `--peer`: its process, for its CPU and memory.
    #[arg(long)]
    pub peer_pid: Option<u32>,
}

/// `http://127.0.0.1:8181` (or a bare `127.0.0.1:8181`) as a socket address.
pub fn target_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let bare = url
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    bare.parse().with_context(|| {
        format!("--target {url:?}: give http://IP:PORT (plain HTTP, an IP address)")
    })
}

/// Removes the run's folder, unless `--keep` asked for it.
fn clean_up(args: &Args, dir: &std::path::Path) {
    if args.keep {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A server process that is killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start_server(
    args: &Args,
    db_url: &str,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> anyhow::Result<Server> {
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("portcullis"),
    };
    if !bin.is_file() {
        bail!(
            "{} not found: run `cargo build --release --bins` first",
            bin.display()
        );
    }
    let port = free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mut command = if args.callgrind {
        counts::Callgrind::command(&bin, dir)
    } else {
        Command::new(&bin)
    };
    let child = command
        .arg("serve")
        .env("PORTCULLIS__DATABASE__URL", db_url)
        .env(
            "PORTCULLIS__DATABASE__POOL_SIZE",
            args.pool_size.to_string(),
        )
        .env("PORTCULLIS__SERVER__BIND", addr.to_string())
        .env("PORTCULLIS__SERVER__ISSUER", format!("http://{addr}"))
        .env("PORTCULLIS__LOG__LEVEL", "warn")
        // MariaDB needs a key-encryption key for the signing keys; one per run.
        .env(
            "PORTCULLIS__KEYS__ENCRYPTION_KEY",
            portcullis::keys::Kek::generate()?,
        )
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let server = Server { child, addr };
    // Under valgrind, start-up (and the migrations it runs) takes tens of seconds.
    let tries = if args.callgrind { 1200 } else { 100 };
    for _ in 0..tries {
        if let Ok(mut c) = http::Conn::connect(addr).await {
            if c.send(&http::get("/readyz", ""))
                .await
                .is_ok_and(|r| r.status == 200)
            {
                return Ok(server);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server did not become ready on {addr}")
}

/// A fresh, empty database for the run; returns its URL.
async fn fresh_database(args: &Args, dir: &std::path::Path) -> anyhow::Result<String> {
    match args.backend {
        Backend::Sqlite => Ok(format!("sqlite://{}", dir.join("bench.db").display())),
        Backend::Mysql => {
            use diesel_async::SimpleAsyncConnection;
            let base = args.mysql_admin_url.trim_end_matches('/');
            let mut conn = portcullis::store::connect_mysql(base, Duration::from_secs(5)).await?;
            conn.batch_execute(
                "DROP DATABASE IF EXISTS portcullis_bench; \
                 CREATE DATABASE portcullis_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            )
            .await?;
            Ok(format!("{base}/portcullis_bench"))
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    let soak = args.scenarios.iter().any(|s| s == soak::NAME);
    if soak && args.scenarios.len() > 1 {
        bail!("soak runs alone: its server has short token lifetimes");
    }
    if args.peer.is_some() && (soak || args.callgrind) {
        bail!("--peer compares timed runs: no soak and no --callgrind");
    }
    let dir = std::env::temp_dir().join(format!("portcullis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let targets = args
        .target
        .iter()
        .map(|t| target_addr(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (server, addrs, db_url) = if targets.is_empty() {
        let db_url = fresh_database(&args, &dir).await?;
        let env: &[(&str, &str)] = if soak { &soak::SERVER_ENV } else { &[] };
        let server = start_server(&args, &db_url, &dir, env).await?;
        let addr = server.addr;
        (Some(server), vec![addr], db_url)
    } else {
        if soak || args.callgrind {
            bail!("--target measures running servers: no soak (it configures its server) and no --callgrind");
        }
        let db_url = args
            .database_url
            .clone()
            .context("--target needs --database-url: the database the servers share")?;
        if db_url.starts_with("mysql:") {
            args.backend = Backend::Mysql;
        }
        (None, targets, db_url)
    };
    let server_pids = match &server {
        Some(s) => vec![s.child.id()],
        None => procstat::find_processes(&["portcullis"]),
    };
    let db_pids = match args.backend {
        Backend::Mysql => procstat::find_processes(&["mariadbd", "mysqld"]),
        Backend::Sqlite => Vec::new(),
    };
    let mut settings = portcullis::Settings::default();
    settings.database.url = portcullis::settings::DatabaseUrl(db_url.clone());
    settings.database.pool_size = args.pool_size;
    // The bench's own pool seeds and prefills: a 50,000-row prefill statement on a table that
    // has outgrown MariaDB's buffer pool runs for longer than a request's 5 s.
    settings.database.statement_timeout_secs = 600;
    let pool = portcullis::store::Pool::build(&settings.database)?;
    let mut ctx =
        scenarios::Context::seed(&args, pool, addrs, server_pids, db_pids, &settings).await?;
    if let (true, Some(server)) = (args.callgrind, &server) {
        ctx.callgrind = Some(counts::Callgrind::attach(server.child.id(), &dir));
    }
    // MariaDB's work counters are one server's: with several (a cluster) they would not add up.
    if args.backend == Backend::Mysql && server.is_some() {
        let mut conn = portcullis::store::connect_mysql(&db_url, Duration::from_secs(5)).await?;
        ctx.db_overhead = counts::DbCounts::overhead(&mut conn).await?;
        ctx.db_counter = Some(tokio::sync::Mutex::new(conn));
    }
    if args.prefill > 0 {
        eprintln!("prefilling {} tokens ...", args.prefill);
        let took = prefill::tokens(&ctx.pool, ctx.client_id(), args.prefill).await?;
        eprintln!("prefilled in {:.0} s", took.as_secs_f64());
        // Let MariaDB write back what the prefill left dirty before anything is measured.
        if args.backend == Backend::Mysql {
            tokio::time::sleep(Duration::from_secs(args.settle.max(30))).await;
        }
    }
    let ctx = std::sync::Arc::new(ctx);
    if soak {
        eprintln!("soaking for {} s ...", args.duration);
        let result = soak::run(&ctx, Duration::from_secs(args.duration)).await?;
        drop(server);
        clean_up(&args, &dir);
        let report = result.report(&args);
        println!("{report}");
        write_section(&args, &format!("soak-{}", backend_tag(&args)), &report)?;
        if !result.passed() {
            bail!("the soak did not stay within its bounds (see the table)");
        }
        return Ok(());
    }

    let names: Vec<String> = match (args.scenarios.is_empty(), &args.peer) {
        (true, Some(_)) => scenarios::PEER_SCENARIOS
            .iter()
            .flat_map(|s| [s.to_string(), format!("{}{s}", scenarios::PEER_PREFIX)])
            .collect(),
        (true, None) => scenarios::ALL.iter().map(|s| s.to_string()).collect(),
        (false, _) => args.scenarios.clone(),
    };
    let mut results = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs(args.settle)).await;
        }
        eprintln!("running {name} ...");
        let r = scenarios::run(&ctx, name).await?;
        eprintln!("  {}", r.row());
        results.push(r);
    }
    drop(server);
    clean_up(&args, &dir);
    let report = scenarios::report(&args, &results);
    println!("{report}");
    let tag = match (&args.label, args.target.is_empty()) {
        (Some(label), false) => format!("target-{label}"),
        _ if args.peer.is_some() => format!("peer-{}", backend_tag(&args)),
        _ if args.prefill > 0 => format!("{}-prefilled", backend_tag(&args)),
        _ => backend_tag(&args).to_string(),
    };
    write_section(&args, &tag, &report)?;
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}

fn backend_tag(args: &Args) -> &'static str {
    match args.backend {
        Backend::Sqlite => "sqlite",
        Backend::Mysql => "mysql",
    }
}

/// Replaces the section `tag` of the output file, keeping the others.
fn write_section(args: &Args, tag: &str, report: &str) -> anyhow::Result<()> {
    let (start, end) = (
        format!("<!-- bench:{tag} -->"),
        format!("<!-- /bench:{tag} -->"),
    );
    let section = format!("{start}\n{report}\n{end}");
    let existing = std::fs::read_to_string(&args.output).unwrap_or_else(|_| {
        "# Benchmarks\n\nWritten by `portcullis-bench` (see README, \"Benchmark\"). Each table is one run of the command; \
         all scenarios of a table ran in the same run, so their ratios hold.\n"
            .to_string()
    });
    let text = match (existing.find(&start), existing.find(&end)) {
        (Some(a), Some(b)) if b > a => format!(
            "{}{}{}",
            &existing[..a],
            section,
            &existing[b + end.len()..]
        ),
        _ => format!("{}\n{}\n", existing.trim_end(), section),
    };
    std::fs::write(&args.output, text)?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}
