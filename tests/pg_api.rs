//! The HTTP suites of `tests/api/` again, on PostgreSQL: every test's daemon on a database of
//! its own in a real cluster this binary starts (`support/postgres.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

/// This binary runs the suites on PostgreSQL.
pub const ON_POSTGRES: bool = true;

#[path = "api/main.rs"]
mod suites;
pub use suites::{helpers, receiver, users};
