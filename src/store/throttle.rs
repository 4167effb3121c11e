//! `throttle_events` table: attempts counted for rate limits (logins per address, per username
//! and address, and per username; registrations per address), in the database so limits hold
//! across nodes and restarts.
//!
//! An attempt is written *before* it is judged, one autocommitted INSERT per subject, and then
//! the subject's rows in the window are counted. Whichever of two concurrent attempts commits
//! second counts both, so the k-th committed attempt sees at least k rows, and no more than
//! `limit` attempts can see a count within the limit, however many arrive at once. (Counting
//! inside one transaction with the INSERT would not do: two attempts could each count before
//! either commits.)

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use super::schema::throttle_events;
use super::{MysqlConn, Pool, SqliteWriterConn, StoreResult};
use crate::db_write;

/// One attempt in progress: its row per subject, and each subject's count in the window
/// (its own row included), in the order the subjects were given.
#[derive(Debug)]
pub struct Attempt {
    pub ids: Vec<i64>,
    pub counts: Vec<i64>,
}

/// The SQL that reads the id of the row the connection inserted last.
trait LastInsertId {
    const SQL: &'static str;
}

impl LastInsertId for SqliteWriterConn {
    const SQL: &'static str = "last_insert_rowid()";
}

impl LastInsertId for MysqlConn {
    // LAST_INSERT_ID() is BIGINT UNSIGNED; ids are far below i64::MAX.
    const SQL: &'static str = "CAST(LAST_INSERT_ID() AS SIGNED)";
}

fn last_insert_id_sql<C: LastInsertId>(_: &C) -> &'static str {
    C::SQL
}

/// Counts an attempt for each subject, then reads each subject's count since `since`. The
/// subjects' rows older than the window are deleted on the way.
pub async fn begin_attempt(
    pool: &Pool,
    subjects: &[String],
    now: i64,
    since: i64,
) -> StoreResult<Attempt> {
    db_write!(pool, |conn| {
        let mut ids = Vec::with_capacity(subjects.len());
        for s in subjects {
            diesel::insert_into(throttle_events::table)
                .values((
                    throttle_events::subject.eq(s),
                    throttle_events::occurred_at.eq(now),
                ))
                .execute(conn)
                .await?;
            let id: i64 = diesel::select(diesel::dsl::sql::<BigInt>(last_insert_id_sql(conn)))
                .get_result(conn)
                .await?;
            ids.push(id);
        }
        let mut counts = Vec::with_capacity(subjects.len());
        for s in subjects {
            let n: i64 = throttle_events::table
                .filter(throttle_events::subject.eq(s))
                .filter(throttle_events::occurred_at.ge(since))
                .count()
                .get_result(conn)
                .await?;
            counts.push(n);
        }
        // Only these subjects' old rows: each limit has its own window (registrations count
        // an hour, logins 15 minutes by default), so deleting every row older than this
        // window let each login forget the registrations of the last hour. Rows of subjects
        // that are not tried again go with the janitor (`store::purge`).
        diesel::delete(
            throttle_events::table
                .filter(throttle_events::subject.eq_any(subjects))
                .filter(throttle_events::occurred_at.lt(since)),
        )
        .execute(conn)
        .await?;
        Ok(Attempt { ids, counts })
    })
}

/// Takes back the attempt's own rows: it was refused before anything was tried, or it
/// succeeded, so it is not a failure to count.
pub async fn withdraw(pool: &Pool, attempt: &Attempt) -> StoreResult<()> {
    db_write!(pool, |conn| {
        diesel::delete(throttle_events::table.filter(throttle_events::id.eq_any(&attempt.ids)))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Forgets a subject's rows written before `row_id` (one of the subject's own): the failures a
/// successful attempt could see. Attempts that began after it keep their rows.
pub async fn clear_before(pool: &Pool, subject: &str, row_id: i64) -> StoreResult<()> {
    db_write!(pool, |conn| {
        diesel::delete(
            throttle_events::table
                .filter(throttle_events::subject.eq(subject))
                .filter(throttle_events::id.lt(row_id)),
        )
        .execute(conn)
        .await?;
        Ok(())
    })
}
