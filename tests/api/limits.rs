use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_tenant_over_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("db"));
    c.scim_requests_per_second = 1;
    c.scim_burst = 2;
    let app = TestApp::spawn_with(c).await;
    let (_, a) = app.tenant("busy").await;
    let (_, b) = app.tenant("quiet").await;
    let url = format!("{}/scim/v2/Users", app.address);
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let r = app.client.get(&url).bearer_auth(&a).send().await.unwrap();
        statuses.push(r.status());
        last = Some(r);
    }
    assert_eq!(statuses[..2], [StatusCode::OK, StatusCode::OK]);
    let r = last.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "429");
    // Another tenant is not affected.
    let r = app.client.get(&url).bearer_auth(&b).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn repeated_failed_authentication_is_braked_per_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("db"));
    c.auth_failures_per_minute = 3;
    let app = TestApp::spawn_with(c).await;
    let (_, good) = app.tenant("target").await;
    for _ in 0..3 {
        let (s, _) = app
            .request(Method::GET, "/scim/v2/Users", Some("skt_guess_guess"), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, body) = app
        .request(Method::GET, "/scim/v2/Users", Some("skt_guess_again"), None)
        .await;
    assert_eq!(
        (s, body["status"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("429"))
    );
    // While refused, even a valid token from that address is not checked.
    let (s, _) = app.scim(&good, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let (s, b) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_has_its_own_rate() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("db"));
    c.admin_requests_per_second = 1;
    let app = TestApp::spawn_with(c).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(app.admin(Method::GET, "/tenants", None).await.0);
    }
    assert_eq!(
        seen[..2],
        [StatusCode::OK, StatusCode::OK],
        "a burst of twice the rate passes"
    );
    assert!(
        seen[2..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{seen:?}"
    );
    let _ = json!({});
    app.stop().await;
}
