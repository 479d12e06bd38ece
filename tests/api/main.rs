//! Integration tests over HTTP against the real daemon (one binary, many modules).

mod admin;
mod bulk;
mod console;
mod entra;
mod groups;
mod helpers;
mod hostile;
mod isolation;
mod limits;
mod okta;
mod others;
mod paths;
mod seats;
mod tls;
mod users;
