//! Group commit on PostgreSQL. A tenant's writes are serialized by its advisory lock (that is
//! what keeps one allocation across nodes), so committing each alone costs every write one
//! commit latency (a WAL flush) while holding the lock. Instead, a node's waiting write jobs of
//! one tenant run together: one transaction, the tenant's lock taken once, each job in a
//! savepoint of its own (a failing job rolls back to it; the others stand), one commit for all.
//! Each caller is answered only after that commit, so an acknowledged write is durable; a
//! commit that fails fails every job of its batch. A batch starts with the oldest waiting job
//! and takes the jobs that queue behind it while it runs, for at most [`BATCH_TIME`]: a batch of
//! heavy jobs (allocations) stays short, one of light jobs (user creates) grows long. A large
//! job (`Mode::Alone`) runs in a transaction of its own. This is the SQLite writer's batching,
//! per tenant and per node.
//!
//! Per node and tenant there is one queue (at most [`crate::store::WRITE_QUEUE_PER_TENANT`] jobs; a
//! write that finds it full waits up to [`crate::store::WRITE_QUEUE_WAIT`], then is answered 503) and
//! at most one runner, on a blocking thread, holding one pooled connection while it works: a
//! tenant's flood uses one connection of this node and cannot hold the others. Jobs of no
//! tenant (`Lock::None`) are single guarded statements and run at once, alone.
//!
//! `SEATKEEPER_PG_BATCH` (1 to 512, default [`JOBS_PER_TURN`]) sets the most jobs per batch:
//! a knob for measuring (1 is one commit per write, as before group commit), not a setting.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::store::engine::jobs::NotCommitted;
use crate::store::engine::postgres::Pg;
use crate::store::engine::sql::{Db, PgSession};
use crate::store::{Error, Inner, Job, Mode, Result, TenantKey, JOBS_PER_TURN};
use std::cell::RefCell;

/// The most jobs one batch takes (see the module doc).
fn batch_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        std::env::var("SEATKEEPER_PG_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| (1..=512).contains(n))
            .unwrap_or(JOBS_PER_TURN)
    })
}

/// The per-tenant queues of this node's PostgreSQL writes.
#[derive(Default)]
pub(in crate::store) struct PgQueues {
    queues: Mutex<HashMap<TenantKey, TenantQueue>>,
}

#[derive(Default)]
struct TenantQueue {
    jobs: VecDeque<Box<dyn Job>>,
    /// A runner serves this queue now.
    running: bool,
}

impl PgQueues {
    /// Queues `job` for `tenant`. Returns the job back when the queue is full, and whether a
    /// runner must be started.
    fn push(
        &self,
        tenant: TenantKey,
        job: Box<dyn Job>,
    ) -> std::result::Result<bool, Box<dyn Job>> {
        let Ok(mut all) = self.queues.lock() else {
            return Err(job);
        };
        let q = all.entry(tenant).or_default();
        if q.jobs.len() >= crate::store::WRITE_QUEUE_PER_TENANT {
            return Err(job);
        }
        q.jobs.push_back(job);
        Ok(!std::mem::replace(&mut q.running, true))
    }

    /// The longest tenant queue of this node now (metrics).
    pub(in crate::store) fn deepest(&self) -> usize {
        self.queues
            .lock()
            .map(|all| all.values().map(|q| q.jobs.len()).max().unwrap_or(0))
            .unwrap_or(0)
    }

    /// The next job of `tenant`'s queue; `None` (and the runner stops) when it is empty.
    fn pop(&self, tenant: TenantKey) -> Option<Box<dyn Job>> {
        let mut all = self.queues.lock().ok()?;
        let q = all.get_mut(&tenant)?;
        let job = q.jobs.pop_front();
        if job.is_none() {
            all.remove(&tenant);
        }
        job
    }

    /// The next job of `tenant`'s queue when `fits` takes it.
    fn pop_if(&self, tenant: TenantKey, fits: impl Fn(&dyn Job) -> bool) -> Option<Box<dyn Job>> {
        let mut all = self.queues.lock().ok()?;
        let q = all.get_mut(&tenant)?;
        if !fits(q.jobs.front()?.as_ref()) {
            return None;
        }
        q.jobs.pop_front()
    }
}

/// Queues a write job of `tenant` and makes sure a runner serves it.
pub(in crate::store) async fn submit(
    inner: &Arc<Inner>,
    tenant: TenantKey,
    mut job: Box<dyn Job>,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + crate::store::WRITE_QUEUE_WAIT;
    let start = loop {
        match inner.pg_queues.push(tenant, job) {
            Ok(start) => break start,
            Err(back) => {
                if tokio::time::Instant::now() >= deadline {
                    back.fail(Error::Busy);
                    return Err(Error::Busy);
                }
                job = back;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    if start {
        let inner = inner.clone();
        tokio::task::spawn_blocking(move || serve(&inner, tenant));
    }
    Ok(())
}

/// A batch stops taking jobs after this long, so that a batch of heavy jobs does not hold the
/// tenant's lock (and its callers' answers) for long.
const BATCH_TIME: std::time::Duration = std::time::Duration::from_millis(25);

/// The runner of `tenant`'s queue: batch after batch until it is empty.
fn serve(inner: &Inner, tenant: TenantKey) {
    while let Some(first) = inner.pg_queues.pop(tenant) {
        match inner.pg.as_ref() {
            Some(pg) => run_batch(pg, &inner.pg_queues, tenant, first),
            None => first.fail(Error::Closed),
        }
    }
}

/// Runs `first` and the jobs that queue behind it meanwhile (up to [`batch_size`] jobs or
/// [`BATCH_TIME`]) in one transaction under the tenant's lock, each after the first in a
/// savepoint, and answers every job after the commit. User creates queued side by side run as
/// one unit: one statement in one savepoint (`creates`).
fn run_batch(pg: &Pg, queues: &PgQueues, tenant: TenantKey, first: Box<dyn Job>) {
    let (session, xid) = match pg.begin_locked(crate::store::Lock::Tenant(tenant)) {
        Ok(s) => s,
        Err(e) => return first.fail(e),
    };
    let started = std::time::Instant::now();
    let mut jobs: Vec<Box<dyn Job>> = Vec::new();
    let mut broken: Option<String> = None;
    // The connection went away before the commit was sent: nothing committed.
    let mut lost = false;
    {
        let db = Db::Postgres(&session);
        // How the previous unit's savepoint ends, sent with the next unit's start (one round
        // trip between two jobs) or alone after the last.
        let mut pending_end: Option<&str> = None;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            let alone = job.mode() == Mode::Alone;
            let mut unit = vec![job];
            let merge = unit[0].merge();
            if let Some(m) = merge {
                let room = m.max.min(batch_size().saturating_sub(jobs.len()));
                while unit.len() < room {
                    match queues.pop_if(tenant, |j| j.merge().is_some_and(|o| o.kind == m.kind)) {
                        Some(j) => unit.push(j),
                        None => break,
                    }
                }
            }
            if jobs.is_empty() && unit.len() == 1 {
                // The first job alone in the transaction: when it fails, the rollback is its
                // own. A large job (`Mode::Alone`) is paced, so that it cannot take the machine
                // from the other tenants however long it runs.
                session.borrow_mut().set_paced(alone);
                if !unit[0].run(&db) {
                    broken = Some(String::new());
                }
                session.borrow_mut().set_paced(false);
            } else if unit.len() == 1 {
                in_savepoint(&session, &db, &mut unit[0], &mut pending_end);
            } else {
                savepoint(&session, &mut pending_end);
                let merged = merge.is_some_and(|m| {
                    (m.write)(&db, tenant, &mut unit)
                        .and_then(|()| db.settle())
                        .is_ok()
                });
                pending_end = Some(if merged { RELEASED } else { ROLLED_BACK });
                if !merged {
                    // Again one by one, so that a bad create fails alone.
                    for job in unit.iter_mut() {
                        in_savepoint(&session, &db, job, &mut pending_end);
                    }
                }
            }
            jobs.extend(unit);
            if broken.is_some()
                || alone
                || jobs.len() >= batch_size()
                || started.elapsed() >= BATCH_TIME
            {
                break;
            }
            // The next job that can join a batch (not `Alone`).
            next = queues.pop_if(tenant, |j| j.mode() != Mode::Alone);
        }
        if let Some(end) = pending_end.filter(|_| broken.is_none()) {
            if let Err(e) = db.execute_batch(end) {
                lost = e.unavailable();
                broken = Some(e.to_string());
            }
        }
    }
    // (The first job's own failure is its answer: its result already says why.)
    let outcome = match broken {
        Some(e) => {
            let _ = session.borrow_mut().batch_execute("ROLLBACK");
            pg.put(session.into_inner());
            if e.is_empty() {
                Ok(())
            } else if lost {
                Err(NotCommitted::Unavailable)
            } else {
                Err(NotCommitted::Failed(e))
            }
        }
        // A commit that loses its connection is resolved by its transaction id: every job of
        // the batch is answered as it really ended.
        None => pg.commit(session, xid),
    };
    for job in jobs {
        job.finish(outcome.clone());
    }
}

/// Ends a unit's savepoint that succeeded.
const RELEASED: &str = "RELEASE SAVEPOINT job";
/// Ends a unit's savepoint that failed: undoes what it wrote.
const ROLLED_BACK: &str = "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job";

/// Starts a unit's savepoint, sent with the unit's first statement (one round trip for both)
/// after the end of the previous unit's.
fn savepoint(session: &RefCell<PgSession>, pending_end: &mut Option<&str>) {
    let start = match pending_end.take() {
        Some(end) => format!("{end}; SAVEPOINT job"),
        None => "SAVEPOINT job".to_owned(),
    };
    session.borrow_mut().defer(&start);
}

/// Runs `job` in a savepoint of its own; leaves how the savepoint ends in `pending_end`.
fn in_savepoint(
    session: &RefCell<PgSession>,
    db: &Db,
    job: &mut Box<dyn Job>,
    pending_end: &mut Option<&'static str>,
) {
    savepoint(session, pending_end);
    *pending_end = Some(if job.run(db) { RELEASED } else { ROLLED_BACK });
}
