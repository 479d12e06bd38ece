//! The console's handlers without a browser: cookies, CSRF, session expiry, tenant-scoped
//! admin tokens (console and admin API).

use reqwest::{header, Method, StatusCode};
use serde_json::json;

use super::cli_support::cli;
use crate::helpers::*;

/// A cookie-aware client that does not follow redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
            cookies: Default::default(),
        }
    }

    fn keep(&mut self, r: &reqwest::Response) -> Vec<String> {
        let mut raw = Vec::new();
        for v in r.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap().to_owned();
            let (pair, _) = v.split_once(';').unwrap_or((&v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
            raw.push(v);
        }
        raw
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&r);
        let status = r.status();
        let location = r
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location, r.text().await.unwrap())
    }

    async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> (StatusCode, String, String) {
        let mut rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, self.cookie_header())
            .form(form);
        if let Some(o) = origin {
            rb = rb.header(header::ORIGIN, o);
        }
        let r = rb.send().await.unwrap();
        self.keep(&r);
        let status = r.status();
        let location = r
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location, r.text().await.unwrap())
    }

    async fn sign_in(&mut self, token: &str) -> (StatusCode, String) {
        let (s, _, page) = self.get("/console/login").await;
        assert_eq!(s, StatusCode::OK);
        let csrf = csrf_of(&page);
        let (s, loc, _) = self
            .post("/console/login", &[("csrf", &csrf), ("token", token)], None)
            .await;
        (s, loc)
    }
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 64].to_owned()
}

#[tokio::test]
async fn sessions_are_strict_cookies_and_every_form_checks_csrf() {
    let (app, clock) = TestApp::spawn_clocked().await;
    let mut b = Browser::new(&app);
    let (s, loc, _) = b.get("/console/tenants").await;
    assert_eq!((s, loc.as_str()), (StatusCode::SEE_OTHER, "/console/login"));

    // The sign-in form itself is protected (double-submit cookie).
    let (_, _, page) = b.get("/console/login").await;
    let csrf = csrf_of(&page);
    let saved = b.cookies.clone();
    b.cookies.clear();
    let (s, _, _) = b
        .post(
            "/console/login",
            &[("csrf", &csrf), ("token", ADMIN_TOKEN)],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no sign-in cookie");
    b.cookies = saved;
    let (s, _, body) = b
        .post(
            "/console/login",
            &[("csrf", &csrf), ("token", "wrong-but-long-enough")],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body.contains("not valid"));

    let (_, _, page) = b.get("/console/login").await;
    let csrf = csrf_of(&page);
    let r = b
        .http
        .post(format!("{}/console/login", b.base))
        .header(header::COOKIE, b.cookie_header())
        .form(&[("csrf", csrf.as_str()), ("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = b.keep(&r);
    let session = set
        .iter()
        .find(|c| c.starts_with("sk_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
        assert!(session.contains(flag), "{session}");
    }

    let (s, _, page) = b.get("/console/tenants").await;
    assert_eq!(s, StatusCode::OK);
    let csrf = csrf_of(&page);
    // No token, a wrong token, a foreign origin: refused, nothing created.
    let (s, _, _) = b
        .post(
            "/console/tenants",
            &[("csrf", "0".repeat(64).as_str()), ("name", "evil")],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = b.post("/console/tenants", &[("name", "evil")], None).await;
    assert!(s.is_client_error(), "{s}");
    let (s, _, _) = b
        .post(
            "/console/tenants",
            &[("csrf", &csrf), ("name", "evil")],
            Some("https://attacker.example"),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, list) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!(list["tenants"].as_array().unwrap().len(), 0);
    // The right token from the console's own origin works.
    let origin = b.base.clone();
    let (s, loc, _) = b
        .post(
            "/console/tenants",
            &[
                ("csrf", &csrf),
                ("name", "Contoso"),
                ("notify", "it@contoso.example"),
            ],
            Some(&origin),
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{loc}");
    assert!(loc.contains("notice=tenant-created"));
    let (s, _, page) = b.get(&loc).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Contoso"));

    // Pages carry a CSP that allows only the console's own assets.
    let r = b
        .http
        .get(format!("{}/console/tenants", b.base))
        .header(header::COOKIE, b.cookie_header())
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let (s, _, css) = b.get("/console/static/app.css").await;
    assert_eq!(s, StatusCode::OK);
    assert!(!css.contains("http"), "no external resources");

    // 30 minutes idle ends the session.
    clock.advance_secs(29 * 60);
    assert_eq!(b.get("/console/tenants").await.0, StatusCode::OK);
    clock.advance_secs(31 * 60);
    let (s, loc, _) = b.get("/console/tenants").await;
    assert_eq!((s, loc.as_str()), (StatusCode::SEE_OTHER, "/console/login"));

    // Signing out ends it at once.
    b.sign_in(ADMIN_TOKEN).await;
    let (_, _, page) = b.get("/console/tenants").await;
    let csrf = csrf_of(&page);
    let old = b.cookies.clone();
    let (s, loc, _) = b.post("/console/logout", &[("csrf", &csrf)], None).await;
    assert_eq!((s, loc.as_str()), (StatusCode::SEE_OTHER, "/console/login"));
    b.cookies = old;
    assert_eq!(b.get("/console/tenants").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_tenant_admin_token_sees_only_its_tenant() {
    let app = TestApp::spawn().await;
    let (contoso, _) = app.tenant("contoso").await;
    let (fabrikam, _) = app.tenant("fabrikam").await;
    let (s, t) = app
        .admin(
            Method::POST,
            &format!("/tenants/{contoso}/admin-tokens"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ska_"));

    // The admin API: its tenant's paths only, no operator endpoints.
    let call = |m: Method, path: String, body: Option<serde_json::Value>| {
        let tok = token.clone();
        let app = &app;
        async move {
            app.request(m, &format!("/admin/v1{path}"), Some(&tok), body)
                .await
        }
    };
    let (s, _) = call(Method::GET, format!("/tenants/{contoso}/licenses"), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        Method::POST,
        "/tenants/contoso/licenses".into(),
        Some(json!({"name": "pro", "seats": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    for (m, path) in [
        (Method::GET, format!("/tenants/{fabrikam}/licenses")),
        (Method::GET, "/tenants".to_owned()),
        (Method::POST, format!("/tenants/{contoso}/admin-tokens")),
    ] {
        let (s, b) = call(m.clone(), path.clone(), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{m} {path}: {b}");
    }

    // The console: signed in with it, the tenant's pages only.
    let mut b = Browser::new(&app);
    let (s, loc) = b.sign_in(&token).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(loc, "/console/");
    let (_, loc, _) = b.get("/console/").await;
    assert_eq!(loc, format!("/console/tenants/{contoso}"));
    assert_eq!(b.get(&loc).await.0, StatusCode::OK);
    assert_eq!(
        b.get(&format!("/console/tenants/{fabrikam}")).await.0,
        StatusCode::NOT_FOUND
    );

    // Revoked: refused by the API at once, and its console sessions end.
    let id = t["id"].as_str().unwrap();
    let (s, _) = app
        .admin(
            Method::DELETE,
            &format!("/tenants/{contoso}/admin-tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(Method::GET, format!("/tenants/{contoso}/licenses"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(b.get(&loc).await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_tenant_admin_token_revoked_with_the_cli_ends_its_console_sessions_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("seatkeeper.db"));
    let database = c.database.clone();
    let app = TestApp::spawn_with(c).await;
    let (contoso, _) = app.tenant("contoso").await;
    let (_, t) = app
        .admin(
            Method::POST,
            &format!("/tenants/{contoso}/admin-tokens"),
            None,
        )
        .await;
    let (token, id) = (t["token"].as_str().unwrap(), t["id"].as_str().unwrap());
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(token).await.0, StatusCode::SEE_OTHER);
    let page = format!("/console/tenants/{contoso}");
    assert_eq!(b.get(&page).await.0, StatusCode::OK);
    let (ok, _, err) = cli(&database, &["admin-token", "revoke", "contoso", id]);
    assert!(ok, "{err}");
    let (s, loc, _) = b.get(&page).await;
    assert_eq!(
        (s, loc.as_str()),
        (StatusCode::SEE_OTHER, "/console/login"),
        "the session ended with the token, revoked by another process"
    );
    let (s, _) = app
        .request(
            Method::GET,
            &format!("/admin/v1/tenants/{contoso}/licenses"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn the_cli_cannot_mint_an_expired_token() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("seatkeeper.db"));
    let database = c.database.clone();
    let app = TestApp::spawn_with(c).await;
    app.tenant("acme").await;
    for bad in ["-5", "0", "59", "999999999999"] {
        let flag = format!("--expires-in={bad}");
        let (ok, _, err) = cli(&database, &["token", "issue", "acme", &flag]);
        assert!(!ok && err.contains("between 60"), "{bad}: {err}");
    }
    let (ok, out, err) = cli(&database, &["token", "issue", "acme", "--expires-in", "60"]);
    assert!(ok && out.trim().starts_with("skt_"), "{out} {err}");
    app.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_are_braked_but_a_valid_token_still_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("seatkeeper.db"));
    c.auth_failures_per_minute = 2;
    let app = TestApp::spawn_with(c).await;
    let mut stranger = Browser::new(&app);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(stranger.sign_in("ska_wrong_wrong").await.0);
    }
    assert_eq!(
        seen[..2],
        [StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED]
    );
    assert_eq!(seen[3], StatusCode::FORBIDDEN, "{seen:?}");
    // Same address (loopback), valid operator token: signed in.
    let mut admin = Browser::new(&app);
    let (s, loc) = admin.sign_in(ADMIN_TOKEN).await;
    assert_eq!((s, loc.as_str()), (StatusCode::SEE_OTHER, "/console/"));
    app.stop().await;
}

#[tokio::test]
async fn the_console_answers_a_clash_as_the_admin_api_does() {
    let app = TestApp::spawn().await;
    let (contoso, _) = app.tenant("contoso").await;
    app.admin(
        Method::POST,
        &format!("/tenants/{contoso}/licenses"),
        Some(json!({"name": "Pro", "seats": 1})),
    )
    .await;
    // The admin API: a second license of that name is a conflict.
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/tenants/{contoso}/licenses"),
            Some(json!({"name": "pro", "seats": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The console says the same (one classification of store errors for every edge), on its
    // error page.
    let mut b = Browser::new(&app);
    let (s, _) = b.sign_in(ADMIN_TOKEN).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, page) = b.get(&format!("/console/tenants/{contoso}")).await;
    let csrf = csrf_of(&page);
    let (s, _, page) = b
        .post(
            &format!("/console/tenants/{contoso}/licenses"),
            &[("csrf", &csrf), ("name", "PRO"), ("seats", "2")],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("exists"), "{page}");
}

/// The seat list reads a page at a time in the store: pages of 50 in waitlist order with the
/// positions of the whole waitlist, a search over userName that keeps them, and a page past the
/// end answered with the last one. What the console does is audited as the console session
/// of the token that signed in.
#[tokio::test]
async fn the_seat_list_pages_and_searches_in_the_store_and_console_acts_are_audited() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("contoso").await;
    let mut users = Vec::new();
    for i in 0..120 {
        users.push(id(&app
            .create_user(&tok, &format!("user{i:03}@contoso.example"))
            .await));
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    app.create_group(&tok, "Everyone", &refs).await;
    app.license(&t, "Pro", 10, "Everyone").await;
    let mut b = Browser::new(&app);
    let ska = app.admin_token(&t).await;
    let ska_id = ska.split('_').nth(1).unwrap().to_owned();
    assert_eq!(b.sign_in(&ska).await.0, StatusCode::SEE_OTHER);
    let seats = format!("/console/tenants/{t}/licenses/Pro/seats");
    let rows = |page: &str| page.matches("<tr").count() - 1;
    let (s, _, first) = b.get(&seats).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(rows(&first), 50, "{first}");
    assert!(first.contains("120"), "the total is shown");
    let (_, _, third) = b.get(&format!("{seats}?page=3")).await;
    assert_eq!(rows(&third), 20);
    let (_, _, past) = b.get(&format!("{seats}?page=9")).await;
    assert_eq!(rows(&past), 20, "past the end: the last page");
    // The waitlist's positions are the whole waitlist's, in a search too.
    let (_, v) = app
        .admin(
            Method::GET,
            &format!("/tenants/{t}/licenses/Pro/seats?state=blocked"),
            None,
        )
        .await;
    let last = v["seats"].as_array().unwrap().last().unwrap().clone();
    let name = last["userName"].as_str().unwrap();
    let (_, _, found) = b
        .get(&format!(
            "{seats}?q={}",
            name.to_uppercase().replace('@', "%40")
        ))
        .await;
    assert_eq!(rows(&found), 1, "{found}");
    assert!(
        found.contains(&format!(">{}<", last["position"])),
        "{found}"
    );
    let (_, _, none) = b.get(&format!("{seats}?q=50%25")).await;
    assert_eq!(rows(&none), 0, "a % is searched for, not a wildcard");
    // An act through the console names the session's token.
    let (_, _, page) = b.get(&format!("/console/tenants/{t}")).await;
    let csrf = csrf_of(&page);
    let (s, _, _) = b
        .post(
            &format!("/console/tenants/{t}/product-tokens"),
            &[("csrf", &csrf)],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, log) = app
        .admin(
            Method::GET,
            &format!("/tenants/{t}/audit?action=product_token.issue"),
            None,
        )
        .await;
    assert_eq!(
        log["entries"][0]["actor"],
        format!("console:tenant-admin:{ska_id}"),
        "{log}"
    );
}

#[tokio::test]
async fn the_operator_offboards_a_tenant_in_the_console_after_typing_its_name() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("departing").await;
    let tenant_admin = app.admin_token(&t).await;
    let page = format!("/console/tenants/{t}");

    // A tenant admin is not offered the action and cannot take it.
    let mut admin = Browser::new(&app);
    assert_eq!(admin.sign_in(&tenant_admin).await.0, StatusCode::SEE_OTHER);
    let (_, _, html) = admin.get(&page).await;
    assert!(!html.contains("Offboard"), "offered to a tenant admin");
    let csrf = csrf_of(&html);
    let (s, _, _) = admin
        .post(
            &format!("{page}/delete"),
            &[("csrf", &csrf), ("confirm", "departing")],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let mut op = Browser::new(&app);
    assert_eq!(op.sign_in(ADMIN_TOKEN).await.0, StatusCode::SEE_OTHER);
    let (_, _, html) = op.get(&page).await;
    assert!(
        html.contains("Offboard departing"),
        "the action is on the page"
    );
    let csrf = csrf_of(&html);
    // A name typed wrong changes nothing.
    let (s, _, body) = op
        .post(
            &format!("{page}/delete"),
            &[("csrf", &csrf), ("confirm", "Departing ")],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, _) = app.scim(&tok, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::OK, "still open");
    // Typed right: closed at once.
    let (s, loc, _) = op
        .post(
            &format!("{page}/delete"),
            &[("csrf", &csrf), ("confirm", "departing")],
            None,
        )
        .await;
    assert_eq!(
        (s, loc.as_str()),
        (
            StatusCode::SEE_OTHER,
            "/console/tenants?notice=tenant-closed"
        )
    );
    let (s, _) = app.scim(&tok, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, v) = app.admin(Method::GET, &format!("/tenants/{t}"), None).await;
    assert!(v["closed"].is_string(), "{v}");
    // The tenant admin's session ended with the tenant.
    let (s, loc, _) = admin.get(&page).await;
    assert_eq!((s, loc.as_str()), (StatusCode::SEE_OTHER, "/console/login"));
    app.stop().await;
}

/// The license page says which group a by-name selector resolved to, and that an ambiguous
/// name (two groups of that name, where names need not be unique) selects neither.
#[tokio::test]
async fn the_license_page_says_which_group_a_name_resolved_to() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("resolved").await;
    let u = app.create_user(&tok, "ann@resolved.example").await;
    let g = app.create_group(&tok, "Designers", &[&id(&u)]).await;
    app.license(&t, "Suite", 5, "Designers").await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(ADMIN_TOKEN).await.0, StatusCode::SEE_OTHER);
    let page = format!("/console/tenants/{t}/licenses/Suite");
    let (s, _, html) = b.get(&page).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("by name: the group"), "{html}");
    assert!(html.contains(&id(&g)), "the group's id is shown: {html}");
    assert!(!html.contains(">ambiguous<"), "{html}");
    // Names need not be unique here: a second Designers makes the name ambiguous.
    let (s, v) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{t}"),
            Some(json!({"group_names_unique": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.create_group(&tok, "Designers", &[]).await;
    let (_, _, html) = b.get(&page).await;
    assert!(html.contains(">ambiguous<"), "{html}");
    assert!(html.contains("select one of them by id"), "{html}");
    app.stop().await;
}

/// The seat list says who a waiting person is (display name) and why they wait, and offers
/// Grant only while a seat is free.
#[tokio::test]
async fn the_seat_list_says_who_waits_and_why_and_offers_grant_only_with_a_free_seat() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("why").await;
    let mut ids = Vec::new();
    for (name, display) in [
        ("ann@why.example", "Ann Arbor"),
        ("hugo@why.example", "Hugo Dubois"),
    ] {
        let (s, u) = app
            .scim(
                &tok,
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER_SCHEMA], "userName": name, "displayName": display})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        ids.push(id(&u));
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    app.create_group(&tok, "Staff", &refs).await;
    app.license(&t, "Suite", 1, "Staff").await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(ADMIN_TOKEN).await.0, StatusCode::SEE_OTHER);
    let seats = format!("/console/tenants/{t}/licenses/Suite/seats");
    let (s, _, html) = b.get(&seats).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("Hugo Dubois") && html.contains("Ann Arbor"),
        "{html}"
    );
    assert!(
        html.contains("The only seat is in use; hugo@why.example is next."),
        "{html}"
    );
    assert!(
        !html.contains("Grant a seat to"),
        "no seat is free: no Grant: {html}"
    );
    // A grant sent anyway (a stale page) is not a dead end: the preview says why it cannot be
    // done, and links back.
    let csrf = csrf_of(&html);
    let (s, _, page) = b
        .post(
            &format!("{seats}/hugo%40why.example"),
            &[("csrf", &csrf), ("action", "grant")],
            Some(&app.address),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("This cannot be done now: "), "{page}");
    assert!(page.contains("Back to the seats"), "{page}");
    assert!(!page.contains("Something went wrong"), "{page}");
    // Seats given out by hand only, and Ann's freed at once: Grant is offered, and the list
    // says why Hugo still waits.
    let (s, v) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{t}/licenses/Suite"),
            Some(json!({"auto_promote": false, "grace_seconds": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .admin(
            Method::PUT,
            &format!("/tenants/{t}/licenses/Suite/overrides/ann@why.example"),
            Some(json!({"kind": "exclude"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, _, html) = b.get(&seats).await;
    assert!(html.contains("automatic promotion is off"), "{html}");
    assert!(
        html.contains("Grant a seat to"),
        "a seat is free: Grant: {html}"
    );
    app.stop().await;
}

/// The licensing admin's pages: the tenant page starts with the license table (in use, waiting,
/// held, over by, status) before the integrator's sections; a person's page lists every
/// license with the place and reason, and their groups; a group's page lists the licenses it
/// feeds and its members' seats; names link from the seat list; a waiting person reads as
/// "waiting", never "blocked".
#[tokio::test]
async fn the_tenant_person_and_group_pages_answer_who_and_why() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("who").await;
    let mut ids = Vec::new();
    for (name, display) in [
        ("ann@who.example", "Ann Arbor"),
        ("hugo@who.example", "Hugo Dubois"),
        ("dana@who.example", "Dana Designer"),
    ] {
        let (s, u) = app
            .scim(
                &tok,
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER_SCHEMA], "userName": name, "displayName": display})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        ids.push(id(&u));
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let group = id(&app.create_group(&tok, "Staff", &refs).await);
    app.license(&t, "Suite", 2, "Staff").await;
    app.license(&t, "Viewer", 5, "Staff").await;
    // Viewer's count lowered below use (kept): over by one.
    let (s, v) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{t}/licenses/Viewer"),
            Some(json!({"seats": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(ADMIN_TOKEN).await.0, StatusCode::SEE_OTHER);

    let (s, _, html) = b.get(&format!("/console/tenants/{t}")).await;
    assert_eq!(s, StatusCode::OK);
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {html}"))
    };
    assert!(
        at("id=\"licenses-table\"") < at("id=\"prov\""),
        "licenses first"
    );
    assert!(html.contains(">Full<") && html.contains(">Over<"), "{html}");
    assert!(html.contains("3 / 2"), "Viewer: 3 in use of 2: {html}");
    assert!(
        html.contains("svg class=\"gauge over\""),
        "over its count shows red: {html}"
    );

    let (s, _, html) = b
        .get(&format!("/console/tenants/{t}/licenses/Suite/seats"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains(&format!("/console/tenants/{t}/people/hugo%40who.example")),
        "{html}"
    );
    assert!(
        html.contains(">waiting<") && !html.contains(">blocked<"),
        "{html}"
    );

    // The waiting person's page (Dana, created last, waits for Suite's two seats): both
    // licenses, the place, why, the group.
    let (s, _, page) = b
        .get(&format!("/console/tenants/{t}/people/dana%40who.example"))
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("<h1>Dana Designer</h1>"), "{page}");
    assert!(page.contains("Suite") && page.contains("Viewer"), "{page}");
    assert!(
        page.contains("All 2 seats are in use; dana@who.example is next. Entitled through Staff."),
        "{page}"
    );
    assert!(
        page.contains(&format!("/console/tenants/{t}/groups/{group}")),
        "{page}"
    );
    let (s, _, _) = b
        .get(&format!("/console/tenants/{t}/people/nobody%40who.example"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The group's page: the licenses it feeds and each member's seat in them.
    let (s, _, page) = b.get(&format!("/console/tenants/{t}/groups/{group}")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("<h1>Staff</h1>"), "{page}");
    assert!(page.contains("Members (3)"), "{page}");
    assert!(
        page.contains(">waiting<") && page.contains(">granted<"),
        "{page}"
    );

    // Removing the selected group is previewed first: who would lose a seat, and the button.
    let csrf = csrf_of(&page);
    let (s, _, page) = b
        .post(
            &format!("/console/tenants/{t}/licenses/Suite/groups"),
            &[
                ("csrf", &csrf),
                ("action", "remove"),
                ("kind", "displayName"),
                ("value", "Staff"),
            ],
            Some(&app.address),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Stop selecting Staff for Suite?"), "{page}");
    assert!(page.contains("take the seat of"), "{page}");
    let (_, l) = app
        .admin(Method::GET, &format!("/tenants/{t}/licenses/Suite"), None)
        .await;
    assert_eq!(
        l["granted"], 2,
        "nothing changed before the confirmation: {l}"
    );
    let (s, _, _) = b
        .post(
            &format!("/console/tenants/{t}/licenses/Suite/groups"),
            &[
                ("csrf", &csrf),
                ("action", "remove"),
                ("kind", "displayName"),
                ("value", "Staff"),
                ("step", "confirm"),
            ],
            Some(&app.address),
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, l) = app
        .admin(Method::GET, &format!("/tenants/{t}/licenses/Suite"), None)
        .await;
    assert!(l["groups"].as_array().unwrap().is_empty(), "{l}");
    app.stop().await;
}

/// Durations are asked and shown in hours: the forms take `1.5` and `0.5`, the pages show what
/// was saved the same way, and the activity says "from 2 hours to 1 hour 30 minutes".
#[tokio::test]
async fn durations_are_asked_in_hours() {
    let app = TestApp::spawn().await;
    let (t, _tok) = app.tenant("hours").await;
    app.license(&t, "Suite", 2, "Staff").await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(ADMIN_TOKEN).await.0, StatusCode::SEE_OTHER);
    let (_, _, page) = b.get(&format!("/console/tenants/{t}")).await;
    assert!(page.contains("name=\"expected_sync_hours\""), "{page}");
    assert!(
        page.contains("value=\"2\""),
        "7200 s shows as 2 hours: {page}"
    );
    let csrf = csrf_of(&page);
    let (s, _, body) = b
        .post(
            &format!("/console/tenants/{t}/settings"),
            &[
                ("csrf", &csrf),
                ("notify", "admin@example.com"),
                ("expected_sync_hours", "1.5"),
                ("pending_window_hours", "72"),
                ("hold_window_hours", "0.5"),
            ],
            Some(&app.address),
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let (_, tenant) = app.admin(Method::GET, &format!("/tenants/{t}"), None).await;
    assert_eq!(tenant["expected_sync_seconds"], 5400, "{tenant}");
    assert_eq!(tenant["pending_window_seconds"], 259_200, "{tenant}");
    assert_eq!(tenant["hold_window_seconds"], 1800, "{tenant}");
    let (s, _, body) = b
        .post(
            &format!("/console/tenants/{t}/settings"),
            &[
                ("csrf", &csrf),
                ("notify", "admin@example.com"),
                ("expected_sync_hours", "soon"),
            ],
            Some(&app.address),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("must be a number of hours"), "{body}");
    // A license's grace the same way.
    let (s, _, body) = b
        .post(
            &format!("/console/tenants/{t}/licenses/Suite/settings"),
            &[
                ("csrf", &csrf),
                ("form", "policy"),
                ("grace_hours", "0.5"),
                ("on_capacity_lowered", "keep"),
            ],
            Some(&app.address),
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let (_, l) = app
        .admin(Method::GET, &format!("/tenants/{t}/licenses/Suite"), None)
        .await;
    assert_eq!(l["grace_seconds"], 1800, "{l}");
    let (_, _, page) = b.get(&format!("/console/tenants/{t}/activity")).await;
    assert!(
        page.contains("expected sync from 2 hours to 1 hour 30 minutes"),
        "{page}"
    );
    assert!(page.contains("grace from"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn a_policy_that_moves_seats_is_previewed_and_the_result_names_who_moved() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("policy").await;
    let ann = id(&app.create_user(&tok, "ann@policy.example").await);
    let bob = id(&app.create_user(&tok, "bob@policy.example").await);
    app.create_group(&tok, "Staff", &[&ann, &bob]).await;
    app.license(&t, "Suite", 1, "Staff").await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(ADMIN_TOKEN).await.0, StatusCode::SEE_OTHER);
    let (_, _, page) = b.get(&format!("/console/tenants/{t}/licenses/Suite")).await;
    let csrf = csrf_of(&page);
    let policy = |overage: &'static str, step: &'static str| {
        vec![
            ("form", "policy"),
            ("auto_promote", "1"),
            ("free_on_delete", "1"),
            ("grace_hours", "2"),
            ("on_capacity_lowered", "keep"),
            ("overage", overage),
            ("step", step),
        ]
    };
    // One seat of agreed overage gives bob a seat: shown first, nothing saved.
    let mut form = policy("1", "");
    form.push(("csrf", &csrf));
    let (s, _, preview) = b
        .post(
            &format!("/console/tenants/{t}/licenses/Suite/settings"),
            &form,
            Some(&app.address),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    assert!(
        preview.contains("Change the policy of Suite?")
            && preview.contains("give a seat to bob@policy.example"),
        "{preview}"
    );
    let (_, l) = app
        .admin(Method::GET, &format!("/tenants/{t}/licenses/Suite"), None)
        .await;
    assert_eq!(
        l["overage"], 0,
        "nothing saved before the confirmation: {l}"
    );
    // Saved from the preview: the license page names who moved.
    let mut form = policy("1", "confirm");
    form.push(("csrf", &csrf));
    let (s, loc, body) = b
        .post(
            &format!("/console/tenants/{t}/licenses/Suite/settings"),
            &form,
            Some(&app.address),
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(loc.contains("since="), "{loc}");
    let (_, _, page) = b.get(&loc).await;
    let at = page.find("id=\"moved\"").expect("the moves are named");
    assert!(
        page[at..].contains("Got a seat: bob@policy.example"),
        "{page}"
    );
    // A policy that moves no seat is saved at once.
    let mut form = policy("1", "");
    form[3] = ("grace_hours", "3");
    form.push(("csrf", &csrf));
    let (s, loc, _) = b
        .post(
            &format!("/console/tenants/{t}/licenses/Suite/settings"),
            &form,
            Some(&app.address),
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, page) = b.get(&loc).await;
    assert!(page.contains("No seat moved."), "{page}");
}

#[tokio::test]
async fn activity_pages_both_ways_filters_by_day_collapses_runs_and_exports() {
    let s = Scenario::new("Tailspin").await;
    let users = super::shadow::people(&s, 230).await;
    s.group("Staff", &users).await;
    s.clock.tick();
    let (st, l) = s
        .admin(
            Method::POST,
            "/licenses",
            Some(json!({"name": "Suite", "seats": 1, "groups": [{"displayName": "Staff"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    let mut b = Browser::new(&s.app);
    assert_eq!(b.sign_in(ADMIN_TOKEN).await.0, StatusCode::SEE_OTHER);
    let base = format!("/console/tenants/{}/activity", s.tenant);
    let (st, _, first) = b.get(&base).await;
    assert_eq!(st, StatusCode::OK);
    // The selection queued 229 people: one line that opens to the rest.
    assert!(first.contains("more like it"), "{first}");
    assert!(
        !first.contains("Newer entries"),
        "the first page has nothing newer"
    );
    let older = |page: &str, rel: &str| -> String {
        let at = page
            .find(&format!("rel=\"{rel}\" href=\""))
            .unwrap_or_else(|| panic!("no {rel} link"))
            + rel.len()
            + 13;
        page[at..at + page[at..].find('"').unwrap()].replace("&amp;", "&")
    };
    let (st, _, second) = b.get(&older(&first, "next")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(second.contains("Newer entries"), "{second}");
    let (_, _, back) = b.get(&older(&second, "prev")).await;
    let entries = |page: &str| -> String {
        let at = page.find("<ul class=\"activity\">").unwrap();
        page[at..at + page[at..].find("</ul>").unwrap()].to_owned()
    };
    assert_eq!(
        entries(&back),
        entries(&first),
        "newer from the second page is the first"
    );
    // A day range in the tenant's zone: the clock's day has it all, a later one nothing.
    let (_, _, day) = b
        .get(&format!("{base}?from=2026-01-01&to=2026-01-01"))
        .await;
    assert!(day.contains("more like it"), "{day}");
    let (_, _, later) = b.get(&format!("{base}?from=2026-02-01")).await;
    assert!(later.contains("Nothing matches."), "{later}");
    let (st, _, bad) = b.get(&format!("{base}?from=soon")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
    // The export holds every entry the filters select, not one page.
    let (st, _, csv) = b
        .get(&format!(
            "/console/tenants/{}/activity.csv?kind=seat.",
            s.tenant
        ))
        .await;
    assert_eq!(st, StatusCode::OK);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "when,who,action,what,detail");
    assert_eq!(lines.len(), 1 + 230, "{}", &csv[..500.min(csv.len())]);
    assert!(lines[1].contains("Thu 1 Jan 2026"), "{}", lines[1]);
}
