//! The only place that speaks Diesel. Two backends, chosen by URL scheme, each behind a deadpool
//! pool; `db_run!` writes a query once and type-checks it per backend (vaultwarden's idea).
//! Functions take a connection so callers can compose them inside one transaction.
//!
//! Statements that write go through `db_write!` (or `db_transaction!`): on SQLite they
//! run on the one writer connection (`SqlitePools`), so writers queue in the process, in order,
//! instead of sleeping in SQLite's busy handler; on MariaDB it is the same pool as `db_run!`.

pub mod checkpointer;
pub mod clients;
pub mod codes;
pub mod consents;
pub mod dump;
pub mod exchange;
pub mod group_commit;
pub mod in_list;
pub mod migrations;
pub mod models;
pub mod purge;
pub mod registration_tokens;
pub mod schema;
pub mod sessions;
pub mod signing_keys;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_async::pooled_connection::deadpool::Pool as DeadPool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncMysqlConnection, RunQueryDsl};

use crate::settings::DatabaseSettings;
use group_commit::Batchers;

/// A SQLite reader. Its statements run on the calling task's thread (`Inline`), like the
/// writer's.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, Inline>;
/// The SQLite writer: the same type as a reader, in its own pool of one (`SqlitePools`).
pub type SqliteWriterConn = SyncConnectionWrapper<SqliteConnection, Inline>;
pub type MysqlConn = AsyncMysqlConnection;

/// What a connection to a Galera node waits for before it runs a statement
/// (`wsrep_sync_wait`): 1 reads, 2 updates and deletes, 4 inserts. Galera applies another node's
/// commits asynchronously, so without it a token issued on node A can be unknown on node B a
/// moment later (introspection says inactive, a refresh says invalid_grant), and a revocation
/// can miss rows already committed elsewhere. Each wait costs a group round trip.
pub const GALERA_SYNC_WAIT: u8 = 7;

/// Oldest MariaDB we support: 10.5 is the first with the JSON and `IF NOT EXISTS` forms we use.
const MIN_MARIADB: (u32, u32) = (10, 5);

/// The per-connection SQLite settings (STACK-NOTES): WAL so readers never block the writer,
/// a busy timeout instead of instant "database is locked", and enforced foreign keys.
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// Strict mode turns silent truncation into errors, on every connection whatever the server default.
const MYSQL_SESSION_INIT: &str = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,\
     NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'";

/// Server messages in English whatever the server's `lc_messages`: Diesel keeps only the message
/// of some errors (not the code), and `is_deadlock` and `is_unavailable` read it.
const MYSQL_MESSAGES_INIT: &str = "SET SESSION lc_messages = 'en_US'";

/// The server ends a statement that runs longer than this (pooled connections only: migrations
/// and dumps may take longer). `max_statement_time` is MariaDB's (10.1+); the `/*M!` comment
/// is executed by MariaDB and ignored by MySQL, whose `max_execution_time` covers only SELECT.
fn mysql_statement_timeout_init(timeout: Duration) -> String {
    format!(
        "SET SESSION lc_messages = 'en_US' /*M!100108 , SESSION max_statement_time = {} */",
        timeout.as_secs_f64()
    )
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("{0}")]
    Config(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A row that does not parse into its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Errors that may have left the connection unusable. The MySQL driver reports I/O and
    /// protocol failures as `Unknown`; a rare server error of that kind only costs a reconnect.
    pub fn is_connection_level(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        matches!(
            self,
            StoreError::Query(Error::DatabaseError(
                DatabaseErrorKind::Unknown | DatabaseErrorKind::ClosedConnection,
                _
            )) | StoreError::Query(Error::BrokenTransactionManager)
        )
    }

    /// Errors that say the database cannot answer now, not that the request or the code is
    /// wrong: the connection failed (I/O, protocol: the driver's own errors, which Diesel
    /// reports as `Unknown` with the driver's message), the server ended the statement at
    /// `statement_timeout_secs` or a lock wait, the server is shutting down, or SQLite's
    /// write lock stayed taken past its busy timeout. They are answered 503 with Retry-After.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        const TRANSIENT: [&str; 11] = [
            // mysql_async's own errors (not the server's): the connection, not the query.
            "Input/output error",
            "Driver error",
            "Other error",
            // MariaDB 1969 (max_statement_time), 1317: the statement was stopped.
            "Query execution was interrupted",
            // 1205, 1053, 1927.
            "Lock wait timeout exceeded",
            "Server shutdown in progress",
            "Connection was killed",
            // 1213 after `retry_on_deadlock` gave up; on Galera also a certification conflict
            // with another node's commit. Running the request again is safe.
            "Deadlock found",
            // 1047 from a Galera node that is not (or no longer) part of the primary component,
            // or still receiving its state transfer.
            "WSREP has not yet prepared node",
            // SQLite: SQLITE_BUSY after busy_timeout.
            "database is locked",
            "database table is locked",
        ];
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Query(Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)) => true,
            StoreError::Query(Error::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
                TRANSIENT.iter().any(|t| info.message().starts_with(t))
            }
            _ => false,
        }
    }

    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        )
    }

    /// InnoDB chose this statement as a deadlock victim and rolled it back (MySQL error 1213,
    /// which Diesel reports only by its message).
    pub fn is_deadlock(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                info
            )) if info.message().starts_with("Deadlock found")
        )
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for StoreError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        // Every failed acquire comes through here, so this is where it is counted.
        use deadpool::managed::{PoolError, TimeoutType};
        let reason = match &e {
            PoolError::Timeout(TimeoutType::Wait) => "wait_timeout",
            PoolError::Timeout(TimeoutType::Create) => "connect_timeout",
            PoolError::Timeout(TimeoutType::Recycle) => "recycle_timeout",
            PoolError::Backend(_) => "connect_failed",
            _ => "other",
        };
        metrics::counter!("portcullis_db_pool_acquire_failures_total", "reason" => reason)
            .increment(1);
        let text = e.to_string();
        // MySQL error 1049: the URL names a database that is not there.
        if text.contains("(1049)") {
            return StoreError::Unavailable(format!(
                "{text}; create it with `portcullis db init` or CREATE DATABASE ... CHARACTER SET utf8mb4"
            ));
        }
        StoreError::Unavailable(text)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

pub use crate::backend::Backend;

impl From<crate::backend::BadDatabaseUrl> for StoreError {
    fn from(e: crate::backend::BadDatabaseUrl) -> Self {
        StoreError::Config(e.to_string())
    }
}

/// A pool of connections to one of the two backends.
#[derive(Clone)]
pub enum Pool {
    Sqlite(SqlitePools),
    Mysql(DeadPool<MysqlConn>, Galera, Batchers),
}

/// Runs a SQLite call where it is made instead of on tokio's blocking pool. A SQLite statement
/// here is tens of microseconds of work from the page cache, and a hop to a blocking thread
/// and back costs two wake-ups, each waiting for a core under load: for the single writer the
/// hop made it the bottleneck (BENCHMARKS.md, session 17); for readers it was 14–16 % of the
/// server's CPU in futex wake-ups, and every blocking thread kept its own allocator caches
/// (RSS 92 MiB against 36 MiB inline; session 18). The cost: a statement that reads from disk
/// holds its runtime thread for that long (ARCHITECTURE.md, "SQLite: one writer").
#[derive(Clone, Copy, Debug, Default)]
pub struct Inline;

impl diesel_async::sync_connection_wrapper::SpawnBlocking for Inline {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>,
    >
    where
        R: Send + 'static,
    {
        Box::pin(std::future::ready(Ok(task())))
    }

    fn get_runtime() -> Self {
        Inline
    }
}

/// SQLite allows one writer at a time per database file. With every connection free to write,
/// a writer that finds the lock taken sleeps in SQLite's busy handler (1, 2, 5 … 100 ms steps)
/// and is woken in no particular order: p99 of a quarter to half a second under load (issue
/// 15). So all of this process's writes go through one connection and queue for it in the
/// process, first come first served, each holding the lock only for its own statement; reads
/// use the other pool and, in WAL mode, never wait for the writer.
#[derive(Clone)]
pub struct SqlitePools {
    pub readers: DeadPool<SqliteConn>,
    pub writer: DeadPool<SqliteWriterConn>,
    pub batchers: Batchers,
    /// The WAL's checkpoints, off the writer; stops with the last clone of the pools.
    _checkpointer: Arc<checkpointer::Checkpointer>,
}

/// Whether the pool's MariaDB server is a Galera node (`wsrep_on`), as its first connection
/// found (every connection asks). The exchange guard depends on it (see `exchange`).
#[derive(Clone, Debug, Default)]
pub struct Galera(Arc<GaleraFlags>);

#[derive(Debug, Default)]
struct GaleraFlags {
    on: AtomicBool,
    known: AtomicBool,
}

impl Galera {
    fn learnt(&self, on: bool) {
        self.0.on.store(on, Ordering::Relaxed);
        self.0.known.store(true, Ordering::Release);
    }

    /// `None` until a connection has asked the server.
    fn get(&self) -> Option<bool> {
        // Spelled out: diesel's `RunQueryDsl::load` is in scope too.
        AtomicBool::load(&self.0.known, Ordering::Acquire)
            .then(|| AtomicBool::load(&self.0.on, Ordering::Relaxed))
    }
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend `$pool` is; the
/// body is compiled once per backend. A MySQL connection whose query failed below the SQL level
/// (I/O, protocol) is dropped instead of going back to the pool, so a dead connection costs
/// one failed query, not one per reuse. For a body that only reads; see `db_write!`.
#[macro_export]
macro_rules! db_run {
    ($pool:expr, |$conn:ident| $body:expr) => {
        $crate::db_run!(@on readers: $crate::store::SqliteConn, $pool, |$conn| $body)
    };
    (@on $sqlite:ident : $ty:ty, $pool:expr, |$conn:ident| $body:expr) => {
        match $pool {
            $crate::store::Pool::Sqlite(p) => {
                let mut obj = p.$sqlite.get().await.map_err($crate::store::StoreError::from)?;
                #[allow(unused_mut)]
                let $conn: &mut $ty = &mut *obj;
                $crate::store::scoped(async { $body }).await
            }
            $crate::store::Pool::Mysql(p, ..) => {
                let mut obj = p.get().await.map_err($crate::store::StoreError::from)?;
                let result = {
                    #[allow(unused_mut)]
                    let $conn: &mut $crate::store::MysqlConn = &mut *obj;
                    $crate::store::scoped(async { $body }).await
                };
                if result
                    .as_ref()
                    .is_err_and($crate::store::StoreError::is_connection_level)
                {
                    let _ = diesel_async::pooled_connection::deadpool::Object::take(obj);
                }
                result
            }
        }
    };
}

/// `db_run!` for a body that writes: on SQLite it runs on the single writer connection
/// (`SqlitePools`). The body must not take another connection from the pool.
#[macro_export]
macro_rules! db_write {
    ($pool:expr, |$conn:ident| $body:expr) => {
        $crate::db_run!(@on writer: $crate::store::SqliteWriterConn, $pool, |$conn| $body)
    };
}

/// Runs a single-statement store operation again when InnoDB picked it as a deadlock victim
/// ("try restarting transaction"): the statement was rolled back, so another run is safe. The
/// exchange INSERT … SELECT and family revocation lock the same rows in opposite orders (parent
/// row, then family index; family index, then rows), so under concurrent reuse one of them can
/// lose; neither may turn into a 500, and a revocation must not be lost.
pub async fn retry_on_deadlock<T, F, Fut>(mut op: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    const ATTEMPTS: usize = 5;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.is_deadlock() && attempt < ATTEMPTS => {
                tracing::debug!(attempt, "deadlock victim; running the statement again");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Gives a `db_run!` body its error type, so `?` inside it converts to `StoreError`.
pub async fn scoped<T, F: std::future::Future<Output = StoreResult<T>>>(f: F) -> StoreResult<T> {
    f.await
}

/// `db_write!` inside a transaction. SQLite transactions start deferred, so write first in a
/// read-then-write body (STACK-NOTES: BUSY_SNAPSHOT); every write here is conditional anyway.
/// A transaction that only reads (a consistent snapshot) uses `db_read_transaction!`.
#[macro_export]
macro_rules! db_transaction {
    ($pool:expr, |$conn:ident| $body:expr) => {
        $crate::db_transaction!(@on writer: $crate::store::SqliteWriterConn, $pool, |$conn| $body)
    };
    (@on $sqlite:ident : $ty:ty, $pool:expr, |$conn:ident| $body:expr) => {{
        use diesel_async::AsyncConnection as _;
        $crate::db_run!(@on $sqlite: $ty, $pool, |c| {
            c.transaction::<_, $crate::store::StoreError, _>(async |$conn| $body)
                .await
        })
    }};
}

/// A transaction that only reads, for a consistent snapshot across statements (`db dump`).
#[macro_export]
macro_rules! db_read_transaction {
    ($pool:expr, |$conn:ident| $body:expr) => {
        $crate::db_transaction!(@on readers: $crate::store::SqliteConn, $pool, |$conn| $body)
    };
}

impl Pool {
    /// Builds the pool. Connections are made lazily; `check` proves the database answers.
    pub fn build(settings: &DatabaseSettings) -> StoreResult<Self> {
        let backend = Backend::of_url(settings.url.expose())?;
        let connect_timeout = Duration::from_secs(settings.connect_timeout_secs);
        let acquire_timeout = Duration::from_secs(settings.acquire_timeout_secs);
        let statement_timeout = Duration::from_secs(settings.statement_timeout_secs);
        let timeouts = deadpool::managed::Timeouts {
            wait: Some(acquire_timeout),
            create: Some(connect_timeout),
            recycle: Some(connect_timeout),
        };
        let build_err = |e: deadpool::managed::BuildError| StoreError::Config(e.to_string());
        match backend {
            Backend::Sqlite(path) => {
                prepare_sqlite_file(&path)?;
                let t = statement_timeout;
                let checkpointer = checkpointer::Checkpointer::start(path.clone())
                    .map_err(|e| StoreError::Config(format!("SQLite checkpoint thread: {e}")))?;
                Ok(Pool::Sqlite(SqlitePools {
                    readers: sqlite_pool(
                        &path,
                        settings.pool_size,
                        timeouts,
                        Box::new(move |url| Box::pin(establish_sqlite(url.to_string(), t, None))),
                    )?,
                    writer: sqlite_pool(
                        &path,
                        1,
                        timeouts,
                        Box::new(move |url| {
                            Box::pin(establish_sqlite(
                                url.to_string(),
                                t,
                                Some(checkpointer::WRITER_AUTOCHECKPOINT_PAGES),
                            ))
                        }),
                    )?,
                    batchers: Batchers::default(),
                    _checkpointer: Arc::new(checkpointer),
                }))
            }
            Backend::Mysql(url) => {
                let galera = Galera::default();
                let found = galera.clone();
                let mut config = ManagerConfig::<MysqlConn>::default();
                config.custom_setup = Box::new(move |url| {
                    Box::pin(establish_mysql(
                        url.to_string(),
                        connect_timeout,
                        Some(statement_timeout),
                        Some(found.clone()),
                    ))
                });
                // Fast recycling: no ping per checkout (a round trip on every request). It is
                // safe because request handlers run their database work in their own task
                // (web::detached), so a client disconnect never leaves a half-read connection,
                // and db_run! drops a connection whose query failed below the SQL level.
                config.recycling_method = RecyclingMethod::Fast;
                let manager = AsyncDieselConnectionManager::new_with_config(url, config);
                let pool = DeadPool::builder(manager)
                    .max_size(settings.pool_size)
                    .timeouts(timeouts)
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(build_err)?;
                Ok(Pool::Mysql(pool, galera, Batchers::default()))
            }
        }
    }

    /// The pool's connections now (for `/metrics`); on SQLite, readers and writer together.
    pub fn status(&self) -> deadpool::Status {
        match self {
            Pool::Sqlite(p) => {
                let (r, w) = (p.readers.status(), p.writer.status());
                deadpool::Status {
                    max_size: r.max_size + w.max_size,
                    size: r.size + w.size,
                    available: r.available + w.available,
                    waiting: r.waiting + w.waiting,
                }
            }
            Pool::Mysql(p, ..) => p.status(),
        }
    }

    /// The queues that coalesce concurrent token writes (`group_commit`).
    pub fn batchers(&self) -> &Batchers {
        match self {
            Pool::Sqlite(p) => &p.batchers,
            Pool::Mysql(_, _, b) => b,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Pool::Sqlite(_) => "sqlite",
            Pool::Mysql(..) => "mysql",
        }
    }

    /// Whether the database is a Galera cluster. The first connection finds out; if none has
    /// been made yet (a server started without `auto_migrate`, whose first database work is
    /// this), one round trip makes it, so the answer is never a guess.
    pub async fn is_galera(&self) -> StoreResult<bool> {
        let Pool::Mysql(_, galera, _) = self else {
            return Ok(false);
        };
        if let Some(on) = galera.get() {
            return Ok(on);
        }
        self.ping().await?;
        Ok(galera.get().unwrap_or(false))
    }

    /// One round trip: is the database answering?
    pub async fn ping(&self) -> StoreResult<()> {
        db_run!(self, |conn| {
            diesel::sql_query("SELECT 1").execute(conn).await?;
            Ok(())
        })
    }

    /// Refuses a MariaDB/MySQL server we do not support, with a message that says how to fix it.
    pub async fn check_server(&self) -> StoreResult<()> {
        let Pool::Mysql(p, ..) = self else {
            return Ok(());
        };
        let mut conn = p.get().await?;
        let info: ServerInfo = diesel::sql_query(
            "SELECT VERSION() AS version, @@character_set_database AS charset, DATABASE() AS db",
        )
        .get_result(&mut *conn)
        .await?;
        check_server_info(&info).map_err(StoreError::Config)
    }
}

#[derive(diesel::QueryableByName, Debug)]
pub struct ServerInfo {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub version: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub charset: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub db: Option<String>,
}

/// The startup check's rule, separate from I/O so it can be tested with any version string.
pub fn check_server_info(info: &ServerInfo) -> Result<(), String> {
    let db = info.db.as_deref().unwrap_or("(none)");
    let is_mariadb = info.version.to_ascii_lowercase().contains("mariadb");
    let mut parts = info
        .version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let supported = if is_mariadb {
        (major, minor) >= MIN_MARIADB
    } else {
        major >= 8
    };
    if !supported {
        return Err(format!(
            "database server version {} is not supported: Portcullis needs MariaDB {}.{} or newer (or MySQL 8); upgrade the server",
            info.version, MIN_MARIADB.0, MIN_MARIADB.1
        ));
    }
    if info.charset != "utf8mb4" {
        return Err(format!(
            "database `{db}` has default character set {}, Portcullis needs utf8mb4; run `ALTER DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin` (or create it with `portcullis db init`)",
            info.charset
        ));
    }
    Ok(())
}

/// Creates the folder of a SQLite file; the file itself is created by the first connection.
fn prepare_sqlite_file(path: &std::path::Path) -> StoreResult<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Config(format!(
                "cannot create database folder {}: {e}",
                dir.display()
            ))
        })?;
    }
    // A new database file is created readable by its owner only (it holds password hashes and
    // token digests); SQLite gives its -wal and -shm files the same mode.
    #[cfg(unix)]
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                StoreError::Config(format!(
                    "cannot create database file {}: {e}",
                    path.display()
                ))
            })?;
    }
    Ok(())
}

/// A pool of `size` SQLite connections of type `C` (readers' or the writer's) to `path`.
fn sqlite_pool<C>(
    path: &std::path::Path,
    size: usize,
    timeouts: deadpool::managed::Timeouts,
    setup: diesel_async::pooled_connection::SetupCallback<C>,
) -> StoreResult<DeadPool<C>>
where
    C: diesel_async::AsyncConnection + 'static,
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager<Type = C>,
{
    let mut config = ManagerConfig::default();
    config.custom_setup = setup;
    let manager = AsyncDieselConnectionManager::new_with_config(path.to_string_lossy(), config);
    DeadPool::builder(manager)
        .max_size(size)
        .timeouts(timeouts)
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Config(e.to_string()))
}

/// `busy_timeout`: how long a statement waits for another connection's write lock before it
/// fails with "database is locked" (503).
pub(crate) fn establish_sqlite_sync(
    path: &str,
    busy_timeout: Duration,
) -> diesel::ConnectionResult<SqliteConnection> {
    let mut conn = SqliteConnection::establish(path)?;
    conn.batch_execute(&format!(
        "{SQLITE_PRAGMAS} PRAGMA busy_timeout = {};",
        busy_timeout.as_millis()
    ))
    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// `autocheckpoint`: for the writer, the WAL size in pages past which its own commits
/// checkpoint (`checkpointer` normally does it first); readers never write, so never checkpoint.
async fn establish_sqlite<S: diesel_async::sync_connection_wrapper::SpawnBlocking>(
    path: String,
    busy_timeout: Duration,
    autocheckpoint: Option<u32>,
) -> diesel::ConnectionResult<SyncConnectionWrapper<SqliteConnection, S>> {
    let conn = tokio::task::spawn_blocking(move || {
        let mut conn = establish_sqlite_sync(&path, busy_timeout)?;
        if let Some(pages) = autocheckpoint {
            conn.batch_execute(&format!("PRAGMA wal_autocheckpoint = {pages};"))
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
        }
        Ok::<_, diesel::ConnectionError>(conn)
    })
    .await
    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))??;
    Ok(SyncConnectionWrapper::new(conn))
}

/// Connects with strict SQL mode and the options diesel-async's own `establish` sets, bounded by
/// the connect timeout so an unreachable server fails fast. On a Galera node the session waits
/// for causality (`GALERA_SYNC_WAIT`), and `galera` records that the pool is on one.
pub(crate) async fn establish_mysql(
    url: String,
    timeout: Duration,
    statement_timeout: Option<Duration>,
    galera: Option<Galera>,
) -> diesel::ConnectionResult<MysqlConn> {
    let bad = |m: String| diesel::ConnectionError::BadConnection(m);
    let opts = mysql_async::Opts::from_url(&url)
        .map_err(|e| diesel::ConnectionError::InvalidConnectionUrl(e.to_string()))?;
    let messages = match statement_timeout {
        Some(t) => mysql_statement_timeout_init(t),
        None => MYSQL_MESSAGES_INIT.to_string(),
    };
    let builder = mysql_async::OptsBuilder::from_opts(opts)
        .init(vec![MYSQL_SESSION_INIT.to_string(), messages])
        .stmt_cache_size(0)
        .client_found_rows(true);
    let connect = async {
        let mut conn = mysql_async::Conn::new(builder).await?;
        join_galera_session(&mut conn, galera.as_ref()).await?;
        Ok::<_, mysql_async::Error>(conn)
    };
    let conn = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| {
            bad(format!(
                "connecting took longer than {}s",
                timeout.as_secs()
            ))
        })?
        .map_err(|e| bad(e.to_string()))?;
    AsyncMysqlConnection::try_from(conn).await
}

/// Asks the server whether it is a Galera node (`SHOW` answers on every MariaDB and MySQL; a
/// server without wsrep returns no row) and, if so, sets the session's causal wait.
async fn join_galera_session(
    conn: &mut mysql_async::Conn,
    galera: Option<&Galera>,
) -> Result<(), mysql_async::Error> {
    use mysql_async::prelude::Queryable;
    let wsrep: Option<(String, String)> = conn
        .query_first("SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")
        .await?;
    let on = wsrep.is_some_and(|(_, on)| on.eq_ignore_ascii_case("ON"));
    if on {
        conn.query_drop(format!("SET SESSION wsrep_sync_wait = {GALERA_SYNC_WAIT}"))
            .await?;
    }
    if let Some(g) = galera {
        g.learnt(on);
    }
    Ok(())
}

/// A single connection outside the pool (admin commands: `db init`).
pub async fn connect_mysql(url: &str, timeout: Duration) -> StoreResult<MysqlConn> {
    establish_mysql(url.to_string(), timeout, None, None)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::StoreError;
    use diesel::result::{DatabaseErrorKind, Error};

    /// What the MySQL driver hands Diesel for a server error: the message, kind `Unknown`.
    fn server_error(message: &str) -> StoreError {
        StoreError::Query(Error::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(message.to_string()),
        ))
    }

    #[test]
    fn a_deadlock_or_certification_conflict_is_retried_then_answered_unavailable() {
        // 1213: InnoDB's deadlock, and Galera's certification failure, in the same words.
        let e = server_error("Deadlock found when trying to get lock; try restarting transaction");
        assert!(e.is_deadlock());
        assert!(e.is_unavailable(), "once the retries give up: 503, not 500");
    }

    #[test]
    fn a_galera_member_outside_the_primary_component_is_unavailable() {
        // 1047, from a member that lost quorum or is still receiving its state transfer.
        let e = server_error("WSREP has not yet prepared node for application use");
        assert!(e.is_unavailable());
        assert!(!e.is_deadlock());
    }

    #[test]
    fn a_query_error_is_neither() {
        let e = server_error("Unknown column 'nope' in 'field list'");
        assert!(!e.is_unavailable());
        assert!(!e.is_deadlock());
    }
}
