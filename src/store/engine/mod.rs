//! The engine: everything that knows which database runs underneath. One SQL interface over
//! both engines (`sql`), how a write job runs (SQLite's writer thread with group commit,
//! `sqlite_writer`; PostgreSQL's pooled connections, tenant locks and batches, `postgres`,
//! `postgres_batch`, `postgres_client`, `postgres_point`), schema creation and migrations
//! (`migrate`, `migrations/`), copying a SQLite database into PostgreSQL (`transfer`),
//! and how times are stored (`time`). Nothing here imports a business
//! folder of the store.

pub mod address;
pub(crate) mod claim;
pub(crate) mod dialect;
pub(crate) mod jobs;
pub(crate) mod migrate;
pub(crate) mod pg_dump;
pub mod postgres;
pub(crate) mod postgres_batch;
pub(crate) mod postgres_client;
pub(crate) mod postgres_point;
pub mod sql;
pub(crate) mod sqlite_writer;
pub mod time;
pub mod transfer;
