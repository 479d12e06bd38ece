//! Write jobs, as both engines run them: a job runs inside a transaction (in a savepoint
//! beside others, or alone), is answered only after its transaction's outcome is known, and
//! may share one statement with jobs of its kind (PostgreSQL merges user creates).

use tokio::sync::oneshot;

use crate::store::engine::sql::Db;
use crate::store::{Error, Result, TenantKey};

/// Writes merged jobs (see [`Merge::write`]).
pub(in crate::store) type MergeWrite = fn(&Db, TenantKey, &mut [Box<dyn Job>]) -> Result<()>;

/// Jobs of one kind written together by one statement.
#[derive(Clone, Copy)]
pub(in crate::store) struct Merge {
    /// Which kind (jobs merge only with jobs of the same kind).
    pub kind: &'static str,
    /// Most jobs one statement writes.
    pub max: usize,
    /// Writes the jobs (each of this kind, all of one tenant) and sets each one's answer; on
    /// an error nothing is answered: the caller rolls back and runs them one by one.
    pub write: MergeWrite,
}

pub(in crate::store) trait Job: Send {
    /// Runs inside the batch transaction; returns false when the job failed and its savepoint
    /// must be rolled back.
    fn run(&mut self, conn: &Db) -> bool;
    fn mode(&self) -> Mode;
    /// Whose queue the job waits in (`None`: jobs of no tenant).
    fn tenant(&self) -> Option<TenantKey>;
    /// Called after the batch committed (`Ok`) or did not (`Err`).
    fn finish(self: Box<Self>, commit: std::result::Result<(), NotCommitted>);
    /// Answers a job that did not run.
    fn fail(self: Box<Self>, e: Error);
    /// How jobs of this kind share one statement with the same jobs queued beside them
    /// (PostgreSQL's batches; `None`: each runs alone).
    fn merge(&self) -> Option<Merge> {
        None
    }
    /// This job as the concrete type its [`Merge::write`] takes it as.
    fn merge_part(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
}

/// Why a batch did not commit, as each of its jobs is answered.
#[derive(Debug, Clone)]
pub(in crate::store) enum NotCommitted {
    /// The database refused the commit, or the batch was rolled back: the text says why.
    Failed(String),
    /// The connection was lost during the commit and the transaction is known not to have
    /// committed, or its outcome could not be learned (the database still down): the caller
    /// is told to retry (503), and the job is not run again.
    Unavailable,
}

impl From<String> for NotCommitted {
    fn from(s: String) -> Self {
        NotCommitted::Failed(s)
    }
}

/// A job's answer: its result once its batch committed (`commit`), else why it did not.
pub(in crate::store) fn settle<T>(
    commit: std::result::Result<(), NotCommitted>,
    result: Option<Result<T>>,
) -> Result<T> {
    match (commit, result) {
        (Ok(()), Some(r)) => r,
        (Err(NotCommitted::Unavailable), Some(Ok(_))) => Err(Error::Unavailable(
            "the connection to the database was lost while committing; the change did not happen"
                .into(),
        )),
        (Err(NotCommitted::Failed(e)), Some(Ok(_))) => {
            Err(Error::Internal(format!("commit failed: {e}")))
        }
        (_, Some(Err(e))) => Err(e),
        (_, None) => Err(Error::Internal("job did not run".into())),
    }
}

/// How a write job is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Mode {
    /// With the jobs waiting beside it, each in a savepoint (group commit).
    Batched,
    /// In a transaction of its own (see [`Store::write_alone`]).
    Alone,
}

/// What the caller of a write job receives: its answer, or the job itself handed back to be
/// run again in a later transaction, because PostgreSQL gave its work up so that others could
/// go on (a deadlock, a serialization failure, a lock not available: nothing of it was
/// written). A job is a `Fn`, so running it again is running the same change again.
pub(in crate::store) enum Answer<T, F> {
    Done(Result<T>),
    Again(F, Error),
}

pub(in crate::store) struct TypedJob<T, F> {
    pub(in crate::store) f: F,
    pub(in crate::store) mode: Mode,
    pub(in crate::store) tenant: Option<TenantKey>,
    pub(in crate::store) result: Option<Result<T>>,
    pub(in crate::store) reply: oneshot::Sender<Answer<T, F>>,
}

impl<T: Send, F: Fn(&Db) -> Result<T> + Send> Job for TypedJob<T, F> {
    fn run(&mut self, conn: &Db) -> bool {
        let f = &self.f;
        // Done only once every write it kept for later is written (`Db::execute_later`): its
        // savepoint then ends with the job's own outcome.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f(conn).and_then(|v| conn.settle().map(|()| v))
        }))
        .unwrap_or_else(|_| Err(Error::Internal("a write job panicked".into())));
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }
    fn mode(&self) -> Mode {
        self.mode
    }
    fn tenant(&self) -> Option<TenantKey> {
        self.tenant
    }
    fn finish(self: Box<Self>, commit: std::result::Result<(), NotCommitted>) {
        let job = *self;
        let answer = match job.result {
            // Its savepoint was rolled back whatever became of the batch: run it again.
            Some(Err(e)) if e.contention() => Answer::Again(job.f, e),
            result => Answer::Done(settle(commit, result)),
        };
        let _ = job.reply.send(answer);
    }
    fn fail(self: Box<Self>, e: Error) {
        let _ = self.reply.send(Answer::Done(Err(e)));
    }
}
