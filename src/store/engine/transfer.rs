//! `seatkeeper transfer --to URL`: a SQLite database copied into an empty PostgreSQL database,
//! so that a deployment outgrows one machine without re-provisioning (which would reset every
//! waiting user's place in the queue).
//!
//! Every table is copied row for row with its keys, in an order that satisfies the foreign keys,
//! in one PostgreSQL transaction: seat states and `entitled_at` (so every waitlist keeps its
//! order), token hashes, the outbox with its rendered messages, the audit log and the seat-event
//! feed. Values are converted by the PostgreSQL column's type (SQLite's 0/1 flags become
//! booleans). Identity counters are moved past the copied keys, and each tenant's waitlist stamp
//! (`tenants.last_order`) past its seats' stamps. The copy is then verified: the row count of
//! every table, and the `check` audit of every license on PostgreSQL. A target that already
//! holds a seatkeeper tenant, or tables of anything else, is refused.

use std::path::Path;

use postgres::types::Type;
use rusqlite::types::Value as Lite;
use serde::Serialize;

use crate::store::engine::sql::{Db, PgSession};
use crate::store::operations::maintenance::license_audit;
use crate::store::{Error, Result};

/// The tables, parents before children.
const TABLES: [&str; 28] = [
    "tenants",
    "product_tokens",
    "console_sessions",
    "scim_tokens",
    "admin_tokens",
    "users",
    "user_emails",
    "groups",
    "group_members",
    "licenses",
    "license_groups",
    "overrides",
    "carried_holders",
    "holds",
    "seats",
    "seat_events",
    "license_days",
    "audit",
    "audit_retention",
    "outbox",
    "outbox_items",
    "webhooks",
    "webhook_events",
    "webhook_deliveries",
    "scim_failures",
    "provider_failures",
    "provider_requests",
    "alert_marks",
];

/// Tables with an identity key, and its column.
const IDENTITIES: [(&str, &str); 11] = [
    ("tenants", "rk"),
    ("users", "rk"),
    ("groups", "rk"),
    ("licenses", "rk"),
    ("holds", "rk"),
    ("seat_events", "seq"),
    ("audit", "seq"),
    ("outbox", "id"),
    ("webhooks", "rk"),
    ("webhook_events", "seq"),
    ("scim_failures", "id"),
];

/// What a transfer copied: rows per table, equal on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Copied {
    pub tables: Vec<(String, i64)>,
}

/// Copies the SQLite database at `from` into the empty PostgreSQL database at `to`, verifies
/// the copy and says what it copied.
pub fn transfer(from: &Path, to: &str) -> Result<Copied> {
    if !crate::store::engine::address::is_url(to) {
        return Err(Error::Invalid(
            "--to takes a postgres:// or postgresql:// URL".into(),
        ));
    }
    if crate::store::engine::address::file(from).is_none() {
        return Err(Error::Invalid(
            "the configured database is PostgreSQL already; transfer copies a SQLite file".into(),
        ));
    }
    // The source must not change while it is copied.
    let _quiet = crate::store::operations::maintenance::not_served(from)?;
    if !from.exists() {
        return Err(Error::Invalid(format!("{} does not exist", from.display())));
    }
    // Brings the source to the current schema (an older file is migrated as at start-up).
    crate::store::Store::open(from)?.close();
    let src =
        rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let problems = crate::store::operations::maintenance::audit(&Db::Sqlite(&src))?;
    if !problems.is_empty() {
        return Err(Error::Invalid(format!(
            "the SQLite database fails its check; run `seatkeeper check` and fix it first: {}",
            serde_json::to_string(&problems).unwrap_or_default()
        )));
    }
    let pg = crate::store::engine::postgres::Pg::open(to)?;
    let mut s = pg.take()?;
    let tenants: i64 = s
        .client
        .query_one("SELECT count(*) FROM tenants", &[])?
        .get(0);
    if tenants > 0 {
        return Err(Error::Invalid(
            "the PostgreSQL database already holds tenants: transfer copies into an empty database only".into(),
        ));
    }
    s.client.batch_execute("BEGIN")?;
    let mut copied = Vec::new();
    for table in TABLES {
        let n = copy_table(&src, &mut s, table)?;
        copied.push((table.to_owned(), n));
    }
    for (table, key) in IDENTITIES {
        s.client.batch_execute(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{key}'), coalesce((SELECT max({key}) FROM {table}), 0) + 1, false)"
        ))?;
    }
    s.client.batch_execute(
        "UPDATE tenants t SET last_order = coalesce((SELECT max(entitled_at) FROM seats s WHERE s.tenant = t.rk), 0)",
    )?;
    // Verify inside the transaction: nothing is committed unless it is right.
    for (table, n) in &copied {
        let there: i64 = s
            .client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
            .get(0);
        if there != *n {
            let _ = s.client.batch_execute("ROLLBACK");
            return Err(Error::Internal(format!(
                "{table}: {n} rows read, {there} written"
            )));
        }
    }
    let cell = std::cell::RefCell::new(s);
    let mut problems = Vec::new();
    license_audit(&Db::Postgres(&cell), &mut problems)?;
    let mut s = cell.into_inner();
    if !problems.is_empty() {
        let _ = s.client.batch_execute("ROLLBACK");
        return Err(Error::Internal(format!(
            "the copy fails its check: {}",
            serde_json::to_string(&problems).unwrap_or_default()
        )));
    }
    s.client.batch_execute("COMMIT")?;
    pg.put(s);
    Ok(Copied { tables: copied })
}

/// Copies one table; returns its row count.
fn copy_table(src: &rusqlite::Connection, dst: &mut PgSession, table: &str) -> Result<i64> {
    let types: Vec<(String, Type)> = dst
        .client
        .query(
            "SELECT column_name, data_type FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )?
        .iter()
        .map(|r| {
            let ty = match r.get::<_, &str>(1) {
                "bigint" => Type::INT8,
                "boolean" => Type::BOOL,
                "bytea" => Type::BYTEA,
                _ => Type::TEXT,
            };
            (r.get::<_, String>(0), ty)
        })
        .collect();
    let present: Vec<String> = src
        .prepare(&format!("PRAGMA table_info({table})"))?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<rusqlite::Result<_>>()?;
    // Columns both sides have (PostgreSQL's own, such as `last_order`, keep their defaults).
    let columns: Vec<&(String, Type)> = types.iter().filter(|(c, _)| present.contains(c)).collect();
    let names: Vec<&str> = columns.iter().map(|(c, _)| c.as_str()).collect();
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let insert = dst.client.prepare_typed(
        &format!(
            "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE VALUES ({})",
            names.join(", "),
            marks.join(", ")
        ),
        &columns.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(),
    )?;
    let mut st = src.prepare(&format!("SELECT {} FROM {table}", names.join(", ")))?;
    let mut rows = st.query([])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let mut values: Vec<Box<dyn postgres::types::ToSql + Sync>> =
            Vec::with_capacity(columns.len());
        for (i, (column, ty)) in columns.iter().enumerate() {
            let v: Lite = r.get(i)?;
            values.push(convert(table, column, ty, v)?);
        }
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            values.iter().map(|b| b.as_ref()).collect();
        dst.client.execute(&insert, &refs)?;
        n += 1;
    }
    Ok(n)
}

/// A SQLite value as the PostgreSQL column's type.
fn convert(
    table: &str,
    column: &str,
    ty: &Type,
    v: Lite,
) -> Result<Box<dyn postgres::types::ToSql + Sync>> {
    let bad = |v: &Lite| {
        Error::Invalid(format!(
            "{table}.{column}: {v:?} does not fit PostgreSQL's {ty}"
        ))
    };
    Ok(match (ty, v) {
        (_, Lite::Null) => match *ty {
            Type::INT8 => Box::new(None::<i64>),
            Type::BOOL => Box::new(None::<bool>),
            Type::BYTEA => Box::new(None::<Vec<u8>>),
            _ => Box::new(None::<String>),
        },
        (&Type::INT8, Lite::Integer(i)) => Box::new(i),
        (&Type::BOOL, Lite::Integer(i)) => Box::new(i != 0),
        (&Type::BYTEA, Lite::Blob(b)) => Box::new(b),
        (&Type::TEXT, Lite::Text(t)) => Box::new(t),
        (&Type::TEXT, Lite::Integer(i)) => Box::new(i.to_string()),
        (_, other) => return Err(bad(&other)),
    })
}

#[cfg(test)]
mod tests {
    use super::TABLES;

    /// Every table of the schema is copied (a table added later must be added here).
    #[test]
    fn every_table_is_transferred() {
        let mut schema: Vec<&str> = crate::store::engine::migrate::SCHEMA
            .lines()
            .filter_map(|l| l.strip_prefix("CREATE TABLE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        schema.sort_unstable();
        let mut copied = TABLES.to_vec();
        copied.sort_unstable();
        assert_eq!(copied, schema);
    }
}
