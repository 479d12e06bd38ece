//! The PostgreSQL engine: several seatkeeper nodes on one database behave as one service.
//!
//! Connections come from a small pool per node and run on blocking threads, as SQLite's do.
//! A write job runs in a transaction of its own (READ COMMITTED), committed before its caller
//! is answered. What SQLite's single writer thread gives for free, one process, is given here
//! by the database across processes:
//!
//! - **One writer per tenant.** A job that changes a tenant's data first takes the tenant's
//!   transaction-level advisory lock (`pg_advisory_xact_lock`), held until it commits. Jobs of
//!   one tenant therefore run one after another whichever node took the request, and a job that
//!   reads, decides and writes (a PATCH, a seat grant) never interleaves with another of its
//!   tenant: the seat invariant (granted + releasing <= seats) is checked inside that
//!   transaction exactly as on SQLite. Tenants do not wait for each other.
//! - **Fair order across nodes.** The waitlist stamp of a job (`engine::dialect::next_order`) is taken
//!   under the lock from the tenant's row (`tenants.last_order`), so stamps follow the order in
//!   which the database applied the changes, not the nodes' clocks.
//! - **Jobs without a tenant** (outbox delivery state, provider-call times, tenant creation)
//!   take no lock: each is one statement or guarded by a unique index and a state condition.
//!
//! A failure before the job ran (a connection lost, a lock wait cancelled) is retried on
//! another connection; a job that ran is never run twice (it may have sent nothing, but its
//! closure is spent), so a failure after it is answered as an error and rolled back. Deadlocks
//! cannot form between tenant jobs: each holds one tenant lock and touches only that tenant's
//! rows.

use std::cell::RefCell;
use std::sync::{Condvar, Mutex};

pub use crate::store::engine::address::{is_url, shown};
use crate::store::engine::sql::{Db, PgSession};
use crate::store::{Error, Result, TenantKey};

/// Connections one node keeps open: reads and writes share them; more requests wait.
pub const POOL: usize = 16;
/// Attempts at a job whose failure came before it ran.
const ATTEMPTS: usize = 3;

/// The PostgreSQL schema, whole: a new database gets it at [`CURRENT`].
pub const SCHEMA: &str = include_str!("../../../schema.postgres.sql");
/// `STEPS[i]` upgrades version `i + 1` to `i + 2` in place (files `src/store/engine/migrations/postgres/vN.sql` up to v11; from 16 on a change is one shared step for both engines, `migrate::SHARED`; added
/// with each schema change together with the change to `schema.postgres.sql`; a test then
/// checks that a database migrated from version 1 equals a new one). Steps only add, so that
/// nodes of the previous release keep running during a rolling upgrade (deploy/README.md).
const STEPS: &[&str] = &[
    include_str!("migrations/postgres/v2.sql"),
    include_str!("migrations/postgres/v3.sql"),
    include_str!("migrations/postgres/v4.sql"),
    include_str!("migrations/postgres/v5.sql"),
    include_str!("migrations/postgres/v6.sql"),
    include_str!("migrations/postgres/v7.sql"),
    include_str!("migrations/postgres/v8.sql"),
    include_str!("migrations/postgres/v9.sql"),
    include_str!("migrations/postgres/v10.sql"),
    include_str!("migrations/postgres/v11.sql"),
];
/// The version-1 schema as first released, for the test that a migrated database equals a new
/// one (`tests/multinode.rs`).
#[doc(hidden)]
pub const V1_SCHEMA: &str = include_str!("migrations/postgres/v1.sql");
/// The version this binary writes: the same as SQLite's (`migrate::CURRENT`; from 16 on, one
/// number per change on both engines).
pub const CURRENT: i64 = crate::store::engine::migrate::CURRENT;

/// The password libpq would use when the URL gives none: `PGPASSWORD`, else the first entry
/// of the password file (`PGPASSFILE`, else `~/.pgpass`) that matches the connection (fields
/// `host:port:database:user:password`, `*` matching anything, `\` escaping `:` and `\`).
fn libpq_password(config: &tokio_postgres::Config) -> Option<String> {
    if let Ok(p) = std::env::var("PGPASSWORD") {
        return Some(p);
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".pgpass")))?;
    let text = std::fs::read_to_string(file).ok()?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(_)) | None => "localhost".into(),
        #[cfg(not(unix))]
        None => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let db = config.get_dbname().unwrap_or_default().to_owned();
    let user = config.get_user().unwrap_or_default().to_owned();
    pgpass_lookup(&text, [&host, &port, &db, &user])
}

/// The password of the first line of a `.pgpass` text matching host, port, database and user.
pub(crate) fn pgpass_lookup(text: &str, want: [&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() != 5 {
            continue;
        }
        if want.iter().zip(&fields).all(|(w, f)| f == "*" || f == w) {
            return fields.pop();
        }
    }
    None
}

/// A node's connections to one PostgreSQL database: at most [`POOL`], opened when first
/// needed and kept; a caller that finds all of them busy waits for one.
pub struct Pg {
    config: tokio_postgres::Config,
    pool: Mutex<Connections>,
    returned: Condvar,
    /// Async callers queue here rather than each holding a blocking thread while it waits.
    pub(in crate::store) slots: tokio::sync::Semaphore,
    /// The hot path's single-statement reads, on the serving thread's own connection.
    pub(in crate::store) point: crate::store::engine::postgres_point::PointReader,
}

#[derive(Default)]
struct Connections {
    idle: Vec<PgSession>,
    /// Open connections, idle or in use.
    open: usize,
}

/// What a write job locks before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// The tenant's writer lock.
    Tenant(TenantKey),
    /// Nothing: the job is one guarded statement or touches no tenant's seats.
    None,
}

/// No parallel query on the store's pooled connections, set as each opens: every statement
/// the store runs there reads a few rows by index, and a plan the planner costs above its
/// parallel threshold (an `IN` list of 256 keys) waited milliseconds to start and stop its
/// workers, under the tenant's lock. (A statement, not a startup option: poolers such as
/// PgBouncer refuse unknown startup parameters.)
const NO_PARALLEL: &str = "SET max_parallel_workers_per_gather = 0";

impl Pg {
    /// Connects to `url`, creates the schema in an empty database or checks its version.
    pub fn open(url: &str) -> Result<Pg> {
        // The parser's message is not repeated: it may quote the URL, password and all.
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
            Error::Invalid("database: not a PostgreSQL URL (postgres://USER@HOST[:PORT]/DB)".into())
        })?;
        if config.get_password().is_none() {
            if let Some(p) = libpq_password(&config) {
                config.password(p);
            }
        }
        if config.get_connect_timeout().is_none() {
            // An unreachable database fails readiness in seconds, not at the TCP timeout.
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        let point = crate::store::engine::postgres_point::PointReader::new(config.clone())?;
        let pg = Pg {
            config,
            pool: Mutex::new(Connections::default()),
            returned: Condvar::new(),
            slots: tokio::sync::Semaphore::new(POOL),
            point,
        };
        let mut s = pg.take()?;
        let migrated = migrate(&mut s);
        pg.put(s);
        migrated?;
        Ok(pg)
    }

    fn connect(&self) -> Result<PgSession> {
        let mut client = crate::store::engine::postgres_client::PgClient::connect(&self.config)?;
        client.batch_execute(NO_PARALLEL)?;
        Ok(PgSession::new(client))
    }

    /// An idle connection, a new one while fewer than [`POOL`] are open, or else the next one
    /// returned. Blocks: call from a blocking thread.
    pub(in crate::store) fn take(&self) -> Result<PgSession> {
        let mut pool = self.pool.lock().map_err(|_| Error::Closed)?;
        loop {
            if let Some(s) = pool.idle.pop() {
                if s.client.is_closed() {
                    pool.open -= 1;
                    continue;
                }
                return Ok(s);
            }
            if pool.open < POOL {
                pool.open += 1;
                drop(pool);
                return self.connect().inspect_err(|_| {
                    if let Ok(mut p) = self.pool.lock() {
                        p.open -= 1;
                    }
                    self.returned.notify_one();
                });
            }
            pool = self.returned.wait(pool).map_err(|_| Error::Closed)?;
        }
    }

    /// Gives a connection back (a broken one is closed, making room for a new one).
    pub(in crate::store) fn put(&self, mut s: PgSession) {
        s.forget();
        if let Ok(mut pool) = self.pool.lock() {
            if s.client.is_closed() {
                pool.open -= 1;
            } else {
                pool.idle.push(s);
            }
        }
        self.returned.notify_one();
    }

    /// Runs `f` on a pooled connection outside a transaction (each statement sees the last
    /// commit; wrap it in `in_snapshot` for one view).
    pub fn read<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        self.read_with(false, f)
    }

    /// [`Pg::read`] for an expensive read, paced (`PgSession::set_paced`).
    pub fn read_paced<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        self.read_with(true, f)
    }

    fn read_with<T>(&self, paced: bool, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let mut session = self.take()?;
        session.set_paced(paced);
        let s = RefCell::new(session);
        let r = f(&Db::Postgres(&s));
        let mut session = s.into_inner();
        session.set_paced(false);
        self.put(session);
        r
    }

    /// Runs `f` in a transaction after taking `lock`; commits it, or rolls it back when `f`
    /// fails. A commit whose connection is lost is resolved ([`Pg::commit`]).
    pub fn write<T>(&self, lock: Lock, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let (s, xid) = self.begin_locked(lock)?;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let db = Db::Postgres(&s);
            f(&db).and_then(|v| db.settle().map(|()| v))
        }))
        .unwrap_or_else(|_| Err(Error::Internal("a write job panicked".into())));
        match r {
            Ok(v) => self.commit(s, xid).map(|()| v).map_err(|e| match e {
                crate::store::engine::jobs::NotCommitted::Unavailable => Error::Unavailable(
                    "the connection was lost while committing; the change did not happen".into(),
                ),
                crate::store::engine::jobs::NotCommitted::Failed(e) => {
                    Error::Internal(format!("commit failed: {e}"))
                }
            }),
            Err(e) => {
                let _ = s.borrow_mut().batch_execute("ROLLBACK");
                self.put(s.into_inner());
                Err(e)
            }
        }
    }

    /// Commits the transaction on `s` and gives the connection back. When the connection is
    /// lost during the commit, its outcome is unknown to this node: the transaction may have
    /// committed. So the commit carries a mark, a row of `commit_marks` written in the same
    /// round trip as `COMMIT` (by a transaction that wrote anything), and a fresh connection
    /// asks whether the mark is there: there, the transaction committed and every caller is
    /// answered as committed; not there (and `txid_status` of the transaction, `xid`, not "in
    /// progress": an old backend still finishing), it did not, and the callers get
    /// [`NotCommitted::Unavailable`](crate::store::engine::jobs::NotCommitted) (503: retry); no answer within
    /// [`OUTCOME_WAIT`], the same. The work is never run again.
    ///
    /// Why a mark and not `txid_status` alone: a transaction id is made durable only by the
    /// transaction's WAL, so the id of a transaction lost in a crash can be given to another
    /// after recovery, and `txid_status` then answers for that one (seen in
    /// `tests/pg_failover.rs`: an acknowledged create lost).
    pub(in crate::store) fn commit(
        &self,
        s: RefCell<PgSession>,
        xid: Option<i64>,
    ) -> std::result::Result<(), crate::store::engine::jobs::NotCommitted> {
        use crate::store::engine::jobs::NotCommitted;
        let mark = uuid::Uuid::new_v4().simple().to_string();
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        // The mark only for a transaction that wrote (an id assigned): an idle poll writes none.
        let ended = s.borrow_mut().batch_execute(&format!(
            "INSERT INTO commit_marks (mark, at) SELECT '{mark}', {at} WHERE txid_current_if_assigned() IS NOT NULL; COMMIT"
        ));
        self.put(s.into_inner());
        match ended {
            Ok(()) => Ok(()),
            Err(e) if e.unavailable() => match self.outcome(&mark, xid) {
                Outcome::Committed => {
                    tracing::warn!(
                        ?xid,
                        "the connection was lost during a commit, which committed"
                    );
                    Ok(())
                }
                Outcome::Aborted => {
                    tracing::warn!(
                        ?xid,
                        "the connection was lost during a commit, which did not commit"
                    );
                    Err(NotCommitted::Unavailable)
                }
                Outcome::Unknown => {
                    tracing::warn!(?xid, error = %e, "the connection was lost during a commit and its outcome cannot be learned now");
                    Err(NotCommitted::Unavailable)
                }
            },
            Err(e) => Err(NotCommitted::Failed(e.to_string())),
        }
    }

    /// What became of the transaction that wrote `mark` (id `xid`), asked on fresh
    /// connections for up to [`OUTCOME_WAIT`] (the database may be restarting, or the old
    /// backend still finishing its commit).
    fn outcome(&self, mark: &str, xid: Option<i64>) -> Outcome {
        let deadline = std::time::Instant::now() + OUTCOME_WAIT;
        let mut config = self.config.clone();
        config.connect_timeout(std::time::Duration::from_millis(500));
        loop {
            let asked = crate::store::engine::postgres_client::PgClient::connect(&config).and_then(|mut c| {
                let row = c
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM commit_marks WHERE mark = $1),
                                CASE WHEN $2::BIGINT IS NULL THEN NULL ELSE txid_status($2::BIGINT) END",
                        &[&mark, &xid],
                    )
                    .map_err(Error::from)?;
                Ok((row.get::<_, bool>(0), row.get::<_, Option<String>>(1)))
            });
            match asked {
                Ok((true, _)) => return Outcome::Committed,
                Ok((false, status)) if status.as_deref() != Some("in progress") => {
                    return Outcome::Aborted
                }
                // Not ended yet, or no answer: ask again.
                Ok(_) | Err(_) => {}
            }
            if std::time::Instant::now() >= deadline {
                return Outcome::Unknown;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// A pooled connection in a transaction that holds `lock`, and the transaction's id when
    /// it has one (a failure to connect or to begin is retried a few times).
    pub(in crate::store) fn begin_locked(
        &self,
        lock: Lock,
    ) -> Result<(RefCell<PgSession>, Option<i64>)> {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let s = match self.take() {
                Ok(s) => RefCell::new(s),
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match begin(&s, lock) {
                Ok(xid) => return Ok((s, xid)),
                Err(e) => {
                    let _ = s.borrow_mut().client.batch_execute("ROLLBACK");
                    self.put(s.into_inner());
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(Error::Closed))
    }

    /// Closes every idle connection.
    pub fn close(&self) {
        let idle = self.pool.lock().map(|mut p| {
            p.open -= p.idle.len();
            std::mem::take(&mut p.idle)
        });
        if let Ok(idle) = idle {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

impl Drop for Pg {
    /// A client's drop blocks on its own runtime, which panics on an async thread (the store
    /// may be dropped by an HTTP worker): the idle connections are closed on a thread of their
    /// own.
    fn drop(&mut self) {
        let pool = self.pool.get_mut().unwrap_or_else(|e| e.into_inner());
        let idle = std::mem::take(&mut pool.idle);
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

/// Begins a transaction and takes `lock`, in one round trip (the key is a number).
/// Begins a transaction on `s` holding `lock`. A tenant's job also learns its transaction id in
/// the same round trip (see [`Pg::commit`]); a job of no tenant is one guarded statement and
/// is not given one (`txid_current` would assign an id to every idle poll).
fn begin(s: &RefCell<PgSession>, lock: Lock) -> Result<Option<i64>> {
    let db = Db::Postgres(s);
    match lock {
        Lock::Tenant(t) => {
            s.borrow_mut().defer("BEGIN");
            db.query_row(
                "SELECT CAST(txid_current() AS BIGINT) FROM (SELECT pg_advisory_xact_lock(?)) AS locked",
                [t],
                |r| r.get(0),
            )
            .map(Some)
        }
        Lock::None => db.execute_batch("BEGIN").map(|()| None),
    }
}

/// How long a commit whose connection was lost waits to learn its outcome.
const OUTCOME_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What became of a transaction whose commit lost its connection.
enum Outcome {
    Committed,
    Aborted,
    Unknown,
}

/// Creates the schema in an empty database; refuses one that is not seatkeeper's or is newer.
fn migrate(s: &mut PgSession) -> Result<()> {
    let c = &mut s.client;
    // One node migrates at a time; the others wait and then find the schema current.
    c.batch_execute("BEGIN; SELECT pg_advisory_xact_lock(-1)")?;
    let has_version: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables
                            WHERE table_schema = current_schema() AND table_name = 'schema_version')",
            &[],
        )?
        .get(0);
    if !has_version {
        let tables: i64 = c
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
                &[],
            )?
            .get(0);
        if tables > 0 {
            c.batch_execute("ROLLBACK")?;
            return Err(Error::Invalid(
                "the PostgreSQL database holds other tables and no seatkeeper schema: give seatkeeper a database of its own".into(),
            ));
        }
        c.batch_execute(SCHEMA)?;
    } else {
        let version: i64 = c
            .query_one("SELECT version FROM schema_version", &[])?
            .get(0);
        if version > CURRENT {
            c.batch_execute("ROLLBACK")?;
            return Err(Error::Invalid(format!(
                "the database has schema version {version}; this seatkeeper knows up to {CURRENT}: upgrade seatkeeper"
            )));
        }
        for step in STEPS.iter().skip((version.max(1) - 1) as usize) {
            c.batch_execute(step)?;
        }
        for step in crate::store::engine::migrate::SHARED
            .iter()
            .filter(|s| s.version > version)
        {
            c.batch_execute(step.postgres)?;
        }
        if version < CURRENT {
            c.execute("UPDATE schema_version SET version = $1", &[&CURRENT])?;
        }
    }
    c.batch_execute("COMMIT")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A new database gets the version the steps lead to.
    #[test]
    fn the_schema_names_the_current_version() {
        let line = format!(
            "INSERT INTO schema_version (version) VALUES ({});",
            super::CURRENT
        );
        assert!(super::SCHEMA.lines().any(|l| l == line), "{line}");
    }
}

#[cfg(test)]
mod secrets {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let shown = |u: &str| shown(std::path::Path::new(u));
        assert_eq!(
            shown("postgres://app:s3cret@db.internal:5432/seats"),
            "postgres://app:***@db.internal:5432/seats"
        );
        assert_eq!(
            shown("postgresql://app@db/seats?password=s3cret&sslmode=require"),
            "postgresql://app@db/seats?password=***&sslmode=require"
        );
        assert_eq!(shown("postgres://app@db/seats"), "postgres://app@db/seats");
        assert_eq!(shown("/var/lib/seatkeeper.db"), "/var/lib/seatkeeper.db");
        assert!(!shown("postgres://a:b@[bad").contains(":b@"));
    }

    #[test]
    fn a_pgpass_line_is_found_as_libpq_finds_it() {
        let file = "# comment\n\
                    other:5432:*:app:wrong\n\
                    db.internal:5432:seats:app:right\\:one\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(file, ["db.internal", "5432", "seats", "app"]).as_deref(),
            Some("right:one")
        );
        assert_eq!(
            pgpass_lookup(file, ["elsewhere", "5433", "x", "y"]).as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_lookup("", ["a", "1", "b", "c"]), None);
    }
}
