//! A blocking PostgreSQL connection for the store's pooled connections (the writers, the
//! readers on blocking threads): `tokio-postgres` driven by a small runtime of its own on the
//! calling thread, as the `postgres` crate does, with one thing that crate cannot do: send a
//! simple statement together with the next statement (`*_after`), so that both cost one round
//! trip. The batch writer sends each job's `SAVEPOINT` this way with the job's first statement
//! (`engine::postgres_batch`): a user create is then one round trip, not two.
//!
//! The statements of one call are written to the socket together and answered in order; when
//! the first fails, the second fails too (the transaction is aborted) and the first error is
//! the one returned.

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, Row, Statement, ToStatement};

use crate::store::Result;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub struct PgClient {
    client: tokio_postgres::Client,
    /// Drives the connection while a call waits for its answer; declared after the client, so
    /// that the client is dropped (ending the connection) before the runtime.
    rt: tokio::runtime::Runtime,
}

impl PgClient {
    /// Connects with `config`. Blocks: call from a thread that runs no async runtime.
    pub fn connect(config: &tokio_postgres::Config) -> Result<PgClient> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                crate::store::Error::Internal(format!("a database client runtime: {e}"))
            })?;
        let (client, connection) = rt.block_on(config.connect(tokio_postgres::NoTls))?;
        rt.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a database connection closed");
            }
        });
        Ok(PgClient { client, rt })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    pub fn batch_execute(&mut self, sql: &str) -> std::result::Result<(), Error> {
        self.rt.block_on(self.client.batch_execute(sql))
    }

    pub fn prepare(&mut self, sql: &str) -> std::result::Result<Statement, Error> {
        self.rt.block_on(self.client.prepare(sql))
    }

    pub fn prepare_typed(
        &mut self,
        sql: &str,
        types: &[Type],
    ) -> std::result::Result<Statement, Error> {
        self.rt.block_on(self.client.prepare_typed(sql, types))
    }

    pub fn query<T: ?Sized + ToStatement>(
        &mut self,
        st: &T,
        params: Params,
    ) -> std::result::Result<Vec<Row>, Error> {
        self.rt.block_on(self.client.query(st, params))
    }

    pub fn query_one<T: ?Sized + ToStatement>(
        &mut self,
        st: &T,
        params: Params,
    ) -> std::result::Result<Row, Error> {
        self.rt.block_on(self.client.query_one(st, params))
    }

    pub fn execute<T: ?Sized + ToStatement>(
        &mut self,
        st: &T,
        params: Params,
    ) -> std::result::Result<u64, Error> {
        self.rt.block_on(self.client.execute(st, params))
    }

    /// `before` (simple statements) and then `st`, in one round trip.
    pub fn query_after(
        &mut self,
        before: &str,
        st: &Statement,
        params: Params,
    ) -> std::result::Result<Vec<Row>, Error> {
        let c = &self.client;
        self.rt.block_on(async {
            let (first, rows) = tokio::join!(c.batch_execute(before), c.query(st, params));
            first?;
            rows
        })
    }

    /// `before` (simple statements) and then `st`, in one round trip.
    pub fn execute_after(
        &mut self,
        before: &str,
        st: &Statement,
        params: Params,
    ) -> std::result::Result<u64, Error> {
        let c = &self.client;
        self.rt.block_on(async {
            let (first, n) = tokio::join!(c.batch_execute(before), c.execute(st, params));
            first?;
            n
        })
    }
}
