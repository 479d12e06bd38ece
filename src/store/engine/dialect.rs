//! Where the two engines' SQL or locking must differ, said once here, each engine's form next to
//! the other's: JSON in a text column, the tenant's chain lock, a lock only one node takes, the
//! catalogue, and the order stamp of seat rows. Business code calls these and never asks which
//! engine runs.

use crate::alloc::Millis;
use crate::store::engine::sql::{params, Db, Engine};
use crate::store::{Result, TenantKey};

/// The SQL function that builds a JSON object from key/value pairs.
pub(in crate::store) fn json_object(c: &Db) -> &'static str {
    match c.engine() {
        Engine::Sqlite => "json_object",
        Engine::Postgres => "json_build_object",
    }
}

/// The text of field `key` of the JSON object in text column `column`.
pub(in crate::store) fn json_text(c: &Db, column: &str, key: &str) -> String {
    match c.engine() {
        Engine::Sqlite => format!("json_extract({column}, '$.{key}')"),
        Engine::Postgres => format!("(CAST({column} AS jsonb) ->> '{key}')"),
    }
}

/// Serializes the writes of `tenant` that do not already hold its writer lock (an audit entry
/// of tenant creation, the operator's chain). SQLite's one writer serializes every write
/// already; on PostgreSQL this takes the tenant's advisory lock for the transaction (advisory
/// locks nest, so a job that holds it already takes it again at no cost).
pub(in crate::store) fn serialize_tenant(c: &Db, tenant: TenantKey) -> Result<()> {
    match c.engine() {
        Engine::Sqlite => Ok(()),
        Engine::Postgres => c.query_row("SELECT pg_advisory_xact_lock(?)", [tenant], |_| Ok(())),
    }
}

/// Whether this transaction is the one, of all nodes, to do the work `lock` names now (held
/// until it ends). SQLite is one node: always.
pub(in crate::store) fn only_one_node(c: &Db, lock: i64) -> Result<bool> {
    match c.engine() {
        Engine::Sqlite => Ok(true),
        Engine::Postgres => {
            c.query_row("SELECT pg_try_advisory_xact_lock(?)", [lock], |r| r.get(0))
        }
    }
}

/// Every (table, column) of the database's own tables.
pub(in crate::store) fn columns(c: &Db) -> Result<Vec<(String, String)>> {
    match c.engine() {
        Engine::Sqlite => {
            let tables: Vec<String> = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
                .query_all([], |r| r.get(0))?;
            let mut out = Vec::new();
            for t in tables {
                let cols: Vec<String> = c
                    .prepare(&format!("PRAGMA table_info({t})"))?
                    .query_all([], |r| r.get(1))?;
                out.extend(cols.into_iter().map(|col| (t.clone(), col)));
            }
            Ok(out)
        }
        Engine::Postgres => c
            .prepare(
                "SELECT table_name, column_name FROM information_schema.columns
                 WHERE table_schema = current_schema() ORDER BY table_name",
            )?
            .query_all([], |r| Ok((r.get(0)?, r.get(1)?))),
    }
}

thread_local! {
    /// The last order stamp the SQLite writer thread gave.
    static LAST_ORDER: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// PostgreSQL's stamp of [`next_order`] (parameters: the instant in microseconds, the tenant).
pub(in crate::store) const NEXT_ORDER_POSTGRES: &str =
    "UPDATE tenants SET last_order = GREATEST(last_order + 1, ?) WHERE rk = ? RETURNING last_order";

/// A strictly increasing microsecond stamp, never behind `at`, so that stamps follow the order
/// changes are applied in. On SQLite write jobs run one after another on the store's writer
/// thread, which keeps the last stamp. On PostgreSQL the tenant's jobs run one after another
/// under its lock, whichever node runs them, and the last stamp is the tenant's.
pub(in crate::store) fn next_order(c: &Db, tenant: TenantKey, at: Millis) -> Result<i64> {
    match c.engine() {
        Engine::Sqlite => Ok(LAST_ORDER.with(|last| {
            let v = (at * 1000).max(last.get() + 1);
            last.set(v);
            v
        })),
        Engine::Postgres => c.query_row(NEXT_ORDER_POSTGRES, params![at * 1000, tenant], |r| {
            r.get(0)
        }),
    }
}
