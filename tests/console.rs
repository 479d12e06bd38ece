//! The admin web console, end to end in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `.ci/run`) driving the real daemon over WebDriver: sign in,
//! create a tenant and a license, provision users and a group over SCIM, select the group in
//! the picker, see seats granted and blocked, raise the seat count after the preview, see the
//! waitlist promoted. A screenshot of each page is saved under `target/tmp/console-screenshots/`.
//!
//! Set `SEATKEEPER_CHROMIUM` / `SEATKEEPER_CHROMEDRIVER` when the binaries live elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

/// Whether this binary runs on PostgreSQL (see `support/postgres.rs`).
#[allow(dead_code)]
pub const ON_POSTGRES: bool = false;
#[path = "api/helpers.rs"]
#[allow(dead_code)]
pub mod helpers;
#[path = "support/postgres.rs"]
pub mod postgres_support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser() -> (Driver, Client) {
    let driver_bin =
        std::env::var("SEATKEEPER_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let chromium =
        std::env::var("SEATKEEPER_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let port = free_port();
    let driver = Driver(
        Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {driver_bin} (apt-get install chromium chromium-driver): {e}")
            }),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1280,1000"]}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    for _ in 0..100 {
        if let Ok(c) = ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            return (driver, c);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// The element, once the page shows it (a click's navigation may still be loading).
async fn el(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = el(c, css).await;
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

/// Clicks something that loads a new page and waits until that page has loaded.
async fn click(c: &Client, css: &str) {
    c.execute("window.__skOld = true;", vec![]).await.unwrap();
    el(c, css).await.click().await.unwrap();
    for _ in 0..200 {
        let done = c
            .execute(
                "return window.__skOld === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .unwrap_or_default();
        if done == serde_json::Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking {css} loaded no new page");
}

/// Clicks something that stays on the page (opens a dialog).
async fn press(c: &Client, css: &str) {
    el(c, css).await.click().await.unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    el(c, css).await.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_licensing_admin_does_it_all_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let app = TestApp::spawn_in(dir.path(), &clock, |_| {}).await;
    let (_driver, c) = browser().await;
    let base = app.address.clone();

    // Sign in.
    c.goto(&format!("{base}/console/")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));
    shot(&c, "01-sign-in").await;
    fill(&c, "#token", "wrong-token-0123456789").await;
    click(&c, "form button[type=submit]").await;
    let alert = text(&c, "main").await;
    assert!(alert.contains("not valid"), "{alert}");
    fill(&c, "#token", ADMIN_TOKEN).await;
    click(&c, "main form button[type=submit]").await;
    assert_eq!(text(&c, "h1").await, "Tenants");
    shot(&c, "01b-tenants").await;

    // Create a tenant; issue its SCIM token.
    fill(&c, "#name", "Contoso").await;
    fill(&c, "#notify", "it-admins@contoso.example").await;
    click(&c, "main form.card button[type=submit]").await;
    assert_eq!(text(&c, "h1").await, "Contoso");
    click(&c, "form[action$='/tokens'] button").await;
    let token = el(&c, "#secret-token")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(token.starts_with("skt_"), "{token}");
    let scim_url = el(&c, "#scim-url")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(scim_url.ends_with("/scim/v2"), "{scim_url}");
    shot(&c, "02-tenant-with-new-token").await;

    // A license with 2 seats.
    fill(&c, "#lname", "MindManager").await;
    fill(&c, "#lseats", "2").await;
    click(&c, "form[action$='/licenses'] button").await;
    assert_eq!(text(&c, "h1").await, "MindManager");

    // The provider sends four users and the Sales group.
    let mut ids = Vec::new();
    for u in ["alice", "bob", "carol", "dave"] {
        clock.tick();
        ids.push(id(&app
            .create_user(&token, &format!("{u}@contoso.example"))
            .await));
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    clock.tick();
    app.create_group(&token, "Sales", &refs).await;
    app.create_group(&token, "Engineering", &[]).await;

    // The Group Select dialog: search, pick Sales.
    c.refresh().await.unwrap();
    assert_eq!(text(&c, "h1").await, "MindManager");
    press(&c, "a[data-open='#picker']").await;
    fill(&c, "#q", "sal").await;
    click(&c, "#picker form[role=search] button").await;
    let listed = text(&c, "#picker ul").await;
    assert!(
        listed.contains("Sales") && listed.contains("4 members"),
        "{listed}"
    );
    assert!(!listed.contains("Engineering"));
    shot(&c, "03-group-select").await;
    click(&c, "#picker button[aria-label='Select Sales']").await;
    // Previewed before it is saved: who would get a seat and who would wait.
    assert_eq!(text(&c, "h1").await, "Select Sales for MindManager?");
    let preview = text(&c, "#preview").await;
    assert!(
        preview.contains("give a seat to") && preview.contains("on the waitlist"),
        "{preview}"
    );
    shot(&c, "03b-group-select-preview").await;
    click(&c, "#preview form button[type=submit]").await;
    assert!(text(&c, "[role=status]").await.contains("Selection saved"));
    let legend = text(&c, ".legend").await;
    assert!(
        legend.contains("2 granted") && legend.contains("2 waiting"),
        "{legend}"
    );
    shot(&c, "04-license").await;

    // Seats: two holders, two on the waitlist in order.
    click(&c, "a[href$='/seats']").await;
    let table = text(&c, "table tbody").await;
    assert_eq!(table.matches("granted").count(), 2, "{table}");
    // People read "waiting", never "blocked".
    assert_eq!(table.matches("waiting").count(), 2, "{table}");
    assert!(!table.contains("blocked"), "{table}");
    // Exclude one waiting user (previewed first: who would gain or lose a seat, and the
    // button that does it), then clear it again from the overrides list, previewed too.
    click(&c, "button[aria-label='Exclude dave@contoso.example']").await;
    assert_eq!(
        text(&c, "h1").await,
        "Exclude dave@contoso.example from MindManager?"
    );
    let preview = text(&c, "#preview").await;
    assert!(preview.contains("This would:"), "{preview}");
    assert!(
        preview.contains("leave 2 of 2 seats in use, 1 waiting"),
        "{preview}"
    );
    shot(&c, "05a-exclude-preview").await;
    click(&c, "#preview form button[type=submit]").await;
    assert!(text(&c, "main").await.contains("excluded"));
    let table = text(&c, "table tbody").await;
    assert!(!table.contains("dave@contoso.example"), "{table}");
    click(
        &c,
        "button[aria-label='Clear the override of dave@contoso.example']",
    )
    .await;
    assert!(text(&c, "#preview").await.contains("This would:"));
    click(&c, "#preview form button[type=submit]").await;
    let table = text(&c, "table tbody").await;
    assert!(table.contains("dave@contoso.example"), "{table}");
    shot(&c, "05-seats").await;

    // A waiting person's page, from their name: every license with the place and the
    // reason, and the group that entitles them.
    let seats_page = c.current_url().await.unwrap();
    click(&c, "a[href$='/people/carol%40contoso.example']").await;
    assert_eq!(text(&c, "h1").await, "carol@contoso.example");
    let main = text(&c, "main").await;
    assert!(main.contains("All 2 seats are in use"), "{main}");
    assert!(main.contains("Sales"), "{main}");
    shot(&c, "05b-person").await;
    c.goto(seats_page.as_str()).await.unwrap();

    // Raise the seat count: preview first, then save; the waitlist is promoted.
    click(&c, ".crumbs a:nth-of-type(2)").await;
    assert_eq!(text(&c, "h1").await, "MindManager");
    fill(&c, "#seats", "4").await;
    click(&c, "form[action$='/preview'] button").await;
    let preview = text(&c, "#preview").await;
    assert!(preview.contains("2 would get a seat"), "{preview}");
    shot(&c, "06-preview").await;
    click(&c, "#preview form button").await;
    let legend = text(&c, ".legend").await;
    assert!(
        legend.contains("4 granted") && legend.contains("0 waiting"),
        "{legend}"
    );
    assert!(c.source().await.unwrap().contains("<svg class=\"chart\""));
    shot(&c, "07-license-after").await;

    // Activity: the audit log shows the console's changes.
    c.goto(&format!("{base}/console/")).await.unwrap();
    click(&c, "table a").await;
    text(&c, "header nav a[href$='/activity']").await;
    click(&c, "header nav a[href$='/activity']").await;
    let log = text(&c, "main").await;
    // Sentences, not codes: who changed what, and who got a seat from the waitlist.
    assert!(
        log.contains("The operator in the console changed")
            && log.contains("(promoted from the waitlist, position 1)"),
        "{log}"
    );
    // Times in the tenant's zone, with a hint of how long ago by the viewer's clock.
    let t = text(&c, "ul.activity time").await;
    assert!(t.contains("UTC") && t.contains(" ago)"), "{t}");
    shot(&c, "08-activity").await;
    // Filtered to seat changes: only those remain; the raw entry is one click away.
    let url = c.current_url().await.unwrap();
    c.goto(&format!("{url}?kind=seat.&actor=allocator"))
        .await
        .unwrap();
    let items = c
        .find_all(fantoccini::Locator::Css("ul.activity li > span"))
        .await
        .unwrap();
    assert!(!items.is_empty());
    for i in items {
        let s = i.text().await.unwrap();
        assert!(
            s.contains("seat of") || s.contains("waiting"),
            "not a seat change: {s}"
        );
    }
    el(&c, "ul.activity details summary")
        .await
        .click()
        .await
        .unwrap();
    assert!(text(&c, "ul.activity details pre")
        .await
        .contains("allocator"));

    // Sign out: back to the sign-in page, and the old session is gone.
    click(&c, "header form button").await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));
    c.goto(&format!("{base}/console/tenants")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));
    c.close().await.unwrap();

    // What the browser saw is what the API says.
    let (s, seats) = app
        .admin(
            Method::GET,
            "/tenants/Contoso/licenses/MindManager/seats",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(seats["granted"], 4);
}

/// Clicks a form's button whose `data-confirm` asks first: the question is answered `yes`
/// (then the new page is awaited) or no (nothing is sent); returns the question.
async fn confirm(c: &Client, css: &str, yes: bool) -> String {
    c.execute(
        "window.__skAsked = null; window.confirm = function (m) { window.__skAsked = m; return window.__skYes; };",
        vec![],
    )
    .await
    .unwrap();
    c.execute(&format!("window.__skYes = {yes};"), vec![])
        .await
        .unwrap();
    if yes {
        click(c, css).await;
    } else {
        press(c, css).await;
    }
    // After a navigation the question is gone with the page; it was asked if we got here.
    if yes {
        return String::new();
    }
    c.execute("return window.__skAsked;", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_licensing_admin_decides_a_hold_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let app = TestApp::spawn_in(dir.path(), &clock, |_| {}).await;
    let (tenant, tok) = app.tenant("Fabrikam").await;
    // A tight breaker: every directory-made loss is held.
    let (s, t) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{tenant}"),
            Some(json!({"hold_threshold_percent": 0, "hold_min_seats": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (s, l) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tenant}/licenses"),
            Some(json!({"name": "MindManager", "seats": 3, "grace_seconds": 600, "groups": [{"displayName": "Design"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let mut ids = Vec::new();
    for u in ["erin", "frank", "grace"] {
        clock.tick();
        ids.push(id(&app
            .create_user(&tok, &format!("{u}@fabrikam.example"))
            .await));
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    clock.tick();
    let group = id(&app.create_group(&tok, "Design", &refs).await);
    // An upstream mistake drops two of them from the group.
    clock.tick();
    let (s, b) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(patch(json!([
                {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])},
                {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])}
            ]))),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let (_driver, c) = browser().await;
    let base = app.address.clone();
    c.goto(&format!("{base}/console/login")).await.unwrap();
    fill(&c, "#token", ADMIN_TOKEN).await;
    click(&c, "main form button[type=submit]").await;
    c.goto(&format!("{base}/console/tenants/{tenant}"))
        .await
        .unwrap();
    let waiting = text(&c, "#holds-waiting").await;
    assert!(waiting.contains("2 seat losses are held"), "{waiting}");
    // The seat list marks the held seats.
    c.goto(&format!(
        "{base}/console/tenants/{tenant}/licenses/MindManager/seats"
    ))
    .await
    .unwrap();
    let table = text(&c, "table tbody").await;
    assert_eq!(table.matches("held").count(), 2, "{table}");
    c.goto(&format!("{base}/console/tenants/{tenant}"))
        .await
        .unwrap();
    click(&c, "#holds-waiting a").await;
    assert_eq!(text(&c, "h1").await, "Holds");
    let card = text(&c, "section.hold").await;
    assert!(
        card.contains("MindManager: 2 seat losses held")
            && card.contains("2 × removed from the group Design")
            && card.contains("erin@fabrikam.example")
            && card.contains("frank@fabrikam.example"),
        "{card}"
    );
    shot(&c, "09-holds").await;
    // Reject asks first; answered no, nothing happens.
    let asked = confirm(&c, "form[action$='/reject'] button", false).await;
    assert!(asked.contains("keep their seats"), "{asked}");
    assert_eq!(text(&c, "h1").await, "Holds");
    assert!(text(&c, "section.hold").await.contains("Held since"));
    // Answered yes: rejected, the seats kept; approving it after all releases them.
    confirm(&c, "form[action$='/reject'] button", true).await;
    assert!(text(&c, "[role=status]").await.contains("Hold rejected"));
    assert!(text(&c, "section.hold").await.contains("Rejected"));
    confirm(&c, "form[action$='/approve'] button", true).await;
    assert!(text(&c, "[role=status]").await.contains("Hold approved"));
    assert!(text(&c, "#no-holds").await.contains("No hold waits"));
    let settled = text(&c, "#settled").await;
    assert!(
        settled.contains("approved: the losses went through"),
        "{settled}"
    );
    shot(&c, "10-holds-decided").await;
    // The activity reads as sentences.
    click(&c, "header nav a[href$='/activity']").await;
    let log = text(&c, "main").await;
    assert!(
        log.contains("the circuit breaker holds 2 losses")
            && log.contains("rejected hold")
            && log.contains("approved hold"),
        "{log}"
    );
    // Capacity planning on the license page: the forecast, the overage set in the policy
    // form, the true-up of this month with its CSV.
    c.goto(&format!(
        "{base}/console/tenants/{tenant}/licenses/MindManager"
    ))
    .await
    .unwrap();
    assert!(text(&c, "#forecast").await.contains("Not enough history"));
    fill(&c, "#overage", "2").await;
    click(&c, "form input[name=form][value=policy] ~ p button").await;
    assert!(text(&c, "#planning")
        .await
        .contains("up to 2 seats beyond the 3"));
    let summary = text(&c, "#true-up-summary").await;
    assert!(
        summary.contains("Peak use 3") && summary.contains("0 days over"),
        "{summary}"
    );
    let csv = el(&c, "#true-up-summary a")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(csv.contains("/true-up.csv?from="), "{csv}");
    shot(&c, "11-capacity-planning").await;
    c.close().await.unwrap();
    let r = app
        .client
        .get(format!(
            "{base}/console/tenants/{tenant}/licenses/MindManager/true-up.csv"
        ))
        .send()
        .await
        .unwrap();
    // Without the session cookie: to the sign-in page.
    assert!(r.url().path().ends_with("/console/login") || r.status() == StatusCode::SEE_OTHER);
    let (_, seats) = app
        .admin(
            Method::GET,
            &format!("/tenants/{tenant}/licenses/MindManager/seats"),
            None,
        )
        .await;
    assert_eq!(
        (seats["granted"].as_i64(), seats["releasing"].as_i64()),
        (Some(1), Some(2))
    );
}

/// The plain-text part of an `.eml` file, decoded (Python's email parser: CI has Python 3).
fn text_part(eml: &std::path::Path) -> String {
    part(eml, "text/plain")
}

/// The part of `kind` of an email file, decoded (python3's `email`).
fn part(eml: &std::path::Path, kind: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import email, sys\n\
             m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n\
             print(next(p for p in m.walk() if p.get_content_type() == sys.argv[2]).get_payload(decode=True).decode())",
        )
        .arg(eml)
        .arg(kind)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_link_in_an_email_opens_its_page_for_a_signed_in_tenant_admin() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let public = base.clone();
    let app = TestApp::spawn_in(dir.path(), &clock, move |c| {
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.public_url = Some(public);
    })
    .await;
    let (s, t) = app
        .admin(
            Method::POST,
            "/tenants",
            Some(
                json!({"name": "Contoso", "notify": ["licensing@contoso.example"],
                        "weekly_summary": {"day": "thursday", "hour": 9}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let tenant = id(&t);
    let (_, tok) = app
        .admin(Method::POST, &format!("/tenants/{tenant}/tokens"), None)
        .await;
    let tok = tok["token"].as_str().unwrap().to_owned();
    // Every kind of email: three users for two seats (blocked, threshold), the count lowered
    // below use, a selector that never arrives, a test message, and later silence, expiry, the
    // weekly summary and a repaired seat.
    let mut ids = Vec::new();
    for u in ["alice", "bob", "carol"] {
        clock.tick();
        ids.push(id(&app
            .create_user(&tok, &format!("{u}@contoso.example"))
            .await));
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    app.create_group(&tok, "Sales", &refs).await;
    let license = id(&app.license(&tenant, "MindManager", 2, "Sales").await);
    clock.tick();
    let lic = format!("/tenants/{tenant}/licenses/{license}");
    let (s, _) = app
        .admin(Method::PATCH, &lic, Some(json!({"seats": 1})))
        .await;
    assert_eq!(s, StatusCode::OK);
    app.license(&tenant, "Typo", 1, "Slaes").await;
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tenant}/notifications/test"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    {
        // A seat lost behind the daemon's back, for the reconciler to find and repair.
        let drift = "DELETE FROM seats WHERE user_id = (SELECT user_id FROM seats WHERE state = 'granted' LIMIT 1);
             UPDATE licenses SET granted = granted - 1 WHERE name = 'MindManager';";
        let file = dir.path().join("seatkeeper.db");
        let database = helpers::database(&file);
        if postgres_support::selected() {
            let url = database.to_string_lossy().into_owned();
            let statement = format!("BEGIN; {drift} COMMIT;");
            tokio::task::spawn_blocking(move || {
                let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                db.batch_execute(&statement).unwrap();
            })
            .await
            .unwrap();
        } else {
            let db = rusqlite::Connection::open(&file).unwrap();
            db.busy_timeout(Duration::from_secs(10)).unwrap();
            db.execute_batch(&format!("BEGIN IMMEDIATE; {drift} COMMIT;"))
                .unwrap();
        }
    }
    clock.advance_secs(73 * 3600);
    let (s, r) = app
        .admin(Method::POST, &format!("/tenants/{tenant}/reconcile"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    clock.advance_secs(301);

    // Every email, as its recipient reads it; the links in them. The license's notices of
    // the first window (who waits, every seat taken, the count lowered) come as one combined
    // email: a link to the licenses and one to each notice's page.
    let folder = dir.path().join("mail");
    let want = [
        "combined",
        "pending_expired",
        "silence",
        "drift_repaired",
        "test",
        "weekly_summary",
    ];
    let mut files: Vec<PathBuf> = Vec::new();
    for _ in 0..200 {
        files = std::fs::read_dir(&folder)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        if want.iter().all(|k| {
            files
                .iter()
                .any(|f| f.to_string_lossy().ends_with(&format!("-{k}.eml")))
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut links: Vec<String> = Vec::new();
    for k in want {
        let f = files
            .iter()
            .find(|f| f.to_string_lossy().ends_with(&format!("-{k}.eml")))
            .unwrap_or_else(|| panic!("no {k} email among {files:?}"));
        let text = text_part(f);
        let found: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with(&base))
            .map(str::to_owned)
            .collect();
        if k == "combined" {
            assert_eq!(
                found.len(),
                4,
                "{k}: the licenses and three notices\n{text}"
            );
        } else {
            assert_eq!(found.len(), 1, "{k}: one link\n{text}");
        }
        links.extend(found);
    }
    links.sort();
    links.dedup();
    assert!(links.len() >= 5, "{links:?}");

    // Signed in with a tenant admin token, each opens a page of the console that shows it.
    let admin_token = app.admin_token(&tenant).await;
    let (_driver, c) = browser().await;
    c.goto(&format!("{base}/console/login")).await.unwrap();
    fill(&c, "#token", &admin_token).await;
    click(&c, "main form button[type=submit]").await;
    let cookies = c.get_all_cookies().await.unwrap();
    let cookie = cookies
        .iter()
        .map(|k| format!("{}={}", k.name(), k.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (i, link) in links.iter().enumerate() {
        let r = http
            .get(link)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{link}");
        c.goto(link).await.unwrap();
        let h1 = text(&c, "h1").await;
        assert!(
            h1 == "Contoso"
                || h1 == "MindManager"
                || h1.starts_with("Activity")
                || h1.contains("Seats"),
            "{link}: {h1}"
        );
        if let Some((_, anchor)) = link.split_once('#') {
            el(&c, &format!("#{anchor}")).await;
        }
        shot(&c, &format!("20-email-link-{i}")).await;
    }
    // The license's own recipients, set on its page.
    c.goto(&format!(
        "{base}/console/tenants/{tenant}/licenses/{license}"
    ))
    .await
    .unwrap();
    fill(&c, "#lnotify", "pm@contoso.example: blocked threshold").await;
    fill(&c, "#idle-days", "30").await;
    fill(&c, "#notice-days", "5").await;
    click(&c, "section[aria-labelledby=policy] button[type=submit]").await;
    let (_, l) = app.admin(Method::GET, &lic, None).await;
    assert_eq!(
        l["notify"],
        json!([{"email": "pm@contoso.example", "kinds": ["blocked", "threshold"]}])
    );
    assert_eq!(
        (&l["reclaim_idle_days"], &l["reclaim_notice_days"]),
        (&json!(30), &json!(5))
    );
    // A product token issued on the tenant's page reads the tenant's seats.
    c.goto(&format!("{base}/console/tenants/{tenant}"))
        .await
        .unwrap();
    click(&c, "form[action$='/product-tokens'] button").await;
    let product = el(&c, "#product-token")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(product.starts_with("skp_"), "{product}");
    shot(&c, "21-product-token").await;
    let (s, v) = app
        .request(
            Method::GET,
            &format!("/product/v1/tenants/{tenant}/licenses/{license}/users/alice@contoso.example"),
            Some(&product),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["state"].is_string(), "{v}");
    // A webhook added on the tenant's page: its secret shown once, then disabled.
    c.goto(&format!("{base}/console/tenants/{tenant}"))
        .await
        .unwrap();
    el(&c, "#webhook-url")
        .await
        .send_keys("http://127.0.0.1:9/hooks/seats")
        .await
        .unwrap();
    el(&c, "input[name=events][value='seat.granted']")
        .await
        .click()
        .await
        .unwrap();
    click(&c, "form[action$='/webhooks'] button[type=submit]").await;
    let secret = el(&c, "#webhook-secret")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    shot(&c, "22-webhook").await;
    let hooks = format!("/tenants/{tenant}/webhooks");
    let (_, w) = app.admin(Method::GET, &hooks, None).await;
    assert_eq!(w["webhooks"][0]["url"], "http://127.0.0.1:9/hooks/seats");
    assert_eq!(w["webhooks"][0]["events"], json!(["seat.granted"]));
    click(&c, "form[action$='/disable'] button").await;
    let (_, w) = app.admin(Method::GET, &hooks, None).await;
    assert_eq!(w["webhooks"][0]["enabled"], false, "{w}");
    c.close().await.unwrap();
}

/// Reservations and ceilings per group on the license page: the groups' use against them,
/// a ceiling set through the group's form, and the seat list naming each seat's group.
#[tokio::test(flavor = "multi_thread")]
async fn a_licensing_admin_sets_a_reserve_and_a_ceiling_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let app = TestApp::spawn_in(dir.path(), &clock, |_| {}).await;
    let (tenant, tok) = app.tenant("Northwind").await;
    let (s, l) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tenant}/licenses"),
            Some(json!({"name": "Visio", "seats": 4, "grace_seconds": 0,
                "groups": [{"displayName": "Engineering", "reserve": 2}, {"displayName": "Sales"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let mut sales = Vec::new();
    for u in ["ann", "bob", "cyd"] {
        clock.tick();
        sales.push(id(&app
            .create_user(&tok, &format!("{u}@northwind.example"))
            .await));
    }
    let refs: Vec<&str> = sales.iter().map(String::as_str).collect();
    clock.tick();
    app.create_group(&tok, "Sales", &refs).await;

    let (_driver, c) = browser().await;
    let base = app.address.clone();
    c.goto(&format!("{base}/console/login")).await.unwrap();
    fill(&c, "#token", ADMIN_TOKEN).await;
    click(&c, "main form button[type=submit]").await;
    c.goto(&format!("{base}/console/tenants/{tenant}/licenses/Visio"))
        .await
        .unwrap();
    // Two seats are kept for Engineering (not arrived yet): Sales holds 2, one waits.
    let card = text(&c, "section[aria-labelledby=groups]").await;
    assert!(
        card.contains("0 in use against a reserve of 2")
            && card.contains("2 in use; 1 waiting")
            && card.contains("counts against the first"),
        "{card}"
    );
    // A ceiling of 1 for Sales, through its form: previewed first (nobody loses a seat under
    // `keep`), then saved from the preview.
    press(&c, "ul.groups li:nth-child(2) details.limits summary").await;
    fill(
        &c,
        "ul.groups li:nth-child(2) details.limits input[name=max]",
        "1",
    )
    .await;
    click(
        &c,
        "ul.groups li:nth-child(2) details.limits button[value=preview]",
    )
    .await;
    let preview = text(&c, "#limits-preview").await;
    assert!(
        preview.contains("With a reserve of 0 and a ceiling of 1 for Sales")
            && preview.contains("0 would get a seat")
            && preview.contains("Sales: 2 in use against a ceiling of 1; 1 waiting"),
        "{preview}"
    );
    let card = text(&c, "section[aria-labelledby=groups] ul.groups").await;
    assert!(
        card.contains("2 in use; 1 waiting"),
        "nothing saved yet: {card}"
    );
    click(&c, "#limits-preview button[type=submit]").await;
    assert!(text(&c, "[role=status]").await.contains("Selection saved"));
    let card = text(&c, "section[aria-labelledby=groups]").await;
    assert!(
        card.contains("2 in use against a ceiling of 1; 1 waiting"),
        "{card}"
    );
    shot(&c, "13-group-limits").await;
    // The seat list names the group each seat counts against.
    c.goto(&format!(
        "{base}/console/tenants/{tenant}/licenses/Visio/seats"
    ))
    .await
    .unwrap();
    let table = text(&c, "table tbody").await;
    assert_eq!(
        table.matches("Sales granted").count() + table.matches("Sales waiting").count(),
        3,
        "{table}"
    );
    assert!(
        table.contains("Sales is at its ceiling of 1."),
        "the waiting row says why: {table}"
    );
    // A ceiling below the reserve is refused with the store's words.
    c.goto(&format!("{base}/console/tenants/{tenant}/licenses/Visio"))
        .await
        .unwrap();
    press(&c, "ul.groups li:nth-child(1) details.limits summary").await;
    fill(
        &c,
        "ul.groups li:nth-child(1) details.limits input[name=max]",
        "1",
    )
    .await;
    click(
        &c,
        "ul.groups li:nth-child(1) details.limits button[value=save]",
    )
    .await;
    let page = text(&c, "main").await;
    assert!(page.contains("below its reserve"), "{page}");
}

/// Shadow mode in the browser: a license that observes says so on its page; its "enforcing"
/// page carries today's holders over from a pasted list (naming what matched nobody) and shows
/// who would keep, lose, gain and wait; the button there enforces it, and the people carried
/// over hold the seats.
#[tokio::test]
async fn a_licensing_admin_cuts_over_from_shadow_mode_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let app = TestApp::spawn_in(dir.path(), &clock, |_| {}).await;
    let (tenant, tok) = app.tenant("Fabrikam").await;
    let mut people = Vec::new();
    // ann and bob arrive first, so observing gives them the two seats; cyd and dan hold them today.
    for u in ["ann", "bob", "cyd", "dan"] {
        clock.tick();
        people.push(id(&app
            .create_user(&tok, &format!("{u}@fabrikam.example"))
            .await));
    }
    let refs: Vec<&str> = people.iter().map(String::as_str).collect();
    clock.tick();
    app.create_group(&tok, "Design", &refs).await;
    let (s, l) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tenant}/licenses"),
            Some(json!({"name": "Figma", "seats": 2, "mode": "observe",
                "groups": [{"displayName": "Design"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");

    let (_driver, c) = browser().await;
    let base = app.address.clone();
    c.goto(&format!("{base}/console/login")).await.unwrap();
    fill(&c, "#token", ADMIN_TOKEN).await;
    click(&c, "main form button[type=submit]").await;
    c.goto(&format!("{base}/console/tenants/{tenant}"))
        .await
        .unwrap();
    assert!(text(&c, "main table").await.contains("Observing"));
    c.goto(&format!("{base}/console/tenants/{tenant}/licenses/Figma"))
        .await
        .unwrap();
    let banner = text(&c, "#observing").await;
    assert!(
        banner.contains("Observing: nothing is enforced"),
        "{banner}"
    );
    click(&c, "#observing a").await;
    fill(
        &c,
        "#people",
        "cyd@fabrikam.example\nDAN@fabrikam.example\nnobody@fabrikam.example",
    )
    .await;
    click(
        &c,
        "section[aria-labelledby=holders] form button[type=submit]",
    )
    .await;
    let alert = text(&c, "[role=alert]").await;
    assert!(alert.contains("nobody@fabrikam.example"), "{alert}");
    let keep = text(&c, "section[aria-labelledby=keep]").await;
    assert!(
        keep.contains("Keep their seat (2)")
            && keep.contains("cyd@fabrikam.example")
            && keep.contains("dan@fabrikam.example"),
        "{keep}"
    );
    let wait = text(&c, "section[aria-labelledby=wait]").await;
    assert!(
        wait.contains("Wait (2)")
            && wait.contains("ann@fabrikam.example")
            && wait.contains("place 1"),
        "{wait}"
    );
    shot(&c, "14-shadow-mode").await;
    click(&c, "section[aria-labelledby=switch] button[type=submit]").await;
    assert!(text(&c, "[role=status]").await.contains("Enforced"));
    // The result names who moved: the people carried over got the seats, the first arrivals wait.
    let moved = text(&c, "#moved").await;
    assert!(
        moved.contains("Got a seat: cyd@fabrikam.example, dan@fabrikam.example")
            && moved.contains("Now waiting: ann@fabrikam.example, bob@fabrikam.example"),
        "{moved}"
    );
    // Times read in the tenant's zone with a hint of how long ago, by the viewer's clock.
    c.goto(&format!(
        "{base}/console/tenants/{tenant}/licenses/Figma/seats"
    ))
    .await
    .unwrap();
    let since = text(&c, "table tbody tr td time").await;
    assert!(since.contains(" ago)") || since.contains("(in "), "{since}");
    let (_, seats) = app
        .admin(
            Method::GET,
            &format!("/tenants/{tenant}/licenses/Figma/seats?state=granted"),
            None,
        )
        .await;
    let granted: Vec<&str> = seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["userName"].as_str().unwrap())
        .collect();
    assert_eq!(granted.len(), 2, "{seats}");
    assert!(granted.contains(&"cyd@fabrikam.example") && granted.contains(&"dan@fabrikam.example"));

    // The identity provider's failures, in the browser too: a user sent twice is explained.
    for _ in 0..2 {
        let (s, _) = app
            .scim(
                &tok,
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER_SCHEMA], "userName": "ann@fabrikam.example"})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
    }
    let mut page = String::new();
    for _ in 0..100 {
        c.goto(&format!("{base}/console/tenants/{tenant}/provisioning"))
            .await
            .unwrap();
        page = text(&c, "main").await;
        if page.contains("2 of ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        page.contains("2 of ") && page.contains("userName (or externalId) seatkeeper already has"),
        "{page}"
    );
    let row = text(&c, "main table tbody tr").await;
    assert!(
        row.contains("POST /scim/v2/Users") && row.contains("409"),
        "{row}"
    );
    shot(&c, "15-provisioning-failures").await;
}

/// The HTML part of an email file, decoded.
fn html_part(eml: &std::path::Path) -> String {
    part(eml, "text/html")
}

/// What does not fit the window: the page scrolling sideways, or a control (button, link
/// styled as one, input, select) that cannot be brought fully into view.
async fn clipped(c: &Client) -> Vec<String> {
    let v = c
        .execute(
            r#"
            const out = [];
            const w = document.documentElement.clientWidth;
            if (document.documentElement.scrollWidth > w + 1) {
                out.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' > ' + w);
            }
            for (const el of document.querySelectorAll('main button, main a.button, main input:not([type=hidden]), main select')) {
                if (el.closest('dialog:not([open])') || el.closest('details:not([open])')) { continue; }
                el.scrollIntoView({block: 'center', inline: 'center'});
                const r = el.getBoundingClientRect();
                if (r.width === 0) { continue; }
                if (r.left < -1 || r.right > w + 1) {
                    out.push((el.textContent || el.name || el.outerHTML.slice(0, 60)).trim() + ': ' + Math.round(r.left) + '..' + Math.round(r.right));
                }
            }
            window.scrollTo(0, 0);
            return out;
            "#,
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

/// Every page a licensing admin reads, and a blocked email, at a desktop's 1280 px and a
/// phone's 390 px: nothing scrolls sideways and every control can be reached. With
/// `SEATKEEPER_DOCS_SCREENSHOTS=1` the screenshots are written to `docs/screenshots/` too.
#[tokio::test(flavor = "multi_thread")]
async fn every_page_fits_a_desktop_and_a_phone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let app = TestApp::spawn_in(dir.path(), &clock, |_| {}).await;
    let (tenant, tok) = app.tenant("Northwind").await;
    let (s, _) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{tenant}"),
            Some(json!({"hold_threshold_percent": 1, "hold_min_seats": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut people = Vec::new();
    for (u, name) in [
        ("ana", "Ana Lima"),
        ("bruno", "Bruno Costa"),
        ("chloe", "Chloé Martin"),
        ("dmitri", "Dmitri Volkov"),
        ("emma", "Emma Schmidt"),
        ("farid", "Farid Haddad"),
        ("grace", "Grace Ong"),
        ("hugo", "Hugo Dubois"),
    ] {
        clock.tick();
        let (s, v) = app
            .scim(
                &tok,
                Method::POST,
                "/Users",
                Some(
                    json!({"schemas": [USER_SCHEMA], "userName": format!("{u}@northwind.example"),
                    "displayName": name, "active": true}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        people.push(id(&v));
    }
    let refs: Vec<&str> = people.iter().map(String::as_str).collect();
    clock.tick();
    let design = id(&app.create_group(&tok, "Design", &refs).await);
    for (name, seats) in [("Figma", 4), ("Zendesk", 6)] {
        let (s, l) = app
            .admin(
                Method::POST,
                &format!("/tenants/{tenant}/licenses"),
                Some(json!({"name": name, "seats": seats, "groups": [{"displayName": "Design"}]})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
    }
    // Three holders of Figma leave Design: one goes, the circuit breaker holds the others.
    clock.tick();
    let ops: Vec<serde_json::Value> = people[..3]
        .iter()
        .map(|p| json!({"op": "remove", "path": format!("members[value eq \"{p}\"]")}))
        .collect();
    let (s, b) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{design}"),
            Some(patch(json!(ops))),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    clock.advance_secs(600);
    app.sender_pass().await;
    let blocked = std::fs::read_dir(dir.path().join("mail"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            let n = p.to_string_lossy();
            n.ends_with("-blocked.eml") || n.ends_with("-combined.eml")
        })
        .expect("an email about the people waiting");
    let email = dir.path().join("blocked-email.html");
    let html = html_part(&blocked);
    assert!(
        html.contains("through the group Design"),
        "the email names the group: {html}"
    );
    std::fs::write(&email, html).unwrap();

    let (_driver, c) = browser().await;
    let base = app.address.clone();
    c.goto(&format!("{base}/console/login")).await.unwrap();
    fill(&c, "#token", ADMIN_TOKEN).await;
    click(&c, "main form button[type=submit]").await;
    let t = format!("{base}/console/tenants/{tenant}");
    let pages = [
        ("tenant", t.clone()),
        ("license", format!("{t}/licenses/Figma")),
        ("seats", format!("{t}/licenses/Figma/seats")),
        ("person", format!("{t}/people/farid@northwind.example")),
        ("group", format!("{t}/groups/{design}")),
        ("holds", format!("{t}/holds")),
        ("activity", format!("{t}/activity")),
        ("blocked-email", format!("file://{}", email.display())),
    ];
    let docs = std::env::var_os("SEATKEEPER_DOCS_SCREENSHOTS").is_some();
    for (width, label) in [(1280, "desktop"), (390, "phone")] {
        c.set_window_size(width, 900).await.unwrap();
        for (name, url) in &pages {
            c.goto(url).await.unwrap();
            el(&c, "body").await;
            if !name.ends_with("email") {
                let body = text(&c, "main").await;
                assert!(!body.contains("Something went wrong"), "{name}: {body}");
                let problems = clipped(&c).await;
                assert!(problems.is_empty(), "{name} at {width} px: {problems:#?}");
            } else {
                let wide: i64 = c
                    .execute("return document.documentElement.scrollWidth;", vec![])
                    .await
                    .unwrap()
                    .as_i64()
                    .unwrap();
                assert!(
                    wide <= width as i64 + 1,
                    "the email at {width} px is {wide} px wide"
                );
            }
            let png = c.screenshot().await.unwrap();
            std::fs::write(shots().join(format!("{name}-{label}.png")), &png).unwrap();
            if docs {
                let to = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
                std::fs::create_dir_all(&to).unwrap();
                std::fs::write(to.join(format!("{name}-{label}.png")), &png).unwrap();
            }
        }
    }
    // At a phone's width the waiting rows' actions are still there to press.
    c.goto(&format!("{t}/licenses/Zendesk/seats"))
        .await
        .unwrap();
    let actions = c
        .find_all(Locator::Css("table tbody tr button"))
        .await
        .unwrap();
    assert!(!actions.is_empty());
}
