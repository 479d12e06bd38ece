//! The public SCIM conformance checkers (`conformance.rs`) again, against a daemon on
//! PostgreSQL.

/// This binary runs the suites on PostgreSQL.
pub const ON_POSTGRES: bool = true;

#[path = "conformance.rs"]
mod suite;
