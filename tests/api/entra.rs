//! Request shapes Microsoft Entra's provisioning service sends, in the order it sends them
//! (from its SCIM tutorial and its SCIM-compliance known-issues page).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;
use crate::users::urlencode;

#[tokio::test]
async fn entra_provisioning_sequence() {
    provisioning_sequence("/scim/v2").await;
}

/// The Tenant URL as Microsoft's docs show it, with a trailing slash: Entra appends `/Users`,
/// so every request arrives as `/scim/v2//Users...`.
#[tokio::test]
async fn entra_provisioning_sequence_with_a_trailing_slash_tenant_url() {
    provisioning_sequence("/scim/v2/").await;
}

async fn provisioning_sequence(tenant_url_path: &str) {
    let mut app = TestApp::spawn().await;
    app.scim_base = tenant_url_path.to_owned();
    let (_, tok) = app.tenant("entra").await;

    // Test Connection: a filter for a random userName answers 200 with an empty list.
    let (s, r) = app
        .scim(
            &tok,
            Method::GET,
            &format!(
                "/Users?filter={}",
                urlencode(r#"userName eq "non-existent user 5ae7f5b1""#)
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            r["totalResults"].as_i64(),
            r["Resources"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );

    // Create user (the tutorial's request).
    let (s, u) = app
        .scim(&tok, Method::POST, "/Users", Some(json!({
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
            "active": true,
            "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": []
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let uid = id(&u);
    let location = u["meta"]["location"].as_str().unwrap();
    assert!(
        location.ends_with(&format!("/scim/v2/Users/{uid}")),
        "{location}"
    );

    // Get user by query (userName and externalId).
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &format!(
                "/Users?filter={}",
                urlencode(r#"userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1""#)
            ),
            None,
        )
        .await;
    assert_eq!(r["totalResults"], 1);
    assert_eq!(r["Resources"][0]["id"], uid.as_str());
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &format!(
                "/Users?filter={}",
                urlencode(r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#)
            ),
            None,
        )
        .await;
    assert_eq!(r["totalResults"], 1);

    // Old-form update (aadOptscim062020 off): capitalized ops, one op per attribute, string booleans.
    let (s, p) = app
        .scim(&tok, Method::PATCH, &format!("/Users/{uid}"), Some(patch(json!([
            {"op": "Replace", "path": "displayName", "value": "Updated Name"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            {"op": "Add", "path": "nickName", "value": "Babs"},
            {"op": "Add", "path": "addresses[type eq \"work\"].formatted", "value": "1 Main St"},
            {"op": "Add", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "12345"}
        ]))))
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["displayName"], "Updated Name");
    assert_eq!(p["emails"][0]["value"], "updatedEmail@microsoft.com");
    assert_eq!(
        p["emails"].as_array().unwrap().len(),
        1,
        "the work email is replaced, not added"
    );
    assert_eq!(p["name"]["familyName"], "updatedFamilyName");
    assert_eq!(
        p["addresses"][0],
        json!({"type": "work", "formatted": "1 Main St"})
    );
    assert_eq!(p[ENTERPRISE]["employeeNumber"], "12345");

    // New form (aadOptscim062020): one path-less replace whose keys are paths; a real boolean.
    let (s, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch(json!([{"op": "replace", "value": {
                "displayName": "New Form",
                "emails[type eq \"work\"].value": "new@contoso.com",
                "name.givenName": "Given",
                format!("{ENTERPRISE}:department"): "Sales"
            }}]))),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        (p["displayName"].as_str(), p["name"]["givenName"].as_str()),
        (Some("New Form"), Some("Given"))
    );
    assert_eq!(p["emails"][0]["value"], "new@contoso.com");
    assert_eq!(p[ENTERPRISE]["department"], "Sales");
    assert_eq!(p[ENTERPRISE]["employeeNumber"], "12345");

    // Manager as a bare id, then removed.
    let mgr = app.create_user(&tok, "manager@contoso.com").await;
    let (_, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch(
                json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": id(&mgr)}]),
            )),
        )
        .await;
    assert_eq!(p[ENTERPRISE]["manager"]["value"], id(&mgr).as_str());
    let (_, p) = app
        .scim(&tok, Method::PATCH, &format!("/Users/{uid}"), Some(patch(json!([{"op": "Remove", "path": format!("{ENTERPRISE}:manager"), "value": [{"value": id(&mgr)}]}]))))
        .await;
    assert!(p[ENTERPRISE].get("manager").is_none(), "{p}");

    // Soft delete: active "False" (old form) and false (new form), then re-enable.
    let (_, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch(
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )),
        )
        .await;
    assert_eq!(p["active"], false);
    let (_, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch(
                json!([{"op": "replace", "value": {"active": "True"}}]),
            )),
        )
        .await;
    assert_eq!(p["active"], true);
    let (_, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
        )
        .await;
    assert_eq!(p["active"], false);

    // userName change.
    let (_, p) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch(
                json!([{"op": "Replace", "path": "userName", "value": "renamed@contoso.com"}]),
            )),
        )
        .await;
    assert_eq!(p["userName"], "renamed@contoso.com");

    // Group create with Entra's extra Microsoft schema URI, then lookups with excludedAttributes=members.
    let (s, g) = app
        .scim(&tok, Method::POST, "/Groups", Some(json!({
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "id": "c4c5-ignored",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"},
            "schemas": ["http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group", GROUP_SCHEMA]
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let gid = id(&g);
    assert_ne!(gid, "c4c5-ignored");
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &format!(
                "/Groups?excludedAttributes=members&filter={}",
                urlencode(r#"displayName eq "displayName""#)
            ),
            None,
        )
        .await;
    assert_eq!(r["totalResults"], 1);
    assert!(r["Resources"][0].get("members").is_none());
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &format!("/Groups/{gid}?excludedAttributes=members"),
            None,
        )
        .await;
    assert_eq!(r["id"], gid.as_str());

    // Members added in a batch, then removed in both forms.
    let others: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(id(&app
                .create_user(&tok, &format!("batch{i}@contoso.com"))
                .await));
        }
        v
    };
    let add: Vec<_> = others
        .iter()
        .chain([&uid])
        .map(|m| json!({"value": m}))
        .collect();
    let (s, _) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(patch(
                json!([{"op": "Add", "path": "members", "value": add}]),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &format!(
                "/Groups?filter={}&excludedAttributes=members",
                urlencode(&format!("id eq \"{gid}\" and members[value eq \"{uid}\"]"))
            ),
            None,
        )
        .await;
    assert_eq!(r["totalResults"], 1, "Entra's membership check");
    // Older form: a value list on path "members" removes only those.
    let (s, _) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(patch(
                json!([{"op": "Remove", "path": "members", "value": [{"value": others[0]}]}]),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Current form: a value filter.
    let (s, _) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(patch(
                json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", others[1])}]),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, g) = app
        .scim(&tok, Method::GET, &format!("/Groups/{gid}"), None)
        .await;
    let mut left: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    left.sort();
    let mut want = vec![others[2].as_str(), uid.as_str()];
    want.sort();
    assert_eq!(left, want);

    // Rename the group by PATCH.
    let (_, g) = app.scim(&tok, Method::PATCH, &format!("/Groups/{gid}"), Some(patch(json!([{"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}])))).await;
    assert_eq!(
        g["displayName"],
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    );

    // Delete user, delete group.
    let (s, _) = app
        .scim(&tok, Method::DELETE, &format!("/Users/{uid}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .scim(&tok, Method::DELETE, &format!("/Groups/{gid}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Re-provision after delete: the same userName can be created again.
    let again = app.create_user(&tok, "renamed@contoso.com").await;
    assert_ne!(id(&again), uid);
}

#[tokio::test]
async fn discovery_endpoints_describe_what_is_supported() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("discovery").await;
    let (s, spc) = app
        .scim(&tok, Method::GET, "/ServiceProviderConfig", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["filter"]["supported"], true);
    assert_eq!(spc["filter"]["maxResults"], 100);
    assert_eq!(spc["etag"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], true);
    assert_eq!(spc["bulk"]["maxOperations"], 1000);
    assert_eq!(spc["sort"]["supported"], true);
    let (_, rt) = app.scim(&tok, Method::GET, "/ResourceTypes", None).await;
    assert_eq!(rt["totalResults"], 2);
    let (_, user_rt) = app
        .scim(&tok, Method::GET, "/ResourceTypes/User", None)
        .await;
    assert_eq!(user_rt["schemaExtensions"][0]["schema"], ENTERPRISE);
    let (_, schemas) = app.scim(&tok, Method::GET, "/Schemas", None).await;
    assert_eq!(schemas["totalResults"], 3);
    let (s, user) = app
        .scim(&tok, Method::GET, &format!("/Schemas/{USER_SCHEMA}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = user["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"userName") && names.contains(&"emails"));
    let (s, b) = app.scim(&tok, Method::GET, "/Schemas/urn:nope", None).await;
    assert_scim_error(s, &b, 404, None);
}
