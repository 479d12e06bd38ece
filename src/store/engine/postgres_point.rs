//! Point reads on PostgreSQL without a blocking thread: the hot path's single statements (a
//! user by id, a `userName eq` lookup, the joined seat check) run on the async reactor of the
//! thread that serves the request.
//!
//! The pooled connections ([`crate::store::engine::postgres::Pg`]) use the blocking `postgres` client, so a read
//! on them is handed to a blocking thread and back: two thread switches and the client's own
//! runtime around every round trip, which on a small machine cost the daemon more CPU than
//! the statement costs PostgreSQL. Here each thread that serves requests (an HTTP worker, a
//! test's runtime) keeps one `tokio-postgres` connection of its own, driven by a task on that
//! thread's runtime: a point read is written to the socket and its answer read by the same
//! thread, with no hand-off, and the statements of concurrent requests on one worker are
//! pipelined on its connection. `tokio-postgres` is the crate the `postgres` client wraps, so
//! parameters, rows and errors are the same types (a [`Row`] reads both).
//!
//! Each statement runs alone, outside a transaction, and sees the last commit: the reads that
//! come here are one statement each. A connection found closed (the database restarted, the
//! runtime that drove it ended) is replaced at the next read, and a read that finds it lost is
//! tried once more on a new one; while the database cannot be reached at all, the read fails
//! as a lost connection, which the edges answer 503 with `Retry-After` (`Failure::Unavailable`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::store::engine::sql::{pg_params, placeholders, Param, Row};
use crate::store::{Error, Result};

/// Statements one connection keeps prepared; past it the cache starts over.
const STATEMENTS: usize = 256;

/// One node's point reader for one database.
pub struct PointReader {
    config: tokio_postgres::Config,
    /// Tells this database's connections from another's in a thread's map (tests run several
    /// daemons, on several databases, in one process).
    id: u64,
}

/// A thread's connection, with the statements it has prepared, by the SQL they were written as.
struct Conn {
    client: tokio_postgres::Client,
    statements: Mutex<HashMap<String, tokio_postgres::Statement>>,
}

thread_local! {
    static CONNS: RefCell<HashMap<u64, Arc<Conn>>> = RefCell::new(HashMap::new());
}

impl PointReader {
    pub fn new(mut config: tokio_postgres::Config) -> Result<PointReader> {
        static IDS: AtomicU64 = AtomicU64::new(0);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        config.application_name("seatkeeper point reads");
        // Every statement here is an index lookup; with the default random_page_cost (4, for
        // spinning disks) the planner reads a tenant's small groups table by a sequential scan
        // for each user's group references, a third slower than by its key.
        config.options("-c random_page_cost=1.1");
        Ok(PointReader {
            config,
            id: IDS.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// This thread's open connection, connecting first if it has none.
    async fn conn(&self) -> Result<Arc<Conn>> {
        let open = CONNS.with(|m| {
            m.borrow()
                .get(&self.id)
                .filter(|c| !c.client.is_closed())
                .cloned()
        });
        if let Some(c) = open {
            return Ok(c);
        }
        let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a point-read connection closed");
            }
        });
        let conn = Arc::new(Conn {
            client,
            statements: Mutex::new(HashMap::new()),
        });
        CONNS.with(|m| m.borrow_mut().insert(self.id, conn.clone()));
        Ok(conn)
    }

    /// The rows of `sql` (written with SQLite's placeholders, as everywhere in the store), each
    /// read by `f`. A read that finds this thread's connection lost (the database restarted
    /// since its last use) is tried once more on a new one.
    pub async fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self.query_once(sql, params, &mut f).await {
            Err(Error::Postgres(e)) if crate::store::connection_lost(&e) => {
                CONNS.with(|m| m.borrow_mut().remove(&self.id));
                self.query_once(sql, params, &mut f).await
            }
            r => r,
        }
    }

    async fn query_once<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: &mut impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let conn = self.conn().await?;
        let cached = conn
            .statements
            .lock()
            .map_err(|_| Error::Internal("statement cache poisoned".into()))?
            .get(sql)
            .cloned();
        let st = match cached {
            Some(st) => st,
            None => {
                let st = conn.client.prepare(&placeholders(sql)).await?;
                let mut cache = conn
                    .statements
                    .lock()
                    .map_err(|_| Error::Internal("statement cache poisoned".into()))?;
                if cache.len() >= STATEMENTS {
                    cache.clear();
                }
                cache.insert(sql.to_owned(), st.clone());
                st
            }
        };
        let rows = conn.client.query(&st, &pg_params(params)).await?;
        rows.iter().map(|r| f(&Row::Postgres(r))).collect()
    }
}
