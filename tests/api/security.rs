//! The security review's limits over real HTTP: per-address limits that a junk credential does
//! not skip, the brake on `/metrics`, the product API's rate per token, test emails per tenant,
//! webhook endpoints per tenant and delivery fairness between tenants, ambiguous product
//! references, console sessions bound to the credential that opened them, and the audit chain
//! that wiping hashes or cutting its tail no longer fools.

use std::time::{Duration, Instant};

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use super::cli_support::cli;
use crate::helpers::*;

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_junk_credential_counts_against_its_address_and_a_valid_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("seatkeeper.db"));
    c.client_requests_per_second = 2; // bursts to 4
    c.auth_failures_per_minute = 0; // the address rate alone
    let app = TestApp::spawn_with(c).await;
    let (_, token) = app.tenant("acme").await;
    let http = no_redirects();
    let url = |p: &str| format!("{}{p}", app.address);
    let mut statuses = Vec::new();
    for i in 0..12 {
        let rb = http.get(url("/scim/v2/Users"));
        let rb = if i % 2 == 0 {
            rb.bearer_auth("skt_0123456789abcdef_not-a-token")
        } else {
            rb.header(header::COOKIE, "sk_session=forged")
        };
        statuses.push(rb.send().await.unwrap().status());
    }
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        limited >= 6,
        "junk tokens and cookies are limited like no credential: {statuses:?}"
    );
    // The same address's valid credential is served meanwhile.
    for _ in 0..10 {
        let (s, _) = app.scim(&token, Method::GET, "/Users", None).await;
        assert_eq!(s, StatusCode::OK);
    }
    eprintln!(
        "per-address limit at 2/s: {limited} of 12 junk-credential requests answered 429; 10 valid ones 200"
    );
    app.stop().await;
}

#[tokio::test]
async fn wrong_metrics_tokens_and_forged_console_cookies_are_braked() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("seatkeeper.db"));
    c.auth_failures_per_minute = 3;
    c.client_requests_per_second = 0;
    let app = TestApp::spawn_with(c).await;
    let http = no_redirects();
    let mut metrics = Vec::new();
    for _ in 0..6 {
        let r = http
            .get(format!("{}/metrics", app.address))
            .bearer_auth("wrong-metrics-token-xxxxxxxxxx")
            .send()
            .await
            .unwrap();
        metrics.push(r.status());
    }
    assert_eq!(metrics[0], StatusCode::UNAUTHORIZED);
    assert_eq!(
        metrics.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{metrics:?}"
    );
    let r = http
        .get(format!("{}/console/tenants", app.address))
        .header(header::COOKIE, "sk_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key(header::RETRY_AFTER));
    app.stop().await;
}

#[tokio::test]
async fn the_product_api_is_rate_limited_per_token_and_a_batch_counts_each_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("seatkeeper.db"));
    c.product_requests_per_second = 5; // bursts to 10
    let app = TestApp::spawn_with(c).await;
    let (t, tok) = app.tenant("acme").await;
    let u = app.create_user(&tok, "ann@acme.example").await;
    app.create_group(&tok, "Sales", &[&id(&u)]).await;
    app.license(&t, "Suite", 5, "Sales").await;
    let (a, b) = (product_token(&app, &t).await, product_token(&app, &t).await);
    let checks = format!("/product/v1/tenants/{t}/licenses/Suite/checks");
    let body = json!({"users": vec!["ann@acme.example"; 8]});
    let (s, v) = app
        .request(Method::POST, &checks, Some(&a), Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // 8 of the 10 used: a second batch of 8 is over.
    let r = reqwest::Client::new()
        .post(format!("{}{checks}", app.address))
        .bearer_auth(&a)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key(header::RETRY_AFTER));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "rate_limited", "{v}");
    // Another token of the same tenant has its own rate.
    let single = format!("/product/v1/tenants/{t}/licenses/Suite/users/ann@acme.example");
    let mut served = 0;
    let started = Instant::now();
    for _ in 0..20 {
        let (s, _) = app.request(Method::GET, &single, Some(&b), None).await;
        if s == StatusCode::OK {
            served += 1;
        } else {
            assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(
        (10..=12).contains(&served),
        "a burst of twice the rate: {served}"
    );
    eprintln!(
        "product rate 5/s: a batch of 8 served, the next batch of 8 answered 429; another token served {served} of 20 single checks in {secs:.2} s"
    );
    app.stop().await;
}

async fn product_token(app: &TestApp, t: &str) -> String {
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/tenants/{t}/product-tokens"),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn test_emails_are_limited_per_tenant_and_hour() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant("acme").await;
    let test = format!("/tenants/{t}/notifications/test");
    for _ in 0..5 {
        let (s, v) = app.admin(Method::POST, &test, Some(json!({}))).await;
        assert!(s.is_success(), "{v}");
    }
    let r = reqwest::Client::new()
        .post(format!("{}/admin/v1{test}", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let after: u64 = r.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3000..=3600).contains(&after), "{after}");
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("5 test messages"));
    // Another tenant is not affected.
    let (other, _) = app.tenant("other").await;
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/tenants/{other}/notifications/test"),
            Some(json!({})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_has_at_most_its_share_of_webhook_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("seatkeeper.db"));
    c.webhook_max_endpoints_per_tenant = 3;
    let app = TestApp::spawn_with(c).await;
    let (t, _) = app.tenant("acme").await;
    let path = format!("/tenants/{t}/webhooks");
    let body = json!({"url": "http://127.0.0.1:9/hook"});
    for _ in 0..3 {
        let (s, _) = app.admin(Method::POST, &path, Some(body.clone())).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (s, v) = app.admin(Method::POST, &path, Some(body)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("webhook_max_endpoints_per_tenant"));
    app.stop().await;
}

#[tokio::test]
async fn a_reference_that_names_two_users_is_refused_not_guessed() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("acme").await;
    let (s, ann) = app
        .scim(
            &tok,
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER_SCHEMA], "userName": "ann@acme.example"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Bob's work email is Ann's userName; Cleo's externalId is Dan's userName.
    let (s, _) = app
        .scim(
            &tok,
            Method::POST,
            "/Users",
            Some(
                json!({"schemas": [USER_SCHEMA], "userName": "bob@acme.example",
                "emails": [{"value": "ann@acme.example", "type": "work"}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    app.create_user(&tok, "dan").await;
    let (s, _) = app
        .scim(
            &tok,
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER_SCHEMA], "userName": "cleo@acme.example", "externalId": "dan"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let refs: Vec<String> = vec![id(&ann)];
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    app.create_group(&tok, "Sales", &refs).await;
    app.license(&t, "Suite", 5, "Sales").await;
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/tenants/{t}/product-tokens"),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let p = v["token"].as_str().unwrap().to_owned();
    for reference in ["ann@acme.example", "dan"] {
        for path in [
            format!("/product/v1/tenants/{t}/licenses/Suite/users/{reference}"),
            format!("/product/v1/tenants/{t}/users/{reference}/seats"),
        ] {
            let (s, v) = app.request(Method::GET, &path, Some(&p), None).await;
            assert_eq!(s, StatusCode::CONFLICT, "{path}: {v}");
            assert!(v["message"].as_str().unwrap().contains("several users"));
        }
    }
    // By id, Ann is answered.
    let (s, v) = app
        .request(
            Method::GET,
            &format!("/product/v1/tenants/{t}/licenses/Suite/users/{}", id(&ann)),
            Some(&p),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "granted");
    // In a batch, the ambiguous one answers its error and the rest still succeeds.
    let (s, v) = app
        .request(
            Method::POST,
            &format!("/product/v1/tenants/{t}/licenses/Suite/checks"),
            Some(&p),
            Some(json!({"users": ["ann@acme.example", id(&ann)]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_ne!(v["results"][0]["error"], Value::Null, "{v}");
    assert_eq!(v["results"][1]["state"], "granted", "{v}");
    app.stop().await;
}

/// Signs in to the console with `token`; the session cookie.
pub(crate) async fn console_session(address: &str, token: &str) -> String {
    let http = no_redirects();
    let r = http
        .get(format!("{address}/console/login"))
        .send()
        .await
        .unwrap();
    let login = cookie(&r, "sk_login").unwrap();
    let page = r.text().await.unwrap();
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page[at..at + 64].to_owned();
    let r = http
        .post(format!("{address}/console/login"))
        .header(header::COOKIE, format!("sk_login={login}"))
        .form(&[("csrf", csrf.as_str()), ("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    cookie(&r, "sk_session").unwrap()
}

fn cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|p| p.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

async fn console_get(address: &str, session: &str, path: &str) -> (StatusCode, String) {
    let r = no_redirects()
        .get(format!("{address}{path}"))
        .header(header::COOKIE, format!("sk_session={session}"))
        .send()
        .await
        .unwrap();
    let location = r
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status(), location)
}

#[tokio::test]
async fn console_sessions_end_with_the_operator_token_that_opened_them_and_on_sign_out_all() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("seatkeeper.db"));
    let database = c.database.clone();
    let app = TestApp::spawn_with(c.clone()).await;
    let (t, _) = app.tenant("acme").await;
    let tenant_admin = app.admin_token(&t).await;
    let operator = console_session(&app.address, ADMIN_TOKEN).await;
    let tenant = console_session(&app.address, &tenant_admin).await;
    let page = format!("/console/tenants/{t}");
    assert_eq!(
        console_get(&app.address, &operator, &page).await.0,
        StatusCode::OK
    );
    app.stop().await;

    // The operator's token changes (a restart with a new one): the old session ends.
    let mut c2 = c.clone();
    c2.admin_token = Some(seatkeeper::config::Secret(
        "a-brand-new-admin-token-0123456789".into(),
    ));
    let app = TestApp::spawn_with(c2).await;
    assert_eq!(
        console_get(&app.address, &operator, &page).await,
        (StatusCode::SEE_OTHER, "/console/login".to_owned()),
        "an operator session outlives no change of the operator's token"
    );
    assert_eq!(
        console_get(&app.address, &tenant, &page).await.0,
        StatusCode::OK,
        "a tenant admin's session is bound to its own token"
    );
    // `seatkeeper console sign-out-all` ends every session, on every node, at once.
    let fresh = console_session(&app.address, "a-brand-new-admin-token-0123456789").await;
    let (ok, out, err) = cli(&database, &["console", "sign-out-all"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"ended\": 2") || out.contains("\"ended\":2"),
        "{out}"
    );
    for s in [&fresh, &tenant] {
        assert_eq!(
            console_get(&app.address, s, &page).await.0,
            StatusCode::SEE_OTHER
        );
    }
    app.stop().await;
}

/// A webhook endpoint on a local port answering 200 after `delay`; sends each request's arrival.
async fn endpoint(delay: Duration) -> (u16, tokio::sync::mpsc::UnboundedReceiver<Instant>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            let _ = tx.send(Instant::now());
                            tokio::time::sleep(delay).await;
                            let _ = sock
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                                .await;
                            buf.clear();
                        }
                    }
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn one_tenants_slow_endpoints_do_not_delay_another_tenants_delivery() {
    let app = TestApp::spawn().await;
    // Tenant A: ten endpoints (its most) that answer after 5 s, and a backlog for each.
    let (a, a_tok) = app.tenant("slow-a").await;
    let mut slow = Vec::new();
    for _ in 0..10 {
        let (port, rx) = endpoint(Duration::from_secs(5)).await;
        let (s, v) = app
            .admin(
                Method::POST,
                &format!("/tenants/{a}/webhooks"),
                Some(json!({"url": format!("http://127.0.0.1:{port}/hook")})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        slow.push(rx);
    }
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(id(&app
            .create_user(&a_tok, &format!("u{i}@slow.example"))
            .await));
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    app.create_group(&a_tok, "Everyone", &refs).await;
    app.license(&a, "Suite", 50, "Everyone").await;
    // The slow deliveries are under way.
    let first = tokio::time::timeout(Duration::from_secs(10), slow[0].recv())
        .await
        .expect("tenant A's deliveries start");
    assert!(first.is_some());

    // Tenant B: one endpoint that answers at once; one seat change.
    let (b, b_tok) = app.tenant("fast-b").await;
    let (port, mut fast) = endpoint(Duration::ZERO).await;
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/tenants/{b}/webhooks"),
            Some(json!({"url": format!("http://127.0.0.1:{port}/hook")})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let u = app.create_user(&b_tok, "ann@fast.example").await;
    app.create_group(&b_tok, "Sales", &[&id(&u)]).await;
    let changed = Instant::now();
    app.license(&b, "Suite", 5, "Sales").await;
    let arrived = tokio::time::timeout(Duration::from_secs(30), fast.recv())
        .await
        .expect("B's delivery arrives")
        .unwrap();
    let took = arrived.saturating_duration_since(changed);
    eprintln!(
        "webhook fairness: tenant B's delivery arrived {:.2} s after its change while tenant A's 10 endpoints answered after 5 s each (200 deliveries queued)",
        took.as_secs_f64()
    );
    assert!(
        took < Duration::from_secs(3),
        "another tenant's delivery within 3 s: {took:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn audit_verify_is_not_fooled_by_wiped_hashes_or_a_cut_tail() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("seatkeeper.db"));
    let database = c.database.clone();
    let app = TestApp::spawn_with(c).await;
    let (t, _) = app.tenant("acme").await;
    app.license(&t, "Suite", 5, "Sales").await;
    app.admin_token(&t).await;
    let (ok, _, err) = cli(&database, &["audit", "verify", "acme"]);
    assert!(ok, "{err}");
    let head = err
        .lines()
        .find_map(|l| l.split_once(": head ").map(|(_, h)| h.trim().to_owned()))
        .expect("the head is printed");
    // Another act, then the newest entry removed: the chain itself is whole, the head is gone.
    app.admin_token(&t).await;
    sql(
        &database,
        "DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)",
    )
    .await;
    let (ok, _, _) = cli(&database, &["audit", "verify", "acme"]);
    assert!(ok);
    let (ok, _, err) = cli(
        &database,
        &["audit", "verify", "acme", "--expect-head", &head],
    );
    assert!(ok, "the recorded head is still there: {err}");
    sql(
        &database,
        &format!(
            "DELETE FROM audit WHERE seq = {}",
            head.split(':').next().unwrap()
        ),
    )
    .await;
    let (ok, _, err) = cli(
        &database,
        &["audit", "verify", "acme", "--expect-head", &head],
    );
    assert!(!ok && err.contains("cut short or rewritten"), "{err}");
    // Every hash wiped: not "whole, 0 checked".
    sql(&database, "UPDATE audit SET hash = NULL, prev_hash = NULL").await;
    let (ok, _, err) = cli(&database, &["audit", "verify", "acme"]);
    assert!(!ok, "wiped hashes are a break");
    assert!(err.contains("carries a hash"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn a_keyed_audit_chain_cannot_be_recomputed_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("seatkeeper.db"));
    let database = c.database.clone();
    let key = dir.path().join("audit.key");
    std::fs::write(&key, "k".repeat(48)).unwrap();
    let app = TestApp::spawn_with(c).await;
    app.tenant("unkeyed").await;
    let keyed = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
            .args(args)
            .env("SEATKEEPER_DATABASE", &database)
            .env("SEATKEEPER_AUDIT_KEY_FILE", &key)
            .env_remove("SEATKEEPER_ADMIN_TOKEN")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A tenant whose chain is written under the key (by the CLI, which reads it).
    let (ok, err) = keyed(&["tenant", "create", "keyed-co"]);
    assert!(ok, "{err}");
    let (ok, err) = keyed(&["admin-token", "issue", "keyed-co"]);
    assert!(ok, "{err}");
    let (ok, err) = keyed(&["audit", "verify", "keyed-co"]);
    assert!(ok, "{err}");
    // Without the key, its entries cannot be checked (nor recomputed).
    let (ok, _, err) = cli(&database, &["audit", "verify", "keyed-co"]);
    assert!(!ok && err.contains("audit key"), "{err}");
    // With the key set, a chain whose newest entry is not keyed is refused.
    let (ok, err) = keyed(&["audit", "verify", "unkeyed"]);
    assert!(!ok && err.contains("not keyed"), "{err}");
    // An entry stripped of its key no longer matches its hash.
    sql(
        &database,
        "UPDATE audit SET key_id = NULL WHERE seq = (SELECT max(seq) FROM audit)",
    )
    .await;
    let (ok, err) = keyed(&["audit", "verify", "keyed-co"]);
    assert!(!ok, "{err}");
    app.stop().await;
}

/// The daemon binary, serving on a free port with `env` added; its log goes to `log`.
struct Process {
    child: std::process::Child,
    base: String,
}

impl Drop for Process {
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

async fn serve(env: &[(&str, String)], log: &std::path::Path) -> Process {
    let port = free_port();
    let out = std::fs::File::create(log).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seatkeeper"));
    cmd.arg("serve")
        .env("SEATKEEPER_LISTEN", format!("127.0.0.1:{port}"))
        .env("SEATKEEPER_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SEATKEEPER_WORKERS", "2")
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Process { child, base }
}

#[tokio::test]
async fn a_database_password_reaches_no_log_error_or_output() {
    const PASSWORD: &str = "Sup3r-Secret-Pw-42";
    let dir = tempfile::tempdir().unwrap();
    // An unreachable PostgreSQL: the error says which database, never with its password.
    let url = format!(
        "postgres://seatkeeper:{PASSWORD}@127.0.0.1:{}/x",
        free_port()
    );
    for args in [&["check"][..], &["serve"][..], &["tenant", "list"][..]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
            .args(args)
            .env("SEATKEEPER_DATABASE", &url)
            .env("SEATKEEPER_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{args:?}: {all}");
        assert!(
            !all.contains(PASSWORD),
            "{args:?} printed the password: {all}"
        );
        assert!(all.contains("***") || all.contains("database"), "{all}");
    }
    if !super::postgres_support::selected() {
        return;
    }
    // A live one, the password in the URL and, for the second start, in a file of its own (the
    // test cluster trusts local connections, so any password is accepted).
    let live = super::postgres_support::cluster().database();
    let with_password = live.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    let file = dir.path().join("db.password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let log = dir.path().join("daemon.log");
    for (env, shown) in [
        (
            vec![("SEATKEEPER_DATABASE", with_password.clone())],
            "postgres://postgres:***@",
        ),
        (
            vec![
                ("SEATKEEPER_DATABASE", live.clone()),
                (
                    "SEATKEEPER_DATABASE_PASSWORD_FILE",
                    file.display().to_string(),
                ),
            ],
            "postgres://postgres@",
        ),
    ] {
        let p = serve(&env, &log).await;
        let metrics = reqwest::Client::new()
            .get(format!("{}/metrics", p.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        drop(p);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("listening"), "{text}");
        assert!(text.contains(shown), "the database is named: {text}");
        assert!(
            !text.contains(PASSWORD),
            "the log holds the password: {text}"
        );
        assert!(!metrics.contains(PASSWORD));
    }
}

#[tokio::test]
async fn webhooks_never_go_through_a_proxy_of_the_environment() {
    use tokio::io::AsyncReadExt as _;
    // A "proxy" that records whether anyone connected to it.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let (hit_tx, mut hit) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = proxy.accept().await {
            let mut b = [0u8; 256];
            let n = s.read(&mut b).await.unwrap_or(0);
            let _ = hit_tx.send(String::from_utf8_lossy(&b[..n]).into_owned());
        }
    });
    let (port, mut delivered) = endpoint(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let db = crate::helpers::database(&dir.path().join("seatkeeper.db"));
    let log = dir.path().join("daemon.log");
    let p = serve(
        &[
            ("SEATKEEPER_DATABASE", db.display().to_string()),
            ("SEATKEEPER_WEBHOOK_ALLOW_HTTP", "true".into()),
            ("SEATKEEPER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true".into()),
            ("HTTP_PROXY", proxy_url.clone()),
            ("HTTPS_PROXY", proxy_url.clone()),
            ("ALL_PROXY", proxy_url.clone()),
            ("http_proxy", proxy_url.clone()),
            ("all_proxy", proxy_url.clone()),
        ],
        &log,
    )
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let admin = |m: Method, path: String, body: Value| {
        http.request(m, format!("{}/admin/v1{path}", p.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let t: Value = admin(Method::POST, "/tenants".into(), json!({"name": "acme"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = t["id"].as_str().unwrap().to_owned();
    let r = admin(
        Method::POST,
        format!("/tenants/{t}/webhooks"),
        json!({"url": format!("http://127.0.0.1:{port}/hook")}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = admin(
        Method::POST,
        format!("/tenants/{t}/licenses"),
        json!({"name": "Suite", "seats": 3}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // license.updated goes to every endpoint subscribed to everything.
    let r = admin(
        Method::PATCH,
        format!("/tenants/{t}/licenses/Suite"),
        json!({"seats": 4}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let got = tokio::time::timeout(Duration::from_secs(15), delivered.recv()).await;
    assert!(
        got.is_ok(),
        "the delivery went straight to the endpoint: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        hit.try_recv().is_err(),
        "nothing went through the environment's proxy"
    );
    drop(p);
}

#[tokio::test]
async fn the_activity_page_reads_one_page_at_a_time_with_its_filters() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("seatkeeper.db"));
    c.admin_requests_per_second = 0;
    let app = TestApp::spawn_with(c).await;
    let (t, tok) = app.tenant("acme").await;
    let u = app.create_user(&tok, "ann@acme.example").await;
    app.create_group(&tok, "Sales", &[&id(&u)]).await;
    app.license(&t, "Suite", 5, "Sales").await;
    for _ in 0..230 {
        let (s, _) = app
            .admin(Method::POST, &format!("/tenants/{t}/tokens"), None)
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let session = console_session(&app.address, ADMIN_TOKEN).await;
    let http = no_redirects();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{}{path}", app.address);
        let session = session.clone();
        async move {
            let r = http
                .get(url)
                .header(header::COOKIE, format!("sk_session={session}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.unwrap()
        }
    };
    let entries = |page: &str| page.matches("<details class=\"small\">").count();
    let older = |page: &str| {
        let marker = "rel=\"next\" href=\"";
        page.find(marker).map(|at| {
            let rest = &page[at + marker.len()..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
    };
    let first = get(format!("/console/tenants/{t}/activity")).await;
    assert_eq!(entries(&first), 200);
    let next = older(&first).expect("a link to older entries");
    let second = get(next).await;
    // 231 token issues and tenant creation, the license, the seat grant, ...
    assert!(
        (30..200).contains(&entries(&second)),
        "{}",
        entries(&second)
    );
    assert!(older(&second).is_none());
    // A filter runs in the store too: only seat changes, and the user's.
    let seats = get(format!("/console/tenants/{t}/activity?kind=seat.&user=ann")).await;
    assert_eq!(entries(&seats), 1, "the one seat granted to ann");
    let by_license = get(format!("/console/tenants/{t}/activity?q=suite")).await;
    assert!(entries(&by_license) >= 2, "the license's creation and seat");
    app.stop().await;
}

#[tokio::test]
async fn the_seat_search_is_one_rule_for_the_page_and_the_csv_in_any_script() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("acme").await;
    let mut ids = Vec::new();
    for name in [
        "anna@acme.example",
        "Élodie.Durand@acme.example",
        "bob@acme.example",
        "ÉLODIE.ROY@acme.example",
    ] {
        ids.push(id(&app.create_user(&tok, name).await));
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    app.create_group(&tok, "Sales", &refs).await;
    // One seat: the two Élodies wait, at places of their own in the whole waitlist.
    app.license(&t, "Suite", 1, "Sales").await;
    let session = console_session(&app.address, ADMIN_TOKEN).await;
    let http = no_redirects();
    let get = |path: String| {
        let (http, session) = (http.clone(), session.clone());
        let url = format!("{}{path}", app.address);
        async move {
            let r = http
                .get(url)
                .header(header::COOKIE, format!("sk_session={session}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.unwrap()
        }
    };
    for typed in ["élodie", "ÉLODIE", "Élodie"] {
        let q: String = url::form_urlencoded::byte_serialize(typed.as_bytes()).collect();
        let page = get(format!("/console/tenants/{t}/licenses/Suite/seats?q={q}")).await;
        let csv = get(format!(
            "/console/tenants/{t}/licenses/Suite/seats.csv?q={q}"
        ))
        .await;
        let rows: Vec<&str> = csv.lines().skip(1).filter(|l| !l.is_empty()).collect();
        assert_eq!(rows.len(), 2, "{typed}: {csv}");
        for who in ["Élodie.Durand", "ÉLODIE.ROY"] {
            assert!(page.contains(who), "{typed}: the page lists {who}");
            assert!(csv.contains(who), "{typed}: the CSV lists {who}");
        }
        assert!(!csv.contains("bob@") && !page.contains("bob@acme"));
        // Places in the whole waitlist, not among the matches: 1 and 2 are anna's and bob's
        // or the Élodies' own, but never renumbered to start from the search.
        let places: Vec<String> = rows
            .iter()
            .map(|r| r.split(',').nth(3).unwrap_or("").to_owned())
            .collect();
        let all = get(format!("/console/tenants/{t}/licenses/Suite/seats.csv")).await;
        for r in rows {
            assert!(
                all.contains(r),
                "{typed}: the row is the unfiltered one: {r}\n{all}"
            );
        }
        assert_eq!(places.len(), 2);
    }
    app.stop().await;
}

#[tokio::test]
async fn readiness_asks_the_database_at_most_once_a_second() {
    let app = TestApp::spawn().await;
    let checks = |m: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix("seatkeeper_readiness_checks_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    let before = checks(&app.metrics().await);
    let started = Instant::now();
    let http = reqwest::Client::new();
    for _ in 0..100 {
        let r = http
            .get(format!("{}/readyz", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let secs = started.elapsed().as_secs_f64();
    let asked = checks(&app.metrics().await) - before;
    assert!(
        asked as f64 <= secs.ceil() + 1.0,
        "100 probes in {secs:.2} s asked the database {asked} times"
    );
    app.stop().await;
}
