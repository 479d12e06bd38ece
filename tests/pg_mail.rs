//! The notification emails to a real SMTP server (`mail.rs`) again, from a daemon on
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

/// This binary runs the suites on PostgreSQL.
pub const ON_POSTGRES: bool = true;

#[path = "mail.rs"]
mod suite;
