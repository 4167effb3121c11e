//! Group commit (issue 15): token writes that arrive while others are in flight are coalesced
//! into one statement and one commit.
//!
//! Each write statement costs MariaDB a round trip, a transaction and a commit whatever its
//! size; the rows themselves are the smaller part. Measured with `mariadb-slap` on the tokens
//! table (BENCHMARKS.md, session 19): 104–117 µs of mariadbd CPU per row inserted one per
//! statement, 45–49 µs per row eight to a statement. The write paths were bound by exactly
//! that CPU.
//!
//! A `Batcher` keeps a queue per kind of write and at most `IN_FLIGHT` statements of that kind
//! running. A request queues its job and, if a slot is free, starts a batch task at once, so
//! an idle server adds no wait; under load the jobs that queue while the slots are busy go
//! together in the next statement (up to `MAX_JOBS`). Every job is answered only after its
//! statement committed, with its own outcome (`Job::run_batch`). The batch runs in its own task,
//! so a request that goes away never cancels a statement in flight.
//!
//! On MariaDB the read of a grant before its exchange is batched the same way
//! (`codes::CodeRead`, `tokens::RefreshRead`): a statement's fixed cost is the same for a read.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::{Pool, StoreError, StoreResult};

/// Statements of one kind running at once. Two keep the database busy while the next batch
/// gathers (one statement's round trip overlaps the other's commit); more only split the same
/// queue into smaller batches.
const IN_FLIGHT: usize = 2;

/// Most jobs in one statement. It also bounds the distinct statements a connection prepares
/// (one per batch size and mix), and the rows a failed batch re-runs one by one.
pub const MAX_JOBS: usize = 16;

/// One write that can share a statement with others of its kind.
pub trait Job: Send + Sync + Sized + 'static {
    type Outcome: Send + 'static;
    /// Its name in the metrics.
    const KIND: &'static str;

    /// Runs `jobs` (one or more) together; one result per job, in order. A job's own fault
    /// (a unique or foreign-key violation) must come back as that job's result, not fail its
    /// neighbours.
    fn run_batch(
        pool: &Pool,
        jobs: &[Self],
    ) -> impl Future<Output = Vec<StoreResult<Self::Outcome>>> + Send;
}

/// A queue of jobs of one kind and the slots that run them.
pub struct Batcher<J: Job>(Arc<Shared<J>>);

struct Shared<J: Job> {
    queue: Mutex<VecDeque<Waiting<J>>>,
    slots: Arc<Semaphore>,
}

struct Waiting<J: Job> {
    job: J,
    reply: oneshot::Sender<StoreResult<J::Outcome>>,
}

impl<J: Job> Default for Batcher<J> {
    fn default() -> Self {
        Batcher(Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            slots: Arc::new(Semaphore::new(IN_FLIGHT)),
        }))
    }
}

impl<J: Job> Clone for Batcher<J> {
    fn clone(&self) -> Self {
        Batcher(self.0.clone())
    }
}

impl<J: Job> Batcher<J> {
    /// Queues `job` and waits for its statement to commit.
    pub async fn submit(&self, pool: &Pool, job: J) -> StoreResult<J::Outcome> {
        let (reply, answer) = oneshot::channel();
        self.0.lock().push_back(Waiting { job, reply });
        if let Ok(slot) = self.0.slots.clone().try_acquire_owned() {
            tokio::spawn(drain(self.0.clone(), pool.clone(), slot));
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the write's batch ended without an answer".into(),
            ))
        })
    }

    /// A read: batched on MariaDB, where every statement costs a round trip and the server's
    /// fixed work; run alone on SQLite, whose readers run side by side in the process.
    pub async fn read(&self, pool: &Pool, job: J) -> StoreResult<J::Outcome> {
        match pool {
            Pool::Mysql(..) => self.submit(pool, job).await,
            Pool::Sqlite(_) => J::run_batch(pool, std::slice::from_ref(&job))
                .await
                .pop()
                .unwrap_or_else(|| Err(StoreError::Unavailable("a read gave no result".into()))),
        }
    }
}

impl<J: Job> Shared<J> {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Waiting<J>>> {
        // A panic while holding the lock leaves a queue that is still consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_batch(&self) -> Vec<Waiting<J>> {
        let mut queue = self.lock();
        let n = queue.len().min(MAX_JOBS);
        queue.drain(..n).collect()
    }
}

/// A batch task: runs what is queued, batch after batch, until the queue is empty.
async fn drain<J: Job>(shared: Arc<Shared<J>>, pool: Pool, slot: OwnedSemaphorePermit) {
    let mut slot = Some(slot);
    loop {
        let batch = shared.take_batch();
        if batch.is_empty() {
            drop(slot.take());
            // A job queued after the look above, by a request that found every slot taken,
            // would wait for the next request otherwise: look again now the slot is free.
            if shared.lock().is_empty() {
                return;
            }
            match shared.slots.clone().try_acquire_owned() {
                Ok(s) => slot = Some(s),
                Err(_) => return, // another task has it and will take the job
            }
            continue;
        }
        run(&pool, batch).await;
    }
}

async fn run<J: Job>(pool: &Pool, batch: Vec<Waiting<J>>) {
    let (jobs, replies): (Vec<J>, Vec<_>) = batch.into_iter().map(|w| (w.job, w.reply)).unzip();
    metrics::counter!("portcullis_db_group_commits_total", "kind" => J::KIND).increment(1);
    metrics::counter!("portcullis_db_group_commit_jobs_total", "kind" => J::KIND)
        .increment(jobs.len() as u64);
    let results = J::run_batch(pool, &jobs).await;
    debug_assert_eq!(results.len(), replies.len());
    for (reply, result) in replies.into_iter().zip(results) {
        // The request may have gone away; its row is stored all the same.
        let _ = reply.send(result);
    }
}

/// The common shape of `Job::run_batch`: `statement` on all the jobs; if that fails for a
/// reason of one job (not the database being unavailable), each job alone, so each gets its
/// own outcome. A job alone gets its error as it came.
pub async fn each_on_failure<'a, J, T, F, Fut>(jobs: &'a [J], statement: F) -> Vec<StoreResult<T>>
where
    F: Fn(&'a [J]) -> Fut,
    Fut: Future<Output = StoreResult<Vec<T>>>,
{
    match statement(jobs).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if jobs.len() == 1 => vec![Err(e)],
        Err(e) if e.is_unavailable() => {
            let why = e.to_string();
            jobs.iter()
                .map(|_| Err(StoreError::Unavailable(why.clone())))
                .collect()
        }
        Err(_) => {
            let mut results = Vec::with_capacity(jobs.len());
            for job in jobs {
                let alone = statement(std::slice::from_ref(job)).await;
                results.push(alone.map(|mut one| one.remove(0)));
            }
            results
        }
    }
}

/// A pool's batchers, one per kind of write.
#[derive(Clone, Default)]
pub struct Batchers {
    /// New tokens (client credentials).
    pub tokens: Batcher<super::models::Token>,
    /// Codes and refresh tokens exchanged for tokens.
    pub exchanges: Batcher<super::exchange::Exchange>,
    /// Codes read before their exchange (MariaDB only).
    pub code_reads: Batcher<super::codes::CodeRead>,
    /// Refresh tokens read before their rotation (MariaDB only).
    pub refresh_reads: Batcher<super::tokens::RefreshRead>,
}
