//! Fuzzes the PATCH engine: any JSON body either fails with a SCIM error or applies to a User and
//! a Group without panicking, leaving documents that still normalize.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seatkeeper::scim::patch;
use seatkeeper::scim::resource::normalize;
use seatkeeper::scim::schema::ResourceKind;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let Ok(ops) = patch::parse(body) else { return };
    let (mut user, _) = normalize(
        ResourceKind::User,
        &json!({"userName": "fuzz", "emails": [{"value": "a@b.c", "type": "work"}], "name": {"givenName": "F"},
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}}),
    )
    .expect("the seed user is valid");
    if patch::apply(ResourceKind::User, &mut user, &ops).is_ok() {
        normalize(ResourceKind::User, &Value::Object(user)).expect("a patched user is still a valid user");
    }
    let (mut group, _) = normalize(ResourceKind::Group, &json!({"displayName": "g"})).expect("the seed group is valid");
    if patch::apply(ResourceKind::Group, &mut group, &ops).is_ok() {
        normalize(ResourceKind::Group, &Value::Object(group)).expect("a patched group is still a valid group");
    }
});
