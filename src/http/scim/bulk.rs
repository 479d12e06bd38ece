//! `POST /scim/v2/Bulk` (RFC 7644 §3.7): many operations in one request, `bulkId` references
//! between them (also forward references: an operation waits until what it names exists),
//! `failOnErrors`, and the limits advertised in ServiceProviderConfig. Each operation is its own
//! transaction, as the RFC allows; the answer lists each one's status. Parsing, targets and
//! references are protocol code (`scim::bulk`); this handler runs the operations in passes.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web;
use serde_json::{json, Value};

use super::{respond, On, Reply, ScimError};
use crate::http::state::AppState;
use crate::scim::resource::normalize;
use crate::scim::schema::ResourceKind;
use crate::scim::{patch, Error};
use crate::store::TenantKey;

use crate::scim::bulk::{self as protocol, BulkOp, BULK_RESPONSE};

/// Runs one operation: (status, created id, location, version).
async fn execute(
    state: &AppState,
    tenant: TenantKey,
    base: &str,
    op: &BulkOp,
    path: &str,
    data: Option<Value>,
) -> Result<(u16, Option<String>, Option<String>, Option<String>), Error> {
    let (kind, id) = protocol::target(&op.method, path)?;
    let data = || {
        data.clone()
            .ok_or_else(|| Error::invalid_syntax(format!("{} {path} needs \"data\"", op.method)))
    };
    let store = &state.store;
    let location = |id: &str| format!("{base}/{}/{id}", kind.endpoint());
    let done = |status: u16, id: String, etag: String| {
        Ok((status, Some(id.clone()), Some(location(&id)), Some(etag)))
    };
    let version = op.version.clone();
    let map = |e: crate::store::Error| ScimError::from(e).0;
    match (kind, op.method.as_str(), id) {
        (ResourceKind::User, "POST", None) => {
            let (doc, _) = normalize(kind, &data()?)?;
            let u = store.create_user(tenant, doc).await.map_err(map)?;
            done(201, u.id, u.meta.etag())
        }
        (ResourceKind::Group, "POST", None) => {
            let (doc, members) = normalize(kind, &data()?)?;
            let g = store
                .create_group(tenant, doc, members)
                .await
                .map_err(map)?;
            done(201, g.id, g.meta.etag())
        }
        (ResourceKind::User, "PUT", Some(id)) => {
            let (doc, _) = normalize(kind, &data()?)?;
            let u = store
                .replace_user(tenant, id, doc, version)
                .await
                .map_err(map)?;
            done(200, u.id, u.meta.etag())
        }
        (ResourceKind::Group, "PUT", Some(id)) => {
            let (doc, members) = normalize(kind, &data()?)?;
            let g = store
                .replace_group(tenant, id, doc, members, version)
                .await
                .map_err(map)?;
            done(200, g.id, g.meta.etag())
        }
        (ResourceKind::User, "PATCH", Some(id)) => {
            let u = store
                .patch_user(tenant, id, patch::parse(data()?)?, version)
                .await
                .map_err(map)?;
            done(200, u.id, u.meta.etag())
        }
        (ResourceKind::Group, "PATCH", Some(id)) => {
            let g = store
                .patch_group(tenant, id, patch::parse(data()?)?, version)
                .await
                .map_err(map)?;
            done(200, g.id, g.meta.etag())
        }
        (ResourceKind::User, "DELETE", Some(id)) => {
            store
                .delete_user(tenant, id.clone(), version)
                .await
                .map_err(map)?;
            Ok((204, None, Some(location(&id)), None))
        }
        (ResourceKind::Group, "DELETE", Some(id)) => {
            store
                .delete_group(tenant, id.clone(), version)
                .await
                .map_err(map)?;
            Ok((204, None, Some(location(&id)), None))
        }
        _ => Err(Error::invalid_path(format!(
            "{} is not allowed on {path:?}",
            op.method
        ))),
    }
}

pub async fn bulk(on: On, payload: web::Payload) -> Reply {
    let request = protocol::parse(&on.body(payload).await?)?;
    let (ops, fail_on_errors) = (request.operations, request.fail_on_errors);
    let base = on.base();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut errors = 0u64;
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    'passes: while !pending.is_empty() {
        let mut waiting = Vec::new();
        let mut progressed = false;
        for &i in &pending {
            let op = &ops[i];
            let resolved = protocol::resolve_path(&op.path, &ids).and_then(|p| {
                Ok((
                    p,
                    op.data
                        .as_ref()
                        .map(|d| protocol::resolve(d, &ids))
                        .transpose()?,
                ))
            });
            let (path, data) = match resolved {
                Ok(r) => r,
                Err(_) => {
                    waiting.push(i);
                    continue;
                }
            };
            progressed = true;
            let mut entry = json!({"method": op.method});
            if let Some(b) = &op.bulk_id {
                entry["bulkId"] = json!(b);
            }
            match execute(&on.state, on.key(), &base, op, &path, data).await {
                Ok((status, id, location, version)) => {
                    if let (Some(b), Some(id)) = (&op.bulk_id, id) {
                        ids.insert(b.clone(), id);
                    }
                    entry["status"] = json!(status.to_string());
                    if let Some(l) = location {
                        entry["location"] = json!(l);
                    }
                    if let Some(v) = version {
                        entry["version"] = json!(v);
                    }
                }
                Err(e) => {
                    errors += 1;
                    entry["status"] = json!(e.status.to_string());
                    entry["response"] = e.to_body();
                }
            }
            results[i] = Some(entry);
            if fail_on_errors.is_some_and(|n| errors >= n) {
                break 'passes;
            }
        }
        if !progressed {
            // What is left names bulkIds that no operation produced (or a cycle).
            for &i in &waiting {
                let e = Error::new(
                    409,
                    Some(crate::scim::ScimType::InvalidValue),
                    "unresolved bulkId reference",
                );
                let mut entry =
                    json!({"method": ops[i].method, "status": "409", "response": e.to_body()});
                if let Some(b) = &ops[i].bulk_id {
                    entry["bulkId"] = json!(b);
                }
                results[i] = Some(entry);
            }
            break;
        }
        pending = waiting;
    }
    let operations: Vec<Value> = results.into_iter().flatten().collect();
    Ok(respond(
        StatusCode::OK,
        &json!({"schemas": [BULK_RESPONSE], "Operations": operations}),
    ))
}
