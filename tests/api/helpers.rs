//! The test harness: every test spawns the real daemon on a free port with its own database
//! and talks HTTP to it.

use std::path::Path;

use reqwest::{Method, StatusCode};
use seatkeeper::app::Application;
use seatkeeper::config::{Config, Secret};
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// What SCIM paths are appended to: `/scim/v2`, or a form of it a client might be given
    /// (`/scim/v2/`, as a Tenant URL pasted with a trailing slash).
    pub scim_base: String,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: Option<tempfile::TempDir>,
    mail: (
        std::sync::Arc<tokio::sync::Notify>,
        std::sync::Arc<seatkeeper::workers::mail::Stats>,
    ),
    webhooks: (
        std::sync::Arc<tokio::sync::Notify>,
        std::sync::Arc<seatkeeper::workers::webhooks::Stats>,
    ),
}

/// The database a test daemon uses for the SQLite file `db`: that file, or with
/// `SEATKEEPER_TEST_ENGINE=postgres` a database of its own in the test cluster.
pub fn database(db: &Path) -> std::path::PathBuf {
    if super::postgres_support::selected() {
        super::postgres_support::cluster().database_for(db).into()
    } else {
        db.to_owned()
    }
}

pub fn config(db: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: database(db),
        // Beside "the file" on either engine (a PostgreSQL URL has no folder).
        mail_dir: Some(db.parent().unwrap_or(Path::new(".")).join("mail")),
        admin_token: Some(Secret(ADMIN_TOKEN.into())),
        workers: 2,
        max_body_bytes: 256 * 1024,
        max_results: 100,
        // Webhook receivers in the tests listen on plain http on 127.0.0.1.
        webhook_allow_http: true,
        webhook_allow_private_addresses: true,
        ..Config::default()
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("seatkeeper.db");
        let mut app = Self::spawn_with(config(&db)).await;
        app._dir = Some(dir);
        app
    }

    /// A daemon whose allocator reads `clock` (advance it instead of sleeping).
    pub async fn spawn_clocked() -> (TestApp, ManualClock) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new();
        let app =
            Application::build_with_clock(config(&dir.path().join("seatkeeper.db")), clock.clock())
                .await
                .expect("the daemon starts");
        let mut t = Self::from_app(app);
        t._dir = Some(dir);
        (t, clock)
    }

    /// A daemon on the database in `dir`, reading `clock`, with `adjust` applied to the test
    /// configuration (the caller keeps `dir`, so a test can stop and start it again).
    #[allow(dead_code)] // used by tests/mail.rs
    pub async fn spawn_in(
        dir: &Path,
        clock: &ManualClock,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut config = config(&dir.join("seatkeeper.db"));
        adjust(&mut config);
        let app = Application::build_with_clock(config, clock.clock())
            .await
            .expect("the daemon starts");
        Self::from_app(app)
    }

    pub async fn spawn_with(config: Config) -> TestApp {
        let app = Application::build(config).await.expect("the daemon starts");
        Self::from_app(app)
    }

    fn from_app(app: Application) -> TestApp {
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let mail = app.mail_probe();
        let webhooks = app.webhooks_probe();
        let task = tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            client: reqwest::Client::new(),
            scim_base: "/scim/v2".into(),
            handle,
            task,
            _dir: None,
            mail,
            webhooks,
        }
    }

    /// Wakes the notification sender and waits until it has finished a whole pass begun after
    /// this call: what it would send by now, it has sent.
    #[allow(dead_code)] // used by tests/mail.rs
    pub async fn sender_pass(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let (wake, stats) = &self.mail;
        // The pass running now may have begun before the change; the one after it has not.
        let target = stats.passes.load(SeqCst) + 2;
        for _ in 0..2000 {
            wake.notify_one();
            if stats.passes.load(SeqCst) >= target {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the notification sender ran no pass in 10 s");
    }

    /// Waits until the daemon's background reconciler has finished `n` more passes (by
    /// `seatkeeper_reconcile_runs_total`): what its passes do by now (pruning, expiry), done.
    #[allow(dead_code)] // each test binary uses its own part
    pub async fn reconciler_passes(&self, n: u64) {
        let runs = || async {
            let m = self.metrics().await;
            m.lines()
                .find_map(|l| l.strip_prefix("seatkeeper_reconcile_runs_total "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let target = runs().await + n;
        for _ in 0..400 {
            if runs().await >= target {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the reconciler ran fewer than {n} passes in 20 s");
    }

    /// Wakes the webhook dispatcher and waits until it has found nothing due and nothing in
    /// flight in a round begun after this call: what it would deliver by now, it has.
    #[allow(dead_code)] // each test binary uses its own part
    pub async fn dispatcher_pass(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let (wake, stats) = &self.webhooks;
        let target = stats.idle_rounds.load(SeqCst) + 2;
        for _ in 0..2000 {
            wake.notify_one();
            if stats.idle_rounds.load(SeqCst) >= target {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the webhook dispatcher ran no idle round in 10 s");
    }

    /// Where the daemon writes its emails (no SMTP server is configured in these tests).
    #[allow(dead_code)] // each test binary uses its own part
    pub fn mail_dir(&self) -> std::path::PathBuf {
        self._dir
            .as_ref()
            .map(|d| d.path().join("mail"))
            .expect("a daemon in a temporary directory")
    }

    /// Stops the daemon gracefully; returns the temporary directory so the database outlives it.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        self.handle.stop(true).await;
        let _ = (&mut self.task).await;
        self._dir.take()
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let verb = method.to_string();
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb
                .header("Content-Type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = rb.send().await.expect("request sent");
        let status = resp.status();
        record_route_hit(&verb, resp.url().path(), status);
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.request(method, &format!("/admin/v1{path}"), Some(ADMIN_TOKEN), body)
            .await
    }

    pub async fn scim(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.request(
            method,
            &format!("{}{path}", self.scim_base),
            Some(token),
            body,
        )
        .await
    }

    /// `/metrics` as the operator scrapes it (with the admin token).
    pub async fn metrics(&self) -> String {
        let r = self
            .client
            .get(format!("{}/metrics", self.address))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request sent");
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    }

    /// Creates a tenant and issues it a token.
    pub async fn tenant(&self, name: &str) -> (String, String) {
        let (s, t) = self
            .admin(
                Method::POST,
                "/tenants",
                Some(json!({"name": name, "notify": ["admin@example.com"]})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        let id = t["id"].as_str().unwrap().to_owned();
        let (s, tok) = self
            .admin(Method::POST, &format!("/tenants/{id}/tokens"), None)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{tok}");
        (id, tok["token"].as_str().unwrap().to_owned())
    }

    pub async fn create_user(&self, token: &str, user_name: &str) -> Value {
        let (s, u) = self
            .scim(
                token,
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER_SCHEMA], "userName": user_name, "active": true})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        u
    }

    /// Creates license `name` of `seats` seats in `tenant`, selecting the group named `group`.
    pub async fn license(&self, tenant: &str, name: &str, seats: i64, group: &str) -> Value {
        let (s, l) = self
            .admin(
                Method::POST,
                &format!("/tenants/{tenant}/licenses"),
                Some(json!({"name": name, "seats": seats, "groups": [{"displayName": group}]})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
        l
    }

    /// Issues `tenant` an admin token; returns the secret.
    pub async fn admin_token(&self, tenant: &str) -> String {
        let (s, v) = self
            .admin(
                Method::POST,
                &format!("/tenants/{tenant}/admin-tokens"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    pub async fn create_group(&self, token: &str, name: &str, members: &[&str]) -> Value {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let (s, g) = self
            .scim(
                token,
                Method::POST,
                "/Groups",
                Some(json!({"schemas": [GROUP_SCHEMA], "displayName": name, "members": members})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        g
    }
}

/// A clock tests move by hand.
#[derive(Clone)]
pub struct ManualClock(pub std::sync::Arc<std::sync::atomic::AtomicI64>);

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    pub fn new() -> Self {
        ManualClock(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(
            1_767_225_600_000,
        )))
    }
    pub fn advance_secs(&self, s: i64) {
        self.0
            .fetch_add(s * 1000, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn tick(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn clock(&self) -> seatkeeper::store::Clock {
        let c = self.0.clone();
        std::sync::Arc::new(move || c.load(std::sync::atomic::Ordering::SeqCst))
    }
}

pub fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// Asserts a SCIM error body with the status (and scimType, when given).
pub fn assert_scim_error(status: StatusCode, body: &Value, want: u16, scim_type: Option<&str>) {
    assert_eq!(status.as_u16(), want, "{body}");
    assert_eq!(
        body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{body}"
    );
    assert_eq!(body["status"], want.to_string(), "{body}");
    if let Some(t) = scim_type {
        assert_eq!(body["scimType"], t, "{body}");
    }
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

/// One tenant on a daemon with a manual clock, and its SCIM token: the fixture the allocation
/// scenarios (`api/seats.rs`) and the email tests (`mail.rs`) share. Directory writes tick the
/// clock first, so each lands at its own instant as a provider's requests do.
pub struct Scenario {
    pub app: TestApp,
    pub clock: ManualClock,
    pub tenant: String,
    pub tok: String,
}

#[allow(dead_code)] // each test binary uses its own part
impl Scenario {
    /// A new daemon on a manual clock, with tenant `name`.
    pub async fn new(name: &str) -> Scenario {
        let (app, clock) = TestApp::spawn_clocked().await;
        let (tenant, tok) = app.tenant(name).await;
        Scenario {
            app,
            clock,
            tenant,
            tok,
        }
    }

    /// Tenant `name` notifying `notify`, on a daemon already running on `clock`.
    pub async fn on(app: TestApp, clock: ManualClock, name: &str, notify: Value) -> Scenario {
        let (s, t) = app
            .admin(
                Method::POST,
                "/tenants",
                Some(json!({"name": name, "notify": notify})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        let tenant = id(&t);
        let (s, tok) = app
            .admin(Method::POST, &format!("/tenants/{tenant}/tokens"), None)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{tok}");
        Scenario {
            app,
            clock,
            tenant,
            tok: tok["token"].as_str().unwrap().to_owned(),
        }
    }

    /// An admin request on a path under the tenant.
    pub async fn admin(&self, m: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.app
            .admin(m, &format!("/tenants/{}{path}", self.tenant), body)
            .await
    }

    pub async fn user(&self, name: &str) -> String {
        self.clock.tick();
        id(&self.app.create_user(&self.tok, name).await)
    }

    pub async fn group<S: AsRef<str>>(&self, name: &str, members: &[S]) -> String {
        let refs: Vec<&str> = members.iter().map(AsRef::as_ref).collect();
        self.clock.tick();
        id(&self.app.create_group(&self.tok, name, &refs).await)
    }

    /// Adds (`op` "add") or removes members of `group` with one PATCH.
    pub async fn members<S: AsRef<str>>(&self, group: &str, op: &str, ids: &[S]) {
        self.clock.tick();
        let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
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
}

/// With `SEATKEEPER_ROUTE_HITS=<file>`, appends each request a test makes through these
/// helpers (method, path, status, the test's name) to the file: `.ci/route-coverage` then
/// lists, for every route of `http::route_table`, the tests that call it.
pub fn record_route_hit(method: &str, path: &str, status: StatusCode) {
    use std::io::Write as _;
    let Ok(file) = std::env::var("SEATKEEPER_ROUTE_HITS") else {
        return;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned();
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| s.split('-').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    {
        let _ = writeln!(f, "{method}\t{path}\t{}\t{binary}::{test}", status.as_u16());
    }
}

/// Runs one statement on the test daemon's database, behind its back, as an attacker with
/// write access to the database would.
#[allow(dead_code)] // each test binary uses its own part
pub async fn sql(database: &std::path::Path, statement: &str) {
    let (database, statement) = (database.to_owned(), statement.to_owned());
    tokio::task::spawn_blocking(move || {
        let text = database.to_string_lossy().into_owned();
        if text.starts_with("postgres") {
            let mut c = postgres::Client::connect(&text, postgres::NoTls).unwrap();
            c.batch_execute(&statement).unwrap();
        } else {
            let c = rusqlite::Connection::open(&database).unwrap();
            c.execute_batch(&statement).unwrap();
        }
    })
    .await
    .unwrap();
}
