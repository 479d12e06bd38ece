//! Notification emails, delivered to a real SMTP server: aiosmtpd (tests/mail/smtpd.py, from
//! PyPI into target/) on a free local port. Each test starts the real daemon with `smtp_url`
//! pointing at it and a manual clock (digest windows and back-offs pass without sleeping), and
//! asserts on what the server received, parsed by Python's own MIME parser.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

/// Whether this binary runs on PostgreSQL (see `support/postgres.rs`).
#[allow(dead_code)]
pub const ON_POSTGRES: bool = false;
#[path = "api/helpers.rs"]
#[allow(dead_code)]
pub mod helpers;
#[path = "support/postgres.rs"]
pub mod postgres_support;
#[path = "support/python.rs"]
mod python;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail");
            python::venv("mail-venv", &here.join("requirements.txt"))
        })
        .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running aiosmtpd.
struct Smtp {
    port: u16,
    tls: &'static str,
    delay: f64,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Smtp {
    async fn start(tls: &'static str, delay: f64) -> Smtp {
        tokio::task::spawn_blocking(move || {
            let mut s = Smtp {
                port: free_port(),
                tls,
                delay,
                dir: tempfile::tempdir().unwrap(),
                child: None,
            };
            s.launch();
            s
        })
        .await
        .unwrap()
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("received")
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn launch(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail/smtpd.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(["--port", &self.port.to_string(), "--tls", self.tls])
            .arg("--out")
            .arg(self.out())
            .arg("--ca-out")
            .arg(self.ca())
            .args(["--delay", &self.delay.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the SMTP server starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        self.child = Some(child);
    }

    /// Stops the server: connections to its port are refused until [`Smtp::restart`].
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn restart(mut self) -> Smtp {
        tokio::task::spawn_blocking(move || {
            self.launch();
            self
        })
        .await
        .unwrap()
    }

    fn url(&self) -> String {
        match self.tls {
            "starttls" => format!("smtp://127.0.0.1:{}?tls=required", self.port),
            "implicit" => format!("smtps://127.0.0.1:{}", self.port),
            _ => format!("smtp://127.0.0.1:{}", self.port),
        }
    }

    /// Every message received so far, oldest first.
    fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.out())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        });
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits until `n` messages arrived, lets `app`'s sender finish a whole pass (whatever it
    /// would send by now, it has sent), and returns exactly those.
    async fn expect(&self, app: &TestApp, n: usize) -> Vec<Value> {
        for _ in 0..300 {
            if self.messages().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app.sender_pass().await;
        let got = self.messages();
        assert_eq!(
            got.len(),
            n,
            "messages received: {:#?}",
            got.iter()
                .map(|m| &m["headers"]["Subject"])
                .collect::<Vec<_>>()
        );
        got
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A daemon sending to `smtp`, with one tenant whose admins are notified: the shared
/// [`Scenario`] and the folder its database lives in.
struct Fixture {
    s: Scenario,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = Scenario;
    fn deref(&self) -> &Scenario {
        &self.s
    }
}

const FROM: &str = "seatkeeper <licensing@vendor.example>";

async fn daemon(
    dir: &Path,
    clock: &ManualClock,
    smtp: &Smtp,
    adjust: impl FnOnce(&mut seatkeeper::config::Config),
) -> TestApp {
    let url = smtp.url();
    let ca = (smtp.tls != "none").then(|| smtp.ca());
    TestApp::spawn_in(dir, clock, move |c| {
        c.smtp_url = Some(seatkeeper::config::Secret(url));
        c.smtp_ca_file = ca;
        c.mail_from = FROM.into();
        c.max_body_bytes = 16 * 1024 * 1024;
        c.scim_failure_threshold = 5;
        adjust(c);
    })
    .await
}

impl Fixture {
    async fn new(smtp: &Smtp, notify: &[&str]) -> Fixture {
        Fixture::with(smtp, json!(notify), |_| {}).await
    }

    /// A daemon configured by `adjust` too, with a tenant whose recipients are `notify`.
    async fn with(
        smtp: &Smtp,
        notify: Value,
        adjust: impl FnOnce(&mut seatkeeper::config::Config) + Send + 'static,
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new();
        let app = daemon(dir.path(), &clock, smtp, adjust).await;
        Fixture {
            s: Scenario::on(app, clock, "Contoso", notify).await,
            dir,
        }
    }

    async fn users(&self, prefix: &str, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            let ops: Vec<Value> = chunk
                .iter()
                .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                    "data": {"schemas": [USER_SCHEMA], "userName": format!("{prefix}{i:05}@contoso.example"), "active": true}}))
                .collect();
            self.clock.tick();
            let (s, b) = self
                .app
                .scim(
                    &self.tok,
                    Method::POST,
                    "/Bulk",
                    Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            for op in b["Operations"].as_array().unwrap() {
                assert_eq!(op["status"], "201", "{op}");
                let loc = op["location"].as_str().unwrap();
                ids.push(loc.rsplit('/').next().unwrap().to_owned());
            }
        }
        ids
    }

    async fn license(&self, name: &str, seats: i64, group: &str) -> String {
        self.clock.tick();
        let (s, l) = self
            .admin(
                Method::POST,
                "/licenses",
                Some(json!({"name": name, "seats": seats, "grace_seconds": 0, "groups": [{"displayName": group}]})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
        id(&l)
    }

    /// Lets the digest window (300 s by default) pass.
    fn close_window(&self) {
        self.clock.advance_secs(301);
    }

    async fn outbox(&self) -> Value {
        let (s, v) = self.admin(Method::GET, "/notifications", None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }
}

fn subject(m: &Value) -> &str {
    m["headers"]["Subject"].as_str().unwrap_or_default()
}

fn find<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m["headers"]["X-Seatkeeper-Event"] == kind)
        .collect()
}

fn csv_rows(m: &Value) -> Vec<String> {
    let a = &m["attachments"][0];
    assert_eq!(a["content_type"], "text/csv", "{m}");
    a["content"]
        .as_str()
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn blocked_users_arrive_as_one_digest_listing_them_all() {
    let smtp = Smtp::start("none", 0.0).await;
    let f = Fixture::new(&smtp, &["licensing@contoso.example", "it@contoso.example"]).await;
    let users = f.users("dev", 260).await;
    f.group("Developers", &users).await;
    let license = f.license("MindManager", 10, "Developers").await;

    // Nothing is sent before the digest window closes (the sender has run a pass since).
    f.app.sender_pass().await;
    assert!(smtp.messages().is_empty());
    let outbox = f.outbox().await;
    assert_eq!(outbox["counts"]["collecting"], 2, "{outbox}");

    f.close_window();
    // The window's two notices of the license (250 waiting, every seat taken) come as one
    // email to each recipient.
    let got = smtp.expect(&f.app, 1).await;
    let combined = find(&got, "combined");
    assert_eq!(
        combined.len(),
        1,
        "one email for 250 blocked users and the full license"
    );
    let m = combined[0];
    assert_eq!(
        subject(m),
        "[seatkeeper] Contoso / MindManager: 250 people could not get a seat; all 10 seats are in use"
    );
    assert_eq!(
        m["to"],
        json!(["licensing@contoso.example", "it@contoso.example"])
    );
    assert_eq!(m["from"], "licensing@vendor.example");
    let h = &m["headers"];
    assert_eq!(h["Auto-Submitted"], "auto-generated");
    assert!(h["Message-ID"]
        .as_str()
        .unwrap()
        .ends_with("@vendor.example>"));
    assert!(h["Date"].as_str().is_some_and(|d| !d.is_empty()));
    let text = m["text"].as_str().unwrap();
    assert!(
        text.contains("MindManager now: 10 of 10 seats in use, 250 people waiting."),
        "{text}"
    );
    assert!(text.contains("raise the seat count"), "{text}");
    assert!(text.contains("or pin them"), "{text}");
    // Written for the recipient: no user ids, no API paths.
    assert!(!text.contains(&users[0]), "{text}");
    assert!(!text.contains("/admin/v1"), "{text}");
    // The first 25 in the body, in waitlist order with their places, every one in the CSV.
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  - Position: "))
        .collect();
    assert_eq!(listed.len(), 25, "{text}");
    assert!(
        listed[0].starts_with("  - Position: 1 · Name: dev"),
        "{text}"
    );
    assert!(listed[0].contains("Now: waiting"), "{text}");
    assert!(text.contains("225 more"));
    assert!(text.contains("all 10 of its seats"), "{text}");
    assert_eq!(
        m["html"]
            .as_str()
            .unwrap()
            .matches("<strong>Position: ")
            .count(),
        25,
        "25 people in the body"
    );
    let rows = csv_rows(m);
    assert_eq!(rows.len(), 251, "a header and every blocked user");
    assert_eq!(rows[0], "Position,Name,Email,Group,Waiting since,Now");
    let positions: Vec<usize> = rows[1..]
        .iter()
        .map(|r| r.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        positions,
        (1..=250).collect::<Vec<_>>(),
        "the waitlist, in order"
    );
    let names: std::collections::BTreeSet<&str> = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(names.len(), 250, "every blocked user once");
    assert!(names.iter().all(|n| n.starts_with("dev")));

    // The outbox shows the combined email sent, with its attempts and Message-ID, and the
    // two notices it carried.
    let outbox = f.outbox().await;
    assert_eq!(outbox["counts"]["sent"], 1, "{outbox}");
    assert_eq!(outbox["counts"]["combined"], 2, "{outbox}");
    for n in outbox["notifications"].as_array().unwrap() {
        if n["state"] == "sent" {
            assert_eq!(n["kind"], "combined");
            assert_eq!(n["attempts"], 1);
            assert!(n["messageId"].as_str().is_some());
            assert!(n["sent"].as_str().is_some());
        }
    }
    // Users blocked after the digest closed start a new one.
    let more = f.users("late", 3).await;
    let (_, groups) = f
        .app
        .scim(
            &f.tok,
            Method::GET,
            "/Groups?filter=displayName%20eq%20%22Developers%22&excludedAttributes=members",
            None,
        )
        .await;
    let group = id(&groups["Resources"][0]);
    f.members(&group, "add", &more).await;
    f.close_window();
    // A lone notice of a window keeps its own email.
    let got = smtp.expect(&f.app, 2).await;
    let m = &got[1];
    assert_eq!(m["headers"]["X-Seatkeeper-Event"], "blocked");
    assert_eq!(
        subject(m),
        "[seatkeeper] Contoso / MindManager: 3 people could not get a seat"
    );
    assert_eq!(csv_rows(m).len(), 4);
    let (_, seats) = f
        .admin(Method::GET, &format!("/licenses/{license}"), None)
        .await;
    assert_eq!(seats["blocked"], 253, "{seats}");
}

/// One sync that touches several licenses sends each of the tenant's recipients one email,
/// grouped by license inside (the summary and the button first); a license's own recipient
/// gets only that license's notices.
#[tokio::test(flavor = "multi_thread")]
async fn one_sync_touching_three_licenses_is_one_email_per_recipient() {
    let smtp = Smtp::start("none", 0.0).await;
    let f = Fixture::with(&smtp, json!(["licensing@contoso.example"]), |c| {
        c.public_url = Some("https://seats.vendor.example".into());
    })
    .await;
    let group = f.group("Staff", &Vec::<String>::new()).await;
    let mut licenses = Vec::new();
    for name in ["Gamma", "Alpha", "Beta"] {
        licenses.push(f.license(name, 2, "Staff").await);
    }
    let (s, b) = f
        .admin(
            Method::PATCH,
            &format!("/licenses/{}", licenses[2]),
            Some(json!({"notify": ["beta-owner@contoso.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The sync: five people join the group the three licenses select.
    let users = f.users("s", 5).await;
    f.members(&group, "add", &users).await;
    f.close_window();
    let got = smtp.expect(&f.app, 2).await;
    let combined = find(&got, "combined");
    assert_eq!(combined.len(), 2, "{got:#?}");
    let tenant = combined
        .iter()
        .find(|m| m["to"] == json!(["licensing@contoso.example"]))
        .expect("the tenant's recipient's email");
    assert_eq!(
        subject(tenant),
        "[seatkeeper] Contoso: 3 licenses — Alpha: 3 people could not get a seat; Alpha: all 2 seats are in use; 4 more"
    );
    let text = tenant["text"].as_str().unwrap();
    let at = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("{s:?} missing:\n{text}"))
    };
    // The summary and the link first, then each license in name order.
    assert!(at("In short:") < at("Open the licenses"));
    assert!(at("Open the licenses") < at("== Alpha =="));
    assert!(at("== Alpha ==") < at("== Beta ==") && at("== Beta ==") < at("== Gamma =="));
    assert!(text.contains(&format!(
        "https://seats.vendor.example/console/tenants/{}/licenses/{}/seats?state=blocked",
        f.tenant, licenses[1]
    )));
    let csvs: Vec<&str> = tenant["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["filename"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(csvs.len(), 3, "one list of who waits per license: {csvs:?}");
    // Beta's own recipient: Beta's notices only.
    let beta = combined
        .iter()
        .find(|m| m["to"] == json!(["beta-owner@contoso.example"]))
        .expect("the license recipient's email");
    assert_eq!(
        subject(beta),
        "[seatkeeper] Contoso / Beta: 3 people could not get a seat; all 2 seats are in use"
    );
    let text = beta["text"].as_str().unwrap();
    assert!(!text.contains("Alpha") && !text.contains("Gamma"), "{text}");
    // The outbox: six notices carried by the two combined emails, each sent once.
    let outbox = f.outbox().await;
    assert_eq!(outbox["counts"]["combined"], 6, "{outbox}");
    assert_eq!(outbox["counts"]["sent"], 2, "{outbox}");
    let (s, detail) = f
        .admin(
            Method::GET,
            &format!(
                "/notifications/{}",
                outbox["notifications"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|n| n["kind"] == "combined" && n["items"] == 6)
                    .expect("the tenant's combined row")["id"]
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{detail}");
    assert_eq!(detail["events"].as_array().unwrap().len(), 6, "{detail}");
    assert!(
        detail["events"][0]["notification"].as_i64().is_some(),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn thresholds_are_mailed_once_per_crossing() {
    let smtp = Smtp::start("none", 0.0).await;
    let f = Fixture::new(&smtp, &["licensing@contoso.example"]).await;
    let users = f.users("u", 11).await;
    let group = f.group("Staff", &users[..8]).await;
    f.license("Pro", 10, "Staff").await; // 8 of 10: below 90 %
    f.members(&group, "add", &users[8..9]).await; // 9: crosses 90 %
    f.members(&group, "add", &users[9..10]).await; // 10: crosses 100 %
    f.members(&group, "add", &users[10..11]).await; // blocked; still 100 %
    f.close_window();
    // Both crossings and the one who waits: one window, one email.
    let got = smtp.expect(&f.app, 1).await;
    let t = find(&got, "combined");
    assert_eq!(t.len(), 1, "both crossings of one window in one email");
    assert_eq!(
        subject(t[0]),
        "[seatkeeper] Contoso / Pro: 1 person could not get a seat; all 10 seats are in use"
    );
    let text = t[0]["text"].as_str().unwrap();
    assert!(
        text.contains("Pro reached 90% of its seats (9 of 10) on Thu 1 Jan 2026, 00:00 UTC, then all 10 of its seats on Thu 1 Jan 2026, 00:00 UTC."),
        "{text}"
    );

    // A holder leaves, the waiting user is promoted: still full, nothing new. Leaving and
    // coming back near the boundary (10 → 9 → 10) does not mail again either.
    f.members(&group, "remove", &users[0..1]).await;
    f.clock.advance_secs(3600); // past the grace: the seat is freed and promoted
    let (s, _) = f.admin(Method::POST, "/reconcile", None).await;
    assert_eq!(s, StatusCode::OK);
    f.close_window();
    smtp.expect(&f.app, 1).await;

    // Falling well below (70 %) re-arms both; crossing again is mailed again.
    f.members(&group, "remove", &users[1..4]).await;
    f.clock.advance_secs(3600);
    f.admin(Method::POST, "/reconcile", None).await;
    f.members(&group, "add", &users[0..4]).await; // 7 + 4: full again, one waits
    f.close_window();
    let got = smtp.expect(&f.app, 2).await;
    let t = find(&got, "combined");
    assert_eq!(t.len(), 2);
    assert!(
        subject(t[1]).contains("1 person could not get a seat"),
        "{}",
        subject(t[1])
    );
    let text = t[1]["text"].as_str().unwrap();
    assert!(
        text.contains("Pro reached all 10 of its seats on") && !text.contains("90%"),
        "one change crossing both thresholds is one event: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_other_event_kind_is_mailed() {
    let smtp = Smtp::start("none", 0.0).await;
    let f = Fixture::new(&smtp, &["licensing@contoso.example"]).await;
    let users = f.users("e", 6).await;
    f.group("Engineering", &users).await;
    let license = f.license("Visio", 6, "Engineering").await;
    f.close_window();
    smtp.expect(&f.app, 1).await; // 6 of 6: all seats in use

    // Capacity lowered below use (policy keep: nobody loses a seat).
    f.clock.tick();
    let (s, b) = f
        .admin(
            Method::PATCH,
            &format!("/licenses/{license}"),
            Some(json!({"seats": 4})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // A selector naming no group expires after the pending window (72 h by default).
    let (s, b) = f
        .admin(
            Method::POST,
            "/licenses",
            Some(json!({"name": "Typo", "seats": 1, "groups": [{"displayName": "Enginering"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Failing SCIM requests (threshold 5 in this configuration).
    for _ in 0..6 {
        let (s, _) = f
            .app
            .scim(
                &f.tok,
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER_SCHEMA], "userName": "e00000@contoso.example"})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
    }
    // A revoked token still in use.
    let (_, old) = f.admin(Method::POST, "/tokens", None).await;
    let old_id = old["id"].as_str().unwrap().to_owned();
    f.admin(Method::DELETE, &format!("/tokens/{old_id}"), None)
        .await;
    let (s, _) = f
        .app
        .scim(old["token"].as_str().unwrap(), Method::GET, "/Users", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Drift: a seat row lost behind the daemon's back, repaired by the reconciler.
    {
        let drift = "DELETE FROM seats WHERE user_id = (SELECT user_id FROM seats WHERE state = 'granted' ORDER BY user_id LIMIT 1);
             UPDATE licenses SET granted = granted - 1 WHERE name = 'Visio';";
        let database = database(&f.dir.path().join("seatkeeper.db"));
        if postgres_support::selected() {
            let url = database.to_str().unwrap().to_owned();
            std::thread::spawn(move || {
                let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                db.batch_execute(&format!("BEGIN; {drift} COMMIT;"))
                    .unwrap();
            })
            .join()
            .unwrap();
        } else {
            let db = rusqlite::Connection::open(database).unwrap();
            db.busy_timeout(Duration::from_secs(10)).unwrap();
            db.execute_batch(&format!("BEGIN IMMEDIATE; {drift} COMMIT;"))
                .unwrap();
        }
    }
    // Silence: nothing from the provider for longer than expected (2 h by default); the
    // pending window (72 h) passes too.
    f.clock.advance_secs(73 * 3600);
    let (s, report) = f.admin(Method::POST, "/reconcile", None).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["repaired"], 1, "{report}");
    f.close_window();

    // (The user whose seat row was lost is queued again; with 5 of 4 seats in use, they wait.)
    // Visio's two notices of the window (the lowered count, the one who waits) come as one
    // email; the tenant's notices each as its own.
    let got = smtp.expect(&f.app, 7).await;
    let visio = find(&got, "combined");
    assert_eq!(visio.len(), 1, "{got:#?}");
    assert_eq!(
        subject(visio[0]),
        "[seatkeeper] Contoso / Visio: 1 person could not get a seat; seat count lowered from 6 to 4, below the 6 seats in use"
    );
    let lowered = visio[0]["text"].as_str().unwrap();
    assert!(
        lowered.contains("In the seatkeeper console, open "),
        "{lowered}"
    );
    assert!(!lowered.contains("http"), "{lowered}");
    for (kind, subject_is) in [
        (
            "pending_expired",
            "[seatkeeper] Contoso: 1 group or member never arrived from your identity provider",
        ),
        (
            "scim_failures",
            "[seatkeeper] Contoso: 5 provisioning requests failed within 10 minutes",
        ),
        (
            "auth_failures",
            "[seatkeeper] Contoso: requests with a revoked or wrong token were refused",
        ),
        (
            "drift_repaired",
            "[seatkeeper] Contoso: seatkeeper corrected 1 seat",
        ),
        (
            "silence",
            // (73 hours, give or take the milliseconds the test's clock ticked)
            "[seatkeeper] Contoso: no provisioning calls for 3 days",
        ),
    ] {
        let m = find(&got, kind);
        assert_eq!(m.len(), 1, "{kind}: {got:#?}");
        assert!(subject(m[0]).starts_with(subject_is), "{}", subject(m[0]));
        let text = m[0]["text"].as_str().unwrap();
        assert!(text.contains("What you can do"), "{text}");
        // No public_url here: the email says where the page is instead of a dead link.
        assert!(text.contains("In the seatkeeper console, open "), "{text}");
        assert!(!text.contains("http"), "{text}");
    }
    assert!(
        lowered
            .contains("the seat count of Visio was lowered from 6 to 4 while 6 seats were in use")
            && lowered.contains("Nobody lost a seat"),
        "{lowered}"
    );
    let failing = find(&got, "scim_failures")[0]["text"].as_str().unwrap();
    assert!(
        failing.contains("Requests: 5 · Error: 409 uniqueness on POST /scim/v2/Users"),
        "{failing}"
    );
    let refused = csv_rows(find(&got, "auth_failures")[0]);
    assert_eq!(refused[0], "Token,Why refused,From address,Requests");
    assert!(
        refused[1].starts_with("\"issued ") && refused[1].contains(",it was revoked,"),
        "{refused:?}"
    );
    assert!(!refused.concat().contains(&old_id), "{refused:?}");
    let expired = csv_rows(find(&got, "pending_expired")[0]);
    assert!(expired[1].contains("Enginering"), "{expired:?}");

    // Silence is mailed once per silence: another pass stays quiet until the provider calls.
    f.admin(Method::POST, "/reconcile", None).await;
    f.close_window();
    smtp.expect(&f.app, 7).await;

    // A test message goes out at once, to the tenant's recipients or to some of them (never to
    // anyone else: see a_message_refused_for_good_is_kept_and_shown_until_someone_acts).
    let (s, q) = f
        .admin(
            Method::POST,
            "/notifications/test",
            Some(json!({"to": ["licensing@contoso.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{q}");
    let got = smtp.expect(&f.app, 8).await;
    assert_eq!(got[7]["to"], json!(["licensing@contoso.example"]));
    assert_eq!(subject(&got[7]), "[seatkeeper] Contoso: test message");
    let (s, e) = f
        .admin(
            Method::POST,
            "/notifications/test",
            Some(json!({"to": ["not an address"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_smtp_outage_delays_mail_and_loses_none() {
    let mut smtp = Smtp::start("none", 0.0).await;
    let f = Fixture::new(&smtp, &["licensing@contoso.example"]).await;
    smtp.stop();
    let users = f.users("o", 4).await;
    f.group("Ops", &users).await;
    f.license("Ops", 2, "Ops").await; // 2 blocked, and full: one combined email
    for _ in 0..3 {
        f.admin(Method::POST, "/notifications/test", None).await;
    }
    f.close_window();
    // Every attempt fails (connection refused) and is scheduled again.
    let messages = |outbox: &Value| -> Vec<Value> {
        outbox["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["state"] != "combined")
            .cloned()
            .collect()
    };
    let mut outbox = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        outbox = f.outbox().await;
        let all = messages(&outbox);
        if all.len() == 4 && all.iter().all(|n| n["attempts"].as_i64() >= Some(1)) {
            break;
        }
    }
    assert_eq!(outbox["counts"]["combined"], 2, "{outbox}");
    for n in messages(&outbox) {
        assert_eq!(n["state"], "pending", "{n}");
        assert!(n["attempts"].as_i64() >= Some(1), "{n}");
        assert!(
            n["lastError"].as_str().is_some_and(|e| !e.is_empty()),
            "{n}"
        );
        assert!(n["nextAttempt"].as_str().is_some(), "{n}");
    }
    // Still down a while later: more attempts, nothing lost.
    f.clock.advance_secs(60);
    f.app.sender_pass().await;
    let smtp = smtp.restart().await;
    f.clock.advance_secs(3600);
    let got = smtp.expect(&f.app, 4).await;
    let ids: std::collections::BTreeSet<&str> = got
        .iter()
        .map(|m| m["headers"]["Message-ID"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "each message once");
    let outbox = f.outbox().await;
    assert_eq!(outbox["counts"]["sent"], 4, "{outbox}");
    assert!(messages(&outbox)
        .iter()
        .all(|n| n["attempts"].as_i64() >= Some(2)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_rejection_is_marked_failed_and_can_be_retried() {
    let smtp = Smtp::start("none", 0.0).await;
    let f = Fixture::new(&smtp, &["rejected@contoso.example"]).await;
    let (s, q) = f.admin(Method::POST, "/notifications/test", None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{q}");
    let mut n = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        n = f.outbox().await["notifications"][0].clone();
        if n["state"] == "failed" {
            break;
        }
    }
    assert_eq!(n["state"], "failed", "{n}");
    assert_eq!(n["attempts"], 1);
    assert!(n["lastError"].as_str().unwrap().contains("550"), "{n}");
    let (_, failed) = f
        .admin(Method::GET, "/notifications?state=failed", None)
        .await;
    assert_eq!(failed["notifications"].as_array().unwrap().len(), 1);
    assert!(smtp.messages().is_empty());

    // The address is fixed in the directory of the mail server... here: the tenant's list.
    let (s, _) = f
        .app
        .admin(
            Method::PATCH,
            &format!("/tenants/{}", f.tenant),
            Some(json!({"notify": ["licensing@contoso.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let id = n["id"].as_i64().unwrap();
    let (s, r) = f
        .admin(Method::POST, &format!("/notifications/{id}/retry"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // A message is retried as it was rendered: to the same (rejected) recipient.
    f.app.sender_pass().await;
    let n = f.outbox().await["notifications"][0].clone();
    assert_eq!(n["state"], "failed", "{n}");
    assert_eq!(n["attempts"], 2);
    let (s, _) = f
        .admin(Method::POST, &format!("/notifications/{id}/retry"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = f
        .admin(Method::POST, "/notifications/999/retry", None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_in_the_middle_of_sending_loses_nothing() {
    let smtp = Smtp::start("none", 0.4).await;
    let Fixture {
        s: Scenario {
            app, clock, tenant, ..
        },
        dir,
    } = Fixture::new(&smtp, &["licensing@contoso.example"]).await;
    for i in 0..8 {
        if i == 5 {
            // At most five test messages a tenant an hour: the next three an hour later.
            clock.advance_secs(3601);
        }
        let (s, _) = app
            .admin(
                Method::POST,
                &format!("/tenants/{tenant}/notifications/test"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    // Stop once the first has arrived: the one in hand is finished, the rest wait in the outbox.
    for _ in 0..100 {
        if !smtp.messages().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
    let before = smtp.messages().len();
    assert!((1..8).contains(&before), "{before} sent before the stop");

    let app = daemon(dir.path(), &clock, &smtp, |_| {}).await;
    let got = smtp.expect(&app, 8).await;
    let ids: std::collections::BTreeSet<&str> = got
        .iter()
        .map(|m| m["headers"]["Message-ID"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 8, "every message, once");
    let (_, outbox) = app
        .admin(
            Method::GET,
            &format!("/tenants/{tenant}/notifications"),
            None,
        )
        .await;
    assert_eq!(outbox["counts"]["sent"], 8, "{outbox}");
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_and_implicit_tls_deliver() {
    for mode in ["starttls", "implicit"] {
        let smtp = Smtp::start(mode, 0.0).await;
        let f = Fixture::new(&smtp, &["licensing@contoso.example"]).await;
        let (s, _) = f.admin(Method::POST, "/notifications/test", None).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let got = smtp.expect(&f.app, 1).await;
        assert_eq!(got[0]["tls"], true, "{mode}");
        assert_eq!(subject(&got[0]), "[seatkeeper] Contoso: test message");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_smtp_mail_goes_to_the_mail_folder() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let app = TestApp::spawn_in(dir.path(), &clock, |_| {}).await;
    let (s, t) = app
        .admin(
            Method::POST,
            "/tenants",
            Some(json!({"name": "Fabrikam", "notify": ["it@fabrikam.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/tenants/{}/notifications/test", id(&t)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let folder = dir.path().join("mail");
    let mut files = Vec::new();
    for _ in 0..100 {
        files = std::fs::read_dir(&folder)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        if !files.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with("-test.eml"));
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("Subject: [seatkeeper] Fabrikam: test message"));
    assert!(eml.contains("To: it@fabrikam.example"));
    assert!(eml.contains("Auto-Submitted: auto-generated"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_blocked_in_one_sync_are_one_email() {
    // On PostgreSQL (the same digest code, a second engine under it) 2,000 show it in a
    // fraction of the CI time; SQLite runs the full 10,000.
    let n = if postgres_support::selected() {
        2_000
    } else {
        10_000
    };
    let smtp = Smtp::start("none", 0.0).await;
    let f = Fixture::new(&smtp, &["licensing@contoso.example"]).await;
    let users = f.users("big", n).await;
    f.group("Everyone", &users).await;
    f.license("Big", 0, "Everyone").await;
    f.close_window();
    let got = smtp.expect(&f.app, 1).await;
    assert_eq!(
        subject(&got[0]),
        format!("[seatkeeper] Contoso / Big: {n} people could not get a seat")
    );
    assert_eq!(csv_rows(&got[0]).len(), n + 1);
    // Gmail clips a message past about 102 KB: the HTML stays well under it.
    let html = got[0]["html"].as_str().unwrap();
    assert!(html.len() < 100_000, "{} bytes", html.len());
    assert!(
        html.contains(&format!("{} more", n - 25)),
        "the rest is counted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_refused_for_good_is_kept_and_shown_until_someone_acts() {
    let smtp = Smtp::start("none", 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let url = smtp.url();
    // The daemon's own periodic pass, every second, prunes the outbox by the manual clock.
    let app = TestApp::spawn_in(dir.path(), &clock, move |c| {
        c.smtp_url = Some(seatkeeper::config::Secret(url));
        c.mail_from = FROM.into();
        c.reconcile_interval_seconds = 1;
    })
    .await;
    let (_, t) = app
        .admin(
            Method::POST,
            "/tenants",
            Some(json!({"name": "Contoso", "notify": ["rejected@contoso.example", "ok@contoso.example"]})),
        )
        .await;
    let tenant = id(&t);
    let admin = |m: Method, path: String, body: Option<Value>| {
        let app = &app;
        let tenant = tenant.clone();
        async move {
            app.admin(m, &format!("/tenants/{tenant}{path}"), body)
                .await
        }
    };
    // A test email goes only to the tenant's own recipients: no relay for a token holder.
    let (s, e) = admin(
        Method::POST,
        "/notifications/test".into(),
        Some(json!({"to": ["someone@elsewhere.example"]})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, q) = admin(
        Method::POST,
        "/notifications/test".into(),
        Some(json!({"to": ["Rejected@contoso.example"]})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{q}");
    let id = q["id"].as_i64().unwrap();
    let mut state = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = admin(Method::GET, format!("/notifications/{id}"), None)
            .await
            .1["state"]
            .clone();
        if state == "failed" {
            break;
        }
    }
    assert_eq!(state, "failed");
    // Shown to the operator and the tenant's admins.
    let (_, status) = admin(Method::GET, "/status".into(), None).await;
    assert_eq!(status["undelivered"], 1, "{status}");
    let metrics = app.metrics().await;
    assert!(metrics.contains(r#"state="failed"} 1"#), "{metrics}");
    // 91 days and several passes later it is still there (finished messages are pruned after
    // mail_retention_days, 90; a failed one is not finished).
    clock.advance_secs(91 * 86_400);
    app.reconciler_passes(2).await;
    let (s, n) = admin(Method::GET, format!("/notifications/{id}"), None).await;
    assert_eq!(
        (s, n["state"].as_str()),
        (StatusCode::OK, Some("failed")),
        "{n}"
    );
    // Dismissed: no longer undelivered, and pruned (it is older than the 90 days).
    let (s, n) = admin(Method::POST, format!("/notifications/{id}/dismiss"), None).await;
    assert_eq!(
        (s, n["state"].as_str()),
        (StatusCode::OK, Some("dismissed")),
        "{n}"
    );
    let (s, _) = admin(Method::POST, format!("/notifications/{id}/dismiss"), None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, status) = admin(Method::GET, "/status".into(), None).await;
    assert_eq!(status["undelivered"], 0, "{status}");
    app.reconciler_passes(2).await;
    let (s, _) = admin(Method::GET, format!("/notifications/{id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_recipient_gets_the_kinds_it_asked_for_and_the_operator_a_copy_with_ids() {
    let smtp = Smtp::start("none", 0.0).await;
    let f = Fixture::with(
        &smtp,
        json!(["all@contoso.example", {"email": "thresholds@contoso.example", "kinds": ["threshold"]}]),
        |c| {
            c.operator_notify = vec![
                seatkeeper::notify::Recipient::parse_line("ops@vendor.example: blocked")
                    .unwrap(),
            ];
            c.public_url = Some("https://seats.vendor.example".into());
        },
    )
    .await;
    let (s, t) = f
        .admin(
            Method::PATCH,
            "",
            Some(json!({"time_zone": "Europe/Berlin"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["time_zone"], "Europe/Berlin");
    assert_eq!(t["notify"][1]["kinds"], json!(["threshold"]), "{t}");
    for bad in [
        json!({"time_zone": "Europe/Atlantis"}),
        json!({"notify": [{"email": "x@contoso.example", "kinds": ["nope"]}]}),
        json!({"notify": [{"email": "x@contoso.example", "kinds": []}]}),
        json!({"weekly_summary": {"day": "someday", "hour": 8}}),
        json!({"weekly_summary": {"day": "monday", "hour": 24}}),
    ] {
        let (s, e) = f.admin(Method::PATCH, "", Some(bad.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} -> {e}");
    }
    let users = f.users("p", 3).await;
    f.group("Product", &users).await;
    f.clock.tick();
    let (s, l) = f
        .admin(
            Method::POST,
            "/licenses",
            Some(
                json!({"name": "MindManager", "seats": 2, "groups": [{"displayName": "Product"}],
                        "notify": ["pm@contoso.example"]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    assert_eq!(l["notify"], json!(["pm@contoso.example"]));
    let license = id(&l);
    f.close_window();
    let got = smtp.expect(&f.app, 3).await;
    let to = |m: &Value| m["to"].clone();

    // The tenant's recipients of each kind and the license's own: who receives both of the
    // window's notices gets them in one email; who receives thresholds only, that one alone.
    let blocked = find(&got, "combined");
    assert_eq!(blocked.len(), 1, "{got:#?}");
    assert_eq!(
        to(blocked[0]),
        json!(["all@contoso.example", "pm@contoso.example"])
    );
    let threshold = find(&got, "threshold");
    assert_eq!(to(threshold[0]), json!(["thresholds@contoso.example"]));
    let text = blocked[0]["text"].as_str().unwrap();
    // Times in the tenant's zone; one link to the waitlist; no ids in the words.
    assert!(text.contains("Thu 1 Jan 2026, 01:00 CET"), "{text}");
    assert!(
        text.contains(&format!(
            "https://seats.vendor.example/console/tenants/{}/licenses/{license}/seats?state=blocked",
            f.tenant
        )),
        "{text}"
    );
    assert!(!text.contains("For the operator"), "{text}");
    assert!(!users.iter().any(|u| text.contains(u.as_str())), "{text}");

    // The operator's copy: its own message, with the ids and the API and CLI hints.
    let copy: Vec<&Value> = find(&got, "blocked")
        .into_iter()
        .filter(|m| subject(m).ends_with("(operator copy)"))
        .collect();
    assert_eq!(copy.len(), 1, "{got:#?}");
    assert_eq!(to(copy[0]), json!(["ops@vendor.example"]));
    let op = copy[0]["text"].as_str().unwrap();
    assert!(op.contains("For the operator"), "{op}");
    assert!(op.contains(&format!("(id {license})")), "{op}");
    assert!(users.iter().any(|u| op.contains(u.as_str())), "{op}");
    assert!(
        op.contains("seatkeeper license set Contoso MindManager"),
        "{op}"
    );
    assert_ne!(
        copy[0]["headers"]["Message-ID"],
        blocked[0]["headers"]["Message-ID"]
    );

    // The tenant's outbox shows its own messages (the two notices and the combined email
    // that carried them), not the operator's copy.
    let outbox = f.outbox().await;
    assert_eq!(
        outbox["notifications"].as_array().unwrap().len(),
        3,
        "{outbox}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_weekly_summary_comes_at_its_local_hour_once_and_not_after_a_quiet_week() {
    let smtp = Smtp::start("none", 0.0).await;
    let f = Fixture::new(&smtp, &["licensing@contoso.example"]).await;
    // The test clock starts on Thursday 1 January 2026, 00:00 UTC (01:00 in Berlin).
    let (s, t) = f
        .admin(
            Method::PATCH,
            "",
            Some(
                json!({"time_zone": "Europe/Berlin", "expected_sync_seconds": 2_592_000,
                        "weekly_summary": {"day": "thursday", "hour": 9}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["weekly_summary"], json!({"day": "thursday", "hour": 9}));
    let users = f.users("w", 2).await;
    f.group("Sales", &users).await;
    f.license("Sales Pro", 5, "Sales").await;

    // 07:59 UTC is 08:59 in Berlin: not yet.
    f.clock.advance_secs(7 * 3600 + 59 * 60);
    f.admin(Method::POST, "/reconcile", None).await;
    // 08:00 UTC is 09:00 in Berlin: the summary of the week before.
    f.clock.advance_secs(60);
    f.admin(Method::POST, "/reconcile", None).await;
    f.admin(Method::POST, "/reconcile", None).await; // once per slot
    f.close_window();
    let got = smtp.expect(&f.app, 1).await;
    assert_eq!(
        subject(&got[0]),
        "[seatkeeper] Contoso: weekly seat summary to Thu 1 Jan 2026"
    );
    let text = got[0]["text"].as_str().unwrap();
    assert!(
        text.contains("License: Sales Pro · Seats in use: 2 · Seats: 5 · Waiting: 0 · Seats given this week: 2 · Seats ended this week: 0"),
        "{text}"
    );
    assert!(
        text.contains("from Thu 25 Dec 2025 to Thu 1 Jan 2026"),
        "{text}"
    );

    // A week in which no seat changed records nothing (the summary is recorded by the
    // reconciler's own transaction, so the outbox shows it at once when there is one).
    f.clock.advance_secs(7 * 86_400);
    let (s, _) = f.admin(Method::POST, "/reconcile", None).await;
    assert_eq!(s, StatusCode::OK);
    let outbox = f.outbox().await;
    let weekly = outbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "weekly_summary")
        .count();
    assert_eq!(weekly, 1, "{outbox}");

    // Turned off, it stays off.
    let (s, t) = f
        .admin(Method::PATCH, "", Some(json!({"weekly_summary": null})))
        .await;
    assert_eq!((s, &t["weekly_summary"]), (StatusCode::OK, &Value::Null));
}
