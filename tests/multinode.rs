//! Several real seatkeeper processes on one PostgreSQL database behave as one service: one
//! allocation (the seat count never exceeded, one waitlist order whichever node took a
//! request), no acknowledged write lost when a node is killed while the others keep serving, a
//! token revoked through one node refused by another within a second, a notification mailed
//! once however many nodes send, a webhook delivered once in order per user however many
//! nodes dispatch. The cluster is the tests' own (`support/postgres.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// This binary's daemons run on PostgreSQL.
pub const ON_POSTGRES: bool = true;
#[path = "support/postgres.rs"]
mod postgres_support;
#[path = "support/python.rs"]
mod python;
#[path = "support/receiver.rs"]
mod receiver;

const ADMIN: &str = "multinode-admin-token-0123456789";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `seatkeeper serve` process on `database`, ready.
async fn node(database: &str, dir: &std::path::Path) -> Node {
    node_with(database, dir, &[]).await
}

/// As [`node`], with settings of its own (`env`).
async fn node_with(database: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> Node {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("node-{port}.log")))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
        .arg("serve")
        .env("SEATKEEPER_DATABASE", database)
        .env("SEATKEEPER_LISTEN", format!("127.0.0.1:{port}"))
        .env("SEATKEEPER_ADMIN_TOKEN", ADMIN)
        .env("SEATKEEPER_WORKERS", "2")
        .env("SEATKEEPER_MAIL_DIR", dir.join("mail"))
        .env("SEATKEEPER_SCIM_REQUESTS_PER_SECOND", "10000")
        .env("SEATKEEPER_SCIM_BURST", "10000")
        .env("SEATKEEPER_WEBHOOK_ALLOW_HTTP", "true")
        .env("SEATKEEPER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the daemon starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "a node did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Node { child, base }
}

async fn nodes(n: usize) -> (Vec<Node>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let database = postgres_support::cluster().database();
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(node(&database, dir.path()).await);
    }
    (out, dir)
}

async fn json_of(r: reqwest::RequestBuilder) -> (reqwest::StatusCode, Value) {
    let r = r.send().await.unwrap();
    let s = r.status();
    let t = r.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

/// A tenant with a SCIM token, made through `base`.
async fn tenant(c: &reqwest::Client, base: &str, name: &str) -> (String, String) {
    let (s, t) = json_of(
        c.post(format!("{base}/admin/v1/tenants"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": name, "notify": ["licensing@example.com"]})),
    )
    .await;
    assert!(s.is_success(), "{t}");
    let id = t["id"].as_str().unwrap().to_owned();
    let (s, tok) = json_of(
        c.post(format!("{base}/admin/v1/tenants/{id}/tokens"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert!(s.is_success(), "{tok}");
    (id, tok["token"].as_str().unwrap().to_owned())
}

async fn create_user(c: &reqwest::Client, base: &str, tok: &str, name: &str) -> String {
    let (s, u) = json_of(
        c.post(format!("{base}/scim/v2/Users"))
            .bearer_auth(tok)
            .header("Content-Type", "application/scim+json")
            .body(json!({"schemas": [USER], "userName": name, "active": true}).to_string()),
    )
    .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{u}");
    u["id"].as_str().unwrap().to_owned()
}

/// Adds `user` to `group` through the node at `base` (a SCIM PATCH, as a provider sends it).
async fn add_member(c: &reqwest::Client, base: &str, tok: &str, group: &str, user: &str) {
    let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                     "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}]});
    let (s, body) = json_of(
        c.patch(format!("{base}/scim/v2/Groups/{group}"))
            .bearer_auth(tok)
            .header("Content-Type", "application/scim+json")
            .body(add.to_string()),
    )
    .await;
    assert!(s.is_success(), "{s} {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_concurrent_adds_over_three_nodes_grant_exactly_five_in_one_order() {
    let (nodes, _dir) = nodes(3).await;
    let c = reqwest::Client::new();
    let (tid, tok) = tenant(&c, &nodes[0].base, "contoso").await;
    let mut users = Vec::new();
    for i in 0..40 {
        let base = &nodes[i % 3].base;
        users.push(create_user(&c, base, &tok, &format!("u{i:02}@contoso.example")).await);
    }
    // Eight selected groups, so that concurrent adds share no group row: nothing but the
    // store's own serialization stands between them and a ninth grant.
    let mut groups = Vec::new();
    for g in 0..8 {
        let (s, v) = json_of(
            c.post(format!("{}/scim/v2/Groups", nodes[g % 3].base))
                .bearer_auth(&tok)
                .header("Content-Type", "application/scim+json")
                .body(json!({"displayName": format!("Licensed {g}")}).to_string()),
        )
        .await;
        assert!(s.is_success(), "{v}");
        groups.push(v["id"].as_str().unwrap().to_owned());
    }
    let selectors: Vec<Value> = groups.iter().map(|g| json!({"id": g})).collect();
    let (s, l) = json_of(
        c.post(format!("{}/admin/v1/tenants/{tid}/licenses", nodes[2].base))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "pro", "seats": 5, "groups": selectors})),
    )
    .await;
    assert!(s.is_success(), "{l}");

    // Forty member adds at once, spread over the three nodes and the eight groups.
    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let (c, base, tok, group, u) = (
            c.clone(),
            nodes[i % 3].base.clone(),
            tok.clone(),
            groups[i % 8].clone(),
            u.clone(),
        );
        tasks.push(tokio::spawn(async move {
            add_member(&c, &base, &tok, &group, &u).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    // Every node answers the same seats: 5 granted, 35 waiting in one order.
    let mut seen: Option<Vec<(String, String, Value)>> = None;
    for n in &nodes {
        let (s, v) = json_of(
            c.get(format!(
                "{}/admin/v1/tenants/{tid}/licenses/pro/seats",
                n.base
            ))
            .bearer_auth(ADMIN),
        )
        .await;
        assert!(s.is_success(), "{v}");
        assert_eq!(
            (v["granted"].as_i64(), v["blocked"].as_i64()),
            (Some(5), Some(35)),
            "{v}"
        );
        let seats: Vec<(String, String, Value)> = v["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["userId"].as_str().unwrap().to_owned(),
                    s["state"].as_str().unwrap().to_owned(),
                    s["position"].clone(),
                )
            })
            .collect();
        let positions: Vec<i64> = seats.iter().filter_map(|s| s.2.as_i64()).collect();
        assert_eq!(positions, (1..=35).collect::<Vec<_>>());
        // The waitlist follows the order the database applied the adds: by entitlement stamp,
        // strictly increasing (no two adds share one).
        let stamps: Vec<String> = v["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["entitledAt"].as_str().unwrap().to_owned())
            .collect();
        let distinct: BTreeSet<&String> = stamps.iter().collect();
        assert!(distinct.len() >= 2, "{stamps:?}");
        match &seen {
            None => seen = Some(seats),
            Some(first) => assert_eq!(first, &seats, "every node answers one order"),
        }
    }
    let (s, check) = json_of(
        c.get(format!(
            "{}/admin/v1/tenants/{tid}/seat-events?limit=1000",
            nodes[0].base
        ))
        .bearer_auth(ADMIN),
    )
    .await;
    assert!(s.is_success(), "{check}");
    let granted = check["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "granted")
        .count();
    assert_eq!(granted, 5, "never more than five seats granted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_loses_no_acknowledged_write_and_the_others_keep_serving() {
    let (mut nodes, _dir) = nodes(3).await;
    let c = reqwest::Client::new();
    let (_tid, tok) = tenant(&c, &nodes[0].base, "fabrikam").await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..6 {
        let (c, base, tok, acked) = (
            c.clone(),
            nodes[w % 3].base.clone(),
            tok.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_millis(1500);
            let mut i = 0;
            while Instant::now() < deadline {
                i += 1;
                let body =
                    json!({"schemas": [USER], "userName": format!("w{w}u{i}@fabrikam.example")});
                let Ok(r) = c
                    .post(format!("{base}/scim/v2/Users"))
                    .bearer_auth(&tok)
                    .header("Content-Type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await
                else {
                    continue; // the killed node: its clients move on
                };
                if r.status() == reqwest::StatusCode::CREATED {
                    let u: Value = r.json().await.unwrap();
                    acked
                        .lock()
                        .unwrap()
                        .push(u["id"].as_str().unwrap().to_owned());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // SAFETY: SIGKILL to the node this test started.
    unsafe {
        libc::kill(nodes[0].child.id() as i32, libc::SIGKILL);
    }
    for t in tasks {
        t.await.unwrap();
    }
    let _ = nodes[0].child.wait();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "the load ran: {} writes acknowledged",
        acked.len()
    );
    for survivor in &nodes[1..] {
        for id in &acked {
            let (s, u) = json_of(
                c.get(format!("{}/scim/v2/Users/{id}", survivor.base))
                    .bearer_auth(&tok),
            )
            .await;
            assert_eq!(
                s,
                reqwest::StatusCode::OK,
                "acknowledged user {id} is there: {u}"
            );
        }
        // And the survivors still take writes.
        create_user(
            &c,
            &survivor.base,
            &tok,
            &format!("after@{}.example", survivor.child.id()),
        )
        .await;
    }
    nodes.remove(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_revoked_through_one_node_is_refused_by_another_within_a_second() {
    let (nodes, _dir) = nodes(2).await;
    let c = reqwest::Client::new();
    let (tid, tok) = tenant(&c, &nodes[0].base, "tailspin").await;
    // Node 1 accepts the token (and remembers it).
    let (s, _) = json_of(
        c.get(format!("{}/scim/v2/Users", nodes[1].base))
            .bearer_auth(&tok),
    )
    .await;
    assert_eq!(s, reqwest::StatusCode::OK);
    let id = tok.split('_').nth(1).unwrap();
    let (s, _) = json_of(
        c.delete(format!(
            "{}/admin/v1/tenants/{tid}/tokens/{id}",
            nodes[0].base
        ))
        .bearer_auth(ADMIN),
    )
    .await;
    assert!(s.is_success());
    let revoked = Instant::now();
    loop {
        let (s, _) = json_of(
            c.get(format!("{}/scim/v2/Users", nodes[1].base))
                .bearer_auth(&tok),
        )
        .await;
        if s == reqwest::StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_millis(1500),
            "node 1 still accepts a token node 0 revoked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notification_is_mailed_once_however_many_nodes_send() {
    let (nodes, dir) = nodes(3).await;
    let c = reqwest::Client::new();
    let (tid, _tok) = tenant(&c, &nodes[0].base, "northwind").await;
    let (s, _) = json_of(
        c.post(format!(
            "{}/admin/v1/tenants/{tid}/notifications/test",
            nodes[1].base
        ))
        .bearer_auth(ADMIN),
    )
    .await;
    assert!(s.is_success());
    let folder = dir.path().join("mail");
    let count = || {
        std::fs::read_dir(&folder)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while count() == 0 {
        assert!(Instant::now() < deadline, "no node sent the message");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every node's sender has had several turns since.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(), 1, "sent once");
    let (s, n) = json_of(
        c.get(format!(
            "{}/admin/v1/tenants/{tid}/notifications",
            nodes[2].base
        ))
        .bearer_auth(ADMIN),
    )
    .await;
    assert!(s.is_success(), "{n}");
    assert_eq!(n["counts"]["sent"], 1, "{n}");
}

/// The events of the tenant's notifications of `kind`, read through `base`.
async fn events_of(c: &reqwest::Client, base: &str, tid: &str, kind: &str) -> Vec<Value> {
    let (s, n) = json_of(
        c.get(format!("{base}/admin/v1/tenants/{tid}/notifications"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert!(s.is_success(), "{n}");
    let mut events = Vec::new();
    for row in n["notifications"].as_array().unwrap() {
        if row["kind"] != kind {
            continue;
        }
        let (s, d) = json_of(
            c.get(format!(
                "{base}/admin/v1/tenants/{tid}/notifications/{}",
                row["id"]
            ))
            .bearer_auth(ADMIN),
        )
        .await;
        assert!(s.is_success(), "{d}");
        events.extend(d["events"].as_array().unwrap().iter().cloned());
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_requests_and_refused_tokens_add_up_over_nodes() {
    // Six failures within the window make a notification; three reach each node.
    let dir = tempfile::tempdir().unwrap();
    let database = postgres_support::cluster().database();
    let env = [("SEATKEEPER_SCIM_FAILURE_THRESHOLD", "6")];
    let a = node_with(&database, dir.path(), &env).await;
    let b = node_with(&database, dir.path(), &env).await;
    let c = reqwest::Client::new();
    let (tid, tok) = tenant(&c, &a.base, "tailspin").await;
    create_user(&c, &a.base, &tok, "taken@tailspin.example").await;
    for i in 0..6 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let (s, _) = json_of(
            c.post(format!("{base}/scim/v2/Users"))
                .bearer_auth(&tok)
                .header("Content-Type", "application/scim+json")
                .body(json!({"schemas": [USER], "userName": "taken@tailspin.example"}).to_string()),
        )
        .await;
        assert_eq!(s, reqwest::StatusCode::CONFLICT);
    }
    // A revoked token, used through both nodes: one record, its refusals counted.
    let (s, old) = json_of(
        c.post(format!("{}/admin/v1/tenants/{tid}/tokens", a.base))
            .bearer_auth(ADMIN),
    )
    .await;
    assert!(s.is_success(), "{old}");
    let (s, _) = json_of(
        c.delete(format!(
            "{}/admin/v1/tenants/{tid}/tokens/{}",
            a.base,
            old["id"].as_str().unwrap()
        ))
        .bearer_auth(ADMIN),
    )
    .await;
    assert!(s.is_success());
    let old = old["token"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // revocation reaches every node
    for base in [&a.base, &b.base, &a.base, &b.base] {
        let r = c
            .get(format!("{base}/scim/v2/Users"))
            .bearer_auth(old)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    }
    // The counts are written after the answers: wait for them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (failing, refused) = loop {
        let failing = events_of(&c, &b.base, &tid, "scim_failures").await;
        let refused = events_of(&c, &a.base, &tid, "auth_failures").await;
        if (!failing.is_empty() && !refused.is_empty()) || Instant::now() > deadline {
            break (failing, refused);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failing.len(), 1, "one notification: {failing:?}");
    assert_eq!(failing[0]["failedRequests"], 6, "{failing:?}");
    assert_eq!(
        failing[0]["mostCommonErrors"], "6 × 409 uniqueness on POST /scim/v2/Users",
        "{failing:?}"
    );
    assert_eq!(refused.len(), 1, "recorded once a minute: {refused:?}");
    assert_eq!(refused[0]["requests"], 1, "{refused:?}");
    // The three refusals after the record are counted in the database, for the next record.
    let unrecorded = std::thread::spawn(move || {
        let mut db = postgres::Client::connect(&database, postgres::NoTls).unwrap();
        db.query_one(
            "SELECT unrecorded FROM alert_marks WHERE name LIKE 'refused %'",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0)
    })
    .join()
    .unwrap();
    assert_eq!(unrecorded, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_webhook_is_delivered_once_in_order_however_many_nodes_dispatch() {
    let (nodes, _dir) = nodes(3).await;
    let rx = receiver::Receiver::start().await;
    let c = reqwest::Client::new();
    let (tid, tok) = tenant(&c, &nodes[0].base, "litware").await;
    let (s, w) = json_of(
        c.post(format!("{}/admin/v1/tenants/{tid}/webhooks", nodes[1].base))
            .bearer_auth(ADMIN)
            .json(&json!({"url": rx.url("/hooks"), "events": []})),
    )
    .await;
    assert!(s.is_success(), "{w}");
    rx.trust("/hooks", &[w["secret"].as_str().unwrap()]).await;
    let (s, g) = json_of(
        c.post(format!("{}/scim/v2/Groups", nodes[0].base))
            .bearer_auth(&tok)
            .header("Content-Type", "application/scim+json")
            .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Staff"}).to_string()),
    )
    .await;
    assert!(s.is_success(), "{g}");
    let group = g["id"].as_str().unwrap().to_owned();
    let (s, l) = json_of(
        c.post(format!("{}/admin/v1/tenants/{tid}/licenses", nodes[2].base))
            .bearer_auth(ADMIN)
            .json(
                &json!({"name": "pro", "seats": 3, "grace_seconds": 0, "groups": [{"id": group}]}),
            ),
    )
    .await;
    assert!(s.is_success(), "{l}");
    // Users join through every node; the first leaves again (released, and the next promoted).
    let mut users = Vec::new();
    for i in 0..9 {
        let base = &nodes[i % 3].base;
        let u = create_user(&c, base, &tok, &format!("u{i}@litware.test")).await;
        add_member(&c, base, &tok, &group, &u).await;
        users.push(u);
    }
    let remove = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{}\"]", users[0])}]});
    let (s, b) = json_of(
        c.patch(format!("{}/scim/v2/Groups/{group}", nodes[1].base))
            .bearer_auth(&tok)
            .header("Content-Type", "application/scim+json")
            .body(remove.to_string()),
    )
    .await;
    assert!(s.is_success(), "{b}");
    let (_, feed) = json_of(
        c.get(format!(
            "{}/admin/v1/tenants/{tid}/seat-events?limit=1000",
            nodes[0].base
        ))
        .bearer_auth(ADMIN),
    )
    .await;
    let mut want: std::collections::HashMap<String, Vec<String>> = Default::default();
    for e in feed["events"].as_array().unwrap() {
        let ty = match e["event"].as_str().unwrap() {
            "granted" | "promoted" => "seat.granted",
            other => match other {
                "blocked" => "seat.blocked",
                "releasing" => "seat.releasing",
                _ => "seat.released",
            },
        };
        want.entry(e["userId"].as_str().unwrap().to_owned())
            .or_default()
            .push(ty.to_owned());
    }
    let total: usize = want.values().map(Vec::len).sum();
    assert!(
        want[&users[0]].ends_with(&["seat.released".to_owned()]),
        "{want:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = rx.received().await;
        if got.len() >= total {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {total} delivered",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Every node's dispatcher has had several turns since.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got_now = rx.received().await;
    assert_eq!(got_now.len(), got.len(), "a delivery was sent twice");
    let mut by: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut ids = BTreeSet::new();
    for d in &got_now {
        assert_eq!(d["verified"], true, "{d}");
        assert!(
            ids.insert(d["id"].as_str().unwrap().to_owned()),
            "twice: {d}"
        );
        by.entry(d["body"]["data"]["user"]["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(d["body"]["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(by, want);
}

/// Admin acts on one tenant through two nodes at once still form one audit chain: each entry
/// takes the tenant's lock before it links to the previous one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_admin_acts_through_two_nodes_form_one_audit_chain() {
    let dir = tempfile::tempdir().unwrap();
    let database = postgres_support::cluster().database();
    let a = node(&database, dir.path()).await;
    let b = node(&database, dir.path()).await;
    let c = reqwest::Client::new();
    let (tid, _) = tenant(&c, &a.base, "fabrikam").await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (c, tid) = (c.clone(), tid.clone());
        tasks.push(tokio::spawn(async move {
            let (s, v) = json_of(
                c.post(format!("{base}/admin/v1/tenants/{tid}/tokens"))
                    .bearer_auth(ADMIN),
            )
            .await;
            assert!(s.is_success(), "{v}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
        .args(["audit", "verify", "fabrikam"])
        .env("SEATKEEPER_DATABASE", &database)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // tenant.create, the first token, and 24 more.
    assert!(err.contains("26 entries checked"), "{err}");
}

/// Moving from SQLite to PostgreSQL without re-provisioning: `seatkeeper transfer` copies a
/// SQLite daemon's database into an empty PostgreSQL database; a node on PostgreSQL then answers
/// the same seats in the same waitlist order, and the tenant's SCIM token still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfer_keeps_every_waitlist_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seatkeeper.db");
    let c = reqwest::Client::new();
    let mut sqlite = node(file.to_str().unwrap(), dir.path()).await;
    let (tid, tok) = tenant(&c, &sqlite.base, "woodgrove").await;
    let (s, g) = json_of(
        c.post(format!("{}/scim/v2/Groups", sqlite.base))
            .bearer_auth(&tok)
            .header("Content-Type", "application/scim+json")
            .body(json!({"displayName": "Licensed"}).to_string()),
    )
    .await;
    assert!(s.is_success(), "{g}");
    let group = g["id"].as_str().unwrap().to_owned();
    let (s, l) = json_of(
        c.post(format!("{}/admin/v1/tenants/{tid}/licenses", sqlite.base))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "pro", "seats": 3, "groups": [{"id": group}]})),
    )
    .await;
    assert!(s.is_success(), "{l}");
    // Twelve users join one by one, in an order unlike their ids: three seats, nine waiting.
    for i in [7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6] {
        let u = create_user(
            &c,
            &sqlite.base,
            &tok,
            &format!("u{i:02}@woodgrove.example"),
        )
        .await;
        add_member(&c, &sqlite.base, &tok, &group, &u).await;
    }
    let seats_path = format!("/admin/v1/tenants/{tid}/licenses/pro/seats");
    let (_, before) = json_of(
        c.get(format!("{}{seats_path}", sqlite.base))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(before["blocked"], 9, "{before}");
    // While the daemon runs, the copy is refused: the source would change under it.
    let database = postgres_support::cluster().database();
    let running = Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
        .args(["transfer", "--to", &database])
        .env("SEATKEEPER_DATABASE", &file)
        .output()
        .unwrap();
    assert!(!running.status.success());
    let said = String::from_utf8_lossy(&running.stderr);
    assert!(said.contains("stop it first"), "{said}");
    // SIGTERM: a graceful stop (checkpointed WAL, closed file).
    // SAFETY: a signal to the daemon this test started.
    unsafe {
        libc::kill(sqlite.child.id() as i32, libc::SIGTERM);
    }
    let _ = sqlite.child.wait();

    let transfer = |to: &str| {
        Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
            .args(["transfer", "--to", to])
            .env("SEATKEEPER_DATABASE", &file)
            .output()
            .unwrap()
    };
    let out = transfer(&database);
    assert!(
        out.status.success(),
        "transfer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("seats") && listing.contains("12"),
        "{listing}"
    );

    let pg = node(&database, dir.path()).await;
    let (s, after) = json_of(c.get(format!("{}{seats_path}", pg.base)).bearer_auth(ADMIN)).await;
    assert!(s.is_success(), "{after}");
    assert_eq!(
        after, before,
        "the same seats, states, stamps and waitlist positions"
    );
    let (s, users) = json_of(
        c.get(format!("{}/scim/v2/Users", pg.base))
            .bearer_auth(&tok),
    )
    .await;
    assert_eq!(
        s,
        reqwest::StatusCode::OK,
        "the SCIM token (its hash) came along"
    );
    // Every user reads its group reference, which PostgreSQL keeps on the user's row.
    let listed = users["Resources"].as_array().unwrap();
    assert_eq!(listed.len(), 12, "{users}");
    for u in listed {
        assert_eq!(u["groups"][0]["value"], group.as_str(), "{u}");
        assert_eq!(u["groups"][0]["display"], "Licensed", "{u}");
    }
    // New users join behind everyone who waited before the move.
    let late = create_user(&c, &pg.base, &tok, "late@woodgrove.example").await;
    add_member(&c, &pg.base, &tok, &group, &late).await;
    let (_, now) = json_of(c.get(format!("{}{seats_path}", pg.base)).bearer_auth(ADMIN)).await;
    let last = now["seats"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["userId"].as_str(), last["position"].as_i64()),
        (Some(late.as_str()), Some(10)),
        "{now}"
    );

    // A second transfer into a database that holds tenants is refused.
    let again = transfer(&database);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds tenants"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// The cookie `name`'s value among a response's Set-Cookie headers.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// The CSRF token of the first form on a console page.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 64].to_owned()
}

/// The console's tenants page from the node at `base`, with a session cookie.
async fn console_page(c: &reqwest::Client, base: &str, cookie: &str) -> reqwest::Response {
    c.get(format!("{base}/console/tenants"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_console_session_from_one_node_works_on_another() {
    let (nodes, _dir) = nodes(2).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c
        .get(format!("{}/console/login", nodes[0].base))
        .send()
        .await
        .unwrap();
    let login = set_cookie(&r, "sk_login").expect("the sign-in form's cookie");
    let csrf = csrf_of(&r.text().await.unwrap());
    let r = c
        .post(format!("{}/console/login", nodes[0].base))
        .header(reqwest::header::COOKIE, format!("sk_login={login}"))
        .form(&[("csrf", csrf.as_str()), ("token", ADMIN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    let session = set_cookie(&r, "sk_session").expect("signed in on node 0");
    let cookie = format!("sk_session={session}");

    // Node 1 knows the session.
    let r = console_page(&c, &nodes[1].base, &cookie).await;
    assert_eq!(
        r.status(),
        reqwest::StatusCode::OK,
        "node 1 serves node 0's session"
    );
    let csrf = csrf_of(&r.text().await.unwrap());
    // Signing out on node 1 ends it on node 0.
    let r = c
        .post(format!("{}/console/logout", nodes[1].base))
        .header(reqwest::header::COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    let r = console_page(&c, &nodes[0].base, &cookie).await;
    assert_eq!(
        r.status(),
        reqwest::StatusCode::SEE_OTHER,
        "signed out everywhere"
    );
}

/// The background reconciler of several nodes: a tenant's pass runs on the node that takes its
/// lease, once per interval, however many nodes run the pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_tenant_is_reconciled_by_one_node_per_interval() {
    use seatkeeper::store::Store;
    let database = postgres_support::cluster().database();
    let a = Store::open(std::path::Path::new(&database)).unwrap();
    let b = Store::open(std::path::Path::new(&database)).unwrap();
    a.create_tenant(
        "one".into(),
        vec![],
        seatkeeper::store::events::audit::Actor::cli(),
    )
    .await
    .unwrap();
    a.create_tenant(
        "two".into(),
        vec![],
        seatkeeper::store::events::audit::Actor::cli(),
    )
    .await
    .unwrap();
    let (x, y) = tokio::join!(
        a.reconcile_all_leased(60_000),
        b.reconcile_all_leased(60_000)
    );
    assert_eq!(
        x.unwrap().reconciled + y.unwrap().reconciled,
        2,
        "each tenant once between the two nodes"
    );
    assert_eq!(
        b.reconcile_all_leased(60_000).await.unwrap().reconciled,
        0,
        "leases held"
    );
    assert_eq!(
        a.reconcile_all_leased(60_000).await.unwrap().reconciled,
        0,
        "leases held"
    );
    // An explicit pass (the admin API, the CLI) is not leased.
    assert_eq!(b.reconcile_all().await.unwrap().reconciled, 2);
    let (a2, b2) = (a.clone(), b.clone());
    tokio::task::spawn_blocking(move || {
        a2.close();
        b2.close();
    })
    .await
    .unwrap();
}

/// `/readyz` answers 503 while a node cannot reach its database (so a load balancer drains it)
/// and 200 again once it can; SCIM reads meanwhile answer 503 with `Retry-After` (never 500),
/// and the point reads' per-worker connections are replaced once the database is back. The node
/// reaches PostgreSQL through a forwarder the test cuts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_follows_the_database() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let cluster = postgres_support::cluster();
    let database = cluster.database();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
    {
        let (cut, links, to) = (cut.clone(), links.clone(), cluster.port);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if cut.load(Ordering::SeqCst) {
                    continue; // dropped: the database is unreachable
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                links.lock().unwrap().push(link);
            }
        });
    }
    let url = database.replace(&format!(":{}/", cluster.port), &format!(":{port}/"));
    let dir = tempfile::tempdir().unwrap();
    let n = node(&url, dir.path()).await;
    let c = reqwest::Client::new();
    let ready = |c: reqwest::Client, base: String| async move {
        c.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        ready(c.clone(), n.base.clone()).await,
        reqwest::StatusCode::OK
    );
    let (_, tok) = tenant(&c, &n.base, "cut").await;
    let user = create_user(&c, &n.base, &tok, "cut@example.com").await;
    let get_user = |c: reqwest::Client| {
        let url = format!("{}/scim/v2/Users/{user}", n.base);
        let tok = tok.clone();
        async move { c.get(url).bearer_auth(tok).send().await.unwrap() }
    };
    // Point reads on every worker's own connection (two workers).
    for _ in 0..8 {
        assert_eq!(get_user(c.clone()).await.status(), reqwest::StatusCode::OK);
    }

    cut.store(true, Ordering::SeqCst);
    for l in links.lock().unwrap().drain(..) {
        l.abort();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while ready(c.clone(), n.base.clone()).await != reqwest::StatusCode::SERVICE_UNAVAILABLE {
        assert!(
            Instant::now() < deadline,
            "/readyz still 200 without a database"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Liveness is the process's own: it stays 200.
    let (s, _) = json_of(c.get(format!("{}/healthz", n.base))).await;
    assert_eq!(s, reqwest::StatusCode::OK);
    // A provider's read is asked to retry, not failed (the token's one-second trust has passed).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = get_user(c.clone()).await;
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("database cannot be reached"));

    cut.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(15);
    while ready(c.clone(), n.base.clone()).await != reqwest::StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "/readyz did not recover with the database"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every worker's point-read connection was lost with the cut: each is replaced at its next
    // read, which succeeds.
    for _ in 0..8 {
        assert_eq!(get_user(c.clone()).await.status(), reqwest::StatusCode::OK);
    }
}

/// Tables, columns (type, default, nullability), storage options, indexes, triggers and
/// functions of a PostgreSQL database.
fn pg_shape(url: String) -> Vec<String> {
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut out: Vec<String> = c
            .query(
                "SELECT table_name, column_name, data_type, coalesce(column_default, ''), is_nullable, coalesce(collation_name, '')
                 FROM information_schema.columns WHERE table_schema = current_schema()",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| {
                (0..6)
                    .map(|i| r.get::<_, String>(i))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        // Indexes, storage options, triggers (with the functions they run, whole) and any
        // other function of the schema: one text column each.
        for sql in [
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()",
            "SELECT relname || ' ' || array_to_string(reloptions, ',') FROM pg_class
             WHERE reloptions IS NOT NULL AND relnamespace = current_schema()::regnamespace",
            "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
             WHERE NOT t.tgisinternal AND r.relnamespace = current_schema()::regnamespace",
            "SELECT pg_get_functiondef(p.oid) FROM pg_proc p
             WHERE p.pronamespace = current_schema()::regnamespace",
        ] {
            out.extend(
                c.query(sql, &[])
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<_, String>(0)),
            );
        }
        out.push(format!(
            "version {}",
            c.query_one("SELECT version FROM schema_version", &[])
                .unwrap()
                .get::<_, i64>(0)
        ));
        out.sort();
        out
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_migrates_to_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = postgres_support::cluster();
    let (fresh, old) = (cluster.database(), cluster.database());
    let v1 = old.clone();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&v1, postgres::NoTls).unwrap();
        c.batch_execute(seatkeeper::store::engine::postgres::V1_SCHEMA)
            .unwrap();
    })
    .join()
    .unwrap();
    // A node of this release starts on each: one creates the schema, the other upgrades it.
    for db in [&fresh, &old] {
        drop(node(db, dir.path()).await);
    }
    let (new_shape, migrated_shape) = (pg_shape(fresh), pg_shape(old));
    assert!(new_shape.iter().any(|l| l.starts_with("tenants time_zone")));
    assert!(new_shape
        .iter()
        .any(|l| l.contains("TRIGGER groups_renamed")));
    assert!(new_shape.iter().any(|l| l == "users fillfactor=80"));
    assert_eq!(migrated_shape, new_shape);
}

/// Provider-call times are written to the database as calls happen (at most a second late), so
/// a node that served no call of a tenant still sees the calls another node served: silence is
/// judged from every node's calls, not from the judging node's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_calls_through_one_node_are_seen_by_another_within_seconds() {
    let (nodes, _dir) = nodes(2).await;
    let c = reqwest::Client::new();
    let (tid, tok) = tenant(&c, &nodes[0].base, "quiet-on-a").await;
    let status = |base: String| {
        let c = c.clone();
        let tid = tid.clone();
        async move {
            json_of(
                c.get(format!("{base}/admin/v1/tenants/{tid}/status"))
                    .bearer_auth(ADMIN),
            )
            .await
            .1
        }
    };
    let before = status(nodes[0].base.clone()).await;
    assert_eq!(before["last_provider_call"], Value::Null, "{before}");
    // The provider calls node B only; node B is never asked or stopped.
    create_user(&c, &nodes[1].base, &tok, "ann@quiet.example").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = status(nodes[0].base.clone()).await;
        if seen["last_provider_call"].is_string() {
            assert_eq!(seen["silent"], false, "{seen}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node A never saw node B's provider call: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A change the database gives up (a serialization failure, a deadlock) is run again in a
/// later transaction, up to five times in all: a passing refusal is never seen by the client,
/// a real deadlock between a job and another session resolves itself, and only a refusal that
/// lasts is answered — 503 with `Retry-After`, never 500, nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_the_database_gives_up_runs_again_and_only_a_lasting_refusal_is_answered_retry() {
    let dir = tempfile::tempdir().unwrap();
    let database = postgres_support::cluster().database();
    let n = node(&database, dir.path()).await;
    let c = reqwest::Client::new();
    let (t, tok) = tenant(&c, &n.base, "contended").await;
    let sql = |stmt: String| {
        let url = database.clone();
        tokio::task::spawn_blocking(move || {
            let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            db.batch_execute(&stmt).unwrap();
        })
    };
    // The database refuses creates of `contended@…` as a serialization failure, as it would
    // one that lost to a concurrent transaction, while a counter (a sequence: it does not roll
    // back with the refused transaction) is at or below `refusals`.
    sql("CREATE SEQUENCE attempts;
         CREATE TABLE refusals (n BIGINT);
         INSERT INTO refusals VALUES (2);
         CREATE FUNCTION give_up() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF nextval('attempts') <= (SELECT n FROM refusals) THEN
             RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER give_up BEFORE INSERT ON users FOR EACH ROW
         WHEN (NEW.user_name LIKE 'contended%') EXECUTE FUNCTION give_up();"
        .into())
    .await
    .unwrap();
    let create = |name: &'static str| {
        c.post(format!("{}/scim/v2/Users", n.base))
            .bearer_auth(&tok)
            .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}))
            .send()
    };
    let attempts = || {
        let url = database.clone();
        tokio::task::spawn_blocking(move || {
            let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            db.query_one("SELECT last_value FROM attempts", &[])
                .unwrap()
                .get::<_, i64>(0)
        })
    };
    let retries = || async {
        let text = c
            .get(format!("{}/metrics", n.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("seatkeeper_write_retries_total "))
            .expect("the retry counter is exported")
            .parse::<u64>()
            .unwrap()
    };
    // Refused twice, then written: the client sees only its 201.
    let r = create("contended-once@example.com").await.unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    assert_eq!(attempts().await.unwrap(), 3, "two refusals, then the write");
    assert_eq!(retries().await, 2);

    // Refused on every attempt: after five, answered 503 with Retry-After; nothing written.
    sql("UPDATE refusals SET n = 1000".into()).await.unwrap();
    let r = create("contended-always@example.com").await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("retry"), "{body}");
    assert_eq!(attempts().await.unwrap(), 3 + 5, "five attempts in all");
    assert_eq!(retries().await, 2 + 4);
    assert_eq!(create("other@example.com").await.unwrap().status(), 201);
    sql("DROP TRIGGER give_up ON users".into()).await.unwrap();
    assert_eq!(
        create("contended-always@example.com")
            .await
            .unwrap()
            .status(),
        201
    );

    // A real deadlock. Another session holds a lock on `users` that the create needs; the
    // create's batch holds the tenant's lock and waits for it; the other session then asks for
    // the tenant's lock. PostgreSQL gives one of them up: the create's (the other session
    // waits ten seconds before it looks for a deadlock, the daemon's one). The create runs
    // again once the other session is through, and succeeds.
    let url = database.clone();
    let rk: i64 = tokio::task::spawn_blocking({
        let url = url.clone();
        let t = t.clone();
        move || {
            let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            db.query_one("SELECT rk FROM tenants WHERE id = $1", &[&t])
                .unwrap()
                .get(0)
        }
    })
    .await
    .unwrap();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let other = tokio::task::spawn_blocking(move || {
        let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        db.batch_execute("SET deadlock_timeout = '10s'; BEGIN; LOCK TABLE users IN SHARE MODE")
            .unwrap();
        locked_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        // Waits for the create's batch, which waits for this session: a deadlock.
        db.query_one("SELECT pg_advisory_xact_lock($1)", &[&rk])
            .unwrap();
        db.batch_execute("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    let before = retries().await;
    let create_one = tokio::spawn(create("deadlocked@example.com"));
    // Once the create waits for the table, the other session asks for the tenant's lock.
    let watch = database.clone();
    tokio::task::spawn_blocking(move || {
        let mut db = postgres::Client::connect(&watch, postgres::NoTls).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let waiting: i64 = db
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%users%'",
                    &[],
                )
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the create never waited for the table");
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    go_tx.send(()).unwrap();
    let r = create_one.await.unwrap().unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    other.await.unwrap();
    assert!(retries().await > before, "the deadlocked create ran again");
    let found: Value = c
        .get(format!(
            "{}/scim/v2/Users?filter=userName%20eq%20%22deadlocked@example.com%22",
            n.base
        ))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["totalResults"], 1, "written once: {found}");
}

/// A rolling upgrade: the next release migrates the database under a node of this one. The
/// running node keeps serving (steps only add), `seatkeeper migrate` says the version, and a
/// node of this release started on the newer schema refuses it with a clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_keeps_serving_when_a_newer_release_migrates_underneath_and_an_old_one_refuses_to_start(
) {
    let dir = tempfile::tempdir().unwrap();
    let database = postgres_support::cluster().database();
    let running = node(&database, dir.path()).await;
    let c = reqwest::Client::new();
    let (_, tok) = tenant(&c, &running.base, "upgrading").await;
    let migrate = || {
        Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
            .arg("migrate")
            .env("SEATKEEPER_DATABASE", &database)
            .output()
            .unwrap()
    };
    let out = migrate();
    assert!(out.status.success());
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = said["schema_version"].as_i64().unwrap();
    assert_eq!(said["engine"], "postgres");
    // The next release's step: something added, the version moved on.
    let url = database.clone();
    tokio::task::spawn_blocking(move || {
        let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        db.batch_execute(&format!(
            "ALTER TABLE users ADD COLUMN next_release_note TEXT; UPDATE schema_version SET version = {}",
            version + 1
        ))
        .unwrap();
    })
    .await
    .unwrap();
    create_user(&c, &running.base, &tok, "still@serving.example").await;
    // An old node does not start on a schema newer than it knows; nor does migrate.
    let out = migrate();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("upgrade seatkeeper"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let refused = Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
        .arg("serve")
        .env("SEATKEEPER_DATABASE", &database)
        .env("SEATKEEPER_LISTEN", format!("127.0.0.1:{port}"))
        .env("SEATKEEPER_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains(&format!("schema version {}", version + 1))
            && why.contains("upgrade seatkeeper"),
        "{why}"
    );
    create_user(&c, &running.base, &tok, "after@refusal.example").await;
}

/// `seatkeeper backup` and `restore` on PostgreSQL (pg_dump, pg_restore): a backup taken while a
/// node serves, restored into a new database, gives the same seats in the same waitlist order,
/// working tokens, a whole audit chain, and a clean `check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_backup_restores_into_a_new_database_whole() {
    let dir = tempfile::tempdir().unwrap();
    let source = postgres_support::cluster().database();
    let n = node(&source, dir.path()).await;
    let c = reqwest::Client::new();
    let (tid, tok) = tenant(&c, &n.base, "backed-up").await;
    let (s, g) = json_of(
        c.post(format!("{}/scim/v2/Groups", n.base))
            .bearer_auth(&tok)
            .header("Content-Type", "application/scim+json")
            .body(json!({"displayName": "Licensed"}).to_string()),
    )
    .await;
    assert!(s.is_success(), "{g}");
    let group = g["id"].as_str().unwrap().to_owned();
    let (s, l) = json_of(
        c.post(format!("{}/admin/v1/tenants/{tid}/licenses", n.base))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "pro", "seats": 2, "groups": [{"id": group}]})),
    )
    .await;
    assert!(s.is_success(), "{l}");
    for i in [3, 1, 4, 0, 2] {
        let u = create_user(&c, &n.base, &tok, &format!("u{i}@backed.example")).await;
        add_member(&c, &n.base, &tok, &group, &u).await;
    }
    let seats = format!("/admin/v1/tenants/{tid}/licenses/pro/seats");
    let (_, before) = json_of(c.get(format!("{}{seats}", n.base)).bearer_auth(ADMIN)).await;
    assert_eq!(before["blocked"], 3, "{before}");
    let file = dir.path().join("backup.pgdump");
    let cli = |db: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
            .args(args)
            .env("SEATKEEPER_DATABASE", db)
            .output()
            .unwrap()
    };
    let out = cli(&source, &["backup", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let target = postgres_support::cluster().database();
    let out = cli(&target, &["restore", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&target, &["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cli(&target, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = node(&target, dir.path()).await;
    let (_, after) = json_of(
        c.get(format!("{}{seats}", restored.base))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(after, before, "the same seats, in the same waitlist order");
    let (s, users) = json_of(
        c.get(format!("{}/scim/v2/Users", restored.base))
            .bearer_auth(&tok),
    )
    .await;
    assert!(s.is_success(), "the SCIM token works on the copy: {users}");
    assert_eq!(users["totalResults"], 5);
}
