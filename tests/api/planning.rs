//! Capacity planning over HTTP (issue 18, parts 2 and 3): an agreed overage granted, marked
//! and emailed once per crossing, the true-up figures of a simulated month (JSON and CSV), and
//! the run-out forecast of a license whose demand grows day by day, emailed once. The manual
//! clock starts on 2026-01-01 00:00 UTC.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const DAY: i64 = 86_400;

async fn license(s: &Scenario, body: Value) {
    let (st, l) = s.admin(Method::POST, "/licenses", Some(body)).await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
}

async fn counts(s: &Scenario) -> (i64, i64) {
    let (_, l) = s.admin(Method::GET, "/licenses/pro", None).await;
    (
        l["granted"].as_i64().unwrap(),
        l["blocked"].as_i64().unwrap(),
    )
}

/// The tenant's notifications of `kind`, after the sender has closed what is due.
async fn notified(s: &Scenario, kind: &str) -> usize {
    s.clock.advance_secs(301);
    s.app.sender_pass().await;
    let (_, o) = s.admin(Method::GET, "/notifications", None).await;
    o["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == kind)
        .count()
}

#[tokio::test]
async fn an_agreed_overage_is_granted_marked_emailed_and_billed_at_the_true_up() {
    let s = Scenario::new("planning").await;
    license(
        &s,
        json!({"name": "pro", "seats": 10, "overage": 2, "grace_seconds": 0, "groups": [{"displayName": "Team"}]}),
    )
    .await;
    let (_, l) = s.admin(Method::GET, "/licenses/pro", None).await;
    assert_eq!(
        (l["overage"].as_i64(), l["overage_seats"].as_i64()),
        (Some(2), Some(2)),
        "{l}"
    );
    // Day 0, 10:00: thirteen people; 10 seats and 2 of overage are granted, one waits.
    s.clock.advance_secs(10 * 3600);
    let mut users = Vec::new();
    for i in 0..13 {
        users.push(s.user(&format!("member{i:02}@contoso.com")).await);
    }
    let team = s.group("Team", &users).await;
    assert_eq!(counts(&s).await, (12, 1));
    let (_, seats) = s.admin(Method::GET, "/licenses/pro/seats", None).await;
    let marked = seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["overage"] == true)
        .count();
    assert_eq!(marked, 2, "{seats}");
    assert_eq!(notified(&s, "overage").await, 1);
    // Day 5: three leave (the one waiting gets a seat): 10 in use, back within the seats.
    s.clock.advance_secs(5 * DAY);
    s.members(&team, "remove", &users[..3]).await;
    assert_eq!(counts(&s).await, (10, 0));
    // Day 20: one more joins: in overage again, told again.
    s.clock.advance_secs(15 * DAY);
    let late = s.user("late@contoso.com").await;
    s.members(&team, "add", &[late]).await;
    assert_eq!(counts(&s).await, (11, 0));
    assert_eq!(notified(&s, "overage").await, 2);
    // Day 29: the month's true-up.
    s.clock.advance_secs(9 * DAY);
    let (st, t) = s
        .admin(
            Method::GET,
            "/licenses/pro/true-up?from=2026-01-01&to=2026-01-30",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(t["license"]["name"], "pro");
    assert_eq!(
        (t["peakInUse"].as_i64(), t["peakDay"].as_str()),
        (Some(12), Some("2026-01-01")),
        "{t}"
    );
    // Over by 2 from day 0 through day 5 (the morning of day 5 still had 12), by 1 from day 20
    // through day 29: 16 days and 6 × 2 + 10 × 1 = 22 seat-days.
    assert_eq!(
        (t["daysOver"].as_i64(), t["seatDaysOver"].as_i64()),
        (Some(16), Some(22)),
        "{t}"
    );
    let days = t["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[5]["over"], 2);
    assert_eq!(days[6]["over"], 0);
    assert_eq!(days[20]["over"], 1);
    let r = s
        .app
        .client
        .get(format!(
            "{}/admin/v1/tenants/{}/licenses/pro/true-up?from=2026-01-01&to=2026-01-30&format=csv",
            s.app.address, s.tenant
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    assert!(
        csv.starts_with("day,seats,overage,peak_in_use,over\n2026-01-01,10,2,12,2\n"),
        "{csv}"
    );
    assert!(
        csv.contains("16 days over the seat count; 22 seat-days over"),
        "{csv}"
    );
    // Bad input is a 400 that says why.
    for q in [
        "from=2026-13-01",
        "from=2026-02-01&to=2026-01-01",
        "format=xml",
        "from=2020-01-01&to=2026-01-01",
    ] {
        let (st, e) = s
            .admin(Method::GET, &format!("/licenses/pro/true-up?{q}"), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {e}");
    }
    let (st, e) = s
        .admin(
            Method::PATCH,
            "/licenses/pro",
            Some(json!({"overage": 2, "overage_percent": 10})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    // Overage as a share: 10 % of 10 seats is 1 (the percentage replaces the seats given).
    let (st, l) = s
        .admin(
            Method::PATCH,
            "/licenses/pro",
            Some(json!({"overage_percent": 10})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    assert_eq!(
        (l["overage"].as_i64(), l["overage_seats"].as_i64()),
        (Some(0), Some(1)),
        "{l}"
    );
}

#[tokio::test]
async fn the_forecast_follows_growing_demand_and_emails_the_run_out_once() {
    let s = Scenario::new("forecast").await;
    license(
        &s,
        json!({"name": "pro", "seats": 30, "grace_seconds": 0, "groups": [{"displayName": "Team"}]}),
    )
    .await;
    s.clock.advance_secs(9 * 3600);
    let mut first = Vec::new();
    for i in 0..6 {
        first.push(s.user(&format!("first{i}@contoso.com")).await);
    }
    let team = s.group("Team", &first).await;
    let (_, f) = s.admin(Method::GET, "/licenses/pro/forecast", None).await;
    assert_eq!(f["run_out_at"], Value::Null, "{f}");
    // Two more people a day for seven days; the reconciler runs each day.
    for day in 1..=7 {
        s.clock.advance_secs(DAY);
        let a = s.user(&format!("day{day}a@contoso.com")).await;
        let b = s.user(&format!("day{day}b@contoso.com")).await;
        s.members(&team, "add", &[a, b]).await;
        let (st, _) = s.admin(Method::POST, "/reconcile", None).await;
        assert_eq!(st, StatusCode::OK);
    }
    let (st, f) = s.admin(Method::GET, "/licenses/pro/forecast", None).await;
    assert_eq!(st, StatusCode::OK, "{f}");
    // Demand 20 on 2026-01-08, 2 a day: 30 seats run out 5 days later.
    assert_eq!(
        (
            f["in_use"].as_i64(),
            f["capacity"].as_i64(),
            f["waiting"].as_i64()
        ),
        (Some(20), Some(30), Some(0)),
        "{f}"
    );
    assert!(
        (f["demand_per_day"].as_f64().unwrap() - 2.0).abs() < 0.01,
        "{f}"
    );
    assert_eq!(f["run_out_at"], "2026-01-13", "{f}");
    assert!(f["points"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["projected"] == true));
    // Within the tenant's 14-day horizon from the third day on: told once.
    assert_eq!(notified(&s, "run_out").await, 1);
    let (st, t) = s
        .admin(Method::PATCH, "", Some(json!({"forecast_horizon_days": 0})))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{t}");
    let (st, _) = s.admin(Method::GET, "/licenses/nope/forecast", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
