//! Schema creation and in-place upgrades, keyed on `PRAGMA user_version` (SQLite) and the
//! `schema_version` row (PostgreSQL, `postgres::migrate`).
//!
//! From version 16 on, a schema change has one number on both engines: a [`Shared`] step holds
//! its SQLite and PostgreSQL forms side by side (`migrations/shared/vN.sqlite.sql`,
//! `vN.postgres.sql`), and both engines' [`CURRENT`] is the last one. Before it, each engine
//! numbered its own steps (SQLite v2 to v15 in `migrations/sqlite/`, PostgreSQL v2 to v11 in
//! `migrations/postgres/`); a database of either engine at any older version runs its own
//! remaining steps, then the shared ones above its version.
//!
//! `schema.sql` at the top level is the whole current schema: a new database gets it and
//! [`CURRENT`]. An older database runs each step file here (`v2.sql`, ...) from its version up, in
//! one transaction. A newer one is refused: an old binary must not write a schema it does not
//! know. A test checks that a version-1 database migrated step by step equals a new one.

use rusqlite::Connection;

use crate::store::{Error, Result};

/// The current schema.
pub const SCHEMA: &str = include_str!("../../../schema.sql");
/// `STEPS[i]` upgrades version `i + 1` to `i + 2`.
const STEPS: &[&str] = &[
    include_str!("migrations/sqlite/v2.sql"),
    include_str!("migrations/sqlite/v3.sql"),
    include_str!("migrations/sqlite/v4.sql"),
    include_str!("migrations/sqlite/v5.sql"),
    include_str!("migrations/sqlite/v6.sql"),
    include_str!("migrations/sqlite/v7.sql"),
    include_str!("migrations/sqlite/v8.sql"),
    include_str!("migrations/sqlite/v9.sql"),
    include_str!("migrations/sqlite/v10.sql"),
    include_str!("migrations/sqlite/v11.sql"),
    include_str!("migrations/sqlite/v12.sql"),
    include_str!("migrations/sqlite/v13.sql"),
    include_str!("migrations/sqlite/v14.sql"),
    include_str!("migrations/sqlite/v15.sql"),
];
/// The last version SQLite numbered on its own.
const SQLITE_OWN: i64 = 1 + STEPS.len() as i64;

/// One schema change, numbered once for both engines.
pub struct Shared {
    pub version: i64,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// The shared steps, in order.
pub const SHARED: &[Shared] = &[
    Shared {
        version: 16,
        sqlite: include_str!("migrations/shared/v16.sqlite.sql"),
        postgres: include_str!("migrations/shared/v16.postgres.sql"),
    },
    Shared {
        version: 17,
        sqlite: include_str!("migrations/shared/v17.sqlite.sql"),
        postgres: include_str!("migrations/shared/v17.postgres.sql"),
    },
    Shared {
        version: 18,
        sqlite: include_str!("migrations/shared/v18.sqlite.sql"),
        postgres: include_str!("migrations/shared/v18.postgres.sql"),
    },
];

/// The version this binary writes, on both engines.
pub const CURRENT: i64 = match SHARED.last() {
    Some(s) => s.version,
    None => SQLITE_OWN,
};

pub fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > CURRENT {
        return Err(Error::Invalid(format!(
            "the database has schema version {version}; this seatkeeper knows up to {CURRENT}: upgrade seatkeeper"
        )));
    }
    if version == CURRENT {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if version == 0 {
        let tables: i64 = tx.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        if tables > 0 {
            return Err(Error::Invalid(
                "the database file is not a seatkeeper database (no schema version)".into(),
            ));
        }
        tx.execute_batch(SCHEMA)?;
    } else {
        for step in STEPS.iter().skip((version - 1) as usize) {
            tx.execute_batch(step)?;
        }
        for step in SHARED.iter().filter(|s| s.version > version) {
            tx.execute_batch(step.sqlite)?;
        }
    }
    tx.pragma_update(None, "user_version", CURRENT)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables, columns and indexes of a database, comparable across creation paths.
    fn shape(c: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        let mut st = c.prepare("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").unwrap();
        let rows: Vec<(String, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (ty, name, table) in rows {
            out.push(format!("{ty} {name} on {table}"));
            if ty == "table" {
                let mut cols = c.prepare(&format!("PRAGMA table_info({name})")).unwrap();
                let names: Vec<String> = cols
                    .query_map([], |r| r.get::<_, String>(1))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let mut names = names;
                names.sort();
                out.push(format!("  columns {names:?}"));
            }
        }
        out
    }

    #[test]
    fn a_version_1_database_migrates_to_the_current_schema() {
        let v1 = SCHEMA_V1;
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(v1).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        migrate(&mut old).unwrap();
        let mut new = Connection::open_in_memory().unwrap();
        migrate(&mut new).unwrap();
        assert_eq!(shape(&old), shape(&new));
        let v: i64 = old
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", CURRENT + 1).unwrap();
        assert!(migrate(&mut c).is_err());
    }

    /// Version 1 as it shipped (schema.sql before v2).
    const SCHEMA_V1: &str = include_str!("migrations/sqlite/v1.sql");
}
