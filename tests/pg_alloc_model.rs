//! The model-based allocator test (`alloc_model.rs`) again, on PostgreSQL.

/// This binary runs the suites on PostgreSQL.
pub const ON_POSTGRES: bool = true;

#[path = "alloc_model.rs"]
mod suite;
