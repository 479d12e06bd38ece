//! The audit log over HTTP: every admin act is there with its real actor (the operator's token,
//! a tenant admin token by id) and what it changed; the operator's own acts have a log of their
//! own; pages follow a cursor, filters narrow, JSON lines export everything, and each entry
//! carries its hash in the tenant's chain.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn every_admin_act_is_audited_with_its_actor_and_pages_with_a_cursor() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("Contoso").await;
    let u = id(&app.create_user(&tok, "ann@contoso.example").await);
    app.create_group(&tok, "Sales", &[&u]).await;
    app.create_group(&tok, "Design", &[]).await;
    app.license(&t, "MindManager", 5, "Sales").await;
    let ska = app.admin_token(&t).await;
    let ska_id = ska.split('_').nth(1).unwrap().to_owned();
    // The tenant admin raises the seats and selects another group.
    let (s, _) = app
        .request(
            Method::PATCH,
            &format!("/admin/v1/tenants/{t}/licenses/MindManager"),
            Some(&ska),
            Some(json!({"seats": 7, "groups": [{"displayName": "Sales"}, {"displayName": "Design"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, w) = app
        .request(
            Method::POST,
            &format!("/admin/v1/tenants/{t}/webhooks"),
            Some(&ska),
            Some(json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    let (_, tokens) = app
        .admin(Method::GET, &format!("/tenants/{t}/tokens"), None)
        .await;
    let scim_id = tokens["tokens"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = app
        .admin(
            Method::DELETE,
            &format!("/tenants/{t}/tokens/{scim_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{t}"),
            Some(json!({"expected_sync_seconds": 3600})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.admin(Method::POST, "/product-tokens", None).await;
    assert_eq!(s, StatusCode::CREATED);

    let audit = format!("/tenants/{t}/audit");
    let (s, log) = app.admin(Method::GET, &audit, None).await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let entries = log["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "tenant.create",
        "scim_token.issue",
        "license.create",
        "admin_token.issue",
        "license.update",
        "webhook.create",
        "scim_token.revoke",
        "tenant.update",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert_eq!(actions[0], "tenant.update", "newest first: {actions:?}");
    let find = |a: &str| entries.iter().find(|e| e["action"] == a).unwrap().clone();
    let update = find("license.update");
    assert_eq!(update["actor"], format!("tenant-admin:{ska_id}"));
    assert_eq!(
        update["detail"]["changed"]["seats"],
        json!({"from": 5, "to": 7}),
        "{update}"
    );
    assert_eq!(
        update["detail"]["changed"]["groups"],
        json!({"selected": ["Design"], "unselected": []}),
        "{update}"
    );
    assert_eq!(
        find("webhook.create")["actor"],
        format!("tenant-admin:{ska_id}")
    );
    assert_eq!(find("scim_token.revoke")["actor"], "operator");
    assert_eq!(
        find("tenant.update")["detail"]["changed"]["expected_sync_seconds"],
        json!({"from": 7200, "to": 3600})
    );
    assert!(entries
        .iter()
        .all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64)));
    // Every detail the store wrote reads back as its typed act, whole (nothing the writer
    // put there is unknown to the reader), and the console words it from those fields.
    for e in entries {
        let act =
            seatkeeper::store::events::acts::Act::read(e["action"].as_str().unwrap(), &e["detail"])
                .unwrap_or_else(|| panic!("{e} does not read back as its act"));
        assert_eq!(act.detail(), e["detail"], "{e}");
    }
    let sentence = |action: &str| {
        let e = find(action);
        seatkeeper::console::sentences::sentence(
            &seatkeeper::store::AuditEntry {
                at: e["at"].as_str().unwrap().to_owned(),
                actor: e["actor"].as_str().unwrap().to_owned(),
                action: action.to_owned(),
                detail: e["detail"].clone(),
            },
            &|id| id.to_owned(),
        )
    };
    assert!(
        sentence("license.create").ends_with("created the license MindManager with 5 seats"),
        "{}",
        sentence("license.create")
    );
    assert!(
        sentence("webhook.create").ends_with("added the webhook http://127.0.0.1:9/hook"),
        "{}",
        sentence("webhook.create")
    );
    assert!(
        sentence("license.update")
            .ends_with("changed MindManager: seats from 5 to 7; selected Design"),
        "{}",
        sentence("license.update")
    );

    // Filters.
    let (_, only) = app
        .admin(Method::GET, &format!("{audit}?actor=tenant-admin:"), None)
        .await;
    let only: Vec<&Value> = only["entries"].as_array().unwrap().iter().collect();
    assert_eq!(only.len(), 2, "{only:?}");
    let (_, lic) = app
        .admin(Method::GET, &format!("{audit}?action=license."), None)
        .await;
    assert_eq!(lic["entries"].as_array().unwrap().len(), 2, "{lic}");
    let (_, none) = app
        .admin(Method::GET, &format!("{audit}?to=2000-01-01"), None)
        .await;
    assert!(none["entries"].as_array().unwrap().is_empty());
    let (s, e) = app
        .admin(Method::GET, &format!("{audit}?from=yesterday"), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

    // Pages of two follow the cursor back to the first entry, each entry once.
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let q = match before {
            Some(b) => format!("{audit}?limit=2&before={b}"),
            None => format!("{audit}?limit=2"),
        };
        let (_, page) = app.admin(Method::GET, &q, None).await;
        for e in page["entries"].as_array().unwrap() {
            seen.push(e["cursor"].as_i64().unwrap());
        }
        match page["next"].as_i64() {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    let all: Vec<i64> = entries
        .iter()
        .map(|e| e["cursor"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, all);

    // JSON lines, oldest first.
    let r = app
        .client
        .get(format!("{}/admin/v1{audit}?format=jsonl", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), all.len());
    assert_eq!(lines[0]["action"], "tenant.create");

    // The operator's own acts are in the operator's log, which a tenant admin cannot read.
    let (s, op) = app.admin(Method::GET, "/audit", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(op["entries"][0]["action"], "product_token.issue", "{op}");
    let (s, _) = app
        .request(Method::GET, "/admin/v1/audit", Some(&ska), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
