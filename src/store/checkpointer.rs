//! SQLite's WAL checkpoints on a thread of their own, off the single writer.
//!
//! By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that
//! commit copies the WAL's pages into the database file and syncs both, on the writer
//! connection. Our writer runs inline on a runtime thread (`Inline`), so every request queued
//! behind it waits for the copy, and the runtime thread sits in `fsync`. Under code exchange
//! that was 9 % of the server's CPU on the writer's path, with a quarter of the two cores idle
//! (BENCHMARKS.md, session 21). Here a thread with its own connection runs passive checkpoints
//! (they never block the writer or readers) as soon as the WAL has grown, and the writer's own
//! automatic checkpoint is pushed out to `WRITER_AUTOCHECKPOINT_PAGES`, a safety net for when
//! this thread cannot keep up or could not start.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use diesel::sql_types::Integer;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};

/// The writer checkpoints by itself only past this many WAL pages (80 MiB at 4 KiB): normally
/// never, as this thread keeps the WAL far smaller.
pub const WRITER_AUTOCHECKPOINT_PAGES: u32 = 20_000;
/// How soon after a checkpoint that copied pages the next one runs. Shorter means more syncs
/// (two per checkpoint); longer means a bigger WAL for readers to search.
const BUSY_INTERVAL: Duration = Duration::from_millis(25);
/// When the WAL stops growing the interval doubles up to this, so an idle server wakes once a
/// second.
const IDLE_INTERVAL: Duration = Duration::from_secs(1);

/// Owns the checkpoint thread: dropping it (with the last `SqlitePools` clone) stops the thread
/// at once, and its connection closes.
#[derive(Debug)]
pub struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts the thread for the database at `path`. It opens its connection itself, at its
    /// first checkpoint, so a failure to open is logged there and leaves the writer's own
    /// checkpoints in charge.
    pub fn start(path: PathBuf) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(path, stopped))?;
        Ok(Checkpointer { _stop: stop })
    }
}

/// One row of `PRAGMA wal_checkpoint`.
#[derive(QueryableByName, Debug, PartialEq, Eq, Clone, Copy)]
struct CheckpointResult {
    /// 1 when the checkpoint could not run at all (another checkpoint held its lock).
    #[diesel(sql_type = Integer)]
    busy: i32,
    /// Frames in the WAL.
    #[diesel(sql_type = Integer)]
    log: i32,
    /// Of those, frames now copied into the database file.
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

/// A connection for checkpoints only: none of the pools' pragmas. Setting `journal_mode` needs
/// a lock that the first start's migrations may hold (the database is in WAL mode once they
/// ran; until then a checkpoint does nothing), and a passive checkpoint never waits for a lock.
fn connect(path: &Path) -> diesel::ConnectionResult<SqliteConnection> {
    SqliteConnection::establish(&path.to_string_lossy())
}

fn run(path: PathBuf, stopped: mpsc::Receiver<()>) {
    let mut conn = None;
    let mut interval = BUSY_INTERVAL;
    let mut last = None;
    // Ends when the `Checkpointer` is dropped (the sender goes away).
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
        let conn = match &mut conn {
            Some(conn) => conn,
            None => match connect(&path) {
                Ok(opened) => conn.insert(opened),
                Err(e) => {
                    tracing::warn!(error = %e, "SQLite checkpoint thread could not connect; the writer checkpoints by itself");
                    return;
                }
            },
        };
        match diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn) {
            Ok(result) => {
                interval = next_interval(interval, last, result);
                last = Some(result);
            }
            Err(e) => {
                tracing::warn!(error = %e, "SQLite checkpoint failed");
                interval = IDLE_INTERVAL;
            }
        }
    }
}

/// Back to `BUSY_INTERVAL` whenever the WAL changed since the last checkpoint (it grew, or the
/// writer started it over); otherwise twice as long, up to `IDLE_INTERVAL`.
fn next_interval(
    interval: Duration,
    last: Option<CheckpointResult>,
    now: CheckpointResult,
) -> Duration {
    if now.busy == 0 && last == Some(now) {
        (interval * 2).min(IDLE_INTERVAL)
    } else {
        BUSY_INTERVAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(log: i32, checkpointed: i32) -> CheckpointResult {
        CheckpointResult {
            busy: 0,
            log,
            checkpointed,
        }
    }

    #[test]
    fn a_growing_wal_is_checkpointed_again_soon_and_a_still_one_ever_less_often() {
        let grown = next_interval(IDLE_INTERVAL, Some(result(10, 10)), result(900, 900));
        assert_eq!(grown, BUSY_INTERVAL);
        let mut interval = BUSY_INTERVAL;
        let mut waits = Vec::new();
        for _ in 0..8 {
            interval = next_interval(interval, Some(result(900, 900)), result(900, 900));
            waits.push(interval);
        }
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(waits.last(), Some(&IDLE_INTERVAL));
        // A WAL the writer started over (fewer frames than before) is new work too.
        assert_eq!(
            next_interval(IDLE_INTERVAL, Some(result(900, 900)), result(40, 40)),
            BUSY_INTERVAL
        );
    }
}
