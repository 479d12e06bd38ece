//! The command line (`cli.rs`) again, on a database of its own in a real PostgreSQL cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

/// This binary runs the suites on PostgreSQL.
pub const ON_POSTGRES: bool = true;

#[path = "cli.rs"]
mod suite;
