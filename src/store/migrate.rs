//! Schema creation and in-place upgrades, keyed on `PRAGMA user_version`.
//!
//! A new database gets `schema.sql` (the current schema) and [`CURRENT`]. An older one runs each
//! step in [`STEPS`] from its version up, in one transaction. A newer one is refused: an old
//! binary must not write a schema it does not know.

use rusqlite::Connection;

use super::{Error, Result};

/// The schema as it is now.
pub const SCHEMA: &str = include_str!("../../schema.sql");
/// The version `SCHEMA` is.
pub const CURRENT: i64 = 1;
/// `STEPS[i]` upgrades version `i + 1` to `i + 2`.
const STEPS: &[&str] = &[];

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
        for step in &STEPS[(version - 1) as usize..] {
            tx.execute_batch(step)?;
        }
    }
    tx.pragma_update(None, "user_version", CURRENT)?;
    tx.commit()?;
    Ok(())
}
