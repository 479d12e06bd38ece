//! Request shapes Okta's SCIM 2.0 provisioning sends (its "SCIM 2.0 protocol reference").

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;
use crate::users::urlencode;

const OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[tokio::test]
async fn okta_user_lifecycle() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("okta").await;
    // Existence check with Okta's pagination parameters.
    let q = format!(
        "/Users?filter={}&startIndex=1&count=100",
        urlencode(r#"userName eq "isaac.brock@example.com""#)
    );
    let (s, r) = app.scim(&tok, Method::GET, &q, None).await;
    assert_eq!((s, r["totalResults"].as_i64()), (StatusCode::OK, Some(0)));
    // Create, with the password and empty groups Okta sends.
    let (s, u) = app
        .scim(&tok, Method::POST, "/Users", Some(json!({
            "schemas": [USER_SCHEMA], "userName": "isaac.brock@example.com",
            "name": {"givenName": "Isaac", "familyName": "Brock"},
            "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
            "displayName": "Isaac Brock", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [], "password": "1mz050nq", "active": true
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    assert!(
        u.get("password").is_none(),
        "passwords are neither stored nor returned"
    );
    let uid = id(&u);
    let (_, r) = app.scim(&tok, Method::GET, &q, None).await;
    assert_eq!(
        (
            r["totalResults"].as_i64(),
            r["startIndex"].as_i64(),
            r["itemsPerPage"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );

    // Update by PUT with the whole user.
    let mut full = u.clone();
    full["name"]["familyName"] = json!("Brock-Smith");
    full["title"] = json!("Engineer");
    let (s, p) = app
        .scim(&tok, Method::PUT, &format!("/Users/{uid}"), Some(full))
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        (p["name"]["familyName"].as_str(), p["title"].as_str()),
        (Some("Brock-Smith"), Some("Engineer"))
    );

    // Deactivate and reactivate by path-less PATCH replace.
    for active in [false, true] {
        let (s, p) = app
            .scim(&tok, Method::PATCH, &format!("/Users/{uid}"), Some(json!({"schemas": [OP], "Operations": [{"op": "replace", "value": {"active": active}}]})))
            .await;
        assert_eq!((s, p["active"].as_bool()), (StatusCode::OK, Some(active)));
    }
    // Paging through users the way Okta imports them.
    for i in 0..3 {
        app.create_user(&tok, &format!("import{i}@example.com"))
            .await;
    }
    let (_, p1) = app
        .scim(&tok, Method::GET, "/Users?startIndex=1&count=2", None)
        .await;
    let (_, p2) = app
        .scim(&tok, Method::GET, "/Users?startIndex=3&count=2", None)
        .await;
    assert_eq!(p1["totalResults"], 4);
    let mut seen: Vec<String> = p1["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["Resources"].as_array().unwrap())
        .map(id)
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "pages neither skip nor repeat");
}

#[tokio::test]
async fn okta_group_push() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("okta-groups").await;
    let a = id(&app.create_user(&tok, "a@example.com").await);
    let b = id(&app.create_user(&tok, "b@example.com").await);
    let (s, g) = app
        .scim(
            &tok,
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Test SCIMv2", "members": []})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let gid = id(&g);
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &format!(
                "/Groups?filter={}&startIndex=1&count=100",
                urlencode(r#"displayName eq "Test SCIMv2""#)
            ),
            None,
        )
        .await;
    assert_eq!(r["totalResults"], 1);
    // Rename: path-less replace carrying the id.
    let (s, p) = app
        .scim(&tok, Method::PATCH, &format!("/Groups/{gid}"), Some(json!({"schemas": [OP], "Operations": [{"op": "replace", "value": {"id": gid, "displayName": "Renamed"}}]})))
        .await;
    assert_eq!(
        (s, p["displayName"].as_str()),
        (StatusCode::OK, Some("Renamed"))
    );
    // Members added with display, then one removed by filter.
    let (s, _) = app
        .scim(&tok, Method::PATCH, &format!("/Groups/{gid}"), Some(json!({"schemas": [OP], "Operations": [{"op": "add", "path": "members",
              "value": [{"value": a, "display": "a@example.com"}, {"value": b, "display": "b@example.com"}]}]})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, p) = app
        .scim(&tok, Method::PATCH, &format!("/Groups/{gid}"), Some(json!({"schemas": [OP], "Operations": [{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]})))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p["members"].as_array().unwrap().len(), 1);
    assert_eq!(p["members"][0]["display"], "b@example.com");
    // Full replacement by PUT, then delete.
    let (s, p) = app
        .scim(&tok, Method::PUT, &format!("/Groups/{gid}"), Some(json!({"schemas": [GROUP_SCHEMA], "id": gid, "displayName": "Renamed", "members": [{"value": a}]})))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p["members"][0]["value"], a.as_str());
    let (s, _) = app
        .scim(&tok, Method::DELETE, &format!("/Groups/{gid}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}
