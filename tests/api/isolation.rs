use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_tenant_never_sees_or_touches_another_tenants_resources() {
    let app = TestApp::spawn().await;
    let (_, a) = app.tenant("tenant-a").await;
    let (_, b) = app.tenant("tenant-b").await;
    let ua = app.create_user(&a, "shared.name@example.com").await;
    let ga = app.create_group(&a, "Engineering", &[&id(&ua)]).await;

    // The same userName is free in another tenant.
    let ub = app.create_user(&b, "shared.name@example.com").await;
    assert_ne!(id(&ua), id(&ub));

    for path in [
        format!("/Users/{}", id(&ua)),
        format!("/Groups/{}", id(&ga)),
    ] {
        let (s, body) = app.scim(&b, Method::GET, &path, None).await;
        assert_scim_error(s, &body, 404, None);
        let (s, _) = app.scim(&b, Method::DELETE, &path, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = app
            .scim(
                &b,
                Method::PATCH,
                &path,
                Some(patch(
                    json!([{"op": "replace", "path": "displayName", "value": "pwned"}]),
                )),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let (s, _) = app
        .scim(
            &b,
            Method::PUT,
            &format!("/Users/{}", id(&ua)),
            Some(json!({"schemas": [USER_SCHEMA], "userName": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (_, list) = app.scim(&b, Method::GET, "/Users", None).await;
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["id"], id(&ub).as_str());
    let (_, groups) = app.scim(&b, Method::GET, "/Groups", None).await;
    assert_eq!(groups["totalResults"], 0);
    let (_, found) = app
        .scim(
            &b,
            Method::GET,
            &format!("/Groups?filter=members.value eq \"{}\"", id(&ua)),
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 0);

    // Tenant A's resources are untouched.
    let (s, still) = app
        .scim(&a, Method::GET, &format!("/Groups/{}", id(&ga)), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(still["displayName"], "Engineering");
    assert_eq!(still["members"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_tenant_admin_token_is_authorized_on_the_tenant_the_path_resolves_to() {
    let app = TestApp::spawn().await;
    let (victim, _) = app.tenant("victim").await;
    // A tenant whose name is the victim's id, and one whose name decodes to another's.
    for (name, path_tenant) in [
        (victim.clone(), victim.clone()),
        ("vic%74im".to_owned(), "vic%74im".to_owned()),
        ("VICTIM-x".to_owned(), "victim".to_owned()),
    ] {
        let (s, t) = app
            .admin(Method::POST, "/tenants", Some(json!({"name": name})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        let attacker = t["id"].as_str().unwrap().to_owned();
        let (_, b) = app
            .admin(
                Method::POST,
                &format!("/tenants/{attacker}/admin-tokens"),
                Some(json!({})),
            )
            .await;
        let token = b["token"].as_str().unwrap().to_owned();
        for (method, path, body) in [
            (
                Method::GET,
                format!("/admin/v1/tenants/{path_tenant}"),
                None,
            ),
            (
                Method::GET,
                format!("/admin/v1/tenants/{path_tenant}/licenses"),
                None,
            ),
            (
                Method::POST,
                format!("/admin/v1/tenants/{path_tenant}/licenses"),
                Some(json!({"name": "stolen", "seats": 1})),
            ),
        ] {
            let (s, b) = app.request(method, &path, Some(&token), body).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{name}: {path}: {b}");
        }
        // Its own tenant, by id and by name, still works.
        let (s, _) = app
            .request(
                Method::GET,
                &format!("/admin/v1/tenants/{attacker}/licenses"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (_, licenses) = app
        .admin(Method::GET, &format!("/tenants/{victim}/licenses"), None)
        .await;
    assert_eq!(
        licenses.to_string().matches("stolen").count(),
        0,
        "{licenses}"
    );
    app.stop().await;
}
