//! The query string, read once the same way for every surface: its `name=value` pairs decoded,
//! and the admin API's parameters found by name. Each edge words the refusal in its own error
//! type.

use actix_web::{web, HttpRequest};

/// The decoded `name=value` pairs of the request's query string, or why it does not parse.
pub fn pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, String> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| format!("bad query string: {e}"))
}

/// The first value of parameter `name` (`ignore_case`: as SCIM names its parameters).
pub fn value(pairs: &[(String, String)], name: &str, ignore_case: bool) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| {
            if ignore_case {
                k.eq_ignore_ascii_case(name)
            } else {
                k == name
            }
        })
        .map(|(_, v)| v.clone())
}
