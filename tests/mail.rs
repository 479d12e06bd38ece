//! Notification emails, delivered to a real SMTP server: aiosmtpd (tests/mail/smtpd.py, from
//! PyPI into target/) on a free local port. Each test starts the real daemon with `smtp_url`
//! pointing at it and a manual clock (digest windows and back-offs pass without sleeping), and
//! asserts on what the server received, parsed by Python's own MIME parser.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
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

    /// Waits until `n` messages arrived, then a little longer, and returns exactly those.
    async fn expect(&self, n: usize) -> Vec<Value> {
        for _ in 0..300 {
            if self.messages().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let got = self.messages();
        assert_eq!(
            got.len(),
            n,
            "messages received: {:#?}",
            got.iter().map(|m| &m["headers"]["Subject"]).collect::<Vec<_>>()
        );
        got
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A daemon sending to `smtp`, with one tenant whose admins are notified.
struct Fixture {
    app: TestApp,
    clock: ManualClock,
    dir: tempfile::TempDir,
    tenant: String,
    tok: String,
}

const FROM: &str = "seatkeeper <licensing@vendor.example>";

async fn daemon(dir: &Path, clock: &ManualClock, smtp: &Smtp) -> TestApp {
    let url = smtp.url();
    let ca = (smtp.tls != "none").then(|| smtp.ca());
    TestApp::spawn_in(dir, clock, move |c| {
        c.smtp_url = Some(seatkeeper::config::Secret(url));
        c.smtp_ca_file = ca;
        c.mail_from = FROM.into();
        c.max_body_bytes = 16 * 1024 * 1024;
        c.scim_failure_threshold = 5;
    })
    .await
}

impl Fixture {
    async fn new(smtp: &Smtp, notify: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new();
        let app = daemon(dir.path(), &clock, smtp).await;
        let (s, t) = app
            .admin(
                Method::POST,
                "/tenants",
                Some(json!({"name": "Contoso", "notify": notify})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        let tenant = id(&t);
        let (_, tok) = app
            .admin(Method::POST, &format!("/tenants/{tenant}/tokens"), None)
            .await;
        Fixture {
            app,
            clock,
            dir,
            tenant,
            tok: tok["token"].as_str().unwrap().to_owned(),
        }
    }

    async fn admin(&self, m: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.app
            .admin(m, &format!("/tenants/{}{path}", self.tenant), body)
            .await
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

    async fn group(&self, name: &str, members: &[String]) -> String {
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        self.clock.tick();
        id(&self.app.create_group(&self.tok, name, &refs).await)
    }

    async fn members(&self, group: &str, op: &str, ids: &[String]) {
        self.clock.tick();
        let body = if op == "add" {
            patch(json!([{"op": "add", "path": "members",
                "value": ids.iter().map(|i| json!({"value": i})).collect::<Vec<_>>()}]))
        } else {
            patch(json!(ids
                .iter()
                .map(|i| json!({"op": "remove", "path": format!("members[value eq \"{i}\"]")}))
                .collect::<Vec<_>>()))
        };
        let (s, b) = self
            .app
            .scim(
                &self.tok,
                Method::PATCH,
                &format!("/Groups/{group}"),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    async fn license(&self, name: &str, seats: i64, group: &str) -> String {
        self.clock.tick();
        let (s, l) = self
            .admin(
                Method::POST,
                "/licenses",
                Some(json!({"name": name, "seats": seats, "groups": [{"displayName": group}]})),
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

    // Nothing is sent before the digest window closes.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(smtp.messages().is_empty());
    let outbox = f.outbox().await;
    assert_eq!(outbox["counts"]["collecting"], 2, "{outbox}");

    f.close_window();
    let got = smtp.expect(2).await;
    let blocked = find(&got, "blocked");
    assert_eq!(blocked.len(), 1, "one email for 250 blocked users");
    let m = blocked[0];
    assert_eq!(
        subject(m),
        "[seatkeeper] Contoso / MindManager: 250 users blocked for lack of seats"
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
        text.contains("10 of 10 in use (10 granted, 0 releasing"),
        "{text}"
    );
    assert!(text.contains("250 waiting"), "{text}");
    assert!(text.contains("Raise the seat count"), "{text}");
    assert!(text.contains("Pin the users"), "{text}");
    // The first 200 in the body, the rest in the CSV.
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("@contoso.example (id "))
        .collect();
    assert_eq!(listed.len(), 200, "{text}");
    assert!(text.contains("50 more"));
    assert_eq!(
        m["html"].as_str().unwrap().matches("@contoso.example</td>").count(),
        200
    );
    let rows = csv_rows(m);
    assert_eq!(rows.len(), 251, "a header and every blocked user");
    assert!(rows[0].starts_with("userName,userId,at,stateNow"));
    let names: std::collections::BTreeSet<&str> = rows[1..]
        .iter()
        .map(|r| r.split(',').next().unwrap())
        .collect();
    assert_eq!(names.len(), 250, "every blocked user once");
    assert!(names.iter().all(|n| n.starts_with("dev")));

    // The full-license crossing was its own email, once.
    let full = find(&got, "threshold");
    assert_eq!(subject(full[0]), "[seatkeeper] Contoso / MindManager: all seats in use");

    // The outbox shows both sent, with their attempts and Message-IDs.
    let outbox = f.outbox().await;
    assert_eq!(outbox["counts"]["sent"], 2, "{outbox}");
    for n in outbox["notifications"].as_array().unwrap() {
        assert_eq!(n["attempts"], 1);
        assert!(n["messageId"].as_str().is_some());
        assert!(n["sent"].as_str().is_some());
    }
    // Users blocked after the digest closed start a new one.
    let more = f.users("late", 3).await;
    let (_, groups) = f
        .app
        .scim(&f.tok, Method::GET, "/Groups?filter=displayName%20eq%20%22Developers%22&excludedAttributes=members", None)
        .await;
    let group = id(&groups["Resources"][0]);
    f.members(&group, "add", &more).await;
    f.close_window();
    let got = smtp.expect(3).await;
    let m = &got[2];
    assert_eq!(
        subject(m),
        "[seatkeeper] Contoso / MindManager: 3 users blocked for lack of seats"
    );
    assert_eq!(csv_rows(m).len(), 4);
    let (_, seats) = f.admin(Method::GET, &format!("/licenses/{license}"), None).await;
    assert_eq!(seats["blocked"], 253, "{seats}");
}
