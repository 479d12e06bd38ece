//! Tenant isolation over HTTP: a tenant never sees or touches another's resources, a tenant
//! admin token is authorized on the tenant its path resolves to, and a flooding tenant neither
//! refuses nor fails another tenant's sync.

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

/// Tenant A floods the service over HTTP (unindexed sorts and filters, PUTs of a group of
/// thousands, previews over all its users, junk tokens from B's own address) while tenant B
/// syncs: every request of B is answered, none refused or failed, and B's seats come out
/// right. (Latency under the flood is measured by `cargo bench --bench noisy`, not here.)
#[tokio::test]
async fn a_flooding_tenant_neither_refuses_nor_fails_another_tenants_sync() {
    const A_USERS: usize = 1500;
    let app = TestApp::spawn().await;
    let (a, a_tok) = app.tenant("flooding-a").await;
    let mut ids = Vec::new();
    for chunk in (0..A_USERS).collect::<Vec<_>>().chunks(500) {
        let ops: Vec<serde_json::Value> = chunk
            .iter()
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                "data": {"schemas": [USER_SCHEMA], "userName": format!("a{i}@a.example"),
                    "title": format!("title {}", i % 100), "active": true}})
            })
            .collect();
        let (s, v) = app
            .scim(
                &a_tok,
                Method::POST,
                "/Bulk",
                Some(
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": ops}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for op in v["Operations"].as_array().unwrap() {
            ids.push(
                op["location"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    app.create_group(&a_tok, "Everyone", &refs).await;
    app.license(&a, "all", 700, "Everyone").await;
    let huge = id(&app.create_group(&a_tok, "Huge", &[]).await);
    // Each tenant's admin token: A's previews and B's seat checks share no rate bucket.
    let a_admin = app.admin_token(&a).await;

    let (b, b_tok) = app.tenant("quiet-b").await;
    let staff = id(&app.create_group(&b_tok, "Staff", &[]).await);
    app.license(&b, "pro", 5, "Staff").await;
    let b_admin = app.admin_token(&b).await;

    // A's flood: loops of one kind each, until B is done. Their answers do not matter (A may
    // well be refused); only that they run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let base = app.address.clone();
    let mut flood = Vec::new();
    for kind in 0..5usize {
        let (stop, sent, base, a, a_tok, a_admin, huge, ids) = (
            stop.clone(),
            sent.clone(),
            base.clone(),
            a.clone(),
            a_tok.clone(),
            a_admin.clone(),
            huge.clone(),
            ids.clone(),
        );
        flood.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let r = match kind {
                    0 => client
                        .get(format!(
                            "{base}/scim/v2/Users?filter=title%20co%20%22{}%22",
                            i % 10
                        ))
                        .bearer_auth(&a_tok),
                    1 => client
                        .get(format!(
                            "{base}/scim/v2/Users?sortBy=title&startIndex={}&count=50",
                            1 + i % 20
                        ))
                        .bearer_auth(&a_tok),
                    2 => {
                        let start = (i * 97) % (ids.len() - 1100);
                        let members: Vec<serde_json::Value> = ids[start..start + 1100]
                            .iter()
                            .map(|v| json!({"value": v}))
                            .collect();
                        client
                            .put(format!("{base}/scim/v2/Groups/{huge}"))
                            .bearer_auth(&a_tok)
                            .header("Content-Type", "application/scim+json")
                            .body(
                                json!({"schemas": [GROUP_SCHEMA], "displayName": "Huge",
                                "members": members})
                                .to_string(),
                            )
                    }
                    3 => client
                        .post(format!("{base}/admin/v1/tenants/{a}/licenses/all/preview"))
                        .bearer_auth(&a_admin)
                        .json(&json!({"seats": 100 + (i % 5) * 100})),
                    _ => client
                        .get(format!("{base}/scim/v2/Users"))
                        .bearer_auth(format!("skt_junk{i}_guess")),
                };
                if r.send().await.is_ok() {
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }

    // B's Entra-like sync: create, add to the selected group, check the seat.
    for i in 0..12 {
        let name = format!("b{i}@b.example");
        let u = id(&app.create_user(&b_tok, &name).await);
        let (s, v) = app
            .scim(
                &b_tok,
                Method::PATCH,
                &format!("/Groups/{staff}"),
                Some(patch(
                    json!([{"op": "add", "path": "members", "value": [{"value": u}]}]),
                )),
            )
            .await;
        assert!(s.is_success(), "B's member add under the flood: {s} {v}");
        let (s, v) = app
            .request(
                Method::GET,
                &format!("/admin/v1/tenants/{b}/licenses/pro/seats/{name}"),
                Some(&b_admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "B's seat check under the flood: {v}");
        let want = if i < 5 { "granted" } else { "blocked" };
        assert_eq!(v["state"], want, "{name}: {v}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }
    assert!(
        sent.load(std::sync::atomic::Ordering::Relaxed) >= 5,
        "the flood ran"
    );
}
