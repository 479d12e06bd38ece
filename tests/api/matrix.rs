//! The cross-tenant matrix: every route of every surface (from the daemon's own route tables,
//! `seatkeeper::http::route_table`, so a new route is covered without anyone adding it here)
//! against every kind of credential, each aimed at tenant B's resources after every cache that
//! could remember B has been primed. Only the operator may act on B; every other cell must be
//! refused (never a 2xx on a route that needs a credential, never a 500), no answer may carry
//! B's data, and B is untouched at the end.

use std::collections::BTreeMap;

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// What tenant B holds that no request path names: finding one in an answer is a leak.
const B_USER: &str = "victim.person@beta-matrix.example";
const B_GROUP: &str = "VictimGroupBetaMatrix";
const B_LICENSE: &str = "VictimLicenseBetaMatrix";

/// A credential kind of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The operator: the admin token (SCIM, admin), an operator product token (product), an
    /// operator console session (console).
    Operator,
    /// Tenant A's admin token (and A's console session on console routes).
    AAdmin,
    AProduct,
    AScim,
    Junk,
    /// `tenant:<B's name>` and `tenant:<B's id>`: the shape of the old cache keys.
    TenantName,
    TenantId,
    None,
}

const KINDS: [Kind; 8] = [
    Kind::Operator,
    Kind::AAdmin,
    Kind::AProduct,
    Kind::AScim,
    Kind::Junk,
    Kind::TenantName,
    Kind::TenantId,
    Kind::None,
];

/// Routes any client may request without a credential; they carry no tenant's data.
fn public(method: &Method, path: &str) -> bool {
    path.ends_with("/openapi.json")
        || matches!(
            (method.as_str(), path),
            ("GET", "/console")
                | ("GET", "/console/")
                | ("GET", "/console/static/app.css")
                | ("GET", "/console/static/app.js")
                | ("GET", "/console/login")
                | ("POST", "/console/login")
                | ("POST", "/console/logout")
        )
}

struct World {
    a_admin: String,
    a_product: String,
    a_scim: String,
    b_id: String,
    b_name: String,
    b_scim: String,
    b_product: String,
    op_product: String,
    /// Path parameters by name, B's resources.
    params: BTreeMap<&'static str, String>,
    /// `{id}` by the segment before it.
    ids: BTreeMap<&'static str, String>,
    /// Console sessions (cookie value, CSRF token).
    op_session: (String, String),
    a_session: (String, String),
}

fn token_id(token: &str) -> String {
    token.split('_').nth(1).unwrap().to_owned()
}

/// A client that does not follow redirects (a console refusal is a redirect to sign in).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in to the console with `token`: the session cookie and its CSRF token.
async fn console_session(app: &TestApp, token: &str, tenant: &str) -> (String, String) {
    let http = client();
    let r = http
        .get(format!("{}/console/login", app.address))
        .send()
        .await
        .unwrap();
    let login = cookie(&r, "sk_login").unwrap();
    let csrf = csrf_of(&r.text().await.unwrap());
    let r = http
        .post(format!("{}/console/login", app.address))
        .header(header::COOKIE, format!("sk_login={login}"))
        .form(&[("csrf", csrf.as_str()), ("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = cookie(&r, "sk_session").expect("a session");
    let page = http
        .get(format!("{}/console/tenants/{tenant}", app.address))
        .header(header::COOKIE, format!("sk_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    (session, csrf_of(&page.text().await.unwrap()))
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

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF token") + 19;
    page[at..at + 64].to_owned()
}

async fn setup(app: &TestApp) -> World {
    let (a_id, a_scim) = app.tenant("alpha-matrix").await;
    let b_name = "beta-matrix".to_owned();
    let (b_id, b_scim) = app.tenant(&b_name).await;
    let a_admin = app.admin_token(&a_id).await;
    let b_admin = app.admin_token(&b_id).await;
    let product = |path: String| async move {
        let (s, v) = app.admin(Method::POST, &path, Some(json!({}))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_owned()
    };
    let a_product = product(format!("/tenants/{a_id}/product-tokens")).await;
    let b_product = product(format!("/tenants/{b_id}/product-tokens")).await;
    let op_product = product("/product-tokens".to_owned()).await;

    // A's own resources exist too, so that a credential of A has something to find.
    let ua = app
        .create_user(&a_scim, "someone@alpha-matrix.example")
        .await;
    app.create_group(&a_scim, "AlphaGroup", &[&id(&ua)]).await;

    let ub = app.create_user(&b_scim, B_USER).await;
    let gb = app.create_group(&b_scim, B_GROUP, &[&id(&ub)]).await;
    let lb = app.license(&b_id, B_LICENSE, 5, B_GROUP).await;
    let (s, hook) = app
        .admin(
            Method::POST,
            &format!("/tenants/{b_id}/webhooks"),
            Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["seat.granted"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let (s, note) = app
        .admin(
            Method::POST,
            &format!("/tenants/{b_id}/notifications/test"),
            Some(json!({})),
        )
        .await;
    assert!(s.is_success(), "{note}");
    let (_, notes) = app
        .admin(Method::GET, &format!("/tenants/{b_id}/notifications"), None)
        .await;
    let note_id = notes["notifications"][0]["id"]
        .as_i64()
        .map(|n| n.to_string())
        .or_else(|| notes["notifications"][0]["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "1".to_owned());

    let params = BTreeMap::from([
        ("license", id(&lb)),
        ("l", id(&lb)),
        ("user", id(&ub)),
        ("g", id(&gb)),
        ("name", "User".to_owned()),
        ("delivery", "1".to_owned()),
    ]);
    let ids = BTreeMap::from([
        ("Users", id(&ub)),
        ("Groups", id(&gb)),
        ("Schemas", USER_SCHEMA.to_owned()),
        ("tokens", token_id(&b_scim)),
        ("admin-tokens", token_id(&b_admin)),
        ("product-tokens", token_id(&b_product)),
        ("webhooks", id(&hook)),
        ("notifications", note_id),
        ("holds", "1".to_owned()),
    ]);
    let op_session = console_session(app, ADMIN_TOKEN, &b_id).await;
    let a_session = console_session(app, &a_admin, &a_id).await;
    World {
        a_admin,
        a_product,
        a_scim,
        b_id,
        b_name,
        b_scim,
        b_product,
        op_product,
        params,
        ids,
        op_session,
        a_session,
    }
}

/// `path` with B's resources in its parameters; `{tenant}` by `tenant` (B's id or name).
fn fill(w: &World, path: &str, tenant: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let filled = match *seg {
            "{tenant}" | "{t}" => tenant.to_owned(),
            "{id}" => w.ids[segments[i - 1]].clone(),
            "{action}" => match segments[i - 2] {
                "webhooks" => "disable".to_owned(),
                "holds" => "approve".to_owned(),
                _ => "retry".to_owned(),
            },
            s if s.starts_with('{') => w.params[&s[1..s.len() - 1]].clone(),
            s => s.to_owned(),
        };
        out.push(filled);
    }
    out.join("/")
}

/// A body a route would act on if it let the request through.
fn body_for(method: &Method, path: &str) -> Option<Value> {
    if matches!(*method, Method::GET | Method::DELETE) {
        return None;
    }
    Some(if path.contains("/Users") && *method == Method::PUT {
        json!({"schemas": [USER_SCHEMA], "userName": "pwned@example.com"})
    } else if path.contains("/Groups") && *method == Method::PUT {
        json!({"schemas": [GROUP_SCHEMA], "displayName": "pwned"})
    } else if *method == Method::PATCH && path.starts_with("/scim/") {
        patch(json!([{"op": "replace", "path": "displayName", "value": "pwned"}]))
    } else if path.ends_with("/scim/v2/Users") {
        json!({"schemas": [USER_SCHEMA], "userName": "intruder@example.com"})
    } else if path.ends_with("/scim/v2/Groups") {
        json!({"schemas": [GROUP_SCHEMA], "displayName": "intruder"})
    } else if path.ends_with("/Bulk") {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
            {"method": "DELETE", "path": format!("/Users/{}", "x")}]})
    } else if path.ends_with(".search") {
        json!({"schemas": [SEARCH], "filter": format!("userName eq \"{B_USER}\"")})
    } else if path.ends_with("/checks") {
        json!({"users": [B_USER]})
    } else if path.ends_with("/usage") {
        json!({"events": [{"user": B_USER, "license": B_LICENSE}]})
    } else if path.ends_with("/licenses") {
        json!({"name": "stolen", "seats": 1})
    } else if path.ends_with("/grant") {
        json!({})
    } else if path.contains("/overrides/") {
        json!({"kind": "exclude"})
    } else if *method == Method::PATCH {
        json!({"seats": 1, "name": "pwned"})
    } else {
        json!({})
    })
}

const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Sends one cell: `kind` on `method path`.
async fn send(
    app: &TestApp,
    w: &World,
    kind: Kind,
    method: &Method,
    route: &str,
    path: &str,
) -> (StatusCode, String, String) {
    let http = client();
    let url = format!("{}{path}", app.address);
    let mut rb = http.request(method.clone(), &url);
    let bearer = match kind {
        Kind::Operator if route.starts_with("/product/") => Some(w.op_product.clone()),
        Kind::Operator => Some(ADMIN_TOKEN.to_owned()),
        Kind::AAdmin => Some(w.a_admin.clone()),
        Kind::AProduct => Some(w.a_product.clone()),
        Kind::AScim => Some(w.a_scim.clone()),
        Kind::Junk => Some("skt_0123456789abcdef_junk".to_owned()),
        Kind::TenantName => Some(format!("tenant:{}", w.b_name)),
        Kind::TenantId => Some(format!("tenant:{}", w.b_id)),
        Kind::None => None,
    };
    if route.starts_with("/console") {
        // The console's credential is its session cookie; a kind that cannot open a session
        // presents itself as the cookie (and as a bearer token, which the console ignores).
        let (cookie, csrf) = match kind {
            Kind::Operator => (w.op_session.0.clone(), w.op_session.1.clone()),
            Kind::AAdmin => (w.a_session.0.clone(), w.a_session.1.clone()),
            _ => (bearer.clone().unwrap_or_default(), w.a_session.1.clone()),
        };
        if kind != Kind::None {
            rb = rb.header(header::COOKIE, format!("sk_session={cookie}"));
            if let Some(b) = &bearer {
                rb = rb.bearer_auth(b);
            }
        }
        if *method == Method::POST {
            rb = rb.form(&[
                ("csrf", csrf.as_str()),
                ("name", "stolen"),
                ("seats", "1"),
                ("group", B_GROUP),
                ("action", "exclude"),
                ("token", "x"),
                ("url", "http://127.0.0.1:9/x"),
            ]);
        }
    } else {
        if let Some(b) = &bearer {
            rb = rb.bearer_auth(b);
        }
        if let Some(body) = body_for(method, route) {
            let ct = if route.starts_with("/scim/") {
                "application/scim+json"
            } else {
                "application/json"
            };
            rb = rb.header(header::CONTENT_TYPE, ct).body(body.to_string());
        }
    }
    let r = rb.send().await.unwrap();
    let s = r.status();
    let location = r
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (s, r.text().await.unwrap_or_default(), location)
}

/// Fills every cache that could remember B: B's own SCIM and product traffic, the operator
/// reading B (admin API, console), A's credentials asking for B.
async fn prime(app: &TestApp, w: &World) {
    let http = client();
    let get = |path: String, token: String| {
        let http = http.clone();
        let url = format!("{}{path}", app.address);
        async move {
            http.get(url).bearer_auth(token).send().await.unwrap();
        }
    };
    for t in [&w.b_name, &w.b_id] {
        get("/scim/v2/Users".into(), w.b_scim.clone()).await;
        get(
            format!("/product/v1/tenants/{t}/users/{}/seats", w.params["user"]),
            w.b_product.clone(),
        )
        .await;
        get(format!("/admin/v1/tenants/{t}"), ADMIN_TOKEN.into()).await;
        get(
            format!("/product/v1/tenants/{t}/users/x/seats"),
            w.a_product.clone(),
        )
        .await;
        get(
            format!("/product/v1/tenants/{t}/events"),
            w.op_product.clone(),
        )
        .await;
        get(format!("/admin/v1/tenants/{t}/licenses"), w.a_admin.clone()).await;
        http.get(format!("{}/console/tenants/{t}", app.address))
            .header(header::COOKIE, format!("sk_session={}", w.op_session.0))
            .send()
            .await
            .unwrap();
    }
}

/// B as it should stay while the matrix's refused cells run.
async fn assert_b_intact(app: &TestApp, w: &World) {
    let (s, users) = app.scim(&w.b_scim, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::OK, "B's own SCIM token still works");
    assert_eq!(users["totalResults"], 1, "{users}");
    assert_eq!(users["Resources"][0]["userName"], B_USER);
    let (_, groups) = app.scim(&w.b_scim, Method::GET, "/Groups", None).await;
    assert_eq!(groups["Resources"][0]["displayName"], B_GROUP, "{groups}");
    assert_eq!(groups["totalResults"], 1);
    let (_, licenses) = app
        .admin(Method::GET, &format!("/tenants/{}/licenses", w.b_id), None)
        .await;
    let list = licenses["licenses"].as_array().unwrap_or_else(|| {
        licenses
            .as_array()
            .unwrap_or_else(|| panic!("a list of licenses: {licenses}"))
    });
    assert_eq!(list.len(), 1, "{licenses}");
    assert_eq!(list[0]["name"], B_LICENSE);
    assert_eq!(list[0]["seats"], 5);
    let (_, tokens) = app
        .admin(Method::GET, &format!("/tenants/{}/tokens", w.b_id), None)
        .await;
    assert!(
        !tokens.to_string().contains("\"revoked\":\""),
        "B's tokens are not revoked: {tokens}"
    );
    let (_, hooks) = app
        .admin(Method::GET, &format!("/tenants/{}/webhooks", w.b_id), None)
        .await;
    assert!(
        !hooks.to_string().contains("\"enabled\":false"),
        "B's webhook is not disabled: {hooks}"
    );
}

#[tokio::test]
async fn no_credential_but_the_operators_acts_on_another_tenant_on_any_route() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir.path().join("seatkeeper.db"));
    // Every refusal here is the credential's, not a rate limit's.
    config.auth_failures_per_minute = 0;
    config.client_requests_per_second = 0;
    config.admin_requests_per_second = 0;
    let app = TestApp::spawn_with(config).await;
    let w = setup(&app).await;
    let table: Vec<(Method, String)> = seatkeeper::http::route_table()
        .into_iter()
        .map(|(m, p)| (Method::from_bytes(m.as_str().as_bytes()).unwrap(), p))
        .collect();
    assert!(table.len() > 100, "every surface's routes: {}", table.len());
    for prefix in ["/scim/v2/", "/admin/v1/", "/product/v1/", "/console/"] {
        assert!(
            table.iter().any(|(_, p)| p.starts_with(prefix)),
            "{prefix} routes are in the table"
        );
    }

    let mut cells = 0;
    // Refused cells first, B checked whole after them; the operator's (which may change B)
    // last.
    for (method, route) in &table {
        prime(&app, &w).await;
        for tenant in [w.b_name.clone(), w.b_id.clone()] {
            let path = fill(&w, route, &tenant);
            for kind in KINDS.iter().copied().filter(|k| *k != Kind::Operator) {
                let (s, body, _) = send(&app, &w, kind, method, route, &path).await;
                cells += 1;
                let cell = format!("{kind:?} {method} {path}: {s} {body:.300}");
                assert!(!s.is_server_error(), "never a 5xx: {cell}");
                for marker in [B_USER, B_GROUP, B_LICENSE] {
                    assert!(!body.contains(marker), "B's data leaked: {cell}");
                }
                // A's SCIM token acts on A's directory (the path names no tenant): only B's
                // resources by id must be refused.
                let own_scim = kind == Kind::AScim
                    && route.starts_with("/scim/")
                    && !route.starts_with("/scim/v2/Users/{")
                    && !route.starts_with("/scim/v2/Groups/{");
                if !public(method, route) && !own_scim {
                    assert!(!s.is_success(), "refused: {cell}");
                }
            }
        }
    }
    assert_b_intact(&app, &w).await;

    for (method, route) in &table {
        if route.starts_with("/scim/") || public(method, route) {
            continue;
        }
        let path = fill(&w, route, &w.b_name);
        let (s, body, location) = send(&app, &w, Kind::Operator, method, route, &path).await;
        cells += 1;
        let cell = format!("operator {method} {path}: {s} {body:.300}");
        assert!(!s.is_server_error(), "never a 5xx: {cell}");
        assert!(
            s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
            "the operator may act on B: {cell}"
        );
        assert_ne!(
            location, "/console/login",
            "the operator's session is not sent to sign in: {cell}"
        );
    }
    eprintln!("cross-tenant matrix: {} routes, {cells} cells", table.len());
    app.stop().await;
}

/// The route table lists each route once; with `SEATKEEPER_ROUTE_HITS` set it is written
/// beside the hits (`<file>.routes`), for `.ci/route-coverage` to list the tests of each route.
#[test]
fn the_route_table_names_each_route_once() {
    let table = seatkeeper::http::route_table();
    let mut seen = std::collections::BTreeSet::new();
    for (m, p) in &table {
        assert!(p.starts_with('/'), "{m} {p}");
        assert!(seen.insert((m.to_string(), p.clone())), "{m} {p} twice");
    }
    if let Ok(file) = std::env::var("SEATKEEPER_ROUTE_HITS") {
        let lines: String = table.iter().map(|(m, p)| format!("{m}\t{p}\n")).collect();
        std::fs::write(format!("{file}.routes"), lines).unwrap();
    }
}
