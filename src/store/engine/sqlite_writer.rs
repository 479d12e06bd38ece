//! The SQLite writer: one thread owns the write connection and commits jobs in batches (group
//! commit, each job in a savepoint), taking them from per-tenant queues in turns so that one
//! tenant's flood never stands before another tenant's write; and the checkpointer thread that
//! keeps the WAL short. PostgreSQL has no such thread: the database serializes (`pg`).

use crate::store::engine::jobs::*;
use crate::store::*;

/// Most write jobs committed in one transaction.
pub const MAX_BATCH: usize = 512;

/// WAL size (pages) at which the writer checkpoints itself: a backstop for when the
/// checkpointer thread cannot keep up (it runs every [`CHECKPOINT_EVERY`] while writes come).
pub(in crate::store) const WRITER_CHECKPOINT_PAGES: i64 = 16_384;

/// How long after a commit the checkpointer thread runs: commits in between share it.
pub(in crate::store) const CHECKPOINT_EVERY: std::time::Duration =
    std::time::Duration::from_millis(200);

/// Starts the checkpointer thread: after the writer signals a commit it waits
/// [`CHECKPOINT_EVERY`] (commits in between share the run), then copies what the WAL holds into
/// the database file with a PASSIVE checkpoint, which never blocks the writer or a reader. It
/// ends when the signal's sender (the writer thread) is gone.
pub(in crate::store) fn spawn_checkpointer(
    path: &Path,
) -> Result<(std::sync::mpsc::SyncSender<()>, JoinHandle<()>)> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    let thread = std::thread::Builder::new()
        .name("seatkeeper-checkpoint".into())
        .spawn(move || {
            use std::sync::mpsc::RecvTimeoutError;
            while rx.recv().is_ok() {
                let deadline = std::time::Instant::now() + CHECKPOINT_EVERY;
                loop {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(()) if !left.is_zero() => continue,
                        Ok(()) | Err(RecvTimeoutError::Timeout) => break,
                        // The writer has ended; it checkpoints the WAL away itself.
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                let r: rusqlite::Result<(i64, i64, i64)> =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    });
                if let Err(e) = r {
                    tracing::warn!(error = %e, "background checkpoint failed");
                }
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the checkpoint thread: {e}")))?;
    Ok((tx, thread))
}

/// Most write jobs of one tenant waiting for the SQLite writer; past it a job waits up to
/// [`WRITE_QUEUE_WAIT`] for room and is then refused with [`Error::Busy`] (503).
pub const WRITE_QUEUE_PER_TENANT: usize = 2048;

/// How long a write waits for room in a full queue (or, on PostgreSQL, for a connection or a
/// write turn) before it is answered 503.
pub const WRITE_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Small jobs of one tenant taken into a batch per turn.
pub(in crate::store) const JOBS_PER_TURN: usize = 64;

/// The SQLite writer's queue: one FIFO per tenant (jobs of no tenant share one), served in
/// turns. A batch takes up to [`JOBS_PER_TURN`] small jobs from each tenant with work waiting,
/// round-robin, until [`MAX_BATCH`]; a large job (`Alone`) runs when its tenant's turn comes,
/// by itself. So a tenant that floods the writer fills only its own queue (bounded by
/// [`WRITE_QUEUE_PER_TENANT`]), and another tenant's write waits for at most one turn of each
/// tenant with work queued, never for the flood. Within a tenant, jobs keep their order (the
/// waitlist order relies on it).
#[derive(Default)]
pub(in crate::store) struct WriteQueue {
    state: Mutex<QueueState>,
    ready: std::sync::Condvar,
}

#[derive(Default)]
pub(in crate::store) struct QueueState {
    queues: std::collections::HashMap<Option<TenantKey>, std::collections::VecDeque<Box<dyn Job>>>,
    /// Tenants with jobs waiting, in the order their turns come.
    turns: std::collections::VecDeque<Option<TenantKey>>,
    closed: bool,
}

pub(in crate::store) enum Refused {
    Closed,
    /// The tenant's queue is full: the job comes back.
    Full(Box<dyn Job>),
}

impl WriteQueue {
    pub(in crate::store) fn push(&self, job: Box<dyn Job>) -> std::result::Result<(), Refused> {
        let Ok(mut s) = self.state.lock() else {
            return Err(Refused::Closed);
        };
        if s.closed {
            return Err(Refused::Closed);
        }
        let key = job.tenant();
        let q = s.queues.entry(key).or_default();
        if q.len() >= WRITE_QUEUE_PER_TENANT {
            return Err(Refused::Full(job));
        }
        q.push_back(job);
        if q.len() == 1 {
            s.turns.push_back(key);
        }
        drop(s);
        self.ready.notify_one();
        Ok(())
    }

    /// The longest tenant queue waiting now (metrics: near [`WRITE_QUEUE_PER_TENANT`], writes
    /// are about to be answered 503).
    pub(in crate::store) fn deepest(&self) -> usize {
        self.state
            .lock()
            .map(|s| s.queues.values().map(|q| q.len()).max().unwrap_or(0))
            .unwrap_or(0)
    }

    /// No more jobs are taken; the writer finishes those waiting, then ends.
    pub(in crate::store) fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
        }
        self.ready.notify_all();
    }

    /// The next batch, waiting for one; `None` once closed and empty.
    pub(in crate::store) fn next_batch(&self) -> Option<Vec<Box<dyn Job>>> {
        let mut s = self.state.lock().ok()?;
        while s.turns.is_empty() {
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).ok()?;
        }
        let mut batch: Vec<Box<dyn Job>> = Vec::new();
        let mut visited = 0;
        while batch.len() < MAX_BATCH && visited < s.turns.len() {
            let Some(key) = s.turns.front().copied() else {
                break;
            };
            let QueueState { queues, turns, .. } = &mut *s;
            let q = queues.entry(key).or_default();
            if q.front().is_some_and(|j| j.mode() != Mode::Batched) {
                if batch.is_empty() {
                    // Its turn: the large job runs by itself.
                    batch.extend(q.pop_front());
                    turns.pop_front();
                    if q.is_empty() {
                        queues.remove(&key);
                    } else {
                        turns.push_back(key);
                    }
                    return Some(batch);
                }
                // Runs by itself in the next batch; others may still join this one.
                turns.rotate_left(1);
                visited += 1;
                continue;
            }
            let mut taken = 0;
            while taken < JOBS_PER_TURN
                && batch.len() < MAX_BATCH
                && q.front().is_some_and(|j| j.mode() == Mode::Batched)
            {
                batch.extend(q.pop_front());
                taken += 1;
            }
            turns.pop_front();
            if q.is_empty() {
                queues.remove(&key);
            } else {
                turns.push_back(key);
            }
        }
        Some(batch)
    }
}

pub(in crate::store) fn run_batch(conn: &Connection, batch: Vec<Box<dyn Job>>) {
    let mut batch = batch;
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let msg = e.to_string();
        batch
            .into_iter()
            .for_each(|j| j.finish(Err(NotCommitted::Failed(msg.clone()))));
        return;
    }
    if let [job] = &mut batch[..] {
        // One job: its failure rolls back the transaction, no savepoint needed.
        let ok = job.run(&Db::Sqlite(conn));
        if !ok {
            let _ = conn.execute_batch("ROLLBACK");
            batch
                .into_iter()
                .for_each(|j| j.finish(Err(NotCommitted::Failed("rolled back".into()))));
            return;
        }
    } else {
        for job in batch.iter_mut() {
            let ok = conn.execute_batch("SAVEPOINT job").is_ok() && job.run(&Db::Sqlite(conn));
            if ok {
                let _ = conn.execute_batch("RELEASE job");
            } else {
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            }
        }
    }
    let commit = conn
        .execute_batch("COMMIT")
        .map_err(|e| NotCommitted::Failed(e.to_string()));
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    batch.into_iter().for_each(|j| j.finish(commit.clone()));
}
