//! The circuit breaker on mass seat loss over HTTP (issue 17): a provisioning mistake upstream
//! (one PATCH empties a selected group, or many users are deactivated) takes no seats past the
//! tenant's threshold; the SCIM requests succeed and the directory stores what was sent; the
//! admin approves (the losses go through: grace, release, promotion) or rejects (the seats stay
//! until the directory entitles their users again); undone upstream, the hold dissolves. Time is
//! the manual clock.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// A tenant whose license `pro` (`seats` seats, grace 600 s) selects `Designers` (with
/// `designers` members, all granted) and `Waiting` (with `waiting` members, all blocked).
struct Setup {
    s: Scenario,
    group: String,
    designers: Vec<String>,
}

async fn setup(designers: usize, waiting: usize) -> Setup {
    let s = Scenario::new("holds").await;
    let mut ids = Vec::new();
    for i in 0..designers {
        ids.push(s.user(&format!("designer{i:03}@contoso.com")).await);
    }
    let mut waiters = Vec::new();
    for i in 0..waiting {
        waiters.push(s.user(&format!("waiter{i:02}@contoso.com")).await);
    }
    let group = s.group("Designers", &ids).await;
    let (st, l) = s
        .admin(
            Method::POST,
            "/licenses",
            Some(
                json!({"name": "pro", "seats": designers, "grace_seconds": 600,
                "groups": [{"displayName": "Designers"}, {"displayName": "Waiting"}]}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    s.group("Waiting", &waiters).await;
    let l = license(&s).await;
    assert_eq!(
        (l["granted"].as_i64(), l["blocked"].as_i64()),
        (Some(designers as i64), Some(waiting as i64)),
        "{l}"
    );
    Setup {
        s,
        group,
        designers: ids,
    }
}

async fn license(s: &Scenario) -> Value {
    let (st, l) = s.admin(Method::GET, "/licenses/pro", None).await;
    assert_eq!(st, StatusCode::OK, "{l}");
    l
}

/// (granted, releasing, blocked, held) of `pro`.
async fn counts(s: &Scenario) -> (i64, i64, i64, i64) {
    let l = license(s).await;
    let n = |k: &str| l[k].as_i64().unwrap();
    (n("granted"), n("releasing"), n("blocked"), n("held"))
}

async fn holds(s: &Scenario) -> Vec<Value> {
    let (st, h) = s.admin(Method::GET, "/holds", None).await;
    assert_eq!(st, StatusCode::OK, "{h}");
    h["holds"].as_array().unwrap().clone()
}

/// One PATCH that removes every member of the group, as Entra sends when an app's scoping
/// drops a group's members (the answer is the provider's, so it must be 2xx).
async fn empty_group(s: &Scenario, group: &str) {
    s.clock.tick();
    let (st, b) = s
        .app
        .scim(
            &s.tok,
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(patch(json!([{"op": "remove", "path": "members"}]))),
        )
        .await;
    assert!(st.is_success(), "{st} {b}");
}

async fn set_active(s: &Scenario, user: &str, active: bool) {
    s.clock.tick();
    let (st, b) = s
        .app
        .scim(
            &s.tok,
            Method::PATCH,
            &format!("/Users/{user}"),
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": active}]),
            )),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

async fn reconcile(s: &Scenario) {
    let (st, r) = s.admin(Method::POST, "/reconcile", None).await;
    assert_eq!(st, StatusCode::OK, "{r}");
}

#[tokio::test]
async fn emptying_a_selected_group_holds_the_losses_until_an_admin_approves() {
    let Setup { s, group, .. } = setup(100, 10).await;
    empty_group(&s, &group).await;

    // The directory stores what was sent: the group is empty.
    let (_, g) = s
        .app
        .scim(&s.tok, Method::GET, &format!("/Groups/{group}"), None)
        .await;
    assert!(g["members"].as_array().is_none_or(|m| m.is_empty()), "{g}");
    // 20 % of 100 granted seats go the normal way (the grace); the other 80 are held: still
    // granted, nothing freed, nobody promoted.
    assert_eq!(counts(&s).await, (80, 20, 10, 80));
    let hs = holds(&s).await;
    assert_eq!(hs.len(), 1, "{hs:?}");
    let h = &hs[0];
    assert_eq!(
        (h["state"].as_str(), h["held"].as_i64(), h["total"].as_i64()),
        (Some("open"), Some(80), Some(80)),
        "{h}"
    );
    assert_eq!(
        h["changes"],
        json!([{"change": "removed from the group Designers", "kind": "removed:Designers", "count": 80}])
    );
    let id = h["id"].as_i64().unwrap();
    let (_, one) = s.admin(Method::GET, &format!("/holds/{id}"), None).await;
    assert_eq!(one["users"].as_array().unwrap().len(), 80, "{one}");
    assert_eq!(
        one["users"][0]["change"],
        "removed from the group Designers"
    );
    // The whole story: the 20 released in the same window before the breaker tripped.
    let before = one["releasedBefore"].as_array().unwrap();
    assert_eq!(before.len(), 20, "{one}");
    assert!(
        before[0]["change"]
            .as_str()
            .unwrap()
            .contains("before the breaker tripped"),
        "{one}"
    );
    let (_, audit) = s.admin(Method::GET, "/audit?limit=100", None).await;
    let opened = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "hold.open")
        .unwrap()
        .clone();
    assert_eq!(opened["detail"]["released"], 20, "{opened}");
    // The seat views mark the held seats.
    let (_, seats) = s.admin(Method::GET, "/licenses/pro/seats", None).await;
    let marked = seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["hold"] == json!(id))
        .count();
    assert_eq!(marked, 80);
    // Status, metrics and the seat-event feed show it.
    let (_, status) = s.admin(Method::GET, "/status", None).await;
    assert_eq!(
        (status["open_holds"].as_i64(), status["held_seats"].as_i64()),
        (Some(1), Some(80)),
        "{status}"
    );
    let metrics = s.app.metrics().await;
    assert!(
        metrics.contains("seatkeeper_license_held{tenant=\"holds\",license=\"pro\"} 80"),
        "{metrics}"
    );
    let (_, feed) = s.admin(Method::GET, "/seat-events?limit=10000", None).await;
    let held_events = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "held")
        .count();
    assert_eq!(held_events, 80, "{feed}");
    // The reconciler leaves held seats alone.
    reconcile(&s).await;
    assert_eq!(counts(&s).await, (80, 20, 10, 80));

    // One email, naming the license, the count and the cause.
    let (_, outbox) = s.admin(Method::GET, "/notifications", None).await;
    let held: Vec<&Value> = outbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "seats_held")
        .collect();
    assert_eq!(held.len(), 1, "{outbox}");
    s.clock.advance_secs(301);
    s.app.sender_pass().await;
    let mails: Vec<String> = std::fs::read_dir(s.app.mail_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("-seats_held.eml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(mails.len(), 1);
    let mail = mails[0].replace("=\r\n", "").replace("=\n", "");
    assert!(
        mail.contains("80 seat losses held for your decision"),
        "{mail}"
    );
    assert!(mail.contains("removed from the group Designers"), "{mail}");
    assert!(
        mail.contains(
            "Just before the breaker tripped, the same changes took the seat of 20 people"
        ),
        "{mail}"
    );
    assert!(
        mail.contains("page =E2=80=BA Holds") || mail.contains("page › Holds"),
        "{mail}"
    );

    // Approved: the held losses go the normal way: the grace, then release and promotion.
    let (st, a) = s
        .admin(Method::POST, &format!("/holds/{id}/approve"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!(
        (a["state"].as_str(), a["held"].as_i64()),
        (Some("approved"), Some(0)),
        "{a}"
    );
    assert!(
        a["decidedBy"].as_str().unwrap().starts_with("operator"),
        "{a}"
    );
    assert_eq!(counts(&s).await, (0, 100, 10, 0));
    let (st, again) = s
        .admin(Method::POST, &format!("/holds/{id}/reject"), None)
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{again}");
    s.clock.advance_secs(601);
    reconcile(&s).await;
    assert_eq!(counts(&s).await, (10, 0, 0, 0));
    // The audit log has the hold and the decision.
    let (_, audit) = s.admin(Method::GET, "/audit?action=hold.", None).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"hold.open") && actions.contains(&"hold.approve"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_rejected_hold_keeps_the_seats_until_the_directory_entitles_them_again() {
    let Setup { s, designers, .. } = setup(20, 2).await;
    // Twelve deactivations, one request each: 9 go through (fewer than hold_min_seats 10 are
    // never held), the other 3 are held.
    for u in &designers[..12] {
        set_active(&s, u, false).await;
    }
    assert_eq!(counts(&s).await, (11, 9, 2, 3));
    let hs = holds(&s).await;
    let id = hs[0]["id"].as_i64().unwrap();
    assert_eq!(
        hs[0]["changes"][0]["change"],
        "deactivated in the directory"
    );
    let (st, r) = s
        .admin(Method::POST, &format!("/holds/{id}/reject"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["state"], "rejected");
    // After the grace the nine free their seats and the two waiting get two of them; the held
    // three keep theirs (the reconciler never releases them).
    s.clock.advance_secs(601);
    reconcile(&s).await;
    assert_eq!(counts(&s).await, (13, 0, 0, 3));
    // One of them is active again: no longer held.
    set_active(&s, &designers[11], true).await;
    assert_eq!(counts(&s).await, (13, 0, 0, 2));
    // An admin releases the rest by approving the rejected hold.
    let (st, a) = s
        .admin(Method::POST, &format!("/holds/{id}/approve"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!(counts(&s).await, (11, 2, 0, 0));
}

#[tokio::test]
async fn undone_upstream_the_hold_dissolves_by_itself_and_admin_changes_are_never_held() {
    let Setup {
        s,
        group,
        designers,
    } = setup(20, 0).await;
    empty_group(&s, &group).await;
    assert_eq!(counts(&s).await, (11, 9, 0, 11));
    // The mistake is undone: every member back in one PATCH.
    s.members(&group, "add", &designers).await;
    assert_eq!(counts(&s).await, (20, 0, 0, 0));
    let hs = holds(&s).await;
    assert_eq!(hs[0]["state"], "dissolved", "{hs:?}");
    assert_eq!(hs[0]["decidedBy"], "directory");
    let (st, _) = s
        .admin(
            Method::POST,
            &format!("/holds/{}/approve", hs[0]["id"]),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    // The admin unselects the group: every seat goes into its grace, none is held.
    let (st, l) = s
        .admin(
            Method::PATCH,
            "/licenses/pro",
            Some(json!({"groups": [{"displayName": "Waiting"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    assert_eq!(counts(&s).await, (0, 20, 0, 0));
    assert_eq!(holds(&s).await.len(), 1);
    // Bad input: an unknown hold, a bad state filter.
    let (st, _) = s.admin(Method::GET, "/holds/999999", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s.admin(Method::POST, "/holds/x/approve", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s.admin(Method::GET, "/holds?state=maybe", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // The settings are checked.
    let (st, _) = s
        .admin(
            Method::PATCH,
            "",
            Some(json!({"hold_threshold_percent": 101})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, t) = s
        .admin(Method::PATCH, "", Some(json!({"hold_threshold_percent": 100, "hold_min_seats": 5, "hold_window_seconds": 600})))
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(
        (
            t["hold_threshold_percent"].as_i64(),
            t["hold_min_seats"].as_i64()
        ),
        (Some(100), Some(5))
    );
}
