//! `throttle_events` table: events counted for rate limits (failed logins per `user:NAME` and
//! `ip:ADDR`, registrations per `register:ADDR`), in the database so limits hold across nodes
//! and restarts.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::throttle_events;
use super::{Pool, StoreResult};
use crate::db_run;

/// Events of each subject since `since`.
pub async fn recent(pool: &Pool, subjects: &[String], since: i64) -> StoreResult<Vec<i64>> {
    let mut counts = Vec::with_capacity(subjects.len());
    for s in subjects {
        let n = db_run!(pool, |conn| {
            Ok::<i64, super::StoreError>(
                throttle_events::table
                    .filter(throttle_events::subject.eq(s))
                    .filter(throttle_events::occurred_at.ge(since))
                    .count()
                    .get_result(conn)
                    .await?,
            )
        })?;
        counts.push(n);
    }
    Ok(counts)
}

/// Records one event for each subject, and forgets events older than `forget_before`.
pub async fn record(
    pool: &Pool,
    subjects: &[String],
    now: i64,
    forget_before: i64,
) -> StoreResult<()> {
    crate::db_transaction!(pool, |conn| {
        for s in subjects {
            diesel::insert_into(throttle_events::table)
                .values((
                    throttle_events::subject.eq(s),
                    throttle_events::occurred_at.eq(now),
                ))
                .execute(conn)
                .await?;
        }
        diesel::delete(
            throttle_events::table.filter(throttle_events::occurred_at.lt(forget_before)),
        )
        .execute(conn)
        .await?;
        Ok(())
    })
}

/// Forgets a subject's events (a successful login clears that user's failures).
pub async fn clear(pool: &Pool, subject: &str) -> StoreResult<()> {
    db_run!(pool, |conn| {
        diesel::delete(throttle_events::table.filter(throttle_events::subject.eq(subject)))
            .execute(conn)
            .await?;
        Ok(())
    })
}
