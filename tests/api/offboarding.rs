//! A customer leaves: the operator closes the tenant (every credential refused at once), exports
//! it, can reopen it, and purges it; after the purge no row in any table names the tenant (the
//! test walks the database's catalogue, so a table added later is covered without a change). The
//! other tenants are untouched, and the operator's own audit chain records each step.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Rows of the database that name tenant `rk` (by a `tenant`/`tenant_rk` column) or contain
/// one of `needles` in any column, outside the operator's own audit chain: `table.column (n)`.
async fn rows_naming(database: &std::path::Path, rk: i64, needles: Vec<String>) -> Vec<String> {
    let database = database.to_owned();
    tokio::task::spawn_blocking(move || {
        let text = database.to_string_lossy().into_owned();
        let mut found = Vec::new();
        if text.starts_with("postgres") {
            let mut c = postgres::Client::connect(&text, postgres::NoTls).unwrap();
            let cols: Vec<(String, String)> = c
                .query(
                    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()",
                    &[],
                )
                .unwrap()
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for (t, col) in cols {
                let own = if t == "audit" { " AND tenant <> 0" } else { "" };
                let mut sql = format!(
                    "SELECT count(*) FROM {t} WHERE (CAST({col} AS TEXT) LIKE ANY($1){own})"
                );
                let patterns: Vec<String> = needles.iter().map(|n| format!("%{n}%")).collect();
                let n: i64 = if col == "tenant" || col == "tenant_rk" {
                    sql.push_str(&format!(" OR {col} = $2"));
                    c.query_one(&sql, &[&patterns, &rk]).unwrap().get(0)
                } else {
                    c.query_one(&sql, &[&patterns]).unwrap().get(0)
                };
                if n > 0 {
                    found.push(format!("{t}.{col} ({n})"));
                }
            }
        } else {
            let c = rusqlite::Connection::open(&database).unwrap();
            let tables: Vec<String> = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            for t in tables {
                let cols: Vec<String> = c
                    .prepare(&format!("PRAGMA table_info({t})"))
                    .unwrap()
                    .query_map([], |r| r.get(1))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                for col in cols {
                    let own = if t == "audit" { " AND tenant <> 0" } else { "" };
                    let mut conds: Vec<String> = needles
                        .iter()
                        .map(|n| format!("(CAST({col} AS TEXT) LIKE '%{n}%'{own})"))
                        .collect();
                    if col == "tenant" || col == "tenant_rk" {
                        conds.push(format!("{col} = {rk}"));
                    }
                    let n: i64 = c
                        .query_row(
                            &format!("SELECT count(*) FROM {t} WHERE {}", conds.join(" OR ")),
                            [],
                            |r| r.get(0),
                        )
                        .unwrap();
                    if n > 0 {
                        found.push(format!("{t}.{col} ({n})"));
                    }
                }
            }
        }
        found
    })
    .await
    .unwrap()
}

async fn rk_of(database: &std::path::Path, id: &str) -> i64 {
    let (database, id) = (database.to_owned(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        let text = database.to_string_lossy().into_owned();
        if text.starts_with("postgres") {
            let mut c = postgres::Client::connect(&text, postgres::NoTls).unwrap();
            c.query_one("SELECT rk FROM tenants WHERE id = $1", &[&id])
                .unwrap()
                .get(0)
        } else {
            let c = rusqlite::Connection::open(&database).unwrap();
            c.query_row("SELECT rk FROM tenants WHERE id = ?", [&id], |r| r.get(0))
                .unwrap()
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_tenant_is_closed_exported_reopened_and_purged_to_the_last_row() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("seatkeeper.db"));
    let database = c.database.clone();
    let app = TestApp::spawn_with(c).await;
    let (keep, keep_tok) = app.tenant("staying-customer").await;
    app.create_user(&keep_tok, "stays@staying.example").await;
    let (t, tok) = app.tenant("leaving-customer").await;
    let mut users = Vec::new();
    for n in ["ann", "ben", "cat"] {
        users.push(id(&app
            .create_user(&tok, &format!("{n}@leaving.example"))
            .await));
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    app.create_group(&tok, "LeavingSales", &refs).await;
    app.license(&t, "LeavingSuite", 2, "LeavingSales").await;
    let (s, _) = app
        .admin(
            Method::PUT,
            &format!("/tenants/{t}/licenses/LeavingSuite/overrides/cat@leaving.example"),
            Some(json!({"kind": "pin"})),
        )
        .await;
    assert!(s.is_success());
    let tenant_admin = app.admin_token(&t).await;
    let (_, p) = app
        .admin(
            Method::POST,
            &format!("/tenants/{t}/product-tokens"),
            Some(json!({})),
        )
        .await;
    let product = p["token"].as_str().unwrap().to_owned();
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/tenants/{t}/webhooks"),
            Some(json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let rk = rk_of(&database, &t).await;

    // Only the operator offboards.
    let (s, _) = app
        .request(
            Method::DELETE,
            &format!("/admin/v1/tenants/{t}"),
            Some(&tenant_admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, closed) = app
        .admin(Method::DELETE, &format!("/tenants/{t}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{closed}");
    assert!(
        closed["closed"].is_string() && closed["purge_at"].is_string(),
        "{closed}"
    );
    // Every credential of the tenant is refused at once.
    let (s, _) = app.scim(&tok, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .request(
            Method::GET,
            &format!("/admin/v1/tenants/{t}/licenses"),
            Some(&tenant_admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .request(
            Method::GET,
            &format!("/product/v1/tenants/{t}/users/ann@leaving.example/seats"),
            Some(&product),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .admin(Method::DELETE, &format!("/tenants/{t}"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "closed already");

    // The export holds everything, seats with their waitlist places.
    let r = reqwest::Client::new()
        .get(format!("{}/admin/v1/tenants/{t}/export", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    record_route_hit("GET", r.url().path(), r.status());
    let lines: Vec<Value> = r
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |kind: &str| lines.iter().filter(|l| l["type"] == kind).count();
    assert_eq!(of("tenant"), 1);
    assert_eq!(of("user"), 3);
    assert_eq!(of("group"), 1);
    assert_eq!(of("license"), 1);
    assert_eq!(of("seat"), 3);
    assert_eq!(of("override"), 1);
    assert!(of("audit") >= 3);
    let waiting: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "seat" && l["data"]["state"] == "blocked")
        .collect();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["data"]["position"], 1);

    // Reopened, it works again; closed again with purge=now, nothing of it is left.
    let (s, v) = app
        .admin(Method::POST, &format!("/tenants/{t}/restore"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["closed"], Value::Null);
    let (s, _) = app.scim(&tok, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .admin(Method::DELETE, &format!("/tenants/{t}?purge=now"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.admin(Method::GET, &format!("/tenants/{t}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let left = rows_naming(
        &database,
        rk,
        vec![
            t.clone(),
            "leaving-customer".into(),
            "leaving.example".into(),
            "LeavingSales".into(),
            "LeavingSuite".into(),
        ],
    )
    .await;
    assert!(
        left.is_empty(),
        "rows still name the purged tenant: {left:?}"
    );

    // The operator's chain says what happened; the other tenant is whole.
    let (_, audit) = app.admin(Method::GET, "/audit", None).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "tenant.close",
        "tenant.export",
        "tenant.reopen",
        "tenant.purge",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let (s, list) = app.scim(&keep_tok, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["totalResults"], 1);
    let (s, _) = app
        .admin(Method::GET, &format!("/tenants/{keep}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}
