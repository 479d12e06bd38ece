//! Bulk requests (RFC 7644 §3.7), the protocol part: the request parsed and checked (its
//! `schemas`, `Operations` and their limit, `failOnErrors`), each operation's method, path,
//! `bulkId`, `version` and `data`, the target an operation's path names, and `bulkId:`
//! references replaced by the ids earlier operations created. Pure; `http::scim::bulk` runs
//! the operations against the store.

use std::collections::HashMap;

use serde_json::Value;

use super::eval::get_ci;
use super::schema::ResourceKind;
use super::Error;

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// Most operations in one bulk request (advertised in ServiceProviderConfig).
pub const MAX_OPERATIONS: usize = 1000;

/// One operation of a bulk request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOp {
    /// `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    pub bulk_id: Option<String>,
    pub path: String,
    pub data: Option<Value>,
    pub version: Option<String>,
}

/// A bulk request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    pub operations: Vec<BulkOp>,
    /// Stop after this many errors (`None`: run them all).
    pub fail_on_errors: Option<u64>,
}

/// Parses a bulk request body: `schemas` (when given) names the BulkRequest message,
/// `Operations` is a list of at most [`MAX_OPERATIONS`] (413 past it), `failOnErrors` a positive
/// integer, each operation well formed.
pub fn parse(input: &Value) -> Result<BulkRequest, Error> {
    if let Some(schemas) = input.get("schemas") {
        let ok = schemas.as_array().is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST))
            })
        });
        if !ok {
            return Err(Error::invalid_syntax(format!(
                "\"schemas\" must be [\"{BULK_REQUEST}\"]"
            )));
        }
    }
    let list = get_ci(input, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid_syntax("\"Operations\" must be a list"))?;
    if list.len() > MAX_OPERATIONS {
        return Err(Error::new(
            413,
            None,
            format!("at most {MAX_OPERATIONS} operations per bulk request"),
        ));
    }
    let fail_on_errors = match get_ci(input, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::invalid_value("failOnErrors must be a positive integer"))?,
        ),
    };
    let operations = list
        .iter()
        .enumerate()
        .map(|(i, v)| parse_op(i, v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BulkRequest {
        operations,
        fail_on_errors,
    })
}

fn parse_op(i: usize, v: &Value) -> Result<BulkOp, Error> {
    let text = |k: &str| get_ci(v, k).and_then(Value::as_str).map(str::to_owned);
    let method = text("method")
        .ok_or_else(|| Error::invalid_syntax(format!("Operations[{i}]: \"method\" is required")))?;
    let path = text("path")
        .ok_or_else(|| Error::invalid_syntax(format!("Operations[{i}]: \"path\" is required")))?;
    let method = method.to_ascii_uppercase();
    if !["POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
        return Err(Error::invalid_syntax(format!(
            "Operations[{i}]: method {method:?} is not POST, PUT, PATCH or DELETE"
        )));
    }
    let bulk_id = text("bulkId");
    if method == "POST" && bulk_id.is_none() {
        return Err(Error::invalid_syntax(format!(
            "Operations[{i}]: POST needs a \"bulkId\""
        )));
    }
    Ok(BulkOp {
        method,
        bulk_id,
        path,
        data: get_ci(v, "data").cloned(),
        version: text("version"),
    })
}

/// What an operation's (resolved) path names: the resource type, and the id (`None` for a
/// POST to the collection). Errors name what is not allowed.
pub fn target(method: &str, path: &str) -> Result<(ResourceKind, Option<String>), Error> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let kind = match segments.first().copied() {
        Some("Users") => ResourceKind::User,
        Some("Groups") => ResourceKind::Group,
        _ => {
            return Err(Error::invalid_path(format!(
                "bulk path {path:?} is not /Users or /Groups"
            )))
        }
    };
    match (segments.len(), method) {
        (1, "POST") => Ok((kind, None)),
        (2, m) if m != "POST" && !segments[1].is_empty() => {
            Ok((kind, Some(segments[1].to_owned())))
        }
        _ => Err(Error::invalid_path(format!(
            "{method} is not allowed on {path:?}"
        ))),
    }
}

/// Replaces `bulkId:X` references in `v`; `Err(X)` names the first one not created yet.
pub fn resolve(v: &Value, ids: &HashMap<String, String>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => match s.strip_prefix("bulkId:") {
            Some(b) => Value::String(ids.get(b).cloned().ok_or_else(|| b.to_owned())?),
            None => v.clone(),
        },
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| resolve(x, ids))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), resolve(x, ids)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Replaces `bulkId:X` segments of a path (`/Users/bulkId:qwerty`).
pub fn resolve_path(path: &str, ids: &HashMap<String, String>) -> Result<String, String> {
    path.split('/')
        .map(|seg| match seg.strip_prefix("bulkId:") {
            Some(b) => ids.get(b).cloned().ok_or_else(|| b.to_owned()),
            None => Ok(seg.to_owned()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_parses_with_its_operations_and_limits() {
        let r = parse(&json!({
            "schemas": [BULK_REQUEST], "failOnErrors": 2,
            "Operations": [
                {"method": "post", "path": "/Users", "bulkId": "q", "data": {"userName": "a"}},
                {"method": "PATCH", "path": "/Groups/bulkId:g", "version": "W/\"3\"", "data": {}}
            ]
        }))
        .unwrap();
        assert_eq!(r.fail_on_errors, Some(2));
        assert_eq!(r.operations[0].method, "POST");
        assert_eq!(r.operations[1].version.as_deref(), Some("W/\"3\""));
        let status = |v: Value| parse(&v).unwrap_err().status;
        assert_eq!(status(json!({"Operations": {}})), 400);
        assert_eq!(status(json!({"schemas": ["x"], "Operations": []})), 400);
        assert_eq!(status(json!({"Operations": [], "failOnErrors": 0})), 400);
        assert_eq!(
            status(json!({"Operations": [{"method": "GET", "path": "/Users"}]})),
            400
        );
        assert_eq!(
            status(json!({"Operations": [{"method": "POST", "path": "/Users"}]})),
            400
        );
        let many: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({"method": "DELETE", "path": "/Users/x"}))
            .collect();
        assert_eq!(status(json!({"Operations": many})), 413);
    }

    #[test]
    fn targets_and_references_resolve() {
        assert_eq!(
            target("POST", "/Users").unwrap(),
            (ResourceKind::User, None)
        );
        assert_eq!(
            target("DELETE", "/Groups/7").unwrap(),
            (ResourceKind::Group, Some("7".into()))
        );
        assert!(target("POST", "/Users/7").is_err());
        assert!(target("PUT", "/Users").is_err());
        assert!(target("PUT", "/Things/7").is_err());
        let ids = HashMap::from([("u".to_owned(), "id-1".to_owned())]);
        assert_eq!(
            resolve_path("/Users/bulkId:u", &ids).unwrap(),
            "/Users/id-1"
        );
        assert_eq!(resolve_path("/Users/bulkId:v", &ids).unwrap_err(), "v");
        assert_eq!(
            resolve(
                &json!({"members": [{"value": "bulkId:u"}, {"value": "x"}]}),
                &ids
            )
            .unwrap(),
            json!({"members": [{"value": "id-1"}, {"value": "x"}]})
        );
        assert_eq!(resolve(&json!(["bulkId:nope"]), &ids).unwrap_err(), "nope");
    }
}
