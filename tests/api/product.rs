//! The product API (`/product/v1`) over HTTP: product tokens issued, scoped and revoked; a user
//! found by SCIM id, userName, externalId or email; the seat check alone and in a batch; the
//! seat-event feeds of one tenant and of all; and every credential refused where it does not
//! belong.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

async fn product(app: &TestApp, token: &str, m: Method, path: &str) -> (StatusCode, Value) {
    app.request(m, &format!("/product/v1{path}"), Some(token), None)
        .await
}

async fn product_post(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let r = app
        .client
        .post(format!("{}/product/v1{path}", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    record_route_hit("POST", r.url().path(), s);
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn user(app: &TestApp, tok: &str, body: Value) -> String {
    let mut body = body;
    body["schemas"] = json!([USER_SCHEMA]);
    body["active"] = json!(true);
    let (s, u) = app.scim(tok, Method::POST, "/Users", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    id(&u)
}

async fn issue(app: &TestApp, path: &str) -> (String, String) {
    let (s, t) = app.admin(Method::POST, path, None).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("skp_"), "{token}");
    (t["id"].as_str().unwrap().to_owned(), token)
}

#[tokio::test]
async fn a_product_token_finds_users_every_way_and_reads_only_its_tenant() {
    let app = TestApp::spawn().await;
    let (ta, tok) = app.tenant("Contoso").await;
    let (tb, tok_b) = app.tenant("Fabrikam").await;
    let alice = user(
        &app,
        &tok,
        json!({"userName": "alice@contoso.example", "externalId": "ext-alice",
               "emails": [{"value": "Alice.Smith@contoso.example", "type": "work", "primary": true}]}),
    )
    .await;
    let bob = user(&app, &tok, json!({"userName": "bob@contoso.example"})).await;
    let carol = user(&app, &tok, json!({"userName": "carol@contoso.example"})).await;
    for name in ["dave", "erin"] {
        user(
            &app,
            &tok,
            json!({"userName": format!("{name}@contoso.example"),
                   "emails": [{"value": "shared@contoso.example"}]}),
        )
        .await;
    }
    app.create_group(&tok, "Sales", &[&alice, &bob, &carol])
        .await;
    app.license(&ta, "MindManager", 2, "Sales").await;
    let other = user(&app, &tok_b, json!({"userName": "alice@contoso.example"})).await;
    app.create_group(&tok_b, "All", &[&other]).await;
    app.license(&tb, "Viewer", 5, "All").await;
    let (_, p) = issue(&app, &format!("/tenants/{ta}/product-tokens")).await;

    // A user named every way the product may know them.
    for reference in [
        alice.as_str(),
        "ALICE@contoso.example",
        "ext-alice",
        "alice.smith@CONTOSO.example",
    ] {
        let (s, v) = product(
            &app,
            &p,
            Method::GET,
            &format!("/tenants/{ta}/users/{reference}/seats"),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{reference}: {v}");
        assert_eq!(
            v["user"],
            json!({"id": alice, "userName": "alice@contoso.example", "externalId": "ext-alice", "active": true})
        );
        assert_eq!(v["seats"][0]["license"]["name"], "MindManager", "{v}");
        assert_eq!(v["seats"][0]["state"], "granted", "{v}");
    }
    let (s, v) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/Contoso/users/{carol}/seats"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (&v["seats"][0]["state"], &v["seats"][0]["position"]),
        (&json!("blocked"), &json!(1))
    );
    let (s, e) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/{ta}/users/nobody@contoso.example/seats"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(e["error"], "not_found");
    let (s, e) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/{ta}/users/shared@contoso.example/seats"),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "an email of two users: {e}");

    // The seat check, alone and in a batch.
    let (s, v) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/{ta}/licenses/MindManager/users/carol@contoso.example"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "blocked");
    assert_eq!(v["position"], 1);
    let (s, v) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/{ta}/licenses/MindManager/users/dave@contoso.example"),
    )
    .await;
    assert_eq!((s, &v["state"]), (StatusCode::OK, &json!("none")), "{v}");
    let (s, v) = product_post(
        &app,
        &p,
        &format!("/tenants/{ta}/licenses/MindManager/checks"),
        json!({"users": ["alice.smith@contoso.example", carol, "nobody", "shared@contoso.example"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let states: Vec<(&str, &str)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["state"].as_str().unwrap(),
                r["error"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("granted", ""),
            ("blocked", ""),
            ("none", "not_found"),
            ("none", "ambiguous")
        ]
    );
    assert_eq!(v["results"][1]["user"], json!(carol));
    let too_many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let (s, _) = product_post(
        &app,
        &p,
        &format!("/tenants/{ta}/licenses/MindManager/checks"),
        json!({ "users": too_many }),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Its tenant only: another tenant reads as absent; the all-tenant feed is the operator's.
    let (s, _) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/{tb}/users/{other}/seats"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = product(&app, &p, Method::GET, "/events").await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The tenant's feed, paged with its cursor.
    let (s, page) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/{ta}/events?after=0&limit=2"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["events"][0]["tenant"]["name"], "Contoso");
    let next = page["next"].as_i64().unwrap();
    let (_, rest) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/{ta}/events?after={next}"),
    )
    .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["events"][0]["event"], "blocked");
    for bad in ["limit=0", "after=abc"] {
        let (s, e) = product(
            &app,
            &p,
            Method::GET,
            &format!("/tenants/{ta}/events?{bad}"),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {e}");
        assert_eq!(e["error"], "invalid_request", "{bad}: {e}");
    }

    // The operator's product token reads every tenant, and the feed across them.
    let (_, op) = issue(&app, "/product-tokens").await;
    let (s, v) = product(
        &app,
        &op,
        Method::GET,
        &format!("/tenants/Fabrikam/licenses/Viewer/users/{other}"),
    )
    .await;
    assert_eq!((s, &v["state"]), (StatusCode::OK, &json!("granted")));
    let (s, all) = product(&app, &op, Method::GET, "/events").await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let tenants: std::collections::BTreeSet<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tenant"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["Contoso", "Fabrikam"].into());

    // Listed without secrets; revoked, it stops at once.
    let (s, list) = app
        .admin(Method::GET, &format!("/tenants/{ta}/product-tokens"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&p));
    let pid = list["tokens"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = app
        .admin(
            Method::DELETE,
            &format!("/tenants/{ta}/product-tokens/{pid}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/{ta}/users/{alice}/seats"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_credential_is_refused_where_it_does_not_belong() {
    let app = TestApp::spawn().await;
    let (ta, scim) = app.tenant("Contoso").await;
    let (_, p) = issue(&app, &format!("/tenants/{ta}/product-tokens")).await;
    let (_, op) = issue(&app, "/product-tokens").await;
    let ska = app.admin_token(&ta).await;
    let seats = format!("/product/v1/tenants/{ta}/events");

    // No admin, tenant admin or SCIM token (nor none) reaches /product/v1.
    for token in [
        Some(ADMIN_TOKEN),
        Some(ska.as_str()),
        Some(scim.as_str()),
        None,
    ] {
        let (s, e) = app.request(Method::GET, &seats, token, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{token:?}: {e}");
        assert_eq!(e["error"], "unauthorized");
    }
    // No product token reaches the admin API, SCIM or the console.
    for token in [p.as_str(), op.as_str()] {
        let (s, _) = app
            .request(Method::GET, "/admin/v1/tenants", Some(token), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = app
            .request(
                Method::GET,
                &format!("/admin/v1/tenants/{ta}/licenses"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = app.scim(token, Method::GET, "/Users", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let r = app
            .client
            .post(format!("{}/console/login", app.address))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert!(
            r.headers().get("set-cookie").is_none(),
            "a product token signs in to no console"
        );
    }
    // A tenant admin token manages its tenant's product tokens, not the operator's.
    let r = app
        .request(
            Method::POST,
            &format!("/admin/v1/tenants/{ta}/product-tokens"),
            Some(&ska),
            None,
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    let r = app
        .request(Method::POST, "/admin/v1/product-tokens", Some(&ska), None)
        .await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    // Unknown paths answer JSON.
    let (s, e) = product(&app, &p, Method::GET, "/nothing").await;
    assert_eq!(
        (s, &e["error"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
}

#[tokio::test]
async fn reported_use_moves_last_used_forward_and_shows_in_every_seat_view() {
    let app = TestApp::spawn().await;
    let (ta, tok) = app.tenant("Contoso").await;
    let alice = user(&app, &tok, json!({"userName": "alice@contoso.example"})).await;
    let bob = user(&app, &tok, json!({"userName": "bob@contoso.example"})).await;
    app.create_group(&tok, "Sales", &[&alice]).await;
    app.license(&ta, "MindManager", 5, "Sales").await;
    let (_, p) = issue(&app, &format!("/tenants/{ta}/product-tokens")).await;
    let usage = format!("/tenants/{ta}/usage");
    let (s, r) = product_post(
        &app,
        &p,
        &usage,
        json!({"events": [
            {"user": "alice@contoso.example", "license": "MindManager", "at": "2026-01-02T10:00:00Z"},
            {"user": "alice@contoso.example", "license": "MindManager", "at": "2026-01-01T10:00:00Z"},
            {"user": bob, "license": "MindManager"},
            {"user": "nobody", "license": "MindManager"},
            {"user": "alice@contoso.example", "license": "Nothing"}
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    assert_eq!(r["recorded"], 2, "{r}");
    let reasons: Vec<&str> = r["ignored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "the user has no seat of this license",
            "no such user",
            "no such license"
        ]
    );
    // The later use stands: an older report does not move it back.
    let (_, v) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/{ta}/licenses/MindManager/users/{alice}"),
    )
    .await;
    assert_eq!(v["lastUsed"], "2026-01-02T10:00:00.000Z", "{v}");
    let (_, v) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/{ta}/users/{alice}/seats"),
    )
    .await;
    assert_eq!(v["seats"][0]["lastUsed"], "2026-01-02T10:00:00.000Z", "{v}");
    let (_, v) = app
        .admin(
            Method::GET,
            &format!("/tenants/{ta}/licenses/MindManager/seats"),
            None,
        )
        .await;
    assert_eq!(v["seats"][0]["lastUsed"], "2026-01-02T10:00:00.000Z", "{v}");
    let (_, v) = app
        .admin(
            Method::GET,
            &format!("/tenants/{ta}/licenses/MindManager/seats/alice@contoso.example"),
            None,
        )
        .await;
    assert_eq!(v["lastUsed"], "2026-01-02T10:00:00.000Z", "{v}");
    // Bad reports are refused whole.
    for bad in [
        json!({"events": [{"user": alice, "license": "MindManager", "at": "yesterday"}]}),
        json!({"events": [{"user": alice}]}),
        json!({"events": (0..1001).map(|_| json!({"user": "a", "license": "b"})).collect::<Vec<_>>()}),
    ] {
        let (s, e) = product_post(&app, &p, &usage, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    }
}

#[tokio::test]
async fn an_idle_seat_is_noticed_then_reclaimed_and_goes_to_the_next_waiting_user() {
    let (app, clock) = TestApp::spawn_clocked().await;
    let (ta, tok) = app.tenant("Contoso").await;
    let mut ids = Vec::new();
    for name in ["alice", "bob", "carol"] {
        clock.tick();
        ids.push(
            user(
                &app,
                &tok,
                json!({"userName": format!("{name}@contoso.example")}),
            )
            .await,
        );
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    app.create_group(&tok, "Sales", &refs).await;
    let (s, l) = app
        .admin(
            Method::POST,
            &format!("/tenants/{ta}/licenses"),
            Some(
                json!({"name": "MindManager", "seats": 2, "grace_seconds": 3600,
                        "groups": [{"displayName": "Sales"}],
                        "reclaim_idle_days": 10, "reclaim_notice_days": 3}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    assert_eq!(
        (&l["reclaim_idle_days"], &l["reclaim_notice_days"]),
        (&json!(10), &json!(3))
    );
    let lic = format!("/tenants/{ta}/licenses/MindManager");
    // Bob is pinned: never reclaimed. Carol waits.
    let (s, _) = app
        .admin(
            Method::PUT,
            &format!("{lic}/overrides/bob@contoso.example"),
            Some(json!({"kind": "pin"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = app
        .admin(
            Method::PUT,
            &format!("{lic}/overrides/carol@contoso.example"),
            Some(json!({"kind": "idle"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "idle is the reclaim's, not an admin's: {e}"
    );
    for bad in [
        json!({"reclaim_idle_days": 5, "reclaim_notice_days": 5}),
        json!({"reclaim_idle_days": -1}),
    ] {
        let (s, e) = app.admin(Method::PATCH, &lic, Some(bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    }
    let state = |v: &Value, who: &str| -> String {
        v["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["userName"] == who)
            .map_or("none".into(), |s| s["state"].as_str().unwrap().to_owned())
    };
    let reconcile = || async {
        let (s, r) = app
            .admin(Method::POST, &format!("/tenants/{ta}/reconcile"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
    };

    // Seven days unused: alice is told about (bob is pinned), once.
    clock.advance_secs(7 * 86_400 + 60);
    reconcile().await;
    reconcile().await;
    let (_, outbox) = app
        .admin(Method::GET, &format!("/tenants/{ta}/notifications"), None)
        .await;
    let notices: Vec<&Value> = outbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "reclaim_notice")
        .collect();
    assert_eq!(notices.len(), 1, "{outbox}");
    assert_eq!(notices[0]["items"], 1, "{outbox}");
    let (_, preview) = app
        .admin(Method::GET, &format!("{lic}/reclaim"), None)
        .await;
    assert_eq!(preview["due"], json!([]), "{preview}");
    assert_eq!(
        preview["soon"][0]["userName"], "alice@contoso.example",
        "{preview}"
    );

    // Ten days: alice's seat is reclaimed through the grace; the preview showed it.
    clock.advance_secs(3 * 86_400);
    let (_, preview) = app
        .admin(Method::GET, &format!("{lic}/reclaim"), None)
        .await;
    assert_eq!(
        preview["due"][0]["userName"], "alice@contoso.example",
        "{preview}"
    );
    reconcile().await;
    let (_, seats) = app.admin(Method::GET, &format!("{lic}/seats"), None).await;
    assert_eq!(
        state(&seats, "alice@contoso.example"),
        "releasing",
        "{seats}"
    );
    assert_eq!(state(&seats, "bob@contoso.example"), "granted", "{seats}");
    assert_eq!(state(&seats, "carol@contoso.example"), "blocked", "{seats}");
    // After the grace the seat goes to carol, the first waiting.
    clock.advance_secs(3601);
    reconcile().await;
    let (_, seats) = app.admin(Method::GET, &format!("{lic}/seats"), None).await;
    assert_eq!(state(&seats, "alice@contoso.example"), "none", "{seats}");
    assert_eq!(state(&seats, "carol@contoso.example"), "granted", "{seats}");
    assert_eq!(state(&seats, "bob@contoso.example"), "granted", "{seats}");
    let (_, events) = app
        .admin(Method::GET, &format!("/tenants/{ta}/seat-events"), None)
        .await;
    let idle: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cause"] == "idle")
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(idle, ["releasing", "released"], "{events}");
    let (_, audit) = app
        .admin(Method::GET, &format!("/tenants/{ta}/audit"), None)
        .await;
    assert!(audit.to_string().contains("seat.reclaim"), "{audit}");

    // Alice uses the product again: she queues at the end of the waitlist.
    let (_, p) = issue(&app, &format!("/tenants/{ta}/product-tokens")).await;
    let (s, r) = product_post(
        &app,
        &p,
        &format!("/tenants/{ta}/usage"),
        json!({"events": [{"user": "alice@contoso.example", "license": "MindManager"}]}),
    )
    .await;
    assert_eq!(
        (s, &r["recorded"]),
        (StatusCode::ACCEPTED, &json!(1)),
        "{r}"
    );
    let (_, v) = product(
        &app,
        &p,
        Method::GET,
        &format!("/tenants/{ta}/licenses/MindManager/users/alice@contoso.example"),
    )
    .await;
    assert_eq!(
        (&v["state"], &v["position"]),
        (&json!("blocked"), &json!(1)),
        "{v}"
    );
    assert!(v["lastUsed"].is_string(), "{v}");
}
