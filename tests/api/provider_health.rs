//! The identity provider's health: a replayed sync with a handful of bad requests shows each
//! kind of failure in the admin API, the CLI's store call and the console, with its count and
//! likely cause; a read of a user that is not there (404 on GET) is not a failure; and the
//! tenant's recipients are warned once when the week's failure rate passes their level.

use std::time::Duration;

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// The tenant's provider health once it counts `failed` failures (they are recorded right
/// after each answer).
async fn health(app: &TestApp, t: &str, failed: i64) -> Value {
    let path = format!("/tenants/{t}/provisioning/failures");
    let mut h = Value::Null;
    for _ in 0..200 {
        let (s, v) = app.admin(Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        h = v;
        if h["failed"] == failed {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not {failed} failures: {h:#}");
}

#[tokio::test]
async fn failing_provider_requests_are_listed_with_their_causes_and_warn_once() {
    let (app, clock) = TestApp::spawn_clocked().await;
    let (t, tok) = app.tenant("Contoso").await;
    let ann = id(&app.create_user(&tok, "ann@contoso.example").await);
    let group = id(&app.create_group(&tok, "Sales", &[&ann]).await);

    // The replayed sync's bad requests: a user created twice, a filter on an attribute that
    // does not exist, a group PATCH naming a member by something that is not an id, a change
    // to a user that is not here; and a lookup of a user that is not here (not a failure).
    for _ in 0..3 {
        let (s, _) = app
            .scim(
                &tok,
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER_SCHEMA], "userName": "ann@contoso.example"})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
    }
    let (s, _) = app
        .scim(
            &tok,
            Method::GET,
            "/Users?filter=userName%20zz%20%22x%22",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, e) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"display": "no value"}]}]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _) = app
        .scim(
            &tok,
            Method::PATCH,
            "/Users/00000000-0000-0000-0000-000000000000",
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .scim(
            &tok,
            Method::GET,
            "/Users/00000000-0000-0000-0000-000000000000",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let h = health(&app, &t, 6).await;
    assert!(h["requests"].as_i64().unwrap() >= 9, "{h:#}");
    let failures = h["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 4, "four kinds: {h:#}");
    let kind = |method: &str, route: &str| {
        failures
            .iter()
            .find(|f| f["method"] == method && f["route"].as_str().unwrap().ends_with(route))
            .unwrap_or_else(|| panic!("{method} {route} in {h:#}"))
            .clone()
    };
    let twice = kind("POST", "/Users");
    assert_eq!(twice["count"], 3, "the same failure, counted: {twice}");
    assert_eq!(twice["status"], 409);
    assert_eq!(twice["scimType"], "uniqueness");
    assert!(
        twice["cause"]
            .as_str()
            .unwrap()
            .contains("userName (or externalId) seatkeeper already has"),
        "{twice}"
    );
    let filter = kind("GET", "/Users");
    assert_eq!(filter["scimType"], "invalidFilter");
    assert!(
        filter["cause"]
            .as_str()
            .unwrap()
            .contains("filter seatkeeper does not understand"),
        "{filter}"
    );
    let member = kind("PATCH", "/Groups/{id}");
    assert!(
        member["cause"]
            .as_str()
            .unwrap()
            .starts_with("A group PATCH named a member"),
        "{member}"
    );
    assert_eq!(member["resource"], format!("/scim/v2/Groups/{group}"));
    let gone = kind("PATCH", "/Users/{id}");
    assert_eq!(gone["status"], 404);
    assert!(
        gone["cause"]
            .as_str()
            .unwrap()
            .contains("changed a user seatkeeper does not have"),
        "{gone}"
    );
    // Never a body or a credential.
    assert!(!h.to_string().contains(&tok), "{h}");
    assert!(!h.to_string().contains("no value"), "{h}");
    assert_eq!(h["quarantine"]["past_the_limit"], false);

    // The console's page says the same, newest first.
    let session = super::security::console_session(&app.address, ADMIN_TOKEN).await;
    let page = super::security::no_redirects()
        .get(format!("{}/console/tenants/{t}/provisioning", app.address))
        .header(header::COOKIE, format!("sk_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("6 of "), "{page}");
    assert!(page.contains("A group PATCH named a member"), "{page}");
    assert!(page.contains("already has"), "{page}");

    // The rate passes the tenant's level (10 %) with 100 failures at least: its recipients
    // are warned once, naming the most frequent failure first.
    let (s, _) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{t}"),
            Some(json!({"idp_failure_warn_percent": 10})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{t}"),
            Some(json!({"idp_failure_warn_percent": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    for _ in 0..100 {
        app.scim(
            &tok,
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER_SCHEMA], "userName": "ann@contoso.example"})),
        )
        .await;
    }
    health(&app, &t, 106).await;
    clock.advance_secs(301);
    app.sender_pass().await;
    let notifications = format!("/tenants/{t}/notifications");
    let o = app.admin(Method::GET, &notifications, None).await.1;
    let warnings: Vec<&Value> = o["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "provider_failures")
        .collect();
    assert_eq!(warnings.len(), 1, "{o:#}");
    assert_eq!(warnings[0]["state"], "sent", "{o:#}");
    assert!(
        warnings[0]["subject"]
            .as_str()
            .unwrap()
            .contains("of your identity provider's requests failed in the last 7 days"),
        "{o:#}"
    );
    let (_, detail) = app
        .admin(
            Method::GET,
            &format!("/tenants/{t}/notifications/{}", warnings[0]["id"]),
            None,
        )
        .await;
    // Told when the 100th failure came: 97 of them the same create.
    assert_eq!(detail["events"][0]["failures"], 100, "{detail:#}");
    assert_eq!(detail["events"][0]["top"][0]["count"], 97, "{detail:#}");
    assert_eq!(
        detail["events"][0]["top"][0]["status"], "409 uniqueness",
        "{detail:#}"
    );
    // More failures the same week: no second warning.
    for _ in 0..5 {
        app.scim(
            &tok,
            Method::GET,
            "/Users?filter=userName%20zz%20%22x%22",
            None,
        )
        .await;
    }
    health(&app, &t, 111).await;
    clock.advance_secs(301);
    app.sender_pass().await;
    let o = app.admin(Method::GET, &notifications, None).await.1;
    assert_eq!(
        o["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "provider_failures")
            .count(),
        1,
        "{o:#}"
    );
}
