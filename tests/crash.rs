//! Crash safety: the real daemon binary takes concurrent SCIM writes and membership changes into
//! a license with few seats and is killed with SIGKILL mid-stream, several times. After each
//! restart every write that was answered 2xx is there, the seat invariant holds and
//! `seatkeeper check` is clean. Bounded: three rounds of about a second of load each.
//! A webhook endpoint (a real receiver, answering 503 while the rounds run) has deliveries
//! pending at every kill: each seat event has its webhook in the outbox after every restart,
//! and once the receiver answers 200 every one of them arrives, verified.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Whether this binary runs on PostgreSQL (`tests/pg_crash.rs` runs it there).
#[allow(dead_code)]
pub const ON_POSTGRES: bool = false;
#[path = "support/postgres.rs"]
mod postgres_support;
#[path = "support/python.rs"]
mod python;
#[path = "support/receiver.rs"]
mod receiver;

const ADMIN: &str = "crash-test-admin-token-0123456789";

struct Daemon {
    child: Child,
    base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(db: &std::path::Path, port: u16, log: &std::path::Path) -> Daemon {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
        .arg("serve")
        .env("SEATKEEPER_DATABASE", db)
        .env("SEATKEEPER_LISTEN", format!("127.0.0.1:{port}"))
        .env("SEATKEEPER_ADMIN_TOKEN", ADMIN)
        .env("SEATKEEPER_WORKERS", "2")
        .env("SEATKEEPER_WEBHOOK_ALLOW_HTTP", "true")
        .env("SEATKEEPER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("the daemon starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the daemon did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Daemon { child, base }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crash.db");
    // The daemon's database: the file, or a database of the test cluster standing for it.
    let db = if postgres_support::selected() {
        std::path::PathBuf::from(postgres_support::cluster().database_for(&file))
    } else {
        file.clone()
    };
    let log = dir.path().join("daemon.log");
    let port = free_port();
    let client = reqwest::Client::new();
    let mut d = start(&db, port, &log).await;

    let base = d.base.clone();
    let admin = |m: reqwest::Method, path: &str| {
        client
            .request(m, format!("{base}/admin/v1{path}"))
            .bearer_auth(ADMIN)
    };
    let r: Value = admin(reqwest::Method::POST, "/tenants")
        .json(&json!({"name": "crash"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant = r["id"].as_str().unwrap().to_owned();
    let r: Value = admin(reqwest::Method::POST, &format!("/tenants/{tenant}/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["token"].as_str().unwrap().to_owned();
    let r: Value = client
        .post(format!("{}/scim/v2/Groups", d.base))
        .bearer_auth(&token)
        .body(json!({"displayName": "Licensed"}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let group = r["id"].as_str().unwrap().to_owned();
    let s = admin(
        reqwest::Method::POST,
        &format!("/tenants/{tenant}/licenses"),
    )
    .json(&json!({"name": "pro", "seats": 5, "groups": [{"id": group}]}))
    .send()
    .await
    .unwrap()
    .status();
    assert!(s.is_success());

    // The product's webhook endpoint is down (503, retry in a second) while the rounds run.
    let rx = receiver::Receiver::start().await;
    let hook: Value = admin(
        reqwest::Method::POST,
        &format!("/tenants/{tenant}/webhooks"),
    )
    .json(&json!({"url": rx.url("/hooks"), "events": []}))
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    rx.trust("/hooks", &[hook["secret"].as_str().unwrap()])
        .await;
    rx.control(json!({"status": {"/hooks": 503}, "retry_after": {"/hooks": 1}}))
        .await;

    // (user id, member added) for every acknowledged write.
    let acked: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    for round in 0..3 {
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (client, base, token, group, acked) = (
                client.clone(),
                d.base.clone(),
                token.clone(),
                group.clone(),
                acked.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("r{round}w{w}u{i}@crash.test")});
                    let Ok(r) = client.post(format!("{base}/scim/v2/Users")).bearer_auth(&token).body(body.to_string()).send().await else { return };
                    if r.status() != reqwest::StatusCode::CREATED {
                        return;
                    }
                    let Ok(u) = r.json::<Value>().await else { return };
                    let id = u["id"].as_str().unwrap().to_owned();
                    acked.lock().unwrap().push((id.clone(), false));
                    let add = json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]});
                    let Ok(r) = client
                        .patch(format!("{base}/scim/v2/Groups/{group}?excludedAttributes=members"))
                        .bearer_auth(&token)
                        .body(add.to_string())
                        .send()
                        .await
                    else {
                        return;
                    };
                    if r.status() == reqwest::StatusCode::OK {
                        let mut a = acked.lock().unwrap();
                        if let Some(e) = a.iter_mut().find(|(u, _)| *u == id) {
                            e.1 = true;
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        d.child.kill().expect("SIGKILL");
        d.child.wait().unwrap();
        for t in tasks {
            let _ = t.await;
        }
        d = start(&db, port, &log).await;

        // Every acknowledged user and membership is there.
        let acked_now = acked.lock().unwrap().clone();
        assert!(
            !acked_now.is_empty(),
            "round {round}: some writes were acknowledged"
        );
        eprintln!(
            "round {round}: {} users acknowledged, {} memberships",
            acked_now.len(),
            acked_now.iter().filter(|(_, m)| *m).count()
        );
        let g: Value = client
            .get(format!("{}/scim/v2/Groups/{group}", d.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let members: std::collections::HashSet<String> = g["members"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["value"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        for (id, member) in &acked_now {
            let s = client
                .get(format!("{}/scim/v2/Users/{id}", d.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(
                s,
                reqwest::StatusCode::OK,
                "round {round}: acknowledged user {id} lost"
            );
            if *member {
                assert!(
                    members.contains(id),
                    "round {round}: acknowledged membership of {id} lost"
                );
            }
        }
        // The seat invariant holds and the audit is clean.
        let seats: Value = admin(
            reqwest::Method::GET,
            &format!("/tenants/{tenant}/licenses/pro/seats"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(seats["granted"], 5, "round {round}: {seats}");
        assert_eq!(
            seats["granted"].as_i64().unwrap() + seats["blocked"].as_i64().unwrap(),
            members.len() as i64
        );
        let check = Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
            .arg("check")
            .env("SEATKEEPER_DATABASE", &db)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "round {round}: check: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        // The outbox holds every notification that was due: each blocked seat event has its
        // outbox item (written in the same transaction), and the full license its crossing.
        let count = |sql: &str| -> i64 { read(&db, sql)[0].parse().unwrap() };
        let blocked_events = count("SELECT count(*) FROM seat_events WHERE event = 'blocked'");
        let blocked_items = count(
            "SELECT count(*) FROM outbox_items i JOIN outbox o ON o.id = i.outbox_id WHERE o.kind = 'blocked'",
        );
        assert!(blocked_events > 0, "round {round}: someone was blocked");
        assert_eq!(
            blocked_items, blocked_events,
            "round {round}: every blocked user is in the outbox"
        );
        assert_eq!(
            count("SELECT count(*) FROM outbox WHERE kind = 'threshold'"),
            1,
            "round {round}: the license filled up once"
        );
        // Each seat event has its webhook, written in its transaction; some are pending.
        assert_eq!(
            count("SELECT count(*) FROM webhook_events"),
            count("SELECT count(*) FROM seat_events"),
            "round {round}: every seat event has its webhook"
        );
        assert_eq!(
            count("SELECT count(*) FROM webhook_deliveries"),
            count("SELECT count(*) FROM webhook_events"),
            "round {round}: one delivery per event"
        );
        let pending = count("SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'");
        eprintln!("round {round}: {pending} webhook deliveries pending after the restart");
        assert!(pending > 0, "round {round}: deliveries were pending");
    }
    // The endpoint is back: every event arrives, signed (a crash between an answer and its
    // record may repeat a delivery, with the same webhook-id).
    rx.control(json!({"status": {"/hooks": 200}})).await;
    let ids: std::collections::BTreeSet<String> = read(&db, "SELECT msg_id FROM webhook_events")
        .into_iter()
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = rx.received().await;
        let accepted: std::collections::BTreeSet<String> = got
            .iter()
            .filter(|d| d["answered"] == 200)
            .inspect(|d| assert_eq!(d["verified"], true, "{d}"))
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect();
        if accepted == ids {
            eprintln!(
                "{} webhooks delivered after the outage and three kills",
                ids.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} webhooks delivered",
            accepted.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.child.kill().ok();
    d.child.wait().ok();
}

/// The first column of `sql`'s rows as text, read from the database `db` names (a SQLite file
/// or a PostgreSQL URL), read-only, beside the daemon.
fn read(db: &std::path::Path, sql: &str) -> Vec<String> {
    let text = db.to_string_lossy().into_owned();
    if text.starts_with("postgres") {
        let (text, sql) = (
            text.clone(),
            format!("SELECT CAST(x AS TEXT) FROM ({sql}) AS q(x)"),
        );
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&text, postgres::NoTls).unwrap();
            c.query(sql.as_str(), &[])
                .unwrap()
                .into_iter()
                .map(|r| r.get::<_, String>(0))
                .collect()
        })
        .join()
        .unwrap()
    } else {
        let conn =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let mut st = conn.prepare(sql).unwrap();
        st.query_map([], |r| {
            Ok(match r.get_ref(0)? {
                rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                other => format!("{other:?}"),
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }
}
