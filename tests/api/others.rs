//! Request sequences of the other identity providers, as their public documentation describes
//! them: OneLogin ("Implement RESTful SCIM APIs for your app": its example API flow), JumpCloud
//! (the custom SCIM connector: test connection with a test user and group, group push with
//! Entra-style member values, deactivation) and Google Workspace (automated user provisioning:
//! the `count=1` probe, users only, suspend or delete on deprovisioning). Each flow ends with the
//! seat a license gives, so the sequence is proven to drive allocation, not just storage.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::users::urlencode;

/// A tenant with a one-seat license (an hour of release grace) selecting the group `name`.
async fn licensed(app: &TestApp, tenant: &str, group: &str) -> (String, String) {
    let (tid, tok) = app.tenant(tenant).await;
    let (s, l) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tid}/licenses"),
            Some(json!({"name": "pro", "seats": 1, "grace_seconds": 3600, "groups": [{"displayName": group}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    (tid, tok)
}

async fn seat(app: &TestApp, tid: &str, user_name: &str) -> String {
    let (s, v) = app
        .admin(
            Method::GET,
            &format!("/tenants/{tid}/licenses/pro/seats/{user_name}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["state"].as_str().unwrap().to_owned()
}

fn by_user_name(name: &str) -> String {
    format!(
        "/Users?filter={}",
        urlencode(&format!(r#"userName eq "{name}""#))
    )
}

#[tokio::test]
async fn onelogin_example_flow() {
    let app = TestApp::spawn().await;
    let (tid, tok) = licensed(&app, "onelogin", "Engineering").await;

    // 1. Initial connection: a userName filter for a user that cannot exist, answered with an
    //    empty list; OneLogin asks for (and must get) `application/json`.
    let resp = app
        .client
        .get(format!(
            "{}/scim/v2{}",
            app.address,
            by_user_name("onelogin-connection-test-7f3a")
        ))
        .bearer_auth(&tok)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["totalResults"], 0);
    assert_eq!(body["Resources"], json!([]));

    // 2. Provisioning: look the user up by userName, then create with the SCIM v2 core template.
    let (_, r) = app
        .scim(&tok, Method::GET, &by_user_name("kim@example.com"), None)
        .await;
    assert_eq!(r["totalResults"], 0);
    let (s, u) = app
        .scim(&tok, Method::POST, "/Users", Some(json!({
            "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": "kim@example.com",
            "name": {"givenName": "Kim", "familyName": "Lee", "formatted": "Kim Lee"},
            "emails": [{"value": "kim@example.com", "type": "work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    assert_ne!(
        u["active"], false,
        "a user without `active` is active (SPEC)"
    );
    let uid = id(&u);

    // 3. Get User by ID.
    let (s, g) = app
        .scim(&tok, Method::GET, &format!("/Users/{uid}"), None)
        .await;
    assert_eq!(
        (s, g["userName"].as_str()),
        (StatusCode::OK, Some("kim@example.com"))
    );

    // 4. Update User: the whole user by PUT.
    let (s, p) = app
        .scim(
            &tok,
            Method::PUT,
            &format!("/Users/{uid}"),
            Some(json!({
                "schemas": [USER_SCHEMA], "userName": "kim@example.com",
                "name": {"givenName": "Kim", "familyName": "Lee-Park", "formatted": "Kim Lee-Park"},
                "emails": [{"value": "kim@example.com", "type": "work", "primary": true}],
                "active": true
            })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["name"]["familyName"], "Lee-Park");

    // 5. Get Groups (to map roles to groups), Create Group, Patch Group (add, then remove by a
    //    value list, as OneLogin sends it).
    let (s, gl) = app.scim(&tok, Method::GET, "/Groups", None).await;
    assert_eq!((s, gl["totalResults"].as_i64()), (StatusCode::OK, Some(0)));
    let (s, grp) = app
        .scim(
            &tok,
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Engineering", "members": []})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{grp}");
    let gid = id(&grp);
    let add = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": uid, "display": "kim@example.com"}]}]});
    let (s, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(add.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(seat(&app, &tid, "kim@example.com").await, "granted");
    let (s, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "remove", "path": "members", "value": [{"value": uid}]}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert!(p["members"].as_array().is_none_or(|m| m.is_empty()), "{p}");
    // Back in, for the suspend and delete below.
    app.scim(&tok, Method::PATCH, &format!("/Groups/{gid}"), Some(add))
        .await;

    // 6. Suspend ("When users are deleted in OneLogin: Suspend"): PUT with active false.
    let (s, p) = app
        .scim(
            &tok,
            Method::PUT,
            &format!("/Users/{uid}"),
            Some(json!({
                "schemas": [USER_SCHEMA], "userName": "kim@example.com", "active": false
            })),
        )
        .await;
    assert_eq!((s, p["active"].as_bool()), (StatusCode::OK, Some(false)));
    assert_ne!(seat(&app, &tid, "kim@example.com").await, "granted");

    // 7. Delete User, then Get Users.
    let (s, _) = app
        .scim(&tok, Method::DELETE, &format!("/Users/{uid}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .scim(&tok, Method::GET, &format!("/Users/{uid}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, all) = app.scim(&tok, Method::GET, "/Users", None).await;
    assert_eq!(all["totalResults"], 0);
}

#[tokio::test]
async fn jumpcloud_custom_connector() {
    let app = TestApp::spawn().await;
    let (tid, tok) = licensed(&app, "jumpcloud", "Design").await;

    // Test Connection: a test user and a test group are created, then deleted.
    let (s, tu) = app
        .scim(&tok, Method::POST, "/Users", Some(json!({
            "schemas": [USER_SCHEMA], "userName": "jc-test@example.com", "externalId": "5f0c1b2a3d4e5f6a7b8c9d0e",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"value": "jc-test@example.com", "type": "work", "primary": true}],
            "active": true
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{tu}");
    let (s, tg) = app
        .scim(
            &tok,
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "JumpCloud Test Group"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{tg}");
    for path in [
        format!("/Users/{}", id(&tu)),
        format!("/Groups/{}", id(&tg)),
    ] {
        let (s, _) = app.scim(&tok, Method::DELETE, &path, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{path}");
    }

    // Provisioning: look up by userName, create, push the group, add members with the
    // Entra-style value list (no filter in the path).
    let mut ids = Vec::new();
    for name in ["ana@example.com", "ben@example.com"] {
        let (_, r) = app.scim(&tok, Method::GET, &by_user_name(name), None).await;
        assert_eq!(r["totalResults"], 0);
        ids.push(id(&app.create_user(&tok, name).await));
    }
    let (s, g) = app
        .scim(
            &tok,
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Design", "members": []})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let gid = id(&g);
    let (s, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": ids[0]}, {"value": ids[1]}]}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    // Both became entitled in one change: they tie, and the tie goes by user id (SPEC).
    let names = ["ana@example.com", "ben@example.com"];
    let (w, b) = if ids[0] < ids[1] { (0, 1) } else { (1, 0) };
    assert_eq!(seat(&app, &tid, names[w]).await, "granted");
    assert_eq!(seat(&app, &tid, names[b]).await, "blocked");

    // Deprovisioning sets active false: the seat is held through the license's grace period
    // (a late re-activation must not lose it), so the one waiting still waits.
    let (s, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{}", ids[w]),
            Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "active", "value": false}]})),
        )
        .await;
    assert_eq!((s, p["active"].as_bool()), (StatusCode::OK, Some(false)));
    assert_eq!(seat(&app, &tid, names[w]).await, "releasing");
    assert_eq!(seat(&app, &tid, names[b]).await, "blocked");

    // Member removal with the same value-list form.
    let (s, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "remove", "path": "members", "value": [{"value": ids[1]}]}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["members"].as_array().map_or(0, Vec::len), 1);
}

#[tokio::test]
async fn google_workspace_user_provisioning() {
    let app = TestApp::spawn().await;
    let (tid, tok) = licensed(&app, "google", "Everyone").await;

    // The probe Google sends when the endpoint and token are saved.
    let (s, r) = app.scim(&tok, Method::GET, "/Users?count=1", None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["totalResults"].as_i64(), r["itemsPerPage"].as_i64()),
        (Some(0), Some(0))
    );

    // Users only (Google does not push groups): the licensed group is the customer's own,
    // kept by another provider or by hand; here it is made over SCIM up front.
    let (s, u) = app
        .scim(&tok, Method::POST, "/Users", Some(json!({
            "schemas": [USER_SCHEMA], "userName": "li@example.com", "externalId": "108712345678901234567",
            "name": {"givenName": "Li", "familyName": "Wei"},
            "displayName": "Li Wei",
            "emails": [{"value": "li@example.com", "primary": true}],
            "active": true
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let uid = id(&u);
    app.create_group(&tok, "Everyone", &[&uid]).await;
    assert_eq!(seat(&app, &tid, "li@example.com").await, "granted");

    // The probe now sees one user, and a page of one.
    let (_, r) = app.scim(&tok, Method::GET, "/Users?count=1", None).await;
    assert_eq!(
        (r["totalResults"].as_i64(), r["itemsPerPage"].as_i64()),
        (Some(1), Some(1))
    );

    // Suspended in Workspace: the deprovisioning trigger "suspend" sends active false.
    let (s, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "value": {"active": false}}]})),
        )
        .await;
    assert_eq!((s, p["active"].as_bool()), (StatusCode::OK, Some(false)));
    assert_eq!(seat(&app, &tid, "li@example.com").await, "releasing");

    // Restored within the grace period: the same seat, then "delete the user" on leaving the company.
    let (s, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "value": {"active": true}}]})),
        )
        .await;
    assert_eq!((s, p["active"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(seat(&app, &tid, "li@example.com").await, "granted");
    let (s, _) = app
        .scim(&tok, Method::DELETE, &format!("/Users/{uid}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, r) = app.scim(&tok, Method::GET, "/Users?count=1", None).await;
    assert_eq!(r["totalResults"], 0);
}
