//! Reading request bodies: a size limit enforced while reading (413, never buffering more), then
//! JSON parsing with serde_json's nesting limit (a bad body is 400 `invalidSyntax`); large bodies
//! are parsed off the HTTP worker, at a low priority (`crate::background`).

use actix_web::web;
use futures_util::StreamExt;
use serde_json::Value;

use crate::scim;

/// Reads the whole body, failing with 413 past `limit` bytes.
pub async fn read(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, scim::Error> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            scim::Error::invalid_syntax(format!("cannot read the request body: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(scim::Error::new(
                413,
                None,
                format!("the request body is larger than {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads and parses a JSON body.
pub async fn json(payload: web::Payload, limit: usize) -> Result<Value, scim::Error> {
    let bytes = read(payload, limit).await?;
    if bytes.is_empty() {
        return Err(scim::Error::invalid_syntax(
            "the request body is empty; a JSON object is expected",
        ));
    }
    let large = bytes.len() > PARSE_OFF_WORKER;
    let parse = move || {
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            scim::Error::invalid_syntax(format!("the request body is not valid JSON: {e}"))
        })?;
        // A NUL can only come escaped (`\u0000`): look for one only then.
        if bytes.windows(6).any(|w| w == b"\\u0000") && holds_nul(&v) {
            return Err(scim::Error::invalid_value(
                "text cannot contain a NUL character (\\u0000)",
            ));
        }
        Ok(v)
    };
    if !large {
        return parse();
    }
    // A large body (a group of thousands, a Bulk request) is parsed on a low-priority thread
    // (`background::cpu`): an HTTP worker serves many connections and must not stop for it,
    // and other tenants' small requests come first.
    crate::background::cpu()
        .run(parse)
        .await
        .map_err(|e| scim::Error::new(500, None, format!("parsing failed: {e}")))?
}

/// Whether a string (or a member name) anywhere in `v` holds a NUL character. It is valid JSON,
/// but no identity attribute holds one and PostgreSQL cannot store it: it is refused on every
/// engine, before anything is stored.
fn holds_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(holds_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Bodies larger than this are parsed off the HTTP worker.
const PARSE_OFF_WORKER: usize = 256 * 1024;
