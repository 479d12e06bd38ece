//! The admin API and the daemon's operations over HTTP: health and readiness, tenants and
//! SCIM tokens (issue, expire, rotate with an overlap, revoke across processes), tenant
//! settings, JSON errors, the admin API off without a token, WAL checkpoints, data across a
//! restart, request ids and security headers, and Prometheus metrics on either listener.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn tenants_and_tokens_lifecycle() {
    let app = TestApp::spawn().await;
    let (s, t) = app
        .admin(
            Method::POST,
            "/tenants",
            Some(json!({"name": "Contoso", "notify": ["it@contoso.com"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(t["name"], "Contoso");
    assert_eq!(t["notify"], json!(["it@contoso.com"]));
    let tid = t["id"].as_str().unwrap().to_owned();

    let (s, _) = app
        .admin(Method::POST, "/tenants", Some(json!({"name": "contoso"})))
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "tenant names are unique, case-insensitively"
    );

    let (s, list) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["tenants"].as_array().unwrap().len(), 1);
    let (s, one) = app.admin(Method::GET, "/tenants/Contoso", None).await;
    assert_eq!(
        (s, one["id"].as_str()),
        (StatusCode::OK, Some(tid.as_str()))
    );

    let (s, issued) = app
        .admin(Method::POST, &format!("/tenants/{tid}/tokens"), None)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let token = issued["token"].as_str().unwrap().to_owned();
    let token_id = issued["id"].as_str().unwrap().to_owned();
    let (s, _) = app.scim(&token, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::OK);

    let (s, tokens) = app
        .admin(Method::GET, &format!("/tenants/{tid}/tokens"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let listed = tokens["tokens"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        !tokens.to_string().contains(&token),
        "the list never shows the secret"
    );
    assert_eq!(listed[0]["id"], token_id.as_str());

    let (s, _) = app
        .admin(
            Method::DELETE,
            &format!("/tenants/{tid}/tokens/{token_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = app.scim(&token, Method::GET, "/Users", None).await;
    assert_scim_error(s, &body, 401, None);
    let (s, _) = app
        .admin(Method::DELETE, &format!("/tenants/{tid}/tokens/nope"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_api_errors() {
    let app = TestApp::spawn().await;
    let (s, b) = app
        .request(Method::GET, "/admin/v1/tenants", None, None)
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (s, _) = app
        .request(
            Method::GET,
            "/admin/v1/tenants",
            Some("wrong-token-xxxxxxxxxxxx"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = app
        .admin(Method::POST, "/tenants", Some(json!({"nom": "x"})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _) = app
        .admin(
            Method::POST,
            "/tenants",
            Some(json!({"name": "x", "notify": ["not-an-email"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app
        .admin(Method::POST, "/tenants", Some(json!({"name": ""})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let r = app
        .client
        .post(format!("{}/admin/v1/tenants", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (s, _) = app.admin(Method::GET, "/tenants/unknown", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .admin(Method::POST, "/tenants/unknown/tokens", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_api_is_off_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("db.sqlite"));
    c.admin_token = None;
    let app = TestApp::spawn_with(c).await;
    let (s, b) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("admin_disabled"))
    );
    app.stop().await;
}

#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background_while_the_daemon_runs() {
    if super::postgres_support::selected() {
        return; // SQLite's write-ahead log; PostgreSQL checkpoints its own.
    }
    // The writer never checkpoints a WAL this small itself (its backstop is 16,384 pages), so
    // the database file grows only if the checkpointer thread copies the commits into it.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("seatkeeper.db");
    let app = TestApp::spawn_with(config(&db)).await;
    let (_, token) = app.tenant("acme").await;
    let before = std::fs::metadata(&db).unwrap().len();
    let wal = dir.path().join("seatkeeper.db-wal");
    for i in 0..300 {
        app.create_user(&token, &format!("ckpt{i}@acme.test")).await;
    }
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "commits go to the WAL"
    );
    let mut after = before;
    for _ in 0..50 {
        after = std::fs::metadata(&db).unwrap().len();
        if after > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        after > before,
        "the checkpointer copied the WAL into the database ({before} -> {after} bytes)"
    );
    // A graceful stop empties the WAL (its last checkpoint waits for the checkpointer thread,
    // whose own checkpoint could otherwise hold the lock and leave a WAL to replay at start).
    for i in 0..100 {
        app.create_user(&token, &format!("late{i}@acme.test")).await;
    }
    app.stop().await;
    assert_eq!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        0,
        "a graceful stop leaves no WAL behind"
    );
    // What was checkpointed reads back after a restart like everything else.
    let app = TestApp::spawn_with(config(&db)).await;
    let (s, list) = app.scim(&token, Method::GET, "/Users?count=0", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["totalResults"], 400);
    app.stop().await;
}

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("seatkeeper.db");
    let app = TestApp::spawn_with(config(&db)).await;
    let (_, token) = app.tenant("acme").await;
    let u = app.create_user(&token, "persist@acme.test").await;
    let g = app.create_group(&token, "Persisted", &[&id(&u)]).await;
    app.stop().await;

    let app = TestApp::spawn_with(config(&db)).await;
    let (s, back) = app
        .scim(&token, Method::GET, &format!("/Users/{}", id(&u)), None)
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the token and the user survive a restart"
    );
    assert_eq!(back["userName"], "persist@acme.test");
    assert_eq!(back["groups"][0]["value"], id(&g).as_str());
    let (s, g2) = app
        .scim(&token, Method::GET, &format!("/Groups/{}", id(&g)), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(g2["members"][0]["value"], id(&u).as_str());
    app.stop().await;
}

#[tokio::test]
async fn tenant_settings_can_be_changed() {
    let app = TestApp::spawn().await;
    let (tid, _) = app.tenant("settings").await;
    let (s, t) = app
        .admin(Method::GET, &format!("/tenants/{tid}"), None)
        .await;
    assert_eq!(
        (
            s,
            t["expected_sync_seconds"].as_i64(),
            t["pending_window_seconds"].as_i64()
        ),
        (StatusCode::OK, Some(7200), Some(259200))
    );
    let (s, t) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{tid}"),
            Some(json!({"expected_sync_seconds": 3600, "notify": ["a@b.example", "c@d.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(
        (
            t["expected_sync_seconds"].as_i64(),
            t["notify"].as_array().map(Vec::len)
        ),
        (Some(3600), Some(2))
    );
    let (s, _) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{tid}"),
            Some(json!({"expected_sync_seconds": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Pending references wait at most the 72 hours the product promises.
    for window in [259_201, 30 * 86_400] {
        let (s, b) = app
            .admin(
                Method::PATCH,
                &format!("/tenants/{tid}"),
                Some(json!({"pending_window_seconds": window})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(b.to_string().contains("72 hours"), "{b}");
    }
    let (s, _) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{tid}"),
            Some(json!({"notify": ["nope"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{tid}"),
            Some(json!({"color": "red"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_security_headers() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(format!("{}/scim/v2/Users", app.address))
        .header("X-Request-Id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["x-request-id"],
        "trace-42",
        "a sane client id is echoed"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("X-Request-Id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        id != "bad id with spaces" && id.len() == 36,
        "an unusable id is replaced: {id}"
    );
}

#[tokio::test]
async fn prometheus_metrics() {
    let app = TestApp::spawn().await;
    let (tid, tok) = app.tenant("metered").await;
    app.admin(
        Method::POST,
        &format!("/tenants/{tid}/licenses"),
        Some(json!({"name": "pro", "seats": 3})),
    )
    .await;
    let u = app.create_user(&tok, "m@example.com").await;
    app.scim(&tok, Method::GET, &format!("/Users/{}", id(&u)), None)
        .await;
    // On the main listener metrics name tenants: a stranger (or a tenant's token) gets none.
    for token in [None, Some(tok.as_str())] {
        let mut r = app.client.get(format!("{}/metrics", app.address));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(!r.text().await.unwrap().contains("metered"));
    }
    let text = app.metrics().await;
    assert!(text.contains(r#"seatkeeper_http_requests_total{route="/scim/v2/Users/{id}",method="GET",status="200"} 1"#), "{text}");
    assert!(
        text.contains(r#"seatkeeper_http_request_duration_seconds_count{route="/scim/v2/Users"}"#)
    );
    // Admin routes are labelled by the pattern kept with their resource, as SCIM's are.
    assert!(
        text.contains(r#"seatkeeper_http_requests_total{route="/admin/v1/tenants/{tenant}/licenses",method="POST",status="201"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"seatkeeper_license_capacity{tenant="metered",license="pro"} 3"#));
    assert!(text.contains("seatkeeper_rate_limited_total 0"));
}

#[tokio::test]
async fn tokens_expire_and_rotate_with_an_overlap() {
    let app = TestApp::spawn().await;
    let (tid, old) = app.tenant("rotation").await;
    let (s, b) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tid}/tokens"),
            Some(json!({"expires_in_seconds": 5})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, short) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tid}/tokens"),
            Some(json!({"expires_in_seconds": 3600})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(short["expires"].is_string());
    let (_, list) = app
        .admin(Method::GET, &format!("/tenants/{tid}/tokens"), None)
        .await;
    let old_id = list["tokens"][0]["id"].as_str().unwrap().to_owned();

    // Rotation with no overlap: the new token works, the old one stops at once.
    let (s, r) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tid}/tokens/{old_id}/rotate"),
            Some(json!({"overlap_seconds": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["replaces"]["id"], old_id.as_str());
    let new = r["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.scim(&new, Method::GET, "/Users", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.scim(&old, Method::GET, "/Users", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Rotation with the default overlap: both work for now.
    let (_, list) = app
        .admin(Method::GET, &format!("/tenants/{tid}/tokens"), None)
        .await;
    let new_id = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["expires"].is_null() && t["revoked"].is_null())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, r) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tid}/tokens/{new_id}/rotate"),
            None,
        )
        .await;
    let newer = r["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.scim(&new, Method::GET, "/Users", None).await.0,
        StatusCode::OK,
        "two tokens valid at once"
    );
    assert_eq!(
        app.scim(&newer, Method::GET, "/Users", None).await.0,
        StatusCode::OK
    );
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tid}/tokens/nope/rotate"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_and_health_on_a_separate_listener() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("db"));
    c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = seatkeeper::app::Application::build(c).await.unwrap();
    let (main, ops) = (app.port(), app.ops_port().expect("an operations listener"));
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let get = |port: u16, path: &str| client.get(format!("http://127.0.0.1:{port}{path}")).send();
    assert_eq!(get(ops, "/metrics").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get(ops, "/healthz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get(ops, "/readyz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        get(ops, "/scim/v2/Users").await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "only operations there"
    );
    assert_eq!(
        get(main, "/metrics").await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "metrics leave the main listener"
    );
    assert_eq!(
        get(main, "/healthz").await.unwrap().status(),
        StatusCode::OK
    );
    handle.stop(true).await;
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_metrics_token_guards_every_listener() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("db"));
    c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    c.metrics_token = Some(seatkeeper::config::Secret("scrape-token-0123456789".into()));
    let app = seatkeeper::app::Application::build(c).await.unwrap();
    let ops = app.ops_port().expect("an operations listener");
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{ops}/metrics");
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "only the metrics token"
    );
    let r = client
        .get(&url)
        .bearer_auth("scrape-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("seatkeeper_http_requests_total"));
    handle.stop(true).await;
    task.await.unwrap().unwrap();
}

/// Accepted tokens are remembered for a moment (`AUTH_CACHE_TTL`). A token revoked by another
/// process on the same database (the `seatkeeper token revoke` CLI while the daemon runs) stops
/// working within that moment; one revoked through this daemon stops at once (above).
#[tokio::test]
async fn a_token_revoked_by_another_process_stops_working_within_the_cache_period() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("seatkeeper.db");
    let app = TestApp::spawn_with(config(&db)).await;
    let (tid, token) = app.tenant("acme").await;
    assert_eq!(
        app.scim(&token, Method::GET, "/Users", None).await.0,
        StatusCode::OK,
        "the token is accepted (and now remembered)"
    );

    // What the CLI (or another node) does: its own store on the same database.
    let other = seatkeeper::store::Store::open(&database(&db)).unwrap();
    let tenant = other.tenant(&tid).await.unwrap();
    let token_id = token.split('_').nth(1).unwrap().to_owned();
    other
        .revoke_token(
            tenant.key,
            token_id,
            seatkeeper::store::events::audit::Actor::cli(),
        )
        .await
        .unwrap();
    other.close();

    let revoked = std::time::Instant::now();
    loop {
        let (s, body) = app.scim(&token, Method::GET, "/Users", None).await;
        if s == StatusCode::UNAUTHORIZED {
            assert_scim_error(s, &body, 401, None);
            break;
        }
        assert_eq!(s, StatusCode::OK);
        assert!(
            revoked.elapsed()
                < seatkeeper::store::AUTH_CACHE_TTL + std::time::Duration::from_secs(1),
            "the revoked token still works after {:?}",
            revoked.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The operator's product tokens: listed without their secret, revoked at once (the product
/// API then refuses the token).
#[tokio::test]
async fn operator_product_tokens_are_listed_and_revoked() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant("Contoso").await;
    let (s, issued) = app.admin(Method::POST, "/product-tokens", None).await;
    assert_eq!(s, StatusCode::CREATED, "{issued}");
    let (id, token) = (
        issued["id"].as_str().unwrap().to_owned(),
        issued["token"].as_str().unwrap().to_owned(),
    );
    let (s, list) = app.admin(Method::GET, "/product-tokens", None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{list}");
    assert_eq!(tokens[0]["id"], id.as_str());
    assert!(
        !list.to_string().contains(&token),
        "never the secret: {list}"
    );
    let check = format!("/product/v1/tenants/{t}/users/nobody@contoso.example/seats");
    let (s, _) = app.request(Method::GET, &check, Some(&token), None).await;
    assert_ne!(s, StatusCode::UNAUTHORIZED, "the token works before");
    let (s, _) = app
        .admin(Method::DELETE, &format!("/product-tokens/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.request(Method::GET, &check, Some(&token), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "refused once revoked");
    let (_, list) = app.admin(Method::GET, "/product-tokens", None).await;
    assert!(list["tokens"][0]["revoked"].as_str().is_some(), "{list}");
    let (s, _) = app
        .admin(Method::DELETE, "/product-tokens/00000000deadbeef", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// A tenant's admin tokens are listed by id, never with their secret.
#[tokio::test]
async fn a_tenants_admin_tokens_are_listed_without_their_secrets() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant("Contoso").await;
    let secret = app.admin_token(&t).await;
    let (s, list) = app
        .admin(Method::GET, &format!("/tenants/{t}/admin-tokens"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{list}");
    assert!(secret.contains(tokens[0]["id"].as_str().unwrap()));
    assert!(!list.to_string().contains(&secret), "{list}");
    // Admin tokens are the operator's to manage: a tenant admin token lists none, not even
    // its own tenant's.
    let (other, _) = app.tenant("Fabrikam").await;
    for tenant in [&t, &other] {
        let (s, _) = app
            .request(
                Method::GET,
                &format!("/admin/v1/tenants/{tenant}/admin-tokens"),
                Some(&secret),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
}

/// A license's overrides are listed with their kind, who set them and whether they take
/// effect; a user's seats across licenses in one answer.
#[tokio::test]
async fn overrides_and_a_users_seats_across_licenses_are_listed() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("Contoso").await;
    let ann = id(&app.create_user(&tok, "ann@contoso.example").await);
    let bob = id(&app.create_user(&tok, "bob@contoso.example").await);
    app.create_user(&tok, "cat@contoso.example").await;
    app.create_group(&tok, "Sales", &[&ann, &bob]).await;
    app.license(&t, "Suite", 1, "Sales").await;
    app.license(&t, "Viewer", 5, "Sales").await;
    for (user, kind) in [
        ("bob@contoso.example", "pin"),
        ("ann@contoso.example", "exclude"),
        ("cat@contoso.example", "pin"),
    ] {
        let (s, v) = app
            .admin(
                Method::PUT,
                &format!("/tenants/{t}/licenses/Suite/overrides/{user}"),
                Some(json!({"kind": kind})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, o) = app
        .admin(
            Method::GET,
            &format!("/tenants/{t}/licenses/Suite/overrides"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    let by_name = |n: &str| {
        o["overrides"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["userName"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} in {o}"))
    };
    assert_eq!(o["overrides"].as_array().unwrap().len(), 3, "{o}");
    assert_eq!(by_name("bob@contoso.example")["kind"], "pin");
    assert_eq!(by_name("bob@contoso.example")["setBy"], "operator");
    assert_eq!(by_name("bob@contoso.example")["entitled"], true);
    assert_eq!(by_name("ann@contoso.example")["kind"], "exclude");
    // Cat is in no selected group: the pin has no effect, and says so.
    assert_eq!(by_name("cat@contoso.example")["entitled"], false);

    let (s, seats) = app
        .admin(
            Method::GET,
            &format!("/tenants/{t}/users/bob@contoso.example/seats"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{seats}");
    let mut got: Vec<(String, String)> = seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["license"]["name"].as_str().unwrap().to_owned(),
                x["state"].to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("Suite".to_owned(), "\"granted\"".to_owned()),
            ("Viewer".to_owned(), "\"granted\"".to_owned())
        ],
        "{seats}"
    );
    let (s, _) = app
        .admin(
            Method::GET,
            &format!("/tenants/{t}/users/nobody@contoso.example/seats"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
