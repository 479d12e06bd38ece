//! Reservations and ceilings per selected group over HTTP (issue 18, part 1): a reserve keeps
//! seats for its group while others wait, a ceiling caps a group, a member of two selected
//! groups counts against the first, the preview shows what changing them would do, bad limits
//! are answered 400, and the license, seat views, tenant status and `/metrics` show each
//! group's use against its reserve and ceiling. On SQLite and (through `pg_api`) PostgreSQL.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Names of the users in one of a listing's lists.
fn names(v: &Value, key: &str) -> Vec<String> {
    let mut n: Vec<String> = v[key]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n
}

/// (in use, waiting) of the license's selected group `name`.
fn group_use(l: &Value, name: &str) -> (i64, i64) {
    let g = l["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["groupName"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {l}"));
    (g["inUse"].as_i64().unwrap(), g["waiting"].as_i64().unwrap())
}

async fn users(s: &Scenario, prefix: &str, n: usize) -> Vec<String> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(s.user(&format!("{prefix}{i:02}@contoso.com")).await);
    }
    v
}

#[tokio::test]
async fn a_reserve_keeps_seats_for_its_group_and_a_ceiling_caps_another() {
    let s = Scenario::new("pools").await;
    let (st, l) = s
        .admin(
            Method::POST,
            "/licenses",
            Some(
                json!({"name": "cad", "seats": 10, "grace_seconds": 0, "groups": [
                    {"displayName": "Engineering", "reserve": 4},
                    {"displayName": "Sales", "max": 8},
                ]}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    // The provider syncs Sales first: 10 people, but 4 seats are kept for Engineering (whose
    // group has not even arrived), so Sales gets 6 and 4 wait.
    let sales_people = users(&s, "sales", 10).await;
    let sales = s.group("Sales", &sales_people).await;
    let (_, l) = s.admin(Method::GET, "/licenses/cad", None).await;
    assert_eq!(
        (l["granted"].as_i64(), l["blocked"].as_i64()),
        (Some(6), Some(4)),
        "{l}"
    );
    assert_eq!(group_use(&l, "Sales"), (6, 4));
    let eng_sel = &l["groups"][0];
    assert_eq!(
        (
            eng_sel["displayName"].as_str(),
            eng_sel["reserve"].as_i64(),
            eng_sel["pending"].as_bool()
        ),
        (Some("Engineering"), Some(4), Some(true)),
        "the selectors keep their order and limits: {l}"
    );
    assert_eq!(l["groups"][1]["max"], 8);
    // Engineering arrives with 2 people (one of them also in Sales: the first selected group
    // containing a user is the one the user counts against): both get seats at once.
    let eng_people = users(&s, "eng", 1).await;
    let both = sales_people[9].clone();
    let eng = s
        .group("Engineering", &[eng_people[0].clone(), both.clone()])
        .await;
    let (_, l) = s.admin(Method::GET, "/licenses/cad", None).await;
    assert_eq!(group_use(&l, "Engineering"), (2, 0), "{l}");
    assert_eq!(group_use(&l, "Sales"), (6, 3), "{l}");
    // Every seat says which group it counts against.
    let (_, seats) = s.admin(Method::GET, "/licenses/cad/seats", None).await;
    let of = |id: &str| {
        seats["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["userId"] == id)
            .unwrap()["groupName"]
            .clone()
    };
    assert_eq!(of(&both), "Engineering", "{seats}");
    assert_eq!(of(&sales_people[0]), "Sales");
    let (_, check) = s
        .admin(Method::GET, "/licenses/cad/seats/sales08@contoso.com", None)
        .await;
    assert_eq!(
        (check["state"].as_str(), check["groupName"].as_str()),
        (Some("blocked"), Some("Sales")),
        "{check}"
    );
    // 8 in use: 2 seats are free, but both are Engineering's (its reserve is 4, 2 in use).
    // Preview lifting the reserve: the first 2 waiting Sales people would be promoted, up to
    // Sales' ceiling of 8.
    let unreserved = json!([{"displayName": "Engineering"}, {"displayName": "Sales", "max": 8}]);
    let (st, p) = s
        .admin(
            Method::POST,
            "/licenses/cad/preview",
            Some(json!({"groups": unreserved})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(
        names(&p, "promoted"),
        ["sales06@contoso.com", "sales07@contoso.com"],
        "{p}"
    );
    let after: Vec<(String, i64, i64)> = p["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["groupName"].as_str().unwrap().to_owned(),
                g["inUse"].as_i64().unwrap(),
                g["waiting"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        after,
        [("Engineering".to_owned(), 2, 0), ("Sales".to_owned(), 8, 1)],
        "{p}"
    );
    // The preview changed nothing; the change itself does what it said.
    let (_, l) = s.admin(Method::GET, "/licenses/cad", None).await;
    assert_eq!(group_use(&l, "Sales"), (6, 3));
    let (st, l) = s
        .admin(
            Method::PATCH,
            "/licenses/cad",
            Some(json!({"groups": unreserved})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    assert_eq!(group_use(&l, "Sales"), (8, 1), "{l}");
    // The audit log says whose limits changed, from what to what.
    let (_, log) = s
        .admin(Method::GET, "/audit?action=license.update", None)
        .await;
    let changed = &log["entries"][0]["detail"]["changed"]["limits"];
    assert_eq!(
        changed,
        &json!([{"group": "Engineering", "reserve": [4, 0], "max": [null, null]}]),
        "{log}"
    );
    // Sales is at its ceiling: a free seat goes to nobody of Sales, even by hand.
    s.members(&eng, "remove", &[eng_people[0].clone()]).await;
    let (_, l) = s.admin(Method::GET, "/licenses/cad", None).await;
    assert_eq!(
        (l["granted"].as_i64(), l["blocked"].as_i64()),
        (Some(9), Some(1)),
        "{l}"
    );
    let (st, e) = s
        .admin(
            Method::POST,
            "/licenses/cad/seats/sales08@contoso.com/grant",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    assert!(e["message"].as_str().unwrap().contains("ceiling"), "{e}");
    // Raising the ceiling serves the waiting one.
    let (st, l) = s
        .admin(
            Method::PATCH,
            "/licenses/cad",
            Some(json!({"groups": [{"displayName": "Engineering"}, {"displayName": "Sales", "max": 9}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    assert_eq!(group_use(&l, "Sales"), (9, 0), "{l}");
    // The tenant's status and the metrics show each group against its limits.
    let (_, status) = s.admin(Method::GET, "/status", None).await;
    let lic = &status["group_limits"][0];
    assert_eq!(lic["name"], "cad", "{status}");
    assert_eq!(lic["groups"][1]["inUse"], 9, "{status}");
    let metrics = s.app.metrics().await;
    assert!(
        metrics.contains(
            "seatkeeper_license_group_in_use{tenant=\"pools\",license=\"cad\",group=\"Sales\"} 9"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "seatkeeper_license_group_max{tenant=\"pools\",license=\"cad\",group=\"Sales\"} 9"
        ),
        "{metrics}"
    );
    assert!(!metrics.contains(
        "seatkeeper_license_group_max{tenant=\"pools\",license=\"cad\",group=\"Engineering\"}"
    ));
    let _ = sales;
}

#[tokio::test]
async fn lowering_a_ceiling_under_block_newest_gives_back_the_newest_seats() {
    let s = Scenario::new("ceilings").await;
    let (st, l) = s
        .admin(
            Method::POST,
            "/licenses",
            Some(json!({"name": "pro", "seats": 6, "grace_seconds": 0,
                "on_capacity_lowered": "block_newest",
                "groups": [{"displayName": "Ops", "max": 5}, {"displayName": "Dev"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    let ops = users(&s, "ops", 5).await;
    let ops_group = s.group("Ops", &ops[..3]).await;
    s.members(&ops_group, "add", &ops[3..]).await;
    let dev = users(&s, "dev", 2).await;
    s.group("Dev", &dev).await;
    let (_, l) = s.admin(Method::GET, "/licenses/pro", None).await;
    assert_eq!(group_use(&l, "Ops"), (5, 0), "{l}");
    assert_eq!(group_use(&l, "Dev"), (1, 1), "{l}");
    // Ops' ceiling down to 3: its two newest seats go back to the waitlist, and the freed
    // seats go to Dev's waiting member (one seat stays free: Ops is at its ceiling).
    let (st, l) = s
        .admin(
            Method::PATCH,
            "/licenses/pro",
            Some(json!({"groups": [{"displayName": "Ops", "max": 3}, {"displayName": "Dev"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    assert_eq!(group_use(&l, "Ops"), (3, 2), "{l}");
    assert_eq!(group_use(&l, "Dev"), (2, 0), "{l}");
    let (_, seats) = s
        .admin(Method::GET, "/licenses/pro/seats?state=blocked", None)
        .await;
    let waiting: Vec<&str> = seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["userName"].as_str().unwrap())
        .collect();
    assert_eq!(
        waiting,
        ["ops03@contoso.com", "ops04@contoso.com"],
        "{seats}"
    );
    // Lifting every limit: seats no longer count against a group, and the waitlist is served.
    let (st, l) = s
        .admin(
            Method::PATCH,
            "/licenses/pro",
            Some(json!({"groups": [{"displayName": "Ops"}, {"displayName": "Dev"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    assert_eq!(
        (l["granted"].as_i64(), l["blocked"].as_i64()),
        (Some(6), Some(1)),
        "{l}"
    );
    assert!(l["groups"][0].get("inUse").is_none(), "{l}");
    let (_, seats) = s.admin(Method::GET, "/licenses/pro/seats", None).await;
    assert!(
        seats["seats"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.get("groupId").is_none()),
        "{seats}"
    );
}

#[tokio::test]
async fn bad_limits_are_answered_400() {
    let s = Scenario::new("badlimits").await;
    let create = |groups: Value, seats: i64| json!({"name": format!("l{seats}"), "seats": seats, "groups": groups});
    for (groups, seats, says) in [
        (
            json!([{"displayName": "A", "reserve": 6}, {"displayName": "B", "reserve": 5}]),
            10,
            "add up to 11",
        ),
        (
            json!([{"displayName": "A", "reserve": 3, "max": 2}]),
            10,
            "below its reserve",
        ),
        (
            json!([{"displayName": "A", "reserve": -1}]),
            10,
            "between 0",
        ),
        (json!([{"displayName": "A", "max": -1}]), 10, "between 0"),
        (json!([{"displayName": "A", "id": "x"}]), 10, "exactly one"),
        (json!([{"displayName": "A", "ceiling": 3}]), 10, "ceiling"),
        (json!([{"reserve": 3}]), 10, "exactly one"),
    ] {
        let (st, e) = s
            .admin(
                Method::POST,
                "/licenses",
                Some(create(groups.clone(), seats)),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{groups}: {e}");
        assert!(e.to_string().contains(says), "{groups}: {e}");
    }
    let (st, l) = s
        .admin(
            Method::POST,
            "/licenses",
            Some(create(json!([{"displayName": "A", "reserve": 6}]), 10)),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    // Lowering the seats below the reserves is refused, and so is its preview.
    let (st, e) = s
        .admin(Method::PATCH, "/licenses/l10", Some(json!({"seats": 5})))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let (st, e) = s
        .admin(
            Method::POST,
            "/licenses/l10/preview",
            Some(json!({"seats": 5})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let (_, l) = s.admin(Method::GET, "/licenses/l10", None).await;
    assert_eq!(
        (l["seats"].as_i64(), l["groups"][0]["reserve"].as_i64()),
        (Some(10), Some(6))
    );
}
