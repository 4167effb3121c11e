//! Embedded migrations for both backends. They run on a plain (sync) connection inside
//! `spawn_blocking`: SQLite directly, MySQL through diesel-async's `AsyncConnectionWrapper`.

use diesel::migration::{Migration, MigrationSource};
use diesel::Connection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::{Backend, MysqlConn, StoreError, StoreResult};

pub const MYSQL: EmbeddedMigrations = embed_migrations!("migrations/mysql");
pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// One embedded migration and whether the database has applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: String,
    /// The folder name, e.g. `2026-11-26-000001_initial_schema`.
    pub name: String,
    pub applied: bool,
}

/// What to do; every command returns the versions it touched, in order.
#[derive(Debug, Clone)]
pub enum Action {
    RunPending,
    RevertLast,
    RevertAll,
    /// Revert until `version` is the newest applied migration.
    RevertTo(String),
    Redo,
    Status,
}

#[derive(Debug)]
pub enum Outcome {
    Changed(Vec<String>),
    Status(Vec<MigrationStatus>),
}

/// A migration waits this long for the serving process's write lock (SQLite): schema changes
/// are rare and worth waiting for.
const MIGRATION_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `action` against the database at `url` (a `sqlite://` or `mysql://` URL).
pub async fn run(url: &str, action: Action) -> StoreResult<Outcome> {
    let backend = Backend::of_url(url)?;
    tokio::task::spawn_blocking(move || match backend {
        Backend::Sqlite(path) => {
            super::prepare_sqlite_file(&path)?;
            let mut conn =
                super::establish_sqlite_sync(&path.to_string_lossy(), MIGRATION_BUSY_TIMEOUT)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            apply(&mut conn, || SQLITE, action)
        }
        Backend::Mysql(url) => {
            let mut conn = <AsyncConnectionWrapper<MysqlConn> as Connection>::establish(&url)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            apply(&mut conn, || MYSQL, action)
        }
    })
    .await
    .map_err(|e| StoreError::Migration(e.to_string()))?
}

fn apply<DB, C>(
    conn: &mut C,
    source: fn() -> EmbeddedMigrations,
    action: Action,
) -> StoreResult<Outcome>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let err = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    let versions = |v: Vec<diesel::migration::MigrationVersion<'_>>| {
        v.into_iter().map(|v| v.to_string()).collect()
    };
    if matches!(
        action,
        Action::RevertLast | Action::Redo | Action::RevertAll
    ) && conn.applied_migrations().map_err(err)?.is_empty()
    {
        return Err(StoreError::Migration("no migration is applied".into()));
    }
    match action {
        Action::RunPending => Ok(Outcome::Changed(versions(
            conn.run_pending_migrations(source()).map_err(err)?,
        ))),
        Action::RevertLast => Ok(Outcome::Changed(vec![conn
            .revert_last_migration(source())
            .map_err(err)?
            .to_string()])),
        Action::RevertAll => Ok(Outcome::Changed(versions(
            conn.revert_all_migrations(source()).map_err(err)?,
        ))),
        Action::Redo => {
            let reverted = conn
                .revert_last_migration(source())
                .map_err(err)?
                .to_string();
            conn.run_pending_migrations(source()).map_err(err)?;
            Ok(Outcome::Changed(vec![reverted]))
        }
        Action::RevertTo(target) => {
            let all = status(conn, source)?;
            if !all.iter().any(|m| m.version == target && m.applied) {
                return Err(StoreError::Migration(format!(
                    "migration {target} is not applied"
                )));
            }
            let mut reverted = Vec::new();
            loop {
                let applied = conn.applied_migrations().map_err(err)?;
                let newest = applied
                    .iter()
                    .map(|v| v.to_string())
                    .max()
                    .unwrap_or_default();
                if newest == target || newest.is_empty() {
                    break;
                }
                reverted.push(
                    conn.revert_last_migration(source())
                        .map_err(err)?
                        .to_string(),
                );
            }
            Ok(Outcome::Changed(reverted))
        }
        Action::Status => Ok(Outcome::Status(status(conn, source)?)),
    }
}

fn status<DB, C>(
    conn: &mut C,
    source: fn() -> EmbeddedMigrations,
) -> StoreResult<Vec<MigrationStatus>>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let err = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    let applied: Vec<String> = conn
        .applied_migrations()
        .map_err(err)?
        .iter()
        .map(|v| v.to_string())
        .collect();
    let embedded: Vec<Box<dyn Migration<DB>>> = source().migrations().map_err(err)?;
    Ok(embedded
        .iter()
        .map(|m| {
            let version = m.name().version().to_string();
            MigrationStatus {
                applied: applied.contains(&version),
                version,
                name: m.name().to_string(),
            }
        })
        .collect())
}

/// Folder names of the embedded migrations, per backend (a test asserts they are identical).
pub fn embedded_names() -> (Vec<String>, Vec<String>) {
    fn names<DB: diesel::backend::Backend>(s: EmbeddedMigrations) -> Vec<String>
    where
        EmbeddedMigrations: MigrationSource<DB>,
    {
        MigrationSource::<DB>::migrations(&s)
            .map(|ms| ms.iter().map(|m| m.name().to_string()).collect())
            .unwrap_or_default()
    }
    (
        names::<diesel::mysql::Mysql>(MYSQL),
        names::<diesel::sqlite::Sqlite>(SQLITE),
    )
}
