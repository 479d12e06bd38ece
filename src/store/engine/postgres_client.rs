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
//!
//! [`PgClient::pipeline`] generalizes it: writes whose answer nobody waits for (a seat row, a
//! seat event, a counter; see `PgSession::execute_later`) are kept, their parameters encoded
//! ([`Encoded`]), and sent together with the next statement that is waited for, all in one
//! round trip: a run that writes a hundred rows waits for the database once, not a hundred
//! times.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Error, Row, Statement, ToStatement};

use crate::store::Result;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A parameter already encoded for its statement's type (a write sent later keeps no borrow).
#[derive(Debug)]
pub struct Encoded(Option<Vec<u8>>);

impl Encoded {
    /// `p` as `ty` encodes it on the wire.
    pub fn encode(
        p: &(dyn ToSql + Sync),
        ty: &Type,
    ) -> std::result::Result<Encoded, Box<dyn std::error::Error + Sync + Send>> {
        let mut buf = bytes::BytesMut::new();
        Ok(match p.to_sql_checked(ty, &mut buf)? {
            IsNull::Yes => Encoded(None),
            IsNull::No => Encoded(Some(buf.to_vec())),
        })
    }
}

impl ToSql for Encoded {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Some(b) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    /// Checked when it was encoded, against the statement's own type.
    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A write kept to be sent with the next statement ([`PgClient::pipeline`]).
pub struct Write {
    pub statement: Statement,
    pub params: Vec<Encoded>,
}

/// What a pipeline ends with: the statement whose answer the caller waits for.
pub enum Then<'a> {
    Query(&'a Statement, Params<'a>),
    /// A statement parsed, planned and run in the round trip (an unnamed statement, planned
    /// for these parameters and the tables as they are now; see `PgSession::query_fresh`).
    Fresh(&'a str, &'a [(&'a (dyn ToSql + Sync), Type)]),
    Execute(&'a Statement, Params<'a>),
    Simple(&'a str),
    Nothing,
}

/// The answer of a pipeline's last statement.
pub enum Done {
    Rows(Vec<Row>),
    Count(u64),
    Nothing,
}

type Pending<'f> = Pin<Box<dyn Future<Output = std::result::Result<Done, Error>> + 'f>>;

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

    /// `before` (simple statements), then `writes`, then `then`, written to the socket together
    /// and answered in order: one round trip. Returns `then`'s answer, or the first error (after
    /// a failed statement the rest fail too: the transaction is aborted).
    pub fn pipeline(
        &mut self,
        before: Option<&str>,
        writes: &[Write],
        then: Then,
    ) -> std::result::Result<Done, Error> {
        Ok(self
            .pipeline_many(before, writes, vec![then])?
            .pop()
            .unwrap_or(Done::Nothing))
    }

    /// As [`PgClient::pipeline`], ending with several statements: their answers, in order.
    pub fn pipeline_many(
        &mut self,
        before: Option<&str>,
        writes: &[Write],
        thens: Vec<Then>,
    ) -> std::result::Result<Vec<Done>, Error> {
        let c = &self.client;
        let kept = writes.len() + usize::from(before.is_some());
        self.rt.block_on(async move {
            let mut all: Vec<Pending> = Vec::with_capacity(kept + thens.len());
            if let Some(b) = before {
                all.push(Box::pin(async move {
                    c.batch_execute(b).await.map(|()| Done::Nothing)
                }));
            }
            for w in writes {
                all.push(Box::pin(async move {
                    let params: Vec<&(dyn ToSql + Sync)> =
                        w.params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                    c.execute(&w.statement, &params).await.map(Done::Count)
                }));
            }
            for then in thens {
                match then {
                    Then::Query(st, params) => all.push(Box::pin(async move {
                        c.query(st, params).await.map(Done::Rows)
                    })),
                    Then::Fresh(sql, params) => all.push(Box::pin(async move {
                        c.query_typed(sql, params).await.map(Done::Rows)
                    })),
                    Then::Execute(st, params) => all.push(Box::pin(async move {
                        c.execute(st, params).await.map(Done::Count)
                    })),
                    Then::Simple(sql) => all.push(Box::pin(async move {
                        c.batch_execute(sql).await.map(|()| Done::Nothing)
                    })),
                    Then::Nothing => {}
                }
            }
            // Each request is queued for the socket at its future's first poll: polling every
            // one once, in order, sends them in order before any answer is awaited.
            let mut answers: Vec<Option<std::result::Result<Done, Error>>> =
                all.iter().map(|_| None).collect();
            std::future::poll_fn(|cx| {
                for (f, a) in all.iter_mut().zip(answers.iter_mut()) {
                    if let Poll::Ready(r) = f.as_mut().poll(cx) {
                        *a = Some(r);
                    }
                }
                Poll::Ready(())
            })
            .await;
            let mut first_error = None;
            let mut done = Vec::new();
            for (i, (f, a)) in all.into_iter().zip(answers).enumerate() {
                let r = match a {
                    Some(r) => r,
                    None => f.await,
                };
                match r {
                    Ok(d) if i >= kept => done.push(d),
                    Ok(_) => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(done),
            }
        })
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
