//! The console in headless Chromium (`console.rs`) again, on a daemon whose database is in a
//! real PostgreSQL cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

/// This binary runs the suites on PostgreSQL.
pub const ON_POSTGRES: bool = true;

#[path = "console.rs"]
mod suite;
