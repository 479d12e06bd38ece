//! `seatkeeper backup` and `restore` of whichever database is configured: a SQLite file by
//! SQLite's online backup (and a checked copy back), PostgreSQL by its own `pg_dump` (custom
//! format) and `pg_restore`; and the serving mark a daemon holds on a SQLite file, so that
//! `restore` and `transfer` refuse a file a daemon still writes. The caller never asks which
//! engine it is.

use std::path::Path;

use crate::store::engine::{address, pg_dump};
use crate::store::operations::maintenance::{self, Serving};
use crate::store::{Error, Result, Store};

/// A consistent copy of `database` (as opened: a file, or a URL with its password) in `file`,
/// made while nodes keep serving. Answers how it was made.
pub async fn backup(database: &Path, file: &Path) -> Result<&'static str> {
    if address::file(database).is_none() {
        let (url, target) = (database.to_string_lossy().into_owned(), file.to_owned());
        tokio::task::spawn_blocking(move || pg_dump::backup(&url, &target))
            .await
            .map_err(|e| Error::Internal(format!("backup task failed: {e}")))??;
        return Ok("pg_dump, custom format");
    }
    let store = Store::open(database)?;
    let r = store.backup(file.to_owned()).await;
    store.close();
    r.map(|()| "SQLite online backup")
}

/// Loads the backup `file` into `database`: on PostgreSQL into an empty database, in one
/// transaction; a SQLite file is replaced by the checked backup, only while no daemon serves it.
pub async fn restore(database: &Path, file: &Path) -> Result<&'static str> {
    if address::file(database).is_none() {
        let (url, source) = (database.to_string_lossy().into_owned(), file.to_owned());
        tokio::task::spawn_blocking(move || pg_dump::restore(&url, &source))
            .await
            .map_err(|e| Error::Internal(format!("restore task failed: {e}")))??;
        return Ok("pg_restore; run seatkeeper check");
    }
    let _quiet = maintenance::not_served(database)?;
    maintenance::restore(file, database)?;
    Ok("checked SQLite copy")
}

/// Marks `database` as served by this process while the answer lives (a SQLite file; a
/// PostgreSQL database is served by many nodes at once and needs no mark).
pub fn serving(database: &Path) -> Result<Option<Serving>> {
    match address::file(database) {
        Some(f) => maintenance::serving(f).map(Some),
        None => Ok(None),
    }
}
