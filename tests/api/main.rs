//! Integration tests over HTTP against the real daemon (one binary, many modules), on SQLite;
//! `tests/pg_api.rs` runs the same modules on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

/// Whether this binary runs the suites on PostgreSQL (see `support/postgres.rs`).
#[allow(dead_code)]
pub const ON_POSTGRES: bool = false;

pub mod admin;
pub mod alerts;
pub mod audit;
pub mod bulk;
#[path = "../support/cli.rs"]
pub mod cli_support;
pub mod console;
pub mod entra;
pub mod groups;
pub mod helpers;
pub mod holds;
pub mod hostile;
pub mod isolation;
pub mod limits;
pub mod matrix;
pub mod offboarding;
pub mod okta;
pub mod openapi;
pub mod others;
pub mod paths;
pub mod planning;
pub mod pools;
#[path = "../support/postgres.rs"]
pub mod postgres_support;
pub mod product;
pub mod provider_health;
#[path = "../support/python.rs"]
pub mod python;
#[path = "../support/receiver.rs"]
pub mod receiver;
pub mod reconciler;
pub mod retention;
pub mod seats;
pub mod security;
pub mod shadow;
pub mod tls;
pub mod users;
pub mod webhooks;
