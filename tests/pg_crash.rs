//! The crash test (`crash.rs`) again, the daemon on a database in a real PostgreSQL cluster:
//! killed with SIGKILL under concurrent writes, every acknowledged write survives and `check`
//! stays clean.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

/// This binary runs the suites on PostgreSQL.
pub const ON_POSTGRES: bool = true;

#[path = "crash.rs"]
mod suite;
