//! The notification emails to a real SMTP server (`mail.rs`) again, from a daemon on
//! PostgreSQL.

/// This binary runs the suites on PostgreSQL.
pub const ON_POSTGRES: bool = true;

#[path = "mail.rs"]
mod suite;
