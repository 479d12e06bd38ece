//! The public SCIM conformance checkers (`conformance.rs`) again, against a daemon on
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

/// This binary runs the suites on PostgreSQL.
pub const ON_POSTGRES: bool = true;

#[path = "conformance.rs"]
mod suite;
