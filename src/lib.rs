//! seatkeeper: seat-license allocation with SCIM 2.0 directory sync. See ARCHITECTURE.md.

pub mod alloc;
pub mod app;
pub mod background;
pub mod capacity;
pub mod cli;
pub mod config;
pub mod console;
pub mod csv;
pub mod http;
pub mod notify;
pub mod scim;
pub mod store;
pub mod webhook;
pub mod workers;
