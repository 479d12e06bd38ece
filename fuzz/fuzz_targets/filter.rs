//! Fuzzes the SCIM filter parser: any input either fails with a SCIM error or parses to a filter
//! whose printed form parses back to the same filter; evaluating it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seatkeeper::scim::eval::{matches, Scope};
use seatkeeper::scim::filter::{Filter, PatchPath};
use seatkeeper::scim::schema::ResourceKind;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = PatchPath::parse(text);
    let Ok(filter) = Filter::parse(text) else { return };
    let printed = filter.to_string();
    // Printing normalizes (numbers, spacing, parentheses) and may outgrow the input length limit.
    if printed.len() <= seatkeeper::scim::filter::MAX_FILTER_LEN {
        let again = Filter::parse(&printed).expect("a printed filter parses");
        assert_eq!(again, filter, "{text:?} printed as {printed:?}");
    }
    let user = serde_json::json!({
        "id": "1", "userName": "bjensen", "active": true, "title": "x",
        "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
        "name": {"givenName": "Barbara"},
        "meta": {"created": "2024-01-01T00:00:00Z", "lastModified": "2024-01-02T00:00:00Z"}
    });
    let _ = matches(&filter, &user, Scope::Resource(ResourceKind::User));
    let _ = matches(&filter, &user, Scope::Resource(ResourceKind::Group));
});
