//! Per-request work counted rather than timed: the server's instructions under callgrind and
//! MariaDB's statement and row-operation counters. CPU time on this shared 2-core VM moves by
//! ±15–35 % from run to run; these counts do not depend on the machine's load, so two builds
//! can be compared to within a fraction of a percent (`--count`, see README "Benchmark").

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

/// The server runs under `valgrind --tool=callgrind` with instrumentation off; each measured
/// window switches it on, and the dump at the end of the window holds that window's cost.
pub struct Callgrind {
    pid: u32,
    out_dir: PathBuf,
}

impl Callgrind {
    /// The command that starts `bin` under callgrind, writing its profiles into `out_dir`.
    pub fn command(bin: &Path, out_dir: &Path) -> Command {
        let mut c = Command::new("valgrind");
        c.arg("--tool=callgrind")
            .arg("--instr-atstart=no")
            .arg(format!(
                "--callgrind-out-file={}/callgrind.out.%p",
                out_dir.display()
            ))
            .arg(bin);
        c
    }

    pub fn attach(pid: u32, out_dir: &Path) -> Self {
        Self {
            pid,
            out_dir: out_dir.to_path_buf(),
        }
    }

    pub async fn start_window(&self) -> anyhow::Result<()> {
        self.control(&["--zero"]).await?;
        self.control(&["--instr=on"]).await
    }

    /// Ends the window and returns the instructions executed in it.
    pub async fn end_window(&self, label: &str) -> anyhow::Result<u64> {
        self.control(&["--instr=off"]).await?;
        self.control(&[&format!("--dump={label}")]).await?;
        self.newest_total()
    }

    async fn control(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut cmd = Command::new("callgrind_control");
        cmd.args(args).arg(self.pid.to_string());
        // It waits for valgrind to answer; keep that off the runtime's worker threads.
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await?
            .context("callgrind_control")?;
        if !out.status.success() {
            bail!(
                "callgrind_control {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// The `totals:` (instructions) of the most recent numbered dump. Its `summary:` line is 0
    /// when instrumentation was switched on and off with callgrind_control, so it is not used.
    fn newest_total(&self) -> anyhow::Result<u64> {
        let prefix = format!("callgrind.out.{}.", self.pid);
        let newest = std::fs::read_dir(&self.out_dir)?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let n: u64 = name.strip_prefix(&prefix)?.parse().ok()?;
                Some((n, e.path()))
            })
            .max_by_key(|(n, _)| *n)
            .map(|(_, p)| p)
            .context("callgrind wrote no dump")?;
        let text = std::fs::read_to_string(&newest)?;
        text.lines()
            .find_map(|l| l.strip_prefix("totals:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no totals line in {}", newest.display()))
    }
}

/// MariaDB's global counters that say how much work the database did: statements received, and
/// rows read or written by the storage engine. Reading them is itself a statement that touches
/// rows; [`DbCounts::overhead`] measures that once so that [`DbCounts::since`] can take it off.
#[derive(Debug, Clone, Copy, Default)]
pub struct DbCounts {
    pub statements: u64,
    pub row_operations: u64,
    /// InnoDB row lock waits, and the milliseconds spent in them (`Innodb_row_lock_waits`,
    /// `Innodb_row_lock_time`): where concurrent writes queue on each other.
    pub row_lock_waits: u64,
    pub row_lock_time_ms: u64,
}

#[derive(diesel::QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = Text, column_name = "Variable_name")]
    name: String,
    #[diesel(sql_type = Text, column_name = "Value")]
    value: String,
}

const ROW_COUNTERS: [&str; 7] = [
    "Handler_read_first",
    "Handler_read_key",
    "Handler_read_next",
    "Handler_read_rnd_next",
    "Handler_write",
    "Handler_update",
    "Handler_delete",
];

impl DbCounts {
    pub async fn read(conn: &mut portcullis::store::MysqlConn) -> anyhow::Result<Self> {
        let rows: Vec<StatusRow> = diesel::sql_query(
            "SHOW GLOBAL STATUS WHERE Variable_name = 'Questions' OR Variable_name LIKE 'Handler\\_%' \
             OR Variable_name IN ('Innodb_row_lock_waits', 'Innodb_row_lock_time')",
        )
        .load(conn)
        .await?;
        let mut counts = DbCounts::default();
        for row in rows {
            let value: u64 = row.value.parse().unwrap_or(0);
            if row.name == "Questions" {
                counts.statements = value;
            } else if row.name == "Innodb_row_lock_waits" {
                counts.row_lock_waits = value;
            } else if row.name == "Innodb_row_lock_time" {
                counts.row_lock_time_ms = value;
            } else if ROW_COUNTERS.contains(&row.name.as_str()) {
                counts.row_operations += value;
            }
        }
        Ok(counts)
    }

    /// What one [`DbCounts::read`] adds to the counters: two reads back to back.
    pub async fn overhead(conn: &mut portcullis::store::MysqlConn) -> anyhow::Result<Self> {
        let a = Self::read(conn).await?;
        let b = Self::read(conn).await?;
        Ok(DbCounts {
            statements: b.statements.saturating_sub(a.statements),
            row_operations: b.row_operations.saturating_sub(a.row_operations),
            ..DbCounts::default()
        })
    }

    /// The work done between `earlier` and `self`, less the closing read's own cost.
    pub fn since(self, earlier: DbCounts, overhead: DbCounts) -> DbCounts {
        DbCounts {
            statements: self
                .statements
                .saturating_sub(earlier.statements + overhead.statements),
            row_operations: self
                .row_operations
                .saturating_sub(earlier.row_operations + overhead.row_operations),
            row_lock_waits: self.row_lock_waits.saturating_sub(earlier.row_lock_waits),
            row_lock_time_ms: self
                .row_lock_time_ms
                .saturating_sub(earlier.row_lock_time_ms),
        }
    }
}
