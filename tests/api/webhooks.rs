//! Signed webhooks over real HTTP: a real receiver (`support/receiver.rs`) verifies every
//! delivery with the Standard Webhooks reference library, and the tests check that it sees each
//! seat change once, in order per user, through an outage (500s, 503 with Retry-After, then
//! back), that a failing endpoint is disabled and told about, that internal addresses are refused
//! at registration and at delivery, and the endpoints' admin API with its scopes.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::receiver::Receiver;

/// Waits (up to 30 s) until `done` holds for what the receiver got; answers it.
async fn until(rx: &Receiver, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..600 {
        let got = rx.received().await;
        if done(&got) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: the receiver got {:#?}", rx.received().await);
}

/// The deliveries at `path` once one of them satisfies `done` (up to 10 s).
async fn listed_until(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut d = Value::Null;
    for _ in 0..200 {
        d = app.admin(Method::GET, path, None).await.1;
        if d["deliveries"]
            .as_array()
            .is_some_and(|l| l.iter().any(&done))
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no delivery as expected at {path}: {d:#}");
}

async fn register(app: &TestApp, base: &str, url: &str, events: Value) -> (String, String) {
    let (s, w) = app
        .admin(
            Method::POST,
            &format!("{base}/webhooks"),
            Some(json!({"url": url, "events": events})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    let secret = w["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (w["id"].as_str().unwrap().to_owned(), secret)
}

/// The webhook type of a seat-feed event.
fn type_of(event: &str) -> &'static str {
    match event {
        "granted" | "promoted" => "seat.granted",
        "blocked" => "seat.blocked",
        "releasing" => "seat.releasing",
        "released" => "seat.released",
        other => panic!("unknown seat event {other}"),
    }
}

/// The tenant's seat-event feed as (user id, webhook type) per user, in order.
async fn feed_by_user(app: &TestApp, tenant: &str) -> HashMap<String, Vec<&'static str>> {
    let (_, feed) = app
        .admin(
            Method::GET,
            &format!("/tenants/{tenant}/seat-events?limit=1000"),
            None,
        )
        .await;
    let mut by: HashMap<String, Vec<&'static str>> = HashMap::new();
    for e in feed["events"].as_array().unwrap() {
        by.entry(e["userId"].as_str().unwrap().to_owned())
            .or_default()
            .push(type_of(e["event"].as_str().unwrap()));
    }
    by
}

/// What a receiver accepted (answered 2xx) at `path`, as types per user, each message once.
fn accepted_by_user(got: &[Value], path: &str) -> HashMap<String, Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let mut by: HashMap<String, Vec<String>> = HashMap::new();
    for d in got
        .iter()
        .filter(|d| d["path"] == path && d["answered"] == 200)
    {
        assert_eq!(d["verified"], true, "a delivery failed verification: {d:#}");
        assert!(
            seen.insert(d["id"].as_str().unwrap().to_owned()),
            "accepted twice: {d:#}"
        );
        let ty = d["body"]["type"].as_str().unwrap();
        if let Some(user) = d["body"]["data"]["user"]["id"].as_str() {
            by.entry(user.to_owned()).or_default().push(ty.to_owned());
        }
    }
    by
}

fn accepted_count(got: &[Value], path: &str) -> usize {
    got.iter()
        .filter(|d| d["path"] == path && d["answered"] == 200)
        .count()
}

/// A tenant with three users in Sales and a 2-seat license with a grace of an hour: two granted,
/// one waiting. Answers (tenant, token, users in id order).
async fn contoso(app: &TestApp) -> (String, String, Vec<String>) {
    let (t, tok) = app.tenant("Contoso").await;
    let mut users = Vec::new();
    for n in ["ann", "ben", "cat"] {
        users.push(id(&app
            .create_user(&tok, &format!("{n}@contoso.example"))
            .await));
    }
    users.sort();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    app.create_group(&tok, "Sales", &refs).await;
    (t, tok, users)
}

async fn license(app: &TestApp, t: &str) -> String {
    let (s, l) = app
        .admin(
            Method::POST,
            &format!("/tenants/{t}/licenses"),
            Some(
                json!({"name": "MindManager", "seats": 2, "grace_seconds": 3600,
                        "groups": [{"displayName": "Sales"}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    id(&l)
}

/// Deactivates `user`: its seat starts its grace.
async fn deactivate(app: &TestApp, tok: &str, user: &str) {
    let (s, b) = app
        .scim(
            tok,
            Method::PATCH,
            &format!("/Users/{user}"),
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn every_seat_change_is_delivered_signed_once_and_in_order_per_user() {
    let (app, clock) = TestApp::spawn_clocked().await;
    let rx = Receiver::start().await;
    let (t, tok, users) = contoso(&app).await;
    let (_, secret) = register(
        &app,
        &format!("/tenants/{t}"),
        &rx.url("/hooks/a"),
        json!([]),
    )
    .await;
    rx.trust("/hooks/a", &[&secret]).await;
    let l = license(&app, &t).await;
    // The first user loses the seat: grace, then released, and the waiting user moves up.
    deactivate(&app, &tok, &users[0]).await;
    clock.advance_secs(3601);
    let (s, _) = app
        .admin(Method::POST, &format!("/tenants/{t}/reconcile"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{t}/licenses/{l}"),
            Some(json!({"seats": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let want = feed_by_user(&app, &t).await;
    assert_eq!(
        want[&users[0]],
        ["seat.granted", "seat.releasing", "seat.released"]
    );
    assert_eq!(want[&users[2]], ["seat.blocked", "seat.granted"]);
    let total: usize = want.values().map(Vec::len).sum::<usize>() + 1;
    let got = until(&rx, "every change delivered", |g| {
        accepted_count(g, "/hooks/a") >= total
    })
    .await;
    let by = accepted_by_user(&got, "/hooks/a");
    for (user, types) in &want {
        assert_eq!(
            &by[user], types,
            "deliveries of {user} out of order or missing"
        );
    }
    // What the data says.
    let find = |user: &str, ty: &str, nth: usize| -> Value {
        got.iter()
            .filter(|d| d["body"]["data"]["user"]["id"] == user && d["body"]["type"] == ty)
            .nth(nth)
            .unwrap_or_else(|| panic!("no {ty} of {user}"))["body"]
            .clone()
    };
    let blocked = find(&users[2], "seat.blocked", 0);
    assert_eq!(blocked["data"]["position"], 1, "{blocked:#}");
    assert_eq!(blocked["data"]["state"], "blocked");
    assert_eq!(blocked["data"]["previous"], Value::Null);
    assert_eq!(blocked["data"]["tenant"]["name"], "Contoso");
    assert_eq!(blocked["data"]["license"]["name"], "MindManager");
    assert_eq!(blocked["data"]["license"]["id"], l);
    let (_, third) = app
        .scim(&tok, Method::GET, &format!("/Users/{}", users[2]), None)
        .await;
    assert_eq!(blocked["data"]["user"]["userName"], third["userName"]);
    let promoted = find(&users[2], "seat.granted", 0);
    assert_eq!(promoted["data"]["previous"], "blocked");
    assert_eq!(promoted["data"]["state"], "granted");
    assert_eq!(promoted["data"]["position"], Value::Null);
    let released = find(&users[0], "seat.released", 0);
    assert_eq!(released["data"]["previous"], "releasing");
    assert_eq!(released["data"]["state"], "none");
    assert!(released["timestamp"]
        .as_str()
        .unwrap()
        .starts_with("2026-01-01T01:00"));
    let updated: Vec<&Value> = got
        .iter()
        .filter(|d| d["body"]["type"] == "license.updated")
        .collect();
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["body"]["data"]["license"]["seats"], 3);
    assert_eq!(updated[0]["body"]["data"]["previous"]["seats"], 2);
    // Every header as the specification has it.
    for d in &got {
        assert!(d["id"].as_str().unwrap().starts_with("msg_"));
        let ts: i64 = d["timestamp"].as_str().unwrap().parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now - ts).abs() < 120, "{d:#}");
        assert!(d["signature"].as_str().unwrap().starts_with("v1,"));
    }
}

#[tokio::test]
async fn an_outage_of_the_receiver_loses_nothing_and_retry_after_is_honoured() {
    let (app, clock) = TestApp::spawn_clocked().await;
    let rx = Receiver::start().await;
    let (t, tok, users) = contoso(&app).await;
    let (hook, secret) = register(
        &app,
        &format!("/tenants/{t}"),
        &rx.url("/hooks/b"),
        json!([
            "seat.granted",
            "seat.blocked",
            "seat.releasing",
            "seat.released"
        ]),
    )
    .await;
    rx.trust("/hooks/b", &[&secret]).await;
    rx.control(json!({"status": {"/hooks/b": 500}})).await;
    license(&app, &t).await;
    deactivate(&app, &tok, &users[1]).await;
    until(&rx, "a first attempt answered 500", |g| {
        g.iter().any(|d| d["answered"] == 500)
    })
    .await;
    let deliveries = format!("/tenants/{t}/webhooks/{hook}/deliveries");
    // The receiver has answered; the outcome is recorded right after.
    let d = listed_until(&app, &deliveries, |x| x["lastStatus"] == 500).await;
    let list = d["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 4, "{d:#}");
    assert!(list.iter().all(|x| x["state"] == "pending"), "{d:#}");
    assert!(
        list.iter()
            .any(|x| x["lastStatus"] == 500 && x["attempts"] == 1),
        "{d:#}"
    );
    // The receiver now asks for two hours of quiet.
    rx.control(json!({"status": {"/hooks/b": 503}, "retry_after": {"/hooks/b": 7200}}))
        .await;
    clock.advance_secs(600);
    until(&rx, "an attempt answered 503", |g| {
        g.iter().any(|d| d["answered"] == 503)
    })
    .await;
    let d = listed_until(&app, &deliveries, |x| x["lastStatus"] == 503).await;
    let with_503 = d["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["lastStatus"] == 503)
        .cloned()
        .unwrap_or_else(|| panic!("{d:#}"));
    // Now = start + 600 s; the next attempt is two hours later.
    assert!(
        with_503["nextAttempt"]
            .as_str()
            .unwrap()
            .starts_with("2026-01-01T02:10"),
        "{with_503:#}"
    );
    let attempts_before = rx.received().await.len();
    clock.advance_secs(1800);
    app.dispatcher_pass().await;
    assert_eq!(
        rx.received().await.len(),
        attempts_before,
        "an attempt came before Retry-After ran out"
    );
    // Back: everything arrives, once each, in order per user.
    rx.control(json!({"status": {"/hooks/b": 200}})).await;
    clock.advance_secs(7200);
    let want = feed_by_user(&app, &t).await;
    let total: usize = want.values().map(Vec::len).sum();
    let got = until(&rx, "everything after the outage", |g| {
        accepted_count(g, "/hooks/b") >= total
    })
    .await;
    assert_eq!(accepted_by_user(&got, "/hooks/b"), {
        want.iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|s| s.to_string()).collect()))
            .collect::<HashMap<_, _>>()
    });
    // The receiver answered; the outcomes are recorded right after.
    let mut d = Value::Null;
    for _ in 0..100 {
        d = app.admin(Method::GET, &deliveries, None).await.1;
        if d["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["state"] == "delivered")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        d["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["state"] == "delivered"),
        "{d:#}"
    );
    // Redelivered by hand: the same message again.
    let first = d["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let (s, r) = app
        .admin(
            Method::POST,
            &format!("{deliveries}/{first}/redeliver"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    until(&rx, "the redelivery", |g| {
        g.iter()
            .filter(|d| d["id"] == first.as_str() && d["answered"] == 200)
            .count()
            == 2
    })
    .await;
}

#[tokio::test]
async fn an_endpoint_failing_too_long_is_disabled_told_and_resumes_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let app = TestApp::spawn_in(dir.path(), &clock, |c| {
        c.webhook_disable_after_seconds = 60;
    })
    .await;
    let rx = Receiver::start().await;
    let (t, _tok, _users) = contoso(&app).await;
    let (hook, secret) = register(
        &app,
        &format!("/tenants/{t}"),
        &rx.url("/hooks/c"),
        json!(["seat.granted"]),
    )
    .await;
    rx.trust("/hooks/c", &[&secret]).await;
    rx.control(json!({"status": {"/hooks/c": 502}})).await;
    license(&app, &t).await;
    until(&rx, "a first attempt", |g| !g.is_empty()).await;
    let path = format!("/tenants/{t}/webhooks/{hook}");
    // The failure is recorded (failing since now) before the clock moves on.
    for _ in 0..200 {
        if app.admin(Method::GET, &path, None).await.1["failingSince"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    clock.advance_secs(61);
    let mut w = Value::Null;
    for _ in 0..200 {
        w = app.admin(Method::GET, &path, None).await.1;
        if w["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(w["enabled"], false, "{w:#}");
    assert!(
        w["disabledReason"].as_str().unwrap().contains("HTTP 502"),
        "{w:#}"
    );
    assert_eq!(w["pending"], 2, "{w:#}");
    let (_, n) = app
        .admin(Method::GET, &format!("/tenants/{t}/notifications"), None)
        .await;
    assert!(
        n["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "webhook_disabled"),
        "{n:#}"
    );
    // Fixed and enabled again: the waiting deliveries go out.
    rx.control(json!({"status": {"/hooks/c": 200}})).await;
    let (s, w) = app
        .admin(Method::PATCH, &path, Some(json!({"enabled": true})))
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["enabled"], true);
    assert_eq!(w["disabledReason"], Value::Null);
    until(&rx, "the deliveries held while disabled", |g| {
        accepted_count(g, "/hooks/c") == 2
    })
    .await;
}

#[tokio::test]
async fn internal_addresses_are_refused_at_registration_and_at_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let strict = |c: &mut seatkeeper::config::Config| {
        c.webhook_allow_http = false;
        c.webhook_allow_private_addresses = false;
    };
    let app = TestApp::spawn_in(dir.path(), &clock, strict).await;
    let (t, _) = app.tenant("Contoso").await;
    let hooks = format!("/tenants/{t}/webhooks");
    // An internal host is refused without saying what it resolves to.
    let internal = "resolves to an internal address";
    for (url, says, hidden) in [
        ("http://example.com/hook", "https only", ""),
        ("https://127.0.0.1/hook", internal, "127.0.0.1"),
        ("https://localhost:8443/hook", internal, "127.0.0.1"),
        ("https://10.1.2.3/hook", internal, "10.1.2.3"),
        (
            "https://169.254.169.254/latest/meta-data",
            internal,
            "169.254",
        ),
        ("https://[::1]/hook", internal, "::1"),
        ("https://[fd00:ec2::254]/hook", internal, "fd00"),
        ("https://[::7f00:1]/hook", internal, "7f00"),
        ("https://[fec0::1]/hook", internal, "fec0"),
        ("https://[2002:7f00:1::1]/hook", internal, "2002"),
        ("https://168.63.129.16/hook", internal, "168.63"),
        (
            "https://no-such-host.invalid/hook",
            "cannot be resolved",
            "invalid",
        ),
        (
            "https://user:secret@example.com/hook",
            "credentials in the URL",
            "secret",
        ),
        ("ftp://example.com/hook", "scheme", ""),
        ("not a url", "url", ""),
    ] {
        let (s, e) = app
            .admin(Method::POST, &hooks, Some(json!({"url": url})))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{url}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(says), "{url}: {e}");
        if !hidden.is_empty() {
            assert!(!message.contains(hidden), "{url}: the answer names it: {e}");
        }
    }
    app.stop().await;

    // Registered while the operator allowed it, then refused at delivery once they do not.
    let rx = Receiver::start().await;
    let app = TestApp::spawn_in(dir.path(), &clock, |_| {}).await;
    let url = format!("http://localhost:{}/hooks/d", rx.port);
    let (hook, _) = register(&app, &format!("/tenants/{t}"), &url, json!([])).await;
    app.stop().await;
    let app = TestApp::spawn_in(dir.path(), &clock, |c| {
        c.webhook_allow_private_addresses = false;
    })
    .await;
    let (_, tok) = {
        let (s, v) = app
            .admin(Method::POST, &format!("/tenants/{t}/tokens"), None)
            .await;
        assert_eq!(s, StatusCode::CREATED);
        (s, v["token"].as_str().unwrap().to_owned())
    };
    let u = id(&app.create_user(&tok, "ann@contoso.example").await);
    app.create_group(&tok, "Sales", &[&u]).await;
    license(&app, &t).await;
    let deliveries = format!("/tenants/{t}/webhooks/{hook}/deliveries");
    let mut d = Value::Null;
    for _ in 0..200 {
        d = app.admin(Method::GET, &deliveries, None).await.1;
        if d["deliveries"]
            .as_array()
            .is_some_and(|l| !l.is_empty() && l.iter().all(|x| x["state"] == "failed"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = d["deliveries"].as_array().unwrap();
    assert!(!list.is_empty(), "{d:#}");
    for x in list {
        assert_eq!(x["state"], "failed", "{d:#}");
        assert!(
            x["lastError"]
                .as_str()
                .unwrap()
                .contains("internal address"),
            "{d:#}"
        );
        assert!(
            !x["lastError"].as_str().unwrap().contains("127.0.0.1"),
            "{d:#}"
        );
    }
    assert!(
        rx.received().await.is_empty(),
        "a delivery reached an internal address"
    );
}

#[tokio::test]
async fn endpoints_are_managed_scoped_and_rotated() {
    let (app, _clock) = TestApp::spawn_clocked().await;
    let rx = Receiver::start().await;
    let (t, _tok, users) = contoso(&app).await;
    let (other, other_tok) = app.tenant("Fabrikam").await;
    let tenant_admin = app.admin_token(&t).await;
    let base = format!("/tenants/{t}/webhooks");

    // Refusals.
    for body in [
        json!({"url": rx.url("/x"), "events": ["seat.eaten"]}),
        json!({"url": rx.url("/x"), "colour": "red"}),
        json!({"events": []}),
    ] {
        let (s, e) = app.admin(Method::POST, &base, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
    }
    let (s, _) = app
        .admin(Method::GET, "/tenants/nobody/webhooks", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A tenant admin token manages its tenant's endpoints, not the operator's.
    let as_tenant = |m: Method, path: String, body: Option<Value>| {
        let app = &app;
        let tenant_admin = tenant_admin.clone();
        async move {
            app.request(m, &format!("/admin/v1{path}"), Some(&tenant_admin), body)
                .await
        }
    };
    let (s, w) = as_tenant(
        Method::POST,
        base.clone(),
        Some(json!({"url": rx.url("/hooks/e"), "events": ["seat.granted"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    let hook = w["id"].as_str().unwrap().to_owned();
    let first_secret = w["secret"].as_str().unwrap().to_owned();
    assert_eq!(w["events"], json!(["seat.granted"]));
    let (s, _) = as_tenant(Method::GET, "/webhooks".into(), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = as_tenant(Method::GET, format!("/tenants/{other}/webhooks"), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, l) = as_tenant(Method::GET, base.clone(), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(l["webhooks"].as_array().unwrap().len(), 1);
    assert!(l["webhooks"][0].get("secret").is_none(), "{l}");

    // Rotated: deliveries carry both signatures, so a receiver that knows only the new secret
    // verifies them (and so would one still on the old).
    let (s, r) = app
        .admin(Method::POST, &format!("{base}/{hook}/rotate"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let new_secret = r["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, first_secret);
    rx.trust("/hooks/e", &[&new_secret]).await;

    // The operator's endpoint hears every tenant.
    let (op_hook, op_secret) = register(&app, "", &rx.url("/hooks/op"), json!([])).await;
    rx.trust("/hooks/op", &[&op_secret]).await;
    license(&app, &t).await;
    let u = id(&app.create_user(&other_tok, "zoe@fabrikam.example").await);
    app.create_group(&other_tok, "Sales", &[&u]).await;
    license(&app, &other).await;
    let got = until(&rx, "both endpoints", |g| {
        accepted_count(g, "/hooks/e") >= 2 && accepted_count(g, "/hooks/op") >= 4
    })
    .await;
    let e: Vec<&Value> = got.iter().filter(|d| d["path"] == "/hooks/e").collect();
    assert!(e
        .iter()
        .all(|d| d["verified"] == true && d["body"]["type"] == "seat.granted"));
    assert_eq!(
        e[0]["signature"].as_str().unwrap().split(' ').count(),
        2,
        "{:#}",
        e[0]
    );
    let tenants: std::collections::BTreeSet<String> = got
        .iter()
        .filter(|d| d["path"] == "/hooks/op")
        .map(|d| {
            d["body"]["data"]["tenant"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        tenants.into_iter().collect::<Vec<_>>(),
        ["Contoso", "Fabrikam"]
    );
    let (s, l) = app.admin(Method::GET, "/webhooks", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(l["webhooks"][0]["id"], op_hook.as_str());

    // The operator's endpoint, by its own routes: read, its deliveries, one sent again, a new
    // secret, changed, deleted.
    let op = format!("/webhooks/{op_hook}");
    let (s, w) = app.admin(Method::GET, &op, None).await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["url"], rx.url("/hooks/op"));
    assert!(w.get("secret").is_none(), "{w}");
    let d = listed_until(&app, &format!("{op}/deliveries"), |x| {
        x["state"] == "delivered"
    })
    .await;
    let delivered: Vec<&Value> = d["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["state"] == "delivered")
        .collect();
    assert!(!delivered.is_empty(), "{d:#}");
    let again = delivered[0]["id"].as_str().unwrap().to_owned();
    let (s, r) = app
        .admin(
            Method::POST,
            &format!("{op}/deliveries/{again}/redeliver"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    until(&rx, "the operator's redelivery", |g| {
        g.iter()
            .filter(|d| d["id"] == again.as_str() && d["path"] == "/hooks/op")
            .count()
            >= 2
    })
    .await;
    let (s, r) = app.admin(Method::POST, &format!("{op}/rotate"), None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_ne!(r["secret"].as_str().unwrap(), op_secret);
    let (s, w) = app
        .admin(
            Method::PATCH,
            &op,
            Some(json!({"events": ["seat.released"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["events"], json!(["seat.released"]));
    let (s, _) = app.admin(Method::DELETE, &op, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.admin(Method::GET, &op, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Updated to blocked events only, then deleted.
    let (s, w) = app
        .admin(
            Method::PATCH,
            &format!("{base}/{hook}"),
            Some(json!({"events": ["seat.blocked"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["events"], json!(["seat.blocked"]));
    let _ = users;
    let (s, _) = app
        .admin(Method::DELETE, &format!("{base}/{hook}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .admin(Method::GET, &format!("{base}/{hook}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
