//! The operator's tools: backup, restore and `check` (`maintenance`), copying SQLite into
//! PostgreSQL (`transfer`), offboarding a tenant (`offboarding`), retention of history tables
//! (`retention`).

pub mod maintenance;
pub mod offboarding;
pub mod retention;
pub mod transfer;
