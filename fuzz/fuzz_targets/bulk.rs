//! Fuzzes Bulk request parsing: any JSON body either fails with a SCIM error or parses into
//! operations whose targets and `bulkId` references resolve (or fail) without panicking.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use seatkeeper::scim::bulk;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let Ok(request) = bulk::parse(&body) else { return };
    assert!(request.operations.len() <= bulk::MAX_OPERATIONS);
    let mut ids: HashMap<String, String> = HashMap::new();
    for (i, op) in request.operations.iter().enumerate() {
        assert!(["POST", "PUT", "PATCH", "DELETE"].contains(&op.method.as_str()));
        if let Ok(path) = bulk::resolve_path(&op.path, &ids) {
            let _ = bulk::target(&op.method, &path);
        }
        if let Some(d) = &op.data {
            let _ = bulk::resolve(d, &ids);
        }
        if let Some(b) = &op.bulk_id {
            ids.insert(b.clone(), format!("id-{i}"));
        }
    }
});
