//! One SQL interface over both store engines, so that each statement is written once.
//!
//! Store code runs inside a transaction (or a read snapshot) and talks to a [`Db`], whose
//! surface follows rusqlite's (`prepare_cached`, `execute`, `query_row`, `query_map`,
//! [`OptionalExtension::optional`], [`params!`](crate::params)), so the SQL and the code around
//! it read the same whichever engine runs it. Statements are written with SQLite's `?` / `?N`
//! placeholders; for PostgreSQL they are rewritten to `$N` once ([`placeholders`]) and the
//! prepared statement is cached per connection (rusqlite caches its own). A parameter is
//! anything both engines bind ([`Param`]: `i64`, `bool`, `&str`, `String`, `Vec<u8>`, `Option`
//! of those) and a column anything both decode ([`Col`]). Where the dialects differ,
//! [`Db::engine`] picks the statement.
//!
//! The PostgreSQL client is `tokio-postgres` (rust-postgres), the most used PostgreSQL client
//! for Rust; it speaks the extended protocol with binary parameters, so a cached statement
//! costs one round trip. The store runs its statements on threads of their own (the writers,
//! the readers), so those connections block ([`PgClient`](crate::store::engine::postgres_client::PgClient): as the
//! `postgres` crate, plus sending a deferred `SAVEPOINT` with the next statement); the hot
//! path's point reads run async on the serving thread (`engine::postgres_point`). The `postgres` crate's
//! re-exported types (rows, parameters, errors) are the same types.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::store::engine::postgres_client::{Done, Encoded, PgClient, Then, Write};
use crate::store::{Error, Result};

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A value both engines can bind as a parameter.
pub trait Param: rusqlite::ToSql + postgres::types::ToSql + Send + Sync {}
impl<T: rusqlite::ToSql + postgres::types::ToSql + Send + Sync + ?Sized> Param for T {}

/// Parameters of one statement: `params![a, b]`, `[a, b]` of one type, or `[]`.
pub trait Params {
    fn list(&self) -> Vec<&dyn Param>;
}

impl Params for &[&dyn Param] {
    fn list(&self) -> Vec<&dyn Param> {
        self.to_vec()
    }
}

impl Params for [&dyn Param; 0] {
    fn list(&self) -> Vec<&dyn Param> {
        Vec::new()
    }
}

macro_rules! array_params {
    ($($n:literal)+) => {$(
        impl<T: Param> Params for [T; $n] {
            fn list(&self) -> Vec<&dyn Param> {
                self.iter().map(|p| p as &dyn Param).collect()
            }
        }
    )+};
}
array_params!(1 2 3 4 5 6 7 8);

/// Statement parameters of mixed types, as rusqlite's macro of the same name.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::store::engine::sql::Param] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::engine::sql::Param),+] as &[&dyn $crate::store::engine::sql::Param] };
}
pub use crate::params;

/// A column type both engines can decode.
pub trait Col: Sized {
    fn from_sqlite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self>;
    fn from_postgres(r: &postgres::Row, i: usize) -> std::result::Result<Self, postgres::Error>;
}

impl<T> Col for T
where
    T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>,
{
    fn from_sqlite(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Self> {
        r.get(i)
    }
    fn from_postgres(r: &postgres::Row, i: usize) -> std::result::Result<Self, postgres::Error> {
        r.try_get(i)
    }
}

/// One result row, of either engine.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

/// A column's index (from 0).
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

impl Row<'_> {
    /// Column `i` (from 0). The first type parameter is there so that rusqlite's
    /// `r.get::<_, T>(i)` reads the same.
    pub fn get<I: RowIndex, T: Col>(&self, i: I) -> Result<T> {
        let i = i.index();
        Ok(match self {
            Row::Sqlite(r) => T::from_sqlite(r, i)?,
            Row::Postgres(r) => T::from_postgres(r, i)?,
        })
    }

    /// `f` of text column `i` without copying it (`""` for NULL).
    pub fn with_str<T>(&self, i: usize, f: impl FnOnce(&str) -> T) -> Result<T> {
        Ok(match self {
            Row::Sqlite(r) => f(r.get_ref(i)?.as_str().unwrap_or("")),
            Row::Postgres(r) => f(r.try_get::<_, Option<&str>>(i)?.unwrap_or("")),
        })
    }

    /// Text-array column `i`, a PostgreSQL type SQLite does not have (an error there).
    pub fn text_array(&self, i: usize) -> Result<Vec<String>> {
        match self {
            Row::Sqlite(_) => Err(Error::Internal("a text array read from SQLite".into())),
            Row::Postgres(r) => Ok(r.try_get(i)?),
        }
    }
}

/// `Ok(None)` for a query that found no row, as rusqlite's trait of the same name.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRow) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A PostgreSQL connection with its prepared statements, by the SQL they were written as.
pub struct PgSession {
    pub client: PgClient,
    statements: HashMap<String, postgres::Statement>,
    /// Simple statements to send with the next statement, in its round trip ([`PgSession::defer`]).
    pending: Option<String>,
    /// Writes to send with the next statement, in its round trip ([`PgSession::execute_later`]).
    later: Vec<Write>,
    /// Set while a large job runs here ([`PgSession::set_paced`]): when it started working
    /// since its last rest.
    paced: Option<std::time::Instant>,
}

/// A paced job works this long between rests ([`PgSession::set_paced`]).
pub const PACE_SLICE: std::time::Duration = std::time::Duration::from_millis(10);

/// Writes kept for later at most ([`PgSession::execute_later`]); past it they are sent.
const LATER_MAX: usize = 512;

/// Rows one [`Db::for_each_row`] reads from PostgreSQL at a time.
pub const SCAN_BATCH: usize = 256;

/// Statements a PostgreSQL connection keeps prepared; past it the cache starts over (the store
/// has a few hundred distinct statements; filters built per request come and go).
const PG_STATEMENTS: usize = 1024;

impl PgSession {
    pub fn new(client: PgClient) -> PgSession {
        PgSession {
            client,
            statements: HashMap::new(),
            pending: None,
            later: Vec::new(),
            paced: None,
        }
    }

    /// Keeps a write (its answer unread) to send with the next statement, in the same round
    /// trip: see [`Db::execute_later`].
    fn execute_later(&mut self, sql: &str, params: &[&dyn Param]) -> Result<()> {
        let statement = self.prepare(sql)?;
        let types = statement.params();
        if types.len() != params.len() {
            return Err(Error::Internal(format!(
                "a statement takes {} parameters, given {}",
                types.len(),
                params.len()
            )));
        }
        let params = types
            .iter()
            .zip(pg_params(params))
            .map(|(ty, p)| Encoded::encode(p, ty))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Internal(format!("a parameter: {e}")))?;
        self.later.push(Write { statement, params });
        if self.later.len() >= LATER_MAX {
            self.settle()?;
        }
        Ok(())
    }

    /// Sends what waits to be sent (deferred statements, writes kept for later) and reads their
    /// answers: the first error of any of them is returned.
    pub fn settle(&mut self) -> Result<()> {
        self.rest();
        let writes = std::mem::take(&mut self.later);
        match (self.pending.take(), writes.is_empty()) {
            (None, true) => Ok(()),
            (Some(before), true) => Ok(self.client.batch_execute(&before)?),
            (before, false) => {
                self.client
                    .pipeline(before.as_deref(), &writes, Then::Nothing)?;
                Ok(())
            }
        }
    }

    /// Forgets what waits to be sent (the connection goes back to its pool; its transaction
    /// ended).
    pub(in crate::store) fn forget(&mut self) {
        self.pending = None;
        self.later.clear();
    }

    /// Paces the job that runs here from now on (`on`) or no longer: after each
    /// [`PACE_SLICE`] of work it rests as long as it worked, before its next statement. A large
    /// job of one tenant (selecting a huge group, a 100,000-member PUT, a reconcile, a preview)
    /// then takes at most about half of a core with its database backend, however long it
    /// runs, and other tenants' requests find the CPU (on PostgreSQL a tenant's jobs never wait
    /// for another tenant's lock, only for the machine). It rests only while other requests are
    /// in flight in this process (`background::InFlight`).
    pub fn set_paced(&mut self, on: bool) {
        self.paced = on.then(std::time::Instant::now);
    }

    /// Rests when a paced job has worked a slice.
    fn rest(&mut self) {
        if let Some(since) = self.paced {
            let worked = since.elapsed();
            if worked >= PACE_SLICE {
                // Only while other requests want the machine: alone, a job runs at full speed.
                if crate::background::InFlight::others() {
                    std::thread::sleep(worked.min(PACE_SLICE * 4));
                }
                self.paced = Some(std::time::Instant::now());
            }
        }
    }

    /// Sends `sql` (simple statements without parameters, such as a `SAVEPOINT`) with the next
    /// statement on this connection, in the same round trip. Should `sql` fail, that next
    /// statement fails with its error.
    pub fn defer(&mut self, sql: &str) {
        self.pending = Some(match self.pending.take() {
            Some(p) => format!("{p}; {sql}"),
            None => sql.to_owned(),
        });
    }

    fn prepare(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&placeholders(sql))?;
        if self.statements.len() >= PG_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// Sends what waits to be sent (deferred statements, kept writes), then `then`: one round
    /// trip; `then`'s answer.
    fn after_kept(&mut self, then: Then) -> Result<Done> {
        let writes = std::mem::take(&mut self.later);
        let before = self.pending.take();
        Ok(self.client.pipeline(before.as_deref(), &writes, then)?)
    }

    fn query(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Vec<postgres::Row>> {
        self.rest();
        let st = self.prepare(sql)?;
        let params = pg_params(params);
        if !self.later.is_empty() {
            return match self.after_kept(Then::Query(&st, &params))? {
                Done::Rows(rows) => Ok(rows),
                _ => Ok(Vec::new()),
            };
        }
        Ok(match self.pending.take() {
            Some(before) => self.client.query_after(&before, &st, &params)?,
            None => self.client.query(&st, &params)?,
        })
    }

    /// As `query`, planned afresh for these parameters and the tables as they are now (an
    /// unnamed statement, one round trip; see [`Db::query_fresh`]).
    fn query_fresh(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Vec<postgres::Row>> {
        self.rest();
        // The kept statement gives the parameters' types (prepared once per connection).
        let types = self.prepare(sql)?.params().to_vec();
        let typed: Vec<(&(dyn postgres::types::ToSql + Sync), postgres::types::Type)> =
            pg_params(params).into_iter().zip(types).collect();
        let text = placeholders(sql);
        match self.after_kept(Then::Fresh(&text, &typed))? {
            Done::Rows(rows) => Ok(rows),
            _ => Ok(Vec::new()),
        }
    }

    /// Several reads in one round trip (with what waits to be sent before them): each one's
    /// rows, in order. A read marked fresh is planned for its parameters (`query_fresh`).
    fn query_many(
        &mut self,
        reads: &[(&str, Vec<&dyn Param>, bool)],
    ) -> Result<Vec<Vec<postgres::Row>>> {
        self.rest();
        let statements = reads
            .iter()
            .map(|(sql, _, _)| self.prepare(sql))
            .collect::<Result<Vec<_>>>()?;
        let params: Vec<Vec<&(dyn postgres::types::ToSql + Sync)>> =
            reads.iter().map(|(_, p, _)| pg_params(p)).collect();
        let texts: Vec<String> = reads
            .iter()
            .map(|(sql, _, fresh)| {
                if *fresh {
                    placeholders(sql)
                } else {
                    String::new()
                }
            })
            .collect();
        let typed: Vec<Vec<(&(dyn postgres::types::ToSql + Sync), postgres::types::Type)>> =
            statements
                .iter()
                .zip(&params)
                .map(|(st, p)| p.iter().copied().zip(st.params().iter().cloned()).collect())
                .collect();
        let thens = reads
            .iter()
            .enumerate()
            .map(|(i, (_, _, fresh))| {
                if *fresh {
                    Then::Fresh(&texts[i], typed[i].as_slice())
                } else {
                    Then::Query(&statements[i], params[i].as_slice())
                }
            })
            .collect();
        let writes = std::mem::take(&mut self.later);
        let before = self.pending.take();
        Ok(self
            .client
            .pipeline_many(before.as_deref(), &writes, thens)?
            .into_iter()
            .map(|d| match d {
                Done::Rows(rows) => rows,
                _ => Vec::new(),
            })
            .collect())
    }

    fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<u64> {
        self.rest();
        let st = self.prepare(sql)?;
        let params = pg_params(params);
        if !self.later.is_empty() {
            return match self.after_kept(Then::Execute(&st, &params))? {
                Done::Count(n) => Ok(n),
                _ => Ok(0),
            };
        }
        Ok(match self.pending.take() {
            Some(before) => self.client.execute_after(&before, &st, &params)?,
            None => self.client.execute(&st, &params)?,
        })
    }

    /// Runs simple statements (after what was deferred).
    pub fn batch_execute(&mut self, sql: &str) -> Result<()> {
        if !self.later.is_empty() {
            self.after_kept(Then::Simple(sql))?;
            return Ok(());
        }
        match self.pending.take() {
            Some(before) => self.client.batch_execute(&format!("{before}; {sql}"))?,
            None => self.client.batch_execute(sql)?,
        }
        Ok(())
    }

    /// Sends what was deferred, before a statement that does not go through this session.
    fn flush(&mut self) -> Result<()> {
        self.settle()
    }
}

/// One read of [`Db::read_many`]: its statement, parameters, whether it is planned afresh
/// (an `IN` list of [`FRESH_FROM`] keys or more, see [`Db::query_in`]), and what takes each row.
pub struct Read<'a> {
    pub sql: String,
    pub params: Vec<&'a dyn Param>,
    pub fresh: bool,
    pub row: TakeRow<'a>,
}

/// What takes each row of a [`Read`].
pub type TakeRow<'a> = Box<dyn FnMut(&Row) -> Result<()> + 'a>;

/// A connection inside a transaction (or a read snapshot), of either engine.
#[derive(Clone, Copy)]
pub enum Db<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a RefCell<PgSession>),
}

fn sqlite_params<'p>(params: &[&'p dyn Param]) -> Vec<&'p dyn rusqlite::ToSql> {
    params.iter().map(|p| *p as &dyn rusqlite::ToSql).collect()
}

pub(in crate::store) fn pg_params<'p>(
    params: &[&'p dyn Param],
) -> Vec<&'p (dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| *p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl<'a> Db<'a> {
    /// Of two twins written side by side where the engines must differ (a statement, a
    /// function), the one for this engine: `sqlite` on SQLite, `postgres` on PostgreSQL.
    pub fn twin<T>(&self, sqlite: T, postgres: T) -> T {
        match self.engine() {
            Engine::Sqlite => sqlite,
            Engine::Postgres => postgres,
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Db::Sqlite(_) => Engine::Sqlite,
            Db::Postgres(_) => Engine::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, online backup).
    pub fn sqlite(&self) -> Option<&'a rusqlite::Connection> {
        match self {
            Db::Sqlite(c) => Some(c),
            Db::Postgres(_) => None,
        }
    }

    /// A statement to run (prepared once per connection and kept).
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'a>> {
        Ok(match self {
            Db::Sqlite(c) => Statement::Sqlite(c.prepare_cached(sql)?),
            Db::Postgres(s) => Statement::Postgres(s, sql.to_owned()),
        })
    }

    /// As [`Db::prepare_cached`].
    pub fn prepare(&self, sql: &str) -> Result<Statement<'a>> {
        self.prepare_cached(sql)
    }

    /// Runs a statement; returns the rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Runs a write whose answer the caller does not need, and whose failure may be reported
    /// by a later statement of the same transaction (never a write that can fail as part of
    /// its job's answer, such as a unique name). SQLite runs it now (a statement costs no
    /// round trip); PostgreSQL keeps it and sends it with the next statement, in one round
    /// trip: the writes of an allocation run cost the database no wait of their own. Reads
    /// after it see it (the connection answers in order); a write job's writes are all sent
    /// before it counts as done ([`Db::settle`]), and a commit sends them first.
    pub fn execute_later(&self, sql: &str, params: impl Params) -> Result<()> {
        let params = params.list();
        match self {
            Db::Sqlite(c) => {
                c.prepare_cached(sql)?
                    .execute(sqlite_params(&params).as_slice())?;
                Ok(())
            }
            Db::Postgres(s) => s.borrow_mut().execute_later(sql, &params),
        }
    }

    /// Every row of `sql` read by `f`, the statement planned for these parameters and the
    /// tables as they are now. PostgreSQL otherwise plans a kept statement once for any
    /// parameters (a generic plan, after five runs) and keeps the plan until the table is
    /// analyzed again: a plan made while a table was nearly empty (a fresh tenant's first
    /// sync) scanned the whole table once it had grown, under the tenant's lock, until
    /// autovacuum's next analyze (the multi-second stalls of a member sync). For the set
    /// statements over long `IN` lists, whose plan depends most on the sizes, planning each
    /// time costs less than such a plan. SQLite plans as it always does.
    pub fn query_fresh<T>(
        &self,
        sql: &str,
        params: impl Params,
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self {
            Db::Sqlite(_) => self.prepare_cached(sql)?.query_all(params, f),
            Db::Postgres(s) => {
                let params = params.list();
                let rows = s.borrow_mut().query_fresh(sql, &params)?;
                rows.iter().map(|r| f(&Row::Postgres(r))).collect()
            }
        }
    }

    /// Every row of `sql`, a statement over an `IN` list of `keys` keys ([`in_slices`]): kept
    /// prepared for short lists (a plan by index whatever the sizes), planned afresh from
    /// [`FRESH_FROM`] keys ([`Db::query_fresh`]).
    pub fn query_in<T>(
        &self,
        sql: &str,
        keys: usize,
        params: impl Params,
        f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        if keys >= FRESH_FROM {
            self.query_fresh(sql, params, f)
        } else {
            self.prepare_cached(sql)?.query_all(params, f)
        }
    }

    /// Runs reads that do not depend on each other: PostgreSQL sends them together and waits
    /// once; SQLite runs them one after another. Each read's rows go to its function.
    pub fn read_many(&self, reads: Vec<Read<'_>>) -> Result<()> {
        match self {
            Db::Sqlite(_) => {
                for mut r in reads {
                    let mut st = self.prepare_cached(&r.sql)?;
                    for row in st.query_map(r.params.as_slice(), |row| (r.row)(row))? {
                        row?;
                    }
                }
                Ok(())
            }
            Db::Postgres(s) => {
                let list: Vec<(&str, Vec<&dyn Param>, bool)> = reads
                    .iter()
                    .map(|r| (r.sql.as_str(), r.params.clone(), r.fresh))
                    .collect();
                let rows = s.borrow_mut().query_many(&list)?;
                for (mut r, rows) in reads.into_iter().zip(rows) {
                    for row in &rows {
                        (r.row)(&Row::Postgres(row))?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Sends the writes kept by [`Db::execute_later`] and returns the first error of any.
    pub fn settle(&self) -> Result<()> {
        match self {
            Db::Sqlite(_) => Ok(()),
            Db::Postgres(s) => s.borrow_mut().settle(),
        }
    }

    /// Hands the rows of `sql` to `f` one at a time until it answers `false`. SQLite steps the
    /// statement; PostgreSQL reads the result first, unless `streamed`: then, inside a
    /// transaction, it reads through a cursor (`DECLARE` / `FETCH`, [`SCAN_BATCH`] rows at a
    /// time), so the server produces the next batch only when the caller has taken the last:
    /// a long scan costs the database what the caller consumes, at the caller's pace (and CPU
    /// priority), and `f` may run other statements on this connection between rows. A cursor
    /// costs two more round trips, so only scans ask for one. Outside a transaction (where a
    /// cursor cannot live) the result is read first.
    pub fn for_each_row(
        &self,
        sql: &str,
        params: impl Params,
        streamed: bool,
        mut f: impl FnMut(&Row) -> Result<bool>,
    ) -> Result<()> {
        let s = match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let params = params.list();
                let mut rows = st.query(sqlite_params(&params).as_slice())?;
                while let Some(r) = rows.next()? {
                    if !f(&Row::Sqlite(r))? {
                        break;
                    }
                }
                return Ok(());
            }
            Db::Postgres(s) => s,
        };
        let params = params.list();
        if !streamed {
            // The rows first, then `f`: the connection must not stay borrowed while `f` runs
            // (it may run statements of its own).
            let rows = s.borrow_mut().query(sql, &params)?;
            for r in &rows {
                if !f(&Row::Postgres(r))? {
                    break;
                }
            }
            return Ok(());
        }
        static CURSORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "seatkeeper_scan_{}",
            CURSORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let declared = {
            // Not kept prepared: each scan's cursor has a name of its own.
            let declare = placeholders(&format!("DECLARE {name} NO SCROLL CURSOR FOR {sql}"));
            let mut s = s.borrow_mut();
            s.flush()?;
            s.client.execute(declare.as_str(), &pg_params(&params))
        };
        match declared {
            Ok(_) => {}
            Err(e) if e.code() == Some(&postgres::error::SqlState::NO_ACTIVE_SQL_TRANSACTION) => {
                let rows = s.borrow_mut().query(sql, &params)?;
                for r in &rows {
                    if !f(&Row::Postgres(r))? {
                        break;
                    }
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let fetch = format!("FETCH {SCAN_BATCH} FROM {name}");
        loop {
            let rows = {
                let mut s = s.borrow_mut();
                // (Writes `f` kept for later go first: the scan reports their errors.)
                s.settle()?;
                s.client.query(fetch.as_str(), &[])?
            };
            for r in &rows {
                if !f(&Row::Postgres(r))? {
                    s.borrow_mut().batch_execute(&format!("CLOSE {name}"))?;
                    return Ok(());
                }
            }
            if rows.len() < SCAN_BATCH {
                break;
            }
        }
        s.borrow_mut().batch_execute(&format!("CLOSE {name}"))?;
        Ok(())
    }

    /// The first row read by `f`; [`Error::NoRow`] when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Runs statements separated by `;`, without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(s) => s.borrow_mut().batch_execute(sql),
        }
    }

    /// The key of the row the last INSERT on this connection made (its `rk`).
    pub fn last_insert_rowid(&self) -> Result<i64> {
        match self {
            Db::Sqlite(c) => Ok(c.last_insert_rowid()),
            Db::Postgres(_) => self.query_row("SELECT lastval()", [], |r| r.get(0)),
        }
    }
}

/// A prepared statement of either engine.
pub enum Statement<'a> {
    Sqlite(rusqlite::CachedStatement<'a>),
    Postgres(&'a RefCell<PgSession>, String),
}

impl Statement<'_> {
    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        let params = params.list();
        match self {
            Statement::Sqlite(st) => Ok(st.execute(sqlite_params(&params).as_slice())?),
            Statement::Postgres(s, sql) => Ok(s.borrow_mut().execute(sql, &params)? as usize),
        }
    }

    /// The first row read by `f`; [`Error::NoRow`] when there is none.
    pub fn query_row<T>(
        &mut self,
        params: impl Params,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        let params = params.list();
        match self {
            Statement::Sqlite(st) => {
                let mut rows = st.query(sqlite_params(&params).as_slice())?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(Error::NoRow),
                }
            }
            Statement::Postgres(s, sql) => {
                let rows = s.borrow_mut().query(sql, &params)?;
                match rows.first() {
                    Some(r) => f(&Row::Postgres(r)),
                    None => Err(Error::NoRow),
                }
            }
        }
    }

    /// Every row read by `f`, as an iterator (SQLite streams; PostgreSQL reads the result
    /// first).
    pub fn query_map<'s, T, F>(&'s mut self, params: impl Params, f: F) -> Result<MappedRows<'s, F>>
    where
        F: FnMut(&Row) -> Result<T>,
    {
        let params = params.list();
        Ok(match self {
            Statement::Sqlite(st) => {
                MappedRows::Sqlite(st.query(sqlite_params(&params).as_slice())?, f)
            }
            Statement::Postgres(s, sql) => {
                let rows = s.borrow_mut().query(sql, &params)?;
                MappedRows::Postgres(rows.into_iter(), f)
            }
        })
    }

    /// Every row read by `f`, collected.
    pub fn query_all<T, F>(&mut self, params: impl Params, f: F) -> Result<Vec<T>>
    where
        F: FnMut(&Row) -> Result<T>,
    {
        self.query_map(params, f)?.collect()
    }

    /// True when the query finds a row.
    pub fn exists(&mut self, params: impl Params) -> Result<bool> {
        self.query_row(params, |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
    }
}

/// The rows of [`Statement::query_map`], each read by the caller's function.
pub enum MappedRows<'s, F> {
    Sqlite(rusqlite::Rows<'s>, F),
    Postgres(std::vec::IntoIter<postgres::Row>, F),
}

impl<T, F: FnMut(&Row) -> Result<T>> Iterator for MappedRows<'_, F> {
    type Item = Result<T>;
    fn next(&mut self) -> Option<Result<T>> {
        match self {
            MappedRows::Sqlite(rows, f) => match rows.next() {
                Ok(Some(r)) => Some(f(&Row::Sqlite(r))),
                Ok(None) => None,
                Err(e) => Some(Err(e.into())),
            },
            MappedRows::Postgres(rows, f) => rows.next().map(|r| f(&Row::Postgres(&r))),
        }
    }
}

/// `sql` with SQLite's `?` and `?N` placeholders written as PostgreSQL's `$N` (outside quoted
/// strings, identifiers and `--` comments).
pub fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1;
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if quote == Some('-') {
            // A `--` comment, to the end of its line.
            out.push(c);
            if c == '\n' {
                quote = None;
            }
            continue;
        }
        if c == '-' && quote.is_none() && chars.peek() == Some(&'-') {
            quote = Some('-');
            out.push(c);
            continue;
        }
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    let n = next;
                    next += 1;
                    n
                } else {
                    digits.parse().unwrap_or(0)
                };
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// The first column of every row, as strings.
pub(in crate::store) fn strings(c: &Db, sql: &str, p: impl Params) -> Result<Vec<String>> {
    let mut st = c.prepare_cached(sql)?;
    st.query_all::<String, _>(p, |r| r.get(0))
}

/// From this many keys an `IN` list's statement is planned afresh ([`Db::query_in`]).
pub const FRESH_FROM: usize = 64;

/// Keys one `IN (…)` list takes at most ([`in_slices`]).
pub const IN_MAX: usize = 256;

/// `keys` in slices of at most [`IN_MAX`], each as the `?` marks of an `IN (…)` list and its
/// parameters. A slice is padded (its last key repeated, which an `IN` list ignores) to 1, 4,
/// 16, 64, 128 or 256 keys, so that a statement over slices of any length is prepared six times at
/// most, not once per length.
pub fn in_slices(keys: &[String]) -> impl Iterator<Item = (String, Vec<&str>)> {
    keys.chunks(IN_MAX).map(|chunk| {
        let n = [1, 4, 16, 64, 128, IN_MAX]
            .into_iter()
            .find(|n| *n >= chunk.len())
            .unwrap_or(IN_MAX);
        let mut slice: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let last = slice.last().copied().unwrap_or_default();
        slice.resize(n, last);
        (vec!["?"; n].join(", "), slice)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_are_sliced_and_padded_to_few_lengths() {
        let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
        let slices: Vec<_> = in_slices(&keys).collect();
        assert_eq!(slices.len(), 2);
        assert_eq!(slices[0].1.len(), IN_MAX);
        // 44 keys are padded to 64 with the last repeated.
        assert_eq!(slices[1].1.len(), 64);
        assert_eq!(slices[1].0.matches('?').count(), 64);
        assert!(slices[1].1[44..].iter().all(|k| *k == "k299"));
        let one: Vec<_> = in_slices(&keys[..1]).collect();
        assert_eq!((one[0].0.as_str(), one[0].1.len()), ("?", 1));
        assert_eq!(in_slices(&[]).count(), 0);
    }

    #[test]
    fn placeholders_become_numbered() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ? AND c = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = $2"
        );
        assert_eq!(
            placeholders("WHERE a = ?1 AND (b = ?2 OR c = ?2) LIMIT ?3"),
            "WHERE a = $1 AND (b = $2 OR c = $2) LIMIT $3"
        );
        assert_eq!(
            placeholders("SELECT '?' || \"a?b\" FROM t WHERE x = ?"),
            "SELECT '?' || \"a?b\" FROM t WHERE x = $1"
        );
        assert_eq!(
            placeholders("SELECT a -- the user's ?\n FROM t WHERE x = ?1 - ?2"),
            "SELECT a -- the user's ?\n FROM t WHERE x = $1 - $2"
        );
    }

    #[test]
    fn sqlite_rows_read_through_the_common_interface() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let db = Db::Sqlite(&c);
        db.execute_batch(
            "CREATE TABLE t (k INTEGER PRIMARY KEY, name TEXT, flag INTEGER NOT NULL, b BLOB)",
        )
        .unwrap();
        for (k, name, flag) in [(1i64, Some("a"), true), (2, None, false)] {
            let n = db
                .execute(
                    "INSERT INTO t (k, name, flag, b) VALUES (?, ?, ?, ?)",
                    params![k, name, flag, vec![1u8, 2]],
                )
                .unwrap();
            assert_eq!(n, 1);
        }
        assert_eq!(db.last_insert_rowid().unwrap(), 2);
        let rows = db
            .prepare_cached("SELECT k, name, flag, b FROM t ORDER BY k")
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (1, Some("a".into()), true, vec![1, 2]),
                (2, None, false, vec![1, 2])
            ]
        );
        let n: i64 = db
            .query_row("SELECT count(*) FROM t WHERE flag = ?1", [true], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
        let none = db
            .query_row("SELECT k FROM t WHERE k = ?", [9i64], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .unwrap();
        assert_eq!(none, None);
    }
}
