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
