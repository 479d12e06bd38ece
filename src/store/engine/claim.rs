//! Claiming queued rows to send (the mail outbox, webhook deliveries): the rows a sender takes
//! are leased, their `due` moved a lease ahead in the statement that takes them, so that neither
//! another node nor this one's next claim takes a row in flight. On PostgreSQL the rows another
//! node is claiming at that moment are skipped (`FOR UPDATE SKIP LOCKED`); SQLite has one
//! writer, so there is no one to skip. A sender that dies mid-send leaves its rows to be
//! claimed again after the lease: at least once, never twice while senders live.

use crate::store::engine::sql::{Db, Engine};

/// The statement that claims the rows of `table` keyed by `keys` (a column list) among
/// `candidates` (a `SELECT` of those columns, in the order they are wanted), setting each one's
/// `due` to `?1 + ?3` (now plus the lease), and answers `returning` of each. The candidates may
/// use `?1` (now) and `?2` (a limit).
pub(in crate::store) fn lease_sql(
    c: &Db,
    table: &str,
    keys: &str,
    candidates: &str,
    returning: &str,
) -> String {
    let taken = match c.engine() {
        Engine::Sqlite => candidates.to_owned(),
        Engine::Postgres => format!(
            "SELECT {keys} FROM {table} WHERE ({keys}) IN ({candidates}) FOR UPDATE SKIP LOCKED"
        ),
    };
    format!(
        "UPDATE {table} SET due = CAST(?1 AS BIGINT) + CAST(?3 AS BIGINT)
         WHERE ({keys}) IN ({taken})
         RETURNING {returning}"
    )
}
