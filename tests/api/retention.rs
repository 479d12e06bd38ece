//! Retention: seat events, finished webhook deliveries and sent emails older than their
//! retention are pruned by the background pass (in slices, counted in `/metrics`); what is
//! younger, and the seats themselves, stay.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::cli_support::cli;
use crate::helpers::*;

#[tokio::test]
async fn history_older_than_its_retention_is_pruned_and_the_rest_stays() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let app = TestApp::spawn_in(dir.path(), &clock, |c| {
        c.reconcile_interval_seconds = 1;
        c.seat_events_retention_days = 180;
        c.mail_retention_days = 90;
    })
    .await;
    let (t, tok) = app.tenant("history").await;
    let u = app.create_user(&tok, "ann@history.example").await;
    app.create_group(&tok, "Sales", &[&id(&u)]).await;
    app.license(&t, "Suite", 5, "Sales").await;
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/tenants/{t}/notifications/test"),
            Some(json!({})),
        )
        .await;
    assert!(s.is_success());
    app.sender_pass().await;
    let path = format!("/tenants/{t}/seat-events");
    let events = || {
        let (app, path) = (&app, path.clone());
        async move { app.admin(Method::GET, &path, None).await.1 }
    };
    assert_eq!(events().await["events"].as_array().unwrap().len(), 1);

    // 100 days on: the sent email is past its 90 days, the seat event not past its 180.
    clock.advance_secs(100 * 86_400);
    let pruned = |table: &'static str| {
        let app = &app;
        async move {
            let m = app.metrics().await;
            let line = format!("seatkeeper_pruned_rows_total{{table=\"{table}\"}} ");
            m.lines()
                .find_map(|l| l.strip_prefix(line.as_str()))
                .map(|v| v.trim().parse::<u64>().unwrap())
                .unwrap()
        }
    };
    let mut waited = 0;
    while pruned("outbox").await == 0 {
        assert!(waited < 100, "the background pass pruned the sent email");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let (_, notes) = app
        .admin(Method::GET, &format!("/tenants/{t}/notifications"), None)
        .await;
    assert!(
        !notes["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "test"),
        "the sent test email is gone: {notes}"
    );
    assert_eq!(events().await["events"].as_array().unwrap().len(), 1);

    // 200 days on: the seat event goes too; the seat itself stays.
    clock.advance_secs(100 * 86_400);
    let mut waited = 0;
    while pruned("seat_events").await == 0 {
        assert!(waited < 100, "the background pass pruned the seat event");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(events().await["events"].as_array().unwrap().len(), 0);
    let (s, seat) = app
        .admin(
            Method::GET,
            &format!("/tenants/{t}/licenses/Suite/seats/ann@history.example"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(seat["state"], "granted");
    app.stop().await;
}

/// With `audit_retention_days`, the audit log is pruned only after a whole export held it, and
/// the kept chain still verifies (its first entry links to the kept hash of the last pruned
/// one). Without an export nothing goes, however old.
#[tokio::test]
async fn audit_entries_are_pruned_only_after_an_export_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let database = database(&dir.path().join("seatkeeper.db"));
    let app = TestApp::spawn_in(dir.path(), &clock, |c| {
        c.reconcile_interval_seconds = 1;
        c.audit_retention_days = 30;
    })
    .await;
    let (t, _) = app.tenant("audited").await;
    app.license(&t, "Suite", 5, "Sales").await;
    app.admin_token(&t).await;
    let path = format!("/tenants/{t}/audit");
    let cursors = || {
        let (app, path) = (&app, path.clone());
        async move {
            let (s, page) = app
                .admin(Method::GET, &format!("{path}?limit=10000"), None)
                .await;
            assert_eq!(s, StatusCode::OK, "{page}");
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["cursor"].as_i64().unwrap())
                .collect::<std::collections::BTreeSet<i64>>()
        }
    };
    let old = cursors().await;
    assert!(
        old.len() >= 3,
        "tenant creation, the license and the token are audited"
    );

    // 40 days on, several passes: nothing pruned without an export.
    clock.advance_secs(40 * 86_400);
    app.reconciler_passes(2).await;
    assert!(
        old.is_subset(&cursors().await),
        "no export yet: the audit log is kept"
    );

    // A filtered export does not count; a whole one does.
    let (s, _) = app
        .admin(
            Method::GET,
            &format!("{path}?format=jsonl&action=license."),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.reconciler_passes(2).await;
    assert!(
        old.is_subset(&cursors().await),
        "a filtered export holds only part of the chain"
    );
    let export = app
        .client
        .get(format!("{}/admin/v1{path}?format=jsonl", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported = export.lines().count();
    assert!(exported >= old.len(), "{export}");

    // A new act after the export, then the passes: the exported entries older than 30 days
    // go; the younger ones and the act after the export stay.
    app.admin_token(&t).await;
    app.reconciler_passes(2).await;
    let kept = cursors().await;
    assert!(
        old.is_disjoint(&kept),
        "the old, exported entries are pruned: {kept:?}"
    );
    assert!(!kept.is_empty(), "the act after the export is kept");
    let metrics = app.metrics().await;
    let pruned: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("seatkeeper_pruned_rows_total{table=\"audit\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(pruned >= old.len(), "{metrics}");
    let (ok, out, err) = cli(&database, &["audit", "verify", "audited"]);
    assert!(ok, "the kept chain verifies from the pruned hash: {err}");
    assert!(out.contains("prunedThrough"), "{out}");
    app.stop().await;
}
