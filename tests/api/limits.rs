//! Rate limits and brakes over HTTP: a tenant over its rate gets 429 with `Retry-After`,
//! failed authentication is braked per client address (the right-most untrusted hop behind a
//! trusted proxy), and each client address and admin token has its own bucket.

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
    // While the address is braked, a valid token from it is still served: strangers sharing
    // an address (a same-host proxy, an identity provider's egress) cannot lock a tenant out.
    let (s, _) = app.scim(&good, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!(s, StatusCode::OK);
    // Failures from it stay braked, on the admin API too.
    let (s, b) = app
        .request(
            Method::GET,
            "/admin/v1/tenants",
            Some("wrong-admin-token-0123456"),
            None,
        )
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    app.stop().await;
}

/// A GET of `path` with `X-Forwarded-For: xff` and `token`.
async fn forwarded(app: &TestApp, path: &str, xff: &str, token: &str) -> StatusCode {
    app.client
        .get(format!("{}{path}", app.address))
        .header("X-Forwarded-For", xff)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_hop() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("db"));
    c.auth_failures_per_minute = 2;
    c.client_ip_header = Some("X-Forwarded-For".into());
    // The default trusted_proxies is loopback: the test client is the same-host proxy.
    let app = TestApp::spawn_with(c).await;
    let (_, good) = app.tenant("proxied").await;
    let stranger = "198.51.100.7";
    for _ in 0..2 {
        let s = forwarded(&app, "/scim/v2/Users", stranger, "skt_junk_junk").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let s = forwarded(&app, "/scim/v2/Users", stranger, "skt_junk_junk").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "the stranger is braked");
    // A stranger cannot escape its brake by writing a new first entry each time: the hop the
    // trusted proxy appended (the right-most) is what counts.
    let s = forwarded(
        &app,
        "/scim/v2/Users",
        &format!("203.0.113.99, {stranger}"),
        "skt_junk_junk",
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // Nor frame another address by naming it on the left.
    let s = forwarded(
        &app,
        "/scim/v2/Users",
        &format!("{stranger}, 192.0.2.10"),
        "skt_junk_junk",
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "192.0.2.10 has its own count");
    // Another client behind the same proxy, and the tenant itself, are served.
    let s = forwarded(&app, "/scim/v2/Users", "192.0.2.44", &good).await;
    assert_eq!(s, StatusCode::OK);
    let s = forwarded(&app, "/scim/v2/Users", stranger, &good).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a valid token from a braked address is served"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_forwarding_header_of_an_untrusted_peer_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("db"));
    c.auth_failures_per_minute = 2;
    c.client_ip_header = Some("X-Forwarded-For".into());
    c.trusted_proxies = vec!["10.9.9.9/32".parse().unwrap()];
    let app = TestApp::spawn_with(c).await;
    // The peer (127.0.0.1) is not a trusted proxy: changing the header changes nothing.
    for (i, s) in ["1.1.1.1", "2.2.2.2", "3.3.3.3"].iter().enumerate() {
        let status = forwarded(&app, "/scim/v2/Users", s, "skt_junk_junk").await;
        let want = if i < 2 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(status, want, "attempt {i}");
    }
    app.stop().await;
}

#[tokio::test]
async fn each_client_address_has_a_request_rate() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("db"));
    c.client_requests_per_second = 2;
    c.client_ip_header = Some("X-Forwarded-For".into());
    let app = TestApp::spawn_with(c).await;
    let (_, good) = app.tenant("shares-the-address").await;
    let bare = |xff: &'static str| {
        app.client
            .get(format!("{}/scim/v2/Users", app.address))
            .header("X-Forwarded-For", xff)
            .send()
    };
    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(bare("198.51.100.1").await.unwrap().status());
    }
    assert!(seen.contains(&StatusCode::TOO_MANY_REQUESTS), "{seen:?}");
    // A tenant's valid token at that address is limited by its tenant, not by the address.
    for _ in 0..6 {
        let s = forwarded(&app, "/scim/v2/Users", "198.51.100.1", &good).await;
        assert_eq!(s, StatusCode::OK);
    }
    let r = bare("198.51.100.1").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "429", "a SCIM error on SCIM paths: {body}");
    // Another address is not affected; health is never limited.
    assert_eq!(
        bare("198.51.100.2").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let s = forwarded(&app, "/healthz", "198.51.100.1", "").await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn each_admin_token_has_its_own_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("db"));
    c.admin_requests_per_second = 3;
    let app = TestApp::spawn_with(c).await;
    let mut tokens = Vec::new();
    for name in ["noisy", "calm"] {
        let (tid, _) = app.tenant(name).await;
        let (s, b) = app
            .admin(
                Method::POST,
                &format!("/tenants/{tid}/admin-tokens"),
                Some(json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        tokens.push((tid, b["token"].as_str().unwrap().to_owned()));
    }
    // Let the operator's bucket refill after the set-up.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (noisy, noisy_token) = &tokens[0];
    let mut seen = Vec::new();
    for _ in 0..12 {
        let path = format!("/admin/v1/tenants/{noisy}/licenses");
        seen.push(
            app.request(Method::GET, &path, Some(noisy_token), None)
                .await
                .0,
        );
    }
    assert!(seen.contains(&StatusCode::TOO_MANY_REQUESTS), "{seen:?}");
    let (calm, calm_token) = &tokens[1];
    let path = format!("/admin/v1/tenants/{calm}/licenses");
    let (s, _) = app
        .request(Method::GET, &path, Some(calm_token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "another tenant's admin is not drained");
    let (s, _) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!(s, StatusCode::OK, "nor the operator");
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
