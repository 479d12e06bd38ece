//! Pure SCIM 2.0 protocol code (RFC 7643, RFC 7644): no I/O, no HTTP, no SQL.
//!
//! - [`path`]: attribute paths, schema URNs.
//! - [`filter`]: the filter grammar → [`filter::Filter`] AST, and PATCH paths.
//! - [`eval`]: evaluating a filter against a JSON resource.
//! - [`schema`]: the served schemas as static tables.
//! - [`resource`]: normalizing client input into documents and rendering them back.
//! - [`patch`]: PATCH operations → a changed document plus member changes.
//! - [`projection`]: `attributes` / `excludedAttributes`.
//! - [`bulk`]: Bulk requests parsed and checked, operation targets, `bulkId` references.
//! - [`search`]: list parameters of a query string or a SearchRequest.
//! - [`etag`]: resource versions as entity tags, `If-Match`/`If-None-Match`.
//! - [`error`]: the SCIM error type every layer's errors end up as.
//! - [`explain`]: what a failing request most likely means, for the admin who fixes the provider.

pub mod bulk;
pub mod error;
pub mod etag;
pub mod eval;
pub mod explain;
pub mod filter;
pub mod patch;
pub mod path;
pub mod projection;
pub mod resource;
pub mod schema;
pub mod search;

pub use error::{Error, ScimType};

/// Media type of SCIM messages.
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";
/// URN of the ListResponse message.
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
