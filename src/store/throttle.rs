//! `login_failures` table: failed logins per subject (`user:NAME`, `ip:ADDR`) so throttling
//! holds across nodes and restarts.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::login_failures;
use super::{Pool, StoreResult};
use crate::db_run;

/// Failures of each subject since `since`.
pub async fn recent_failures(
    pool: &Pool,
    subjects: &[String],
    since: i64,
) -> StoreResult<Vec<i64>> {
    let mut counts = Vec::with_capacity(subjects.len());
    for s in subjects {
        let n = db_run!(pool, |conn| {
            Ok::<i64, super::StoreError>(
                login_failures::table
                    .filter(login_failures::subject.eq(s))
                    .filter(login_failures::failed_at.ge(since))
                    .count()
                    .get_result(conn)
                    .await?,
            )
        })?;
        counts.push(n);
    }
    Ok(counts)
}

/// Records one failure for each subject, and forgets failures older than `forget_before`.
pub async fn record_failure(
    pool: &Pool,
    subjects: &[String],
    now: i64,
    forget_before: i64,
) -> StoreResult<()> {
    crate::db_transaction!(pool, |conn| {
        for s in subjects {
            diesel::insert_into(login_failures::table)
                .values((
                    login_failures::subject.eq(s),
                    login_failures::failed_at.eq(now),
                ))
                .execute(conn)
                .await?;
        }
        diesel::delete(login_failures::table.filter(login_failures::failed_at.lt(forget_before)))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// A successful login clears that user's failures (not the IP's).
pub async fn clear(pool: &Pool, subject: &str) -> StoreResult<()> {
    db_run!(pool, |conn| {
        diesel::delete(login_failures::table.filter(login_failures::subject.eq(subject)))
            .execute(conn)
            .await?;
        Ok(())
    })
}
