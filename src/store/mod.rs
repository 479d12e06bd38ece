//! All SQL lives here. The store owns the database (a SQLite file or PostgreSQL) and offers typed
//! async operations to the HTTP layer and the CLI; nothing outside this module sees a connection.
//!
//! ## Threads and durability
//! rusqlite blocks, so no query runs on the async reactor:
//! - **One writer thread** owns the only write connection. Write jobs wait in one queue per
//!   tenant ([`WriteQueue`]: served in turns, so one tenant's flood never queues another's
//!   write; a full queue answers [`Error::Busy`]); the writer takes the jobs waiting (up to
//!   [`MAX_BATCH`], a turn of each tenant at a time), runs them in one `BEGIN IMMEDIATE`
//!   transaction, each inside its own savepoint (a failing job rolls back alone), commits once,
//!   and only then answers each caller. That is group commit: many requests share one fsync, and
//!   no caller hears "done" before its change is durable. With `synchronous = FULL` in WAL mode a
//!   commit survives power loss, not just a process crash. The savepoints' statement journal
//!   stays in memory (`temp_store = MEMORY`) and is cut back at every release, so it holds one
//!   job's pages at a time; a job that can touch a whole tenant (selecting a group, a
//!   reconcile) runs alone, in a transaction of its own without a savepoint
//!   ([`Store::write_alone`]).
//! - **Checkpoints** (copying the WAL back into the database file, with its own fsync) run on a
//!   thread of their own, a moment after commits, so the writer never stops to do one; the
//!   writer checkpoints itself only if the WAL grows past [`WRITER_CHECKPOINT_PAGES`].
//! - **Readers** use a small pool of read-only connections from `spawn_blocking` threads. In WAL
//!   mode they never block the writer and see the last committed state. Point reads on the hot
//!   path (a user by id or `userName`) run inline on the HTTP worker's own connection, in one
//!   read transaction ([`Store::read_now`]); an accepted SCIM token is remembered for a second
//!   (`access::tokens::AuthCache`), so most requests authenticate without a read at all. A waiting
//!   user's position in a long waitlist comes from an in-memory copy of the waitlist order taken
//!   at the license's current `waitlist_gen` (`ranks`), not from counting everyone ahead.
//!
//! One writer also makes every write job serializable: a job that reads, decides and writes (a
//! PATCH, a seat grant) cannot interleave with another. The seat allocator relies on this.
//!
//! ## Tenancy
//! Every table has a `tenant` column and every statement here filters on it; a [`TenantKey`] is
//! only obtained from an authenticated token or an admin lookup.
//!
//! This file is the one engine boundary: the [`Store`] handle with its read and write paths,
//! each deciding per engine here so that no business method does. The code is in folders by
//! concern (see ARCHITECTURE.md): `engine` (the SQLite writer in `engine::sqlite_writer`,
//! PostgreSQL's in `engine::postgres` and `engine::postgres_batch`), `directory`, `allocation`,
//! `events`, `access`, `operations`.

pub mod access;
pub mod allocation;
pub mod directory;
pub mod engine;
pub mod events;
pub mod operations;

use engine::jobs::{Answer, Job, Mode, TypedJob};
use engine::sqlite_writer::{
    run_batch, spawn_checkpointer, Refused, WriteQueue, JOBS_PER_TURN, WRITER_CHECKPOINT_PAGES,
};
pub use engine::sqlite_writer::{MAX_BATCH, WRITE_QUEUE_PER_TENANT, WRITE_QUEUE_WAIT};

/// How many times in all a write job runs when PostgreSQL keeps giving it up for contention
/// (a deadlock, a serialization failure); the last refusal is answered (503, retry).
pub const WRITE_ATTEMPTS: u32 = 5;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::background::{self, Background};
pub use engine::postgres::Lock;
use engine::sql::Db;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

pub use access::product::{
    ProductCheck, ProductEvent, ProductEvents, ProductGrant, ProductScope, ProductSeat,
    ProductUser, ProductUserSeats, UsageEvent, UsageReport, MAX_CHECKS, MAX_USAGE,
};
pub use access::tenants::{check_recipients, Tenant, TenantChange};
pub use access::tokens::{Authn, ConsoleSession, TokenInfo, AUTH_CACHE_TTL};
pub use allocation::history::LicenseTrueUp;
pub use allocation::holds::{Decision, HeldUser, HoldChange, HoldState, HoldView};
pub use allocation::license_view::{LicenseMode, LicenseRef, LicenseView, SeatCounts};
pub use allocation::licenses::{LicenseChange, LicenseSpec, DEFAULT_GRACE_SECONDS};
pub use allocation::preview::{Place, PoolView, PreviewView, Proposed};
pub use allocation::reclaim::{IdleSeat, ReclaimPreview};
pub use allocation::reconciler::{
    Expired, ExpiredMember, ExpiredSelector, ReconcileReport, RunCounts,
};
pub use allocation::seat_admin::{OverrideView, SeatView, SeatsView, UserSeat, UserState};
pub use allocation::selection::{GroupEntry, GroupSelection, Selector, SelectorView};
pub use allocation::shadow::{HoldersReport, ShadowCounts, ShadowPerson, ShadowView, MAX_HOLDERS};
pub use directory::filters::{ListQuery, Page};
pub use directory::groups::{GroupChoice, GroupRecord};
pub use directory::provisioning::{Health, Pending, PendingMember, PendingSelector, TenantStatus};
pub use directory::rows::{GroupRef, MemberRow};
pub use directory::users::UserRecord;
pub use events::feed::{
    ActivityPage, ActivityQuery, AuditEntry, SeatEvent, SeatEvents, SeatMoves, UsagePoint,
};
pub use events::outbox::{DigestState, Notification, NotificationDetail, Notifications};
pub use events::provider_health::{FailedRequest, ProviderFailure, ProviderHealth};
pub use operations::maintenance::Problem;

/// A tenant's internal key.
pub type TenantKey = i64;

/// Read-only connections: at most this many reads run at once (others wait for a free one), and
/// every connection is kept, so a read never pays for opening one (schema parse, pragmas).
const READERS: usize = 16;
/// Expensive reads (listings that examine rows in memory, see `directory::filters::is_scan`, and previews)
/// one tenant may run at once: one. Its further ones queue behind it, never taking the threads
/// and connections other tenants' reads (and, on PostgreSQL, token checks) need.
const SCANS_PER_TENANT: usize = 1;
/// Threads for expensive reads, at a lower CPU priority (see `crate::background`).
const BACKGROUND_THREADS: usize = 2;
/// Page cache of each HTTP worker's own read connection (see [`Store::read_now`]), in KiB.
const HOT_READER_CACHE_KIB: i64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A dry run's own ending: the job ran to its end and is rolled back on purpose
    /// (`Store::dry_run`); never answered to a client.
    #[error("rolled back on purpose")]
    RolledBack,
    #[error("the resource has changed (version mismatch)")]
    VersionMismatch,
    #[error(transparent)]
    Scim(#[from] crate::scim::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {}", pg_text(.0))]
    Postgres(postgres::Error),
    /// A query that must find a row found none (see `engine::sql::OptionalExtension`).
    #[error("the query found no row")]
    NoRow,
    #[error("the database is closed")]
    Closed,
    /// The tenant's write queue stayed full (see [`WRITE_QUEUE_PER_TENANT`]): answered 503 with
    /// `Retry-After`, so the client backs off instead of timing out.
    #[error("too many writes are waiting; retry shortly")]
    Busy,
    /// The database cannot be reached, found without a driver error to show (a commit whose
    /// connection was lost and whose outcome is "not committed" or unknown): 503.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A limit on how often something may be done was reached (429 with `Retry-After`).
    #[error("{message}")]
    TooMany { message: String, retry_after: u64 },
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a store error means to a client, whatever the surface: one classification shared by
/// the SCIM edge, the admin and product APIs and the console, each of which only words it.
#[derive(Debug)]
pub enum Failure {
    /// 404: what was named does not exist.
    NotFound(String),
    /// 409: it clashes with what exists (a name taken, a state that does not allow it).
    Conflict(String),
    /// 412: changed since the version the client had.
    Precondition,
    /// 400 (or the SCIM error's own status): the request itself is wrong.
    Invalid(String),
    /// A protocol error the SCIM layer already worded.
    Scim(crate::scim::Error),
    /// 503: the service is shutting down.
    ShuttingDown,
    /// 503 with `Retry-After`: the tenant's write queue is full.
    Busy,
    /// 429 with `Retry-After` (seconds): done too often.
    TooMany(String, u64),
    /// 503 with `Retry-After`: the database gave the work up (a serialization failure, a
    /// deadlock, a lock it could not take): nothing was written, and the same request retried
    /// succeeds.
    Contention,
    /// 503 with `Retry-After`: the database cannot be reached (PostgreSQL restarting, failing
    /// over, the network between): a provider retries, and `/readyz` drains the node meanwhile.
    Unavailable,
    /// 500: a fault of the service (logged here, never shown).
    Internal,
}

impl Failure {
    pub const SHUTTING_DOWN: &'static str = "the service is shutting down";
    pub const BUSY: &'static str =
        "too many writes are waiting for this tenant; retry after the time in Retry-After";
    pub const CONTENTION: &'static str =
        "the database gave this change up to let another through (nothing was written); retry after the time in Retry-After";
    pub const UNAVAILABLE: &'static str =
        "the database cannot be reached; retry after the time in Retry-After";
}

impl Error {
    /// True when the database cannot be reached (the error says nothing of the work): a
    /// background pass backs off rather than logging it on every poll.
    /// True when PostgreSQL gave the work up so that other transactions could go on (see
    /// [`contention`]): nothing of it was written, and running it again is safe.
    pub fn contention(&self) -> bool {
        matches!(self, Error::Postgres(e) if contention(e))
    }

    pub fn unavailable(&self) -> bool {
        match self {
            Error::Postgres(e) => connection_lost(e),
            Error::Unavailable(_) => true,
            _ => false,
        }
    }

    /// How an edge answers this error; a fault of the service is logged once, here.
    pub fn classify(self) -> Failure {
        match self {
            Error::NotFound(what) => Failure::NotFound(format!("{what} not found")),
            Error::Conflict(m) => Failure::Conflict(m),
            Error::VersionMismatch => Failure::Precondition,
            Error::Scim(e) => Failure::Scim(e),
            Error::Invalid(m) => Failure::Invalid(m),
            Error::Closed => Failure::ShuttingDown,
            Error::Busy => Failure::Busy,
            Error::TooMany {
                message,
                retry_after,
            } => Failure::TooMany(message, retry_after),
            Error::Postgres(e) if connection_lost(&e) => {
                tracing::warn!(error = %e, "the database cannot be reached");
                Failure::Unavailable
            }
            Error::Postgres(e) if contention(&e) => {
                tracing::warn!(error = %pg_text(&e), "the database gave a change up; the client is told to retry");
                Failure::Contention
            }
            Error::Unavailable(why) => {
                tracing::warn!(reason = %why, "the database cannot be reached");
                Failure::Unavailable
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Failure::Internal
            }
        }
    }
}

/// A PostgreSQL error as text: the server's message and code when it sent one (the client's
/// own Display says only "db error").
fn pg_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// True when PostgreSQL gave a transaction up so that others could go on: a serialization
/// failure, a deadlock, a lock not available. Nothing of it was written.
pub(crate) fn contention(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .contains(c)
    })
}

/// True when a PostgreSQL error says the connection, not the statement, failed: closed,
/// refused, timed out, or the server shutting down.
pub(crate) fn connection_lost(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(c),
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        // PostgreSQL text cannot hold NUL, which SQLite stores: refused as bad input, as
        // anything else a client cannot send.
        use postgres::error::SqlState;
        if e.code() == Some(&SqlState::CHARACTER_NOT_IN_REPERTOIRE)
            || e.code() == Some(&SqlState::UNTRANSLATABLE_CHARACTER)
        {
            return Error::Invalid("text cannot contain a NUL character".into());
        }
        Error::Postgres(e)
    }
}

/// The store's clock, in milliseconds since the epoch (tests substitute their own).
pub type Clock = Arc<dyn Fn() -> crate::alloc::Millis + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as crate::alloc::Millis
    })
}

/// A monotonic reading of the store's clock (see [`Store::ticker`]).
#[derive(Clone)]
pub struct Ticker {
    clock: Clock,
    last: Arc<std::sync::atomic::AtomicI64>,
}

impl Ticker {
    pub fn now(&self) -> crate::alloc::Millis {
        let t = (self.clock)();
        let prev = self.last.fetch_max(t, std::sync::atomic::Ordering::SeqCst);
        t.max(prev)
    }
}

struct Inner {
    clock: Clock,
    last_tick: Arc<std::sync::atomic::AtomicI64>,
    /// Last SCIM call per tenant, written to the database by the reconciler.
    provider_calls: Mutex<std::collections::HashMap<TenantKey, crate::alloc::Millis>>,
    /// Provider requests counted since the last flush, by tenant and hour (see
    /// `events::provider_health`).
    provider_requests: Mutex<std::collections::HashMap<(TenantKey, i64), i64>>,
    path: PathBuf,
    /// Write jobs waiting for the SQLite writer, per tenant (see [`WriteQueue`]).
    writes: Arc<WriteQueue>,
    /// PostgreSQL: write jobs of each tenant waiting for their batch on this node.
    pg_queues: engine::postgres_batch::PgQueues,
    /// The writer thread; it joins the checkpointer thread before it ends.
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    reader_slots: tokio::sync::Semaphore,
    /// The PostgreSQL engine, when the store is one; the SQLite fields above are then unused.
    pg: Option<engine::postgres::Pg>,
    /// Accepted SCIM tokens (see [`access::tokens::ScimCache`]).
    scim_cache: access::tokens::ScimCache,
    /// Accepted product tokens (see `Store::authenticate_product`).
    product_cache: access::tokens::TrustCache<access::product::ProductGrant>,
    /// Tenants an operator credential named in a path, by the credential and the name (see
    /// `Store::tenant_for_operator`).
    operator_tenants: access::tokens::TrustCache<Arc<access::tenants::Tenant>>,
    /// How long history is kept (`retention`), set from the configuration at start.
    retention: Mutex<operations::retention::Retention>,
    /// Rows pruned by this process's passes so far (metrics).
    pruned: Mutex<operations::retention::Pruned>,
    /// Write jobs run again after PostgreSQL gave them up for contention (metrics).
    write_retries: AtomicU64,
    /// Copies of long waitlists' order, for the seat check's positions.
    ranks: Arc<allocation::waitlist_ranks::RankCache>,
    /// Per tenant, the listings that examine rows in memory it may run at once.
    scans: TenantSlots,
    /// Low-priority threads for expensive reads (see `crate::background`).
    background: Background,
}

impl Drop for Inner {
    /// A store dropped without [`Store::close`] still lets its writer finish and end.
    fn drop(&mut self) {
        self.writes.close();
    }
}

/// A semaphore of `permits` per tenant, made when the tenant first needs one.
struct TenantSlots {
    permits: usize,
    by_tenant: Mutex<std::collections::HashMap<TenantKey, Arc<tokio::sync::Semaphore>>>,
}

impl TenantSlots {
    fn new(permits: usize) -> TenantSlots {
        TenantSlots {
            permits,
            by_tenant: Default::default(),
        }
    }

    /// The tenant's semaphore.
    fn of(&self, tenant: TenantKey) -> Result<Arc<tokio::sync::Semaphore>> {
        let mut m = self.by_tenant.lock().map_err(|_| Error::Closed)?;
        if m.len() > 10_000 {
            // Forget idle tenants (a slot in use keeps its semaphore alive elsewhere).
            m.retain(|_, s| s.available_permits() < self.permits);
        }
        Ok(m.entry(tenant)
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.permits)))
            .clone())
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

/// Runs `f` in one read transaction on the read-only connection `c`: every statement sees the
/// same commit. The statements are cached: `Transaction` would parse BEGIN and COMMIT each time.
fn in_snapshot<T>(c: &Db, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
    let begin = match c {
        Db::Sqlite(conn) => {
            if !conn.is_autocommit() {
                // A transaction left open by a failed end (never expected): start clean.
                conn.execute_batch("ROLLBACK")?;
            }
            "BEGIN"
        }
        Db::Postgres(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    };
    c.prepare_cached(begin)?.execute([])?;
    let r = f(c);
    let end = if r.is_ok() { "COMMIT" } else { "ROLLBACK" };
    c.prepare_cached(end)?.execute([])?;
    r
}

/// A read-only connection. Its page cache is 1 MiB (SQLite's default is 2): reads are index
/// lookups whose upper B-tree levels fit, the operating system caches the rest, and there are
/// up to [`READERS`] of them plus one per HTTP worker.
/// Runs `f` on a pooled SQLite read connection (opening one when none is idle); blocks.
fn with_reader<T>(inner: &Inner, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
    let conn = match inner.readers.lock().map_err(|_| Error::Closed)?.pop() {
        Some(c) => c,
        None => open_reader(&inner.path)?,
    };
    let r = f(&Db::Sqlite(&conn));
    let mut pool = inner.readers.lock().map_err(|_| Error::Closed)?;
    if pool.len() < READERS {
        pool.push(conn);
    }
    r
}

fn open_reader(path: &Path) -> Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&c)?;
    c.pragma_update(None, "cache_size", -1024)?;
    Ok(c)
}

impl Store {
    /// Opens (creating if needed) the database at `path`, applies the schema or migrates it, and
    /// starts the writer thread.
    pub fn open(path: &Path) -> Result<Store> {
        Self::open_with_clock(path, system_clock())
    }

    /// As [`Store::open`], with the clock the allocator reads. A `postgres://` or
    /// `postgresql://` URL opens PostgreSQL instead of a SQLite file.
    pub fn open_with_clock(path: &Path, clock: Clock) -> Result<Store> {
        if let Some(url) = path.to_str().filter(|p| engine::postgres::is_url(p)) {
            return Self::open_postgres(url, clock);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Invalid(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Invalid(format!(
                "{} does not support WAL (journal_mode={mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Statement journals (one per job's savepoint) in memory: they were spilled to a temp
        // file and written through the kernel for every page a job touched.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        // A WAL that grew while readers kept it from restarting is cut back after checkpoints.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        configure(&conn)?;
        engine::migrate::migrate(&mut conn)?;
        let (committed, checkpointer) = spawn_checkpointer(path)?;

        let writes = Arc::new(WriteQueue::default());
        let queue = writes.clone();
        let thread = std::thread::Builder::new()
            .name("seatkeeper-writer".into())
            .spawn(move || {
                while let Some(batch) = queue.next_batch() {
                    run_batch(&conn, batch);
                    // Full means a checkpoint is already due; either way it will run.
                    let _ = committed.try_send(());
                }
                // The checkpointer ends when its signal goes; wait until it has, or a checkpoint
                // it is still running would hold the checkpoint lock and the last one, which
                // empties the WAL, would fail busy (leaving a WAL to replay at the next start).
                drop(committed);
                let _ = checkpointer.join();
                let r: rusqlite::Result<i64> =
                    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0));
                match r {
                    Ok(0) => {}
                    Ok(_) => tracing::warn!(
                        "the final checkpoint was blocked; the WAL stays for the next start"
                    ),
                    Err(e) => tracing::warn!(error = %e, "the final checkpoint failed"),
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                clock,
                last_tick: Default::default(),
                provider_calls: Mutex::new(Default::default()),
                provider_requests: Mutex::new(Default::default()),
                path: path.to_owned(),
                writes,
                pg_queues: Default::default(),
                writer_thread: Mutex::new(Some(thread)),
                readers: Mutex::new(Vec::new()),
                reader_slots: tokio::sync::Semaphore::new(READERS),
                pg: None,
                scim_cache: Default::default(),
                product_cache: Default::default(),
                operator_tenants: Default::default(),
                retention: Default::default(),
                pruned: Default::default(),
                write_retries: AtomicU64::new(0),
                ranks: Default::default(),
                scans: TenantSlots::new(SCANS_PER_TENANT),
                background: Background::start("seatkeeper-bg", BACKGROUND_THREADS),
            }),
        })
    }

    /// Connects to PostgreSQL at `url` (on a thread of its own: the client blocks, and this
    /// may be called from async code).
    fn open_postgres(url: &str, clock: Clock) -> Result<Store> {
        let owned = url.to_owned();
        let pg = std::thread::spawn(move || engine::postgres::Pg::open(&owned))
            .join()
            .map_err(|_| Error::Internal("connecting to PostgreSQL panicked".into()))??;
        Ok(Store {
            inner: Arc::new(Inner {
                clock,
                last_tick: Default::default(),
                provider_calls: Mutex::new(Default::default()),
                provider_requests: Mutex::new(Default::default()),
                path: PathBuf::from(url),
                writes: Default::default(),
                pg_queues: Default::default(),
                writer_thread: Mutex::new(None),
                readers: Mutex::new(Vec::new()),
                reader_slots: tokio::sync::Semaphore::new(READERS),
                pg: Some(pg),
                scim_cache: Default::default(),
                product_cache: Default::default(),
                operator_tenants: Default::default(),
                retention: Default::default(),
                pruned: Default::default(),
                write_retries: AtomicU64::new(0),
                ranks: Default::default(),
                scans: TenantSlots::new(SCANS_PER_TENANT),
                background: Background::start("seatkeeper-bg", BACKGROUND_THREADS),
            }),
        })
    }

    /// The engine's name, as `seatkeeper migrate` reports it.
    pub fn engine_name(&self) -> &'static str {
        match self.inner.pg {
            Some(_) => "postgres",
            None => "sqlite",
        }
    }

    /// Which engine the store runs on.
    pub fn engine(&self) -> engine::sql::Engine {
        match self.inner.pg {
            Some(_) => engine::sql::Engine::Postgres,
            None => engine::sql::Engine::Sqlite,
        }
    }

    /// Now, by the store's clock.
    pub fn now_ms(&self) -> crate::alloc::Millis {
        (self.inner.clock)()
    }

    /// The clock write jobs read *inside* the writer thread, so that the time a change is
    /// stamped with never goes backwards in commit order (the waitlist order relies on it).
    pub fn ticker(&self) -> Ticker {
        Ticker {
            clock: self.inner.clock.clone(),
            last: self.inner.last_tick.clone(),
        }
    }

    /// Runs `f` in the writer's transaction; resolves once the change is committed.
    pub async fn write<T, F>(&self, lock: Lock, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Db) -> Result<T> + Send + 'static,
    {
        self.submit(lock, f, Mode::Batched).await
    }

    /// As [`Store::write`], in a transaction of its own: for a job whose size follows the
    /// tenant rather than the request (selecting a group, a reconcile, deleting a large group).
    /// It needs no savepoint, so no statement journal holds a copy of every page it changes.
    pub async fn write_alone<T, F>(&self, lock: Lock, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Db) -> Result<T> + Send + 'static,
    {
        self.submit(lock, f, Mode::Alone).await
    }

    /// Either as [`Store::write`] or, when `alone`, as [`Store::write_alone`].
    pub async fn write_sized<T, F>(&self, lock: Lock, alone: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Db) -> Result<T> + Send + 'static,
    {
        let mode = if alone { Mode::Alone } else { Mode::Batched };
        self.submit(lock, f, mode).await
    }

    /// Runs a write job: on SQLite through the writer thread (`lock` is implied: one writer), on
    /// PostgreSQL in a transaction of its own on a blocking thread, after taking `lock`. A job
    /// PostgreSQL gives up for contention (a deadlock, a serialization failure) runs again in a
    /// later transaction, up to [`WRITE_ATTEMPTS`] times in all, after a short random pause.
    async fn submit<T, F>(&self, lock: Lock, mut f: F, mode: Mode) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Db) -> Result<T> + Send + 'static,
    {
        let tenant = match lock {
            Lock::Tenant(t) => Some(t),
            Lock::None => None,
        };
        let mut attempt = 1;
        loop {
            let answer = if let (Some(pg), None) = (&self.inner.pg, tenant) {
                // A job of no tenant: a transaction of its own on a blocking thread.
                let _slot = tokio::time::timeout(WRITE_QUEUE_WAIT, pg.slots.acquire())
                    .await
                    .map_err(|_| Error::Busy)?
                    .map_err(|_| Error::Closed)?;
                let inner = self.inner.clone();
                tokio::task::spawn_blocking(move || {
                    let pg = inner.pg.as_ref().ok_or(Error::Closed)?;
                    Ok::<_, Error>(match pg.write(lock, &f) {
                        Err(e) if e.contention() => Answer::Again(f, e),
                        r => Answer::Done(r),
                    })
                })
                .await
                .map_err(|e| Error::Internal(format!("write task failed: {e}")))??
            } else {
                let (reply, rx) = oneshot::channel();
                let job: Box<dyn Job> = Box::new(TypedJob {
                    f,
                    mode,
                    tenant,
                    result: None,
                    reply,
                });
                self.queue_job(tenant, job).await?;
                rx.await.map_err(|_| Error::Closed)?
            };
            match answer {
                Answer::Done(r) => return r,
                Answer::Again(back, e) => {
                    self.again_after(attempt, e).await?;
                    attempt += 1;
                    f = back;
                }
            }
        }
    }

    /// After attempt `attempt` of a write was given up for contention (`e`): the error when
    /// that was the last attempt, else a short random pause (growing with the attempts, so
    /// that the transactions that collided do not collide again) before the next.
    pub(in crate::store) async fn again_after(&self, attempt: u32, e: Error) -> Result<()> {
        if attempt >= WRITE_ATTEMPTS {
            return Err(e);
        }
        self.inner.write_retries.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(attempt, error = %e, "the database gave a write up; running it again");
        let pause = rand::random::<u64>() % (20 * u64::from(attempt)) + 5;
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        Ok(())
    }

    /// The longest tenant queue of write jobs waiting on this node (metrics).
    pub fn write_queue_depth(&self) -> usize {
        self.inner
            .writes
            .deepest()
            .max(self.inner.pg_queues.deepest())
    }

    /// Runs `f` as a write job under `lock` in a transaction of its own, then rolls it back
    /// whatever it did, and answers what `f` answered: a preview made by making the change
    /// (nothing it wrote, notified or audited remains).
    pub(crate) async fn dry_run<T, F>(&self, lock: Lock, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Db) -> Result<T> + Send + 'static,
    {
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let kept = slot.clone();
        let r = self
            .write_alone(lock, move |c| {
                let v = f(c)?;
                // Its writes kept for later are sent, so that one that fails is the answer.
                c.settle()?;
                if let Ok(mut s) = kept.lock() {
                    *s = Some(v);
                }
                Err::<(), _>(Error::RolledBack)
            })
            .await;
        match r {
            Err(Error::RolledBack) => slot
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .ok_or_else(|| Error::Internal("a dry run kept no answer".into())),
            Err(e) => Err(e),
            Ok(()) => Err(Error::Internal("a dry run committed".into())),
        }
    }

    /// Queues a write job: on PostgreSQL into its tenant's batches, run under the tenant's
    /// lock (group commit, see `engine::postgres_batch`); on SQLite into the writer thread's
    /// queue of its tenant (waiting up to [`WRITE_QUEUE_WAIT`] for room). The job answers its
    /// caller itself once its transaction's outcome is known.
    pub(in crate::store) async fn queue_job(
        &self,
        tenant: Option<TenantKey>,
        mut job: Box<dyn Job>,
    ) -> Result<()> {
        if self.inner.pg.is_some() {
            let t = tenant.ok_or_else(|| Error::Internal("a batched job of no tenant".into()))?;
            return engine::postgres_batch::submit(&self.inner, t, job).await;
        }
        let deadline = tokio::time::Instant::now() + WRITE_QUEUE_WAIT;
        loop {
            match self.inner.writes.push(job) {
                Ok(()) => return Ok(()),
                Err(Refused::Closed) => return Err(Error::Closed),
                Err(Refused::Full(back)) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Error::Busy);
                    }
                    job = back;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Whether this node runs `tenant`'s background pass now. Several nodes on PostgreSQL
    /// share the work by a lease on the tenant (`tenants.reconcile_lease`, `lease_ms` long);
    /// a SQLite store is one node, which always does.
    pub(in crate::store) async fn lease_tenant(
        &self,
        tenant: TenantKey,
        lease_ms: crate::alloc::Millis,
    ) -> Result<bool> {
        if self.inner.pg.is_none() || lease_ms <= 0 {
            return Ok(true);
        }
        let now = self.now_ms();
        self.write(Lock::None, move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE tenants SET reconcile_lease = ?1 WHERE rk = ?2 AND reconcile_lease <= ?3",
                )?
                .execute(engine::sql::params![now + lease_ms, tenant, now])?;
            Ok(n == 1)
        })
        .await
    }

    /// Runs `f` on a read-only connection on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        if let Some(pg) = &self.inner.pg {
            let _slot = pg.slots.acquire().await.map_err(|_| Error::Closed)?;
            return tokio::task::spawn_blocking(move || {
                inner.pg.as_ref().ok_or(Error::Closed)?.read(f)
            })
            .await
            .map_err(|e| Error::Internal(format!("read task failed: {e}")))?;
        }
        let _slot = self
            .inner
            .reader_slots
            .acquire()
            .await
            .map_err(|_| Error::Closed)?;
        tokio::task::spawn_blocking(move || with_reader(&inner, f))
            .await
            .map_err(|e| Error::Internal(format!("read task failed: {e}")))?
    }

    /// Runs `f` at once on this thread's own read-only connection: for point reads of a few
    /// microseconds on the hot path (a token lookup on every SCIM request), where handing the
    /// read to a blocking thread would cost more than the read. In WAL mode a reader never
    /// waits for the writer. Anything that can scan goes through [`Store::read`]. `f` runs in
    /// one read transaction.
    ///
    /// On PostgreSQL the read is a network round trip and its client blocks: it runs on a
    /// short-lived thread of its own, in one read-only snapshot.
    pub fn read_now<T: Send>(&self, f: impl FnOnce(&Db) -> Result<T> + Send) -> Result<T> {
        if let Some(pg) = &self.inner.pg {
            return std::thread::scope(|s| {
                s.spawn(|| pg.read(|c| in_snapshot(c, f)))
                    .join()
                    .unwrap_or_else(|_| Err(Error::Internal("a read panicked".into())))
            });
        }
        thread_local! {
            static CONN: std::cell::RefCell<Option<(PathBuf, Connection)>> = const { std::cell::RefCell::new(None) };
        }
        CONN.with(|cell| {
            let mut slot = cell
                .try_borrow_mut()
                .map_err(|_| Error::Internal("nested read_now".into()))?;
            if slot.as_ref().is_none_or(|(p, _)| *p != self.inner.path) {
                let conn = open_reader(&self.inner.path)?;
                // The hot path's connection (one per HTTP worker) keeps every interior B-tree
                // page of the users and their indexes at a million users, so a lookup reads
                // only its leaf pages from the operating system.
                conn.pragma_update(None, "cache_size", -HOT_READER_CACHE_KIB)?;
                *slot = Some((self.inner.path.clone(), conn));
            }
            let Some((_, conn)) = slot.as_ref() else {
                return Err(Error::Internal(
                    "the hot read connection is not open".into(),
                ));
            };
            // One snapshot (a user and its groups as of the same commit) and one lock round
            // instead of one per statement.
            in_snapshot(&Db::Sqlite(conn), f)
        })
    }

    /// A point read on the hot path (a token, a tenant, a user by id or `userName`): on SQLite
    /// inline on this worker's connection ([`Store::read_now`]), in one read snapshot; on
    /// PostgreSQL, where it is a network round trip, on a pooled connection from a blocking
    /// thread, so that the HTTP worker serves other requests meanwhile. There each statement
    /// sees the last commit (no snapshot transaction: its BEGIN and COMMIT would double the
    /// round trips), which these reads allow: a user read with its groups may show a group
    /// change committed between its two statements, as if read a moment later.
    pub async fn read_point<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        if self.inner.pg.is_some() {
            return self.read(f).await;
        }
        self.read_now(f)
    }

    /// PostgreSQL's reader for the hot path's single statements (`engine::postgres_point`: on this thread's
    /// own connection, no blocking thread); `None` on SQLite, where [`Store::read_now`] serves.
    pub(super) fn point(&self) -> Option<&engine::postgres_point::PointReader> {
        self.inner.pg.as_ref().map(|p| &p.point)
    }

    /// Runs an expensive read of `tenant` (a listing not on an index, a preview): after taking
    /// one of its [`SCANS_PER_TENANT`] slots, on a low-priority background thread, in one read
    /// snapshot.
    pub(crate) async fn read_expensive<T, F>(&self, tenant: TenantKey, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let _slot = self.scan_slot(tenant).await?;
        let inner = self.inner.clone();
        self.inner
            .background
            .run(move || match &inner.pg {
                Some(pg) => pg.read_paced(|c| in_snapshot(c, f)),
                None => with_reader(&inner, |c| in_snapshot(c, f)),
            })
            .await
            .map_err(|e| match e {
                background::Error::Closed => Error::Closed,
                background::Error::Panicked => Error::Internal("an expensive read panicked".into()),
            })?
    }

    /// Waits for one of the tenant's [`SCANS_PER_TENANT`] scan slots.
    pub(crate) async fn scan_slot(
        &self,
        tenant: TenantKey,
    ) -> Result<tokio::sync::OwnedSemaphorePermit> {
        let slots = self.inner.scans.of(tenant)?;
        slots.acquire_owned().await.map_err(|_| Error::Closed)
    }

    /// Waitlists of at least `n` users get their positions from in-memory copies of the order
    /// (`ranks`); the default is `allocation::waitlist_ranks::MIN_CACHED_WAITLIST` (2,048). For tests, which need the copies
    /// used on waitlists of a handful of users.
    pub fn set_waitlist_copy_threshold(&self, n: usize) {
        self.inner.ranks.set_min_waiting(n);
    }

    /// Stops accepting writes, lets the writer finish what it has, checkpoints the WAL and
    /// closes the database.
    pub fn close(&self) {
        self.inner.writes.close();
        if let Some(t) = self
            .inner
            .writer_thread
            .lock()
            .ok()
            .and_then(|mut t| t.take())
        {
            let _ = t.join();
        }
        self.inner.background.close();
        if let Ok(mut r) = self.inner.readers.lock() {
            r.clear();
        }
        if let Some(pg) = &self.inner.pg {
            pg.close();
        }
    }

    /// True when a write transaction can be committed (readiness).
    /// Sets how long history is kept (the configuration's retention settings).
    pub fn set_retention(&self, r: operations::retention::Retention) {
        if let Ok(mut cur) = self.inner.retention.lock() {
            *cur = r;
        }
    }

    /// How long history is kept now.
    pub fn retention(&self) -> operations::retention::Retention {
        self.inner.retention.lock().map(|r| *r).unwrap_or_default()
    }

    /// Write jobs this process ran again after PostgreSQL gave them up for contention (metrics).
    pub fn write_retries(&self) -> u64 {
        self.inner.write_retries.load(Ordering::Relaxed)
    }

    /// Rows this process's pruning passes deleted so far, per table (metrics).
    pub fn pruned_rows(&self) -> operations::retention::Pruned {
        self.inner
            .pruned
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// Forgets commit marks older than ten minutes (PostgreSQL; see `engine::postgres::Pg::commit`): a mark
    /// is read only in the seconds after a commit lost its connection.
    pub async fn prune_commit_marks(&self) -> Result<()> {
        if self.inner.pg.is_none() {
            return Ok(());
        }
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
            - 600_000;
        self.write(Lock::None, move |c| {
            c.execute("DELETE FROM commit_marks WHERE at < ?", [before])?;
            Ok(())
        })
        .await
    }

    /// The schema version of the database (after the migration `open` ran).
    pub async fn schema_version(&self) -> Result<i64> {
        self.read(|c| match c.engine() {
            engine::sql::Engine::Sqlite => c.query_row("PRAGMA user_version", [], |r| r.get(0)),
            engine::sql::Engine::Postgres => {
                c.query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            }
        })
        .await
    }

    pub async fn ping(&self) -> Result<()> {
        self.write(Lock::None, |c| {
            c.execute_batch("SELECT 1")?;
            Ok(())
        })
        .await
    }
}

/// True for a write refused by a unique index (a name or userName taken), on either engine.
fn is_unique_violation(e: &Error) -> bool {
    match e {
        Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        }
        Error::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
        _ => false,
    }
}
