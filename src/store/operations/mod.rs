//! The operator's tools: backup and restore of either engine (`backups`), the SQLite
//! online backup, restore and `check` (`maintenance`), offboarding a tenant
//! (`offboarding`), retention of history tables (`retention`).

pub mod backups;
pub mod maintenance;
pub mod offboarding;
pub mod retention;
