//! SCIM Bulk (RFC 7644 §3.7) over HTTP: `bulkId` references forward and back across
//! operations, `failOnErrors`, unresolved references and the request limits.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

fn statuses(r: &Value) -> Vec<(String, String)> {
    r["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["bulkId"].as_str().unwrap_or("").to_owned(),
                o["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn bulk_with_references_forward_and_back() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("bulk").await;
    let (s, r) = app
        .scim(&tok, Method::POST, "/Bulk", Some(json!({"schemas": [BULK], "Operations": [
            // The group names a user created later in the same request.
            {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides",
                "members": [{"type": "User", "value": "bulkId:u1"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"schemas": [USER_SCHEMA], "userName": "Alice"}},
            {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {"Operations": [{"op": "replace", "path": "title", "value": "Guide"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"schemas": [USER_SCHEMA], "userName": "alice"}}
        ]})))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        r["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
    );
    let st = statuses(&r);
    assert!(
        st.contains(&("u1".into(), "201".into())) && st.contains(&("g1".into(), "201".into())),
        "{r}"
    );
    assert!(st.contains(&("".into(), "200".into())), "{r}");
    assert!(st.contains(&("dup".into(), "409".into())), "{r}");
    let g = r["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["bulkId"] == "g1")
        .unwrap();
    let (_, group) = app
        .request(
            Method::GET,
            &g["location"].as_str().unwrap().replace(&app.address, ""),
            Some(&tok),
            None,
        )
        .await;
    let u = r["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["bulkId"] == "u1")
        .unwrap();
    let uid = u["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        group["members"][0]["value"],
        uid.as_str(),
        "the reference resolved to the new user's id"
    );
    let (_, user) = app
        .scim(&tok, Method::GET, &format!("/Users/{uid}"), None)
        .await;
    assert_eq!(user["title"], "Guide");
}

#[tokio::test]
async fn bulk_fail_on_errors_unresolved_references_and_limits() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("bulk-errors").await;
    let (_, r) = app
        .scim(&tok, Method::POST, "/Bulk", Some(json!({"schemas": [BULK], "failOnErrors": 1, "Operations": [
            {"method": "DELETE", "path": "/Users/missing"},
            {"method": "POST", "path": "/Users", "bulkId": "never", "data": {"userName": "never"}}
        ]})))
        .await;
    assert_eq!(
        statuses(&r),
        [("".into(), "404".into())],
        "processing stops at the first error"
    );
    let (_, list) = app.scim(&tok, Method::GET, "/Users", None).await;
    assert_eq!(list["totalResults"], 0);
    let (_, r) = app
        .scim(&tok, Method::POST, "/Bulk", Some(json!({"schemas": [BULK], "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "x", "members": [{"value": "bulkId:nobody"}]}}
        ]})))
        .await;
    assert_eq!(statuses(&r), [("g".into(), "409".into())]);
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
        .collect();
    let (s, b) = app
        .scim(
            &tok,
            Method::POST,
            "/Bulk",
            Some(json!({"schemas": [BULK], "Operations": too_many})),
        )
        .await;
    assert_scim_error(s, &b, 413, None);
    let (s, b) = app
        .scim(
            &tok,
            Method::POST,
            "/Bulk",
            Some(json!({"schemas": [BULK], "Operations": [{"method": "GET", "path": "/Users"}]})),
        )
        .await;
    assert_scim_error(s, &b, 400, Some("invalidSyntax"));
    let (s, b) = app.scim(&tok, Method::POST, "/Bulk", Some(json!({"schemas": [BULK], "Operations": [{"method": "POST", "path": "/Users", "data": {}}]}))).await;
    assert_scim_error(s, &b, 400, Some("invalidSyntax"));
}
