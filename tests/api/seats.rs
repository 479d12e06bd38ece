//! The allocation rules of SPEC, one scenario each, over HTTP against the real daemon. Time is a
//! manual clock: grace periods and pending windows pass without sleeping.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// The shared [`Scenario`] and the checks these scenarios add to it: after each read of a
/// license's seats, the invariant (granted + releasing <= seats), exempting only a license
/// whose count was lowered below its use, and then only up to the use it had at that moment,
/// until its use is down to its count again.
struct Fixture(
    Scenario,
    std::sync::Mutex<std::collections::HashMap<String, i64>>,
);

impl std::ops::Deref for Fixture {
    type Target = Scenario;
    fn deref(&self) -> &Scenario {
        &self.0
    }
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture(Scenario::new("seats").await, Default::default())
    }

    async fn license(&self, body: Value) -> Value {
        let (s, l) = self.admin(Method::POST, "/licenses", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
        l
    }

    async fn seats(&self, license: &str) -> Value {
        let (s, v) = self
            .admin(Method::GET, &format!("/licenses/{license}/seats"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, l) = self
            .admin(Method::GET, &format!("/licenses/{license}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{l}");
        let lowered = self.1.lock().unwrap().get(license).copied();
        let in_use = assert_invariant(&v, &l, lowered);
        if in_use <= v["capacity"].as_i64().unwrap() {
            self.1.lock().unwrap().remove(license);
        }
        v
    }

    async fn state(&self, license: &str, user_name: &str) -> (String, Option<i64>) {
        let (s, v) = self
            .admin(
                Method::GET,
                &format!("/licenses/{license}/seats/{user_name}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        (
            v["state"].as_str().unwrap().to_owned(),
            v["position"].as_i64(),
        )
    }

    async fn set(&self, license: &str, change: Value) -> Value {
        if let Some(seats) = change["seats"].as_i64() {
            let (_, l) = self
                .admin(Method::GET, &format!("/licenses/{license}"), None)
                .await;
            let in_use = l["granted"].as_i64().unwrap() + l["releasing"].as_i64().unwrap();
            if seats < in_use {
                self.1.lock().unwrap().insert(license.to_owned(), in_use);
            }
        }
        self.clock.tick();
        let (s, v) = self
            .admin(Method::PATCH, &format!("/licenses/{license}"), Some(change))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    async fn reconcile(&self) -> Value {
        let (s, r) = self.admin(Method::POST, "/reconcile", None).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        r
    }
}

/// granted + releasing never exceeds capacity unless a `keep` lowering left use above it.
/// The seat list agrees with the counters; seats in use never exceed the seat count, except
/// under `keep` after the count was lowered below use (nobody loses a seat then); the waitlist
/// is numbered 1, 2, ... in its order.
/// Checks the seat list against its counts and the invariant; `lowered`: the use the license
/// had when its count was lowered below it (the only exemption). Answers the seats in use.
fn assert_invariant(v: &Value, license: &Value, lowered: Option<i64>) -> i64 {
    let list = v["seats"].as_array().unwrap();
    let count = |st: &str| list.iter().filter(|s| s["state"] == st).count() as i64;
    assert_eq!(count("granted"), v["granted"].as_i64().unwrap(), "{v}");
    assert_eq!(count("blocked"), v["blocked"].as_i64().unwrap(), "{v}");
    assert_eq!(count("releasing"), v["releasing"].as_i64().unwrap(), "{v}");
    let in_use = count("granted") + count("releasing");
    let capacity = v["capacity"].as_i64().unwrap();
    let exempt = license["on_capacity_lowered"] == "keep" && lowered.is_some_and(|u| in_use <= u);
    assert!(
        in_use <= capacity || exempt,
        "{in_use} seats in use of {capacity} under {} (lowered with {lowered:?} in use): {v}",
        license["on_capacity_lowered"]
    );
    let positions: Vec<i64> = list
        .iter()
        .filter(|s| s["state"] == "blocked")
        .map(|s| s["position"].as_i64().unwrap())
        .collect();
    assert_eq!(
        positions,
        (1..=positions.len() as i64).collect::<Vec<_>>(),
        "{v}"
    );
    in_use
}

fn holders(v: &Value, state: &str) -> Vec<String> {
    v["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == state)
        .map(|s| s["userName"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn fair_order_waitlist_and_promotion() {
    let f = Fixture::new().await;
    let g = f.group("Sales", &[] as &[&str]).await;
    f.license(json!({"name": "pro", "seats": 2, "grace_seconds": 0, "groups": [{"displayName": "Sales"}]}))
        .await;
    let mut ids = Vec::new();
    for n in ["u1", "u2", "u3", "u4"] {
        let u = f.user(n).await;
        f.members(&g, "add", &[&u]).await;
        ids.push(u);
    }
    let s = f.seats("pro").await;
    assert_eq!(
        holders(&s, "granted"),
        ["u1", "u2"],
        "first come, first served"
    );
    assert_eq!(
        holders(&s, "blocked"),
        ["u3", "u4"],
        "the waitlist keeps the order of entitlement"
    );
    assert_eq!(f.state("pro", "u3").await, ("blocked".into(), Some(1)));
    assert_eq!(f.state("pro", "u4").await, ("blocked".into(), Some(2)));

    // A seat frees up: the head of the waitlist gets it.
    f.members(&g, "remove", &[&ids[0]]).await;
    assert_eq!(f.state("pro", "u1").await.0, "none");
    assert_eq!(f.state("pro", "u3").await.0, "granted");
    assert_eq!(f.state("pro", "u4").await, ("blocked".into(), Some(1)));

    let (_, feed) = f.admin(Method::GET, "/seat-events", None).await;
    let kinds: Vec<(String, String)> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["userName"].as_str().unwrap().into(),
                e["event"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(kinds.contains(&("u3".into(), "promoted".into())), "{feed}");
    assert!(kinds.contains(&("u1".into(), "released".into())));
    let cursor = feed["next"].as_i64().unwrap();
    let (_, rest) = f
        .admin(Method::GET, &format!("/seat-events?after={cursor}"), None)
        .await;
    assert_eq!(
        rest["events"].as_array().unwrap().len(),
        0,
        "the cursor resumes after the last event"
    );

    // The incremental path leaves nothing for a recomputation to repair.
    let r = f.reconcile().await;
    assert_eq!(r["repaired"], 0, "{r}");
}

#[tokio::test]
async fn one_seat_per_user_however_many_selected_groups_and_nested_groups_count() {
    let f = Fixture::new().await;
    let a = f.user("a").await;
    let b = f.user("b").await;
    let inner = f.group("Inner", &[&b]).await;
    f.group("G1", &[&a]).await;
    f.group("G2", &[&a, &inner]).await;
    f.license(json!({"name": "pro", "seats": 5, "groups": [{"displayName": "G1"}, {"displayName": "G2"}]})).await;
    let s = f.seats("pro").await;
    assert_eq!(s["granted"], 2, "{s}");
    assert_eq!(
        holders(&s, "granted").iter().filter(|n| *n == "a").count(),
        1
    );
    assert_eq!(
        f.state("pro", "b").await.0,
        "granted",
        "members of a nested group count"
    );
}

#[tokio::test]
async fn pin_exclude_and_manual_grant() {
    let f = Fixture::new().await;
    let mut ids = Vec::new();
    for n in ["p1", "p2", "p3", "p4"] {
        ids.push(f.user(n).await);
    }
    let g = f.group("All", &[] as &[&str]).await;
    f.license(json!({"name": "pro", "seats": 2, "grace_seconds": 0, "groups": [{"id": g}]}))
        .await;
    for u in &ids {
        f.members(&g, "add", &[u]).await;
    }
    assert_eq!(holders(&f.seats("pro").await, "granted"), ["p1", "p2"]);

    // Pin p4: it goes to the head of the waitlist, evicting no one.
    let (s, v) = f
        .admin(
            Method::PUT,
            "/licenses/pro/overrides/p4",
            Some(json!({"kind": "pin"})),
        )
        .await;
    assert_eq!(
        (s, v["state"].as_str(), v["position"].as_i64()),
        (StatusCode::OK, Some("blocked"), Some(1)),
        "{v}"
    );
    // Exclude p2: its seat is freed at once and goes to the pinned p4.
    let (s, v) = f
        .admin(
            Method::PUT,
            "/licenses/pro/overrides/p2",
            Some(json!({"kind": "exclude"})),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("none")));
    assert_eq!(f.state("pro", "p4").await.0, "granted");
    assert_eq!(f.state("pro", "p3").await, ("blocked".into(), Some(1)));
    let (s, _) = f
        .admin(Method::DELETE, "/licenses/pro/overrides/p2", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        f.state("pro", "p2").await,
        ("blocked".into(), Some(2)),
        "back in line, behind p3"
    );

    // Manual grant: refused while no seat is free; allowed out of order once one is.
    let (s, e) = f
        .admin(Method::POST, "/licenses/pro/seats/p2/grant", None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    f.set("pro", json!({"auto_promote": false})).await;
    f.members(&g, "remove", &[&ids[0]]).await;
    assert_eq!(
        f.state("pro", "p3").await.0,
        "blocked",
        "auto_promote off: no promotion"
    );
    let (s, v) = f
        .admin(Method::POST, "/licenses/pro/seats/p2/grant", None)
        .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("granted")),
        "{v}"
    );
    let (s, _) = f
        .admin(
            Method::PUT,
            "/licenses/pro/overrides/nobody",
            Some(json!({"kind": "pin"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = f
        .admin(
            Method::PUT,
            "/licenses/pro/overrides/p1",
            Some(json!({"kind": "vip"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn capacity_up_promotes_and_down_keeps_by_default() {
    let f = Fixture::new().await;
    let mut ids = Vec::new();
    for n in ["c1", "c2", "c3", "c4", "c5"] {
        ids.push(f.user(n).await);
    }
    let g = f.group("G", &[] as &[&str]).await;
    f.license(
        json!({"name": "pro", "seats": 2, "grace_seconds": 0, "groups": [{"displayName": "g"}]}),
    )
    .await;
    for u in &ids {
        f.members(&g, "add", &[u]).await;
    }
    let l = f.set("pro", json!({"seats": 4})).await;
    assert_eq!(
        (l["granted"].as_i64(), l["blocked"].as_i64()),
        (Some(4), Some(1))
    );
    assert_eq!(
        holders(&f.seats("pro").await, "granted"),
        ["c1", "c2", "c3", "c4"]
    );

    // Preview a lower count: nothing changes under `keep`.
    let (_, p) = f
        .admin(
            Method::POST,
            "/licenses/pro/preview",
            Some(json!({"seats": 1})),
        )
        .await;
    assert_eq!(p["blocked"], json!([]), "{p}");
    let l = f.set("pro", json!({"seats": 1})).await;
    assert_eq!(l["granted"], 4, "keep: no one loses a seat");
    // Above capacity: a freed seat is not handed on.
    f.members(&g, "remove", &[&ids[0]]).await;
    let s = f.seats("pro").await;
    assert_eq!(
        (s["granted"].as_i64(), s["blocked"].as_i64()),
        (Some(3), Some(1))
    );
    // Back under capacity: promotion resumes.
    f.set("pro", json!({"seats": 4})).await;
    assert_eq!(f.state("pro", "c5").await.0, "granted");
}

/// Switching an over-capacity license from `keep` to `block_newest` is previewed and takes
/// effect in the change itself, not at the next reconciler pass.
#[tokio::test]
async fn a_switch_to_block_newest_takes_effect_at_once_as_previewed() {
    let f = Fixture::new().await;
    let mut ids = Vec::new();
    for n in ["k1", "k2", "k3"] {
        ids.push(f.user(n).await);
    }
    let g = f.group("G", &[] as &[&str]).await;
    f.license(json!({"name": "pro", "seats": 3, "groups": [{"id": g}]}))
        .await;
    for u in &ids {
        f.members(&g, "add", &[u]).await;
    }
    f.set("pro", json!({"seats": 1})).await;
    assert_eq!(
        f.seats("pro").await["granted"],
        3,
        "keep: no one loses a seat"
    );
    let (s, p) = f
        .admin(
            Method::POST,
            "/licenses/pro/preview",
            Some(json!({"on_capacity_lowered": "block_newest"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let mut would: Vec<String> = p["blocked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    would.sort();
    assert_eq!(would, ["k2", "k3"], "{p}");
    f.set("pro", json!({"on_capacity_lowered": "block_newest"}))
        .await;
    let s = f.seats("pro").await;
    assert_eq!(
        holders(&s, "granted"),
        ["k1"],
        "at once, not at the next reconcile"
    );
    assert_eq!(holders(&s, "blocked"), ["k2", "k3"]);
}

#[tokio::test]
async fn capacity_down_with_block_newest() {
    let f = Fixture::new().await;
    let mut ids = Vec::new();
    for n in ["n1", "n2", "n3", "n4"] {
        ids.push(f.user(n).await);
    }
    let g = f.group("G", &[] as &[&str]).await;
    f.license(json!({"name": "pro", "seats": 4, "groups": [{"id": g}], "on_capacity_lowered": "block_newest"})).await;
    for u in &ids {
        f.members(&g, "add", &[u]).await;
    }
    let (_, p) = f
        .admin(
            Method::POST,
            "/licenses/pro/preview",
            Some(json!({"seats": 2})),
        )
        .await;
    let mut would = p["blocked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    would.sort();
    assert_eq!(would, ["n3", "n4"], "{p}");
    assert_eq!(
        f.seats("pro").await["granted"],
        4,
        "a preview changes nothing"
    );
    f.set("pro", json!({"seats": 2})).await;
    let s = f.seats("pro").await;
    assert_eq!(holders(&s, "granted"), ["n1", "n2"]);
    assert_eq!(
        holders(&s, "blocked"),
        ["n3", "n4"],
        "the most recently granted go back, first in line"
    );
}

#[tokio::test]
async fn a_group_move_inside_the_grace_keeps_the_seat() {
    let f = Fixture::new().await;
    let mover = f.user("mover").await;
    let waiting = f.user("waiting").await;
    let g1 = f.group("Team A", &[&mover]).await;
    let g2 = f.group("Team B", &[] as &[&str]).await;
    f.license(json!({"name": "pro", "seats": 1, "grace_seconds": 3600, "groups": [{"displayName": "Team A"}, {"displayName": "Team B"}]})).await;
    f.members(&g1, "add", &[&waiting]).await;
    assert_eq!(f.state("pro", "waiting").await.0, "blocked");

    // Entra sends the move as a removal now...
    f.members(&g1, "remove", &[&mover]).await;
    let (s, v) = f
        .admin(Method::GET, "/licenses/pro/seats/mover", None)
        .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("releasing"))
    );
    assert!(v["releaseAt"].is_string());
    assert_eq!(
        f.state("pro", "waiting").await.0,
        "blocked",
        "the seat is not handed on during the grace"
    );
    // ...and the add 40 minutes later.
    f.clock.advance_secs(40 * 60);
    f.members(&g2, "add", &[&mover]).await;
    assert_eq!(f.state("pro", "mover").await.0, "granted");
    assert_eq!(f.state("pro", "waiting").await.0, "blocked");

    // A removal that is not followed by a re-add: the seat is freed when the grace runs out.
    f.members(&g2, "remove", &[&mover]).await;
    f.clock.advance_secs(3599);
    f.reconcile().await;
    assert_eq!(f.state("pro", "mover").await.0, "releasing");
    f.clock.advance_secs(2);
    let r = f.reconcile().await;
    assert_eq!(
        (r["released"].as_i64(), r["promoted"].as_i64()),
        (Some(1), Some(1)),
        "{r}"
    );
    assert_eq!(f.state("pro", "mover").await.0, "none");
    assert_eq!(f.state("pro", "waiting").await.0, "granted");
}

#[tokio::test]
async fn deactivation_deletion_and_unselection() {
    let f = Fixture::new().await;
    let d1 = f.user("d1").await;
    let d2 = f.user("d2").await;
    let d3 = f.user("d3").await;
    let g = f.group("G", &[&d1, &d2, &d3]).await;
    f.license(json!({"name": "pro", "seats": 3, "grace_seconds": 600, "groups": [{"id": g}]}))
        .await;
    assert_eq!(f.seats("pro").await["granted"], 3);

    // Deactivation (Entra's soft delete) releases after the grace.
    let (s, _) = f
        .app
        .scim(
            &f.tok,
            Method::PATCH,
            &format!("/Users/{d1}"),
            Some(patch(
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f.state("pro", "d1").await.0, "releasing");
    // Re-activation inside the grace keeps the seat.
    f.app
        .scim(
            &f.tok,
            Method::PATCH,
            &format!("/Users/{d1}"),
            Some(patch(json!([{"op": "replace", "value": {"active": true}}]))),
        )
        .await;
    assert_eq!(f.state("pro", "d1").await.0, "granted");

    // Deletion at the provider frees the seat at once (free_on_delete, the default).
    let (s, _) = f
        .app
        .scim(&f.tok, Method::DELETE, &format!("/Users/{d2}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let s = f.seats("pro").await;
    assert_eq!(
        (s["granted"].as_i64(), s["releasing"].as_i64()),
        (Some(2), Some(0))
    );

    // Unselecting the group releases its members after the grace.
    f.set("pro", json!({"groups": []})).await;
    let s = f.seats("pro").await;
    assert_eq!(
        (s["granted"].as_i64(), s["releasing"].as_i64()),
        (Some(0), Some(2)),
        "{s}"
    );
    // Deleting the group a license selects: the selector goes back to pending.
    f.set("pro", json!({"groups": [{"displayName": "G"}]}))
        .await;
    assert_eq!(f.seats("pro").await["granted"], 2);
    f.app
        .scim(&f.tok, Method::DELETE, &format!("/Groups/{g}"), None)
        .await;
    let (_, l) = f.admin(Method::GET, "/licenses/pro", None).await;
    assert_eq!(l["groups"][0]["pending"], true, "{l}");
    assert_eq!(
        (l["granted"].as_i64(), l["releasing"].as_i64()),
        (Some(0), Some(2))
    );
}

#[tokio::test]
async fn memberships_and_selections_that_arrive_before_their_resources() {
    let f = Fixture::new().await;
    // The license names a group that does not exist yet.
    let l = f
        .license(json!({"name": "pro", "seats": 5, "groups": [{"externalId": "aad-group-1"}]}))
        .await;
    assert_eq!(l["groups"][0]["pending"], true);
    // A group arrives whose member names a user not provisioned yet (by externalId).
    f.clock.tick();
    let (s, g) = f
        .app
        .scim(&f.tok, Method::POST, "/Groups", Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Late", "externalId": "aad-group-1",
              "members": [{"value": "aad-user-7"}]})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let (_, status) = f.admin(Method::GET, "/status", None).await;
    assert_eq!(
        status["pending"]["selectors"],
        json!([]),
        "the selector resolved: {status}"
    );
    assert_eq!(
        status["pending"]["members"][0]["member"], "aad-user-7",
        "{status}"
    );
    // The user arrives: the pending membership resolves and the seat is granted.
    f.clock.tick();
    let (s, _) = f
        .app
        .scim(&f.tok, Method::POST, "/Users", Some(json!({"schemas": [USER_SCHEMA], "userName": "late@x.test", "externalId": "aad-user-7"})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(f.state("pro", "late@x.test").await.0, "granted");
    let (_, status) = f.admin(Method::GET, "/status", None).await;
    assert_eq!(status["pending"]["members"], json!([]));
}

/// Creates sent together (on PostgreSQL merged into one statement by the tenant's batch) are
/// answered as if sent one by one: one create per userName wins whatever its case, the others
/// are told it is taken; users a group already lists get their seats; every address is indexed.
#[tokio::test]
async fn creates_sent_together_are_answered_one_by_one() {
    let f = Fixture::new().await;
    f.license(json!({"name": "pro", "seats": 3, "groups": [{"externalId": "aad-group-1"}]}))
        .await;
    f.clock.tick();
    let members: Vec<Value> = (0..5)
        .map(|i| json!({"value": format!("aad-user-{i}")}))
        .collect();
    let (s, g) = f
        .app
        .scim(
            &f.tok,
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Early",
              "externalId": "aad-group-1", "members": members})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    f.clock.tick();
    // 40 names, 20 of them sent twice (the second time in capitals), 5 listed by the group.
    let bodies: Vec<Value> = (0..60)
        .map(|i| {
            let n = i % 40;
            let name = format!("together{n}@x.test");
            let name = if i >= 40 { name.to_uppercase() } else { name };
            let mut b = json!({"schemas": [USER_SCHEMA], "userName": name,
                "emails": [{"value": format!("mail{n}@x.test"), "primary": true}]});
            if n < 5 {
                b["externalId"] = json!(format!("aad-user-{n}"));
            }
            b
        })
        .collect();
    let answers = futures_util::future::join_all(
        bodies
            .iter()
            .map(|b| f.app.scim(&f.tok, Method::POST, "/Users", Some(b.clone()))),
    )
    .await;
    let mut won = std::collections::BTreeMap::new();
    for (i, (s, b)) in answers.iter().enumerate() {
        let n = i % 40;
        if *s == StatusCode::CREATED {
            assert!(won.insert(n, b.clone()).is_none(), "name {n} created twice");
        } else {
            assert!(i % 40 < 20, "a name sent once was refused: {b}");
            assert_scim_error(*s, b, 409, Some("uniqueness"));
        }
    }
    assert_eq!(won.len(), 40, "every name is created once");
    for (n, b) in &won {
        let (s, got) = f
            .app
            .scim(&f.tok, Method::GET, &format!("/Users/{}", id(b)), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{got}");
        assert_eq!(
            got["userName"].as_str().map(str::to_lowercase),
            Some(format!("together{n}@x.test"))
        );
        let filter = format!("/Users?filter=emails.value%20eq%20%22MAIL{n}@x.test%22");
        let (s, found) = f.app.scim(&f.tok, Method::GET, &filter, None).await;
        assert_eq!(
            (s, found["totalResults"].as_i64()),
            (StatusCode::OK, Some(1)),
            "{found}"
        );
    }
    let (s, list) = f
        .app
        .scim(&f.tok, Method::GET, "/Users?count=0", None)
        .await;
    assert_eq!(
        (s, list["totalResults"].as_i64()),
        (StatusCode::OK, Some(40)),
        "{list}"
    );
    // The five users the group listed: three seats granted, two waiting.
    let seats = f.seats("pro").await;
    assert_eq!(
        (seats["granted"].as_i64(), seats["blocked"].as_i64()),
        (Some(3), Some(2)),
        "{seats}"
    );
}

/// A seat check names its license by id or by name (any case), even a name shaped like
/// another license's id, and its user by userName in any case: every way answers the same seat.
#[tokio::test]
async fn seat_checks_find_licenses_and_users_every_way() {
    let f = Fixture::new().await;
    let alice = f.user("alice@x.test").await;
    let g = f.group("Eng", &[alice.as_str()]).await;
    let pro = f
        .license(json!({"name": "Pro", "seats": 1, "groups": [{"id": g}]}))
        .await;
    let pro_id = id(&pro);
    // A second license named with the first one's id: the id still names the first.
    let twin = f.license(json!({"name": pro_id, "seats": 1})).await;
    // A license named like a UUID that is no license's id is found by that name.
    let uuid_name = "0193a6c1-0000-4000-8000-000000000001";
    let odd = f
        .license(json!({"name": uuid_name, "seats": 1, "groups": [{"id": g}]}))
        .await;
    for (license, holds) in [
        ("Pro".to_owned(), true),
        ("pRO".to_owned(), true),
        (pro_id.clone(), true),
        (id(&twin), false),
        (uuid_name.to_owned(), true),
        (uuid_name.to_uppercase(), true),
        (id(&odd), true),
    ] {
        for user in ["alice@x.test", "ALICE@x.test"] {
            let (s, v) = f
                .admin(
                    Method::GET,
                    &format!("/licenses/{license}/seats/{user}"),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{license} {user}: {v}");
            let want = if holds { "granted" } else { "none" };
            assert_eq!(v["state"], want, "{license} {user}: {v}");
        }
    }
    let (s, v) = f
        .admin(Method::GET, "/licenses/nope/seats/alice@x.test", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = f
        .admin(
            Method::GET,
            &format!("/licenses/{pro_id}/seats/nobody@x.test"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn pending_references_expire_at_the_end_of_the_window() {
    let f = Fixture::new().await;
    let (s, _) = f
        .admin(
            Method::PATCH,
            "",
            Some(json!({"pending_window_seconds": 3600})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    f.license(json!({"name": "pro", "seats": 5, "groups": [{"displayName": "Never"}]}))
        .await;
    f.group("Real", &["ghost-user"]).await;
    f.clock.advance_secs(1800);
    let r = f.reconcile().await;
    assert_eq!(
        r["expired"]["selectors"],
        json!([]),
        "still inside the window"
    );
    f.clock.advance_secs(1801);
    let r = f.reconcile().await;
    assert_eq!(r["expired"]["selectors"][0]["displayName"], "Never", "{r}");
    assert_eq!(r["expired"]["members"][0]["member"], "ghost-user");
    let (_, status) = f.admin(Method::GET, "/status", None).await;
    assert_eq!(status["pending"], json!({"selectors": [], "members": []}));
    assert_eq!(
        status["last_reconcile"]["expired"]["selectors"][0]["displayName"],
        "Never"
    );
    let (_, audit) = f.admin(Method::GET, "/audit", None).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "reconcile"),
        "{audit}"
    );
}

#[tokio::test]
async fn silence_is_flagged_after_the_expected_cycle() {
    let f = Fixture::new().await;
    let (_, st) = f.admin(Method::GET, "/status", None).await;
    assert_eq!(st["silent"], false);
    f.app
        .scim(&f.tok, Method::GET, "/Users?count=1", None)
        .await;
    let (_, st) = f.admin(Method::GET, "/status", None).await;
    assert!(st["last_provider_call"].is_string(), "{st}");
    f.clock.advance_secs(7201);
    let (_, st) = f.admin(Method::GET, "/status", None).await;
    assert_eq!(st["silent"], true, "{st}");
    f.app
        .scim(&f.tok, Method::GET, "/Users?count=1", None)
        .await;
    let (_, st) = f.admin(Method::GET, "/status", None).await;
    assert_eq!(st["silent"], false);
}

#[tokio::test]
async fn concurrent_adds_grant_exactly_the_seat_count_in_order() {
    let f = Fixture::new().await;
    let g = f.group("Rush", &[] as &[&str]).await;
    f.license(json!({"name": "pro", "seats": 5, "groups": [{"id": g}]}))
        .await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(f.user(&format!("r{i:02}")).await);
    }
    let mut tasks = Vec::new();
    for u in ids.clone() {
        let client = f.app.client.clone();
        let url = format!("{}/scim/v2/Groups/{g}", f.app.address);
        let tok = f.tok.clone();
        let clock = f.clock.clone();
        tasks.push(tokio::spawn(async move {
            clock.tick();
            let body = patch(json!([{"op": "add", "path": "members", "value": [{"value": u}]}]));
            client
                .patch(url + "?excludedAttributes=members")
                .bearer_auth(tok)
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let s = f.seats("pro").await;
    assert_eq!(
        (s["granted"].as_i64(), s["blocked"].as_i64()),
        (Some(5), Some(35)),
        "{s}"
    );
    // Whoever became entitled first holds a seat, and the waitlist keeps the order of arrival.
    let (_, feed) = f.admin(Method::GET, "/seat-events", None).await;
    let events: Vec<(String, String)> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().into(),
                e["userName"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(events.len(), 40);
    assert!(
        events[..5].iter().all(|(e, _)| e == "granted")
            && events[5..].iter().all(|(e, _)| e == "blocked"),
        "{events:?}"
    );
    let arrival: Vec<String> = events[5..].iter().map(|(_, u)| u.clone()).collect();
    let seats = s["seats"].as_array().unwrap();
    let waitlist: Vec<String> = seats
        .iter()
        .filter(|x| x["state"] == "blocked")
        .map(|x| x["userName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(waitlist, arrival);
    let positions: Vec<i64> = seats
        .iter()
        .filter(|x| x["state"] == "blocked")
        .map(|x| x["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, (1..=35).collect::<Vec<_>>());
    assert_eq!(f.reconcile().await["repaired"], 0);
}

#[tokio::test]
async fn license_api_errors_and_listing() {
    let f = Fixture::new().await;
    for bad in [
        json!({"name": "x", "seats": -1}),
        json!({"name": "", "seats": 1}),
        json!({"name": "x", "seats": 1, "grace_seconds": 259201}),
        json!({"name": "x", "seats": 1, "on_capacity_lowered": "evict"}),
        json!({"name": "x", "seats": 1, "groups": [{"color": "red"}]}),
        json!({"name": "x", "seats": "many"}),
        json!({"name": "x"}),
    ] {
        let (s, b) = f.admin(Method::POST, "/licenses", Some(bad.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} -> {b}");
    }
    f.license(json!({"name": "pro", "seats": 1})).await;
    let (s, _) = f
        .admin(
            Method::POST,
            "/licenses",
            Some(json!({"name": "PRO", "seats": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, list) = f.admin(Method::GET, "/licenses", None).await;
    assert_eq!(list["licenses"].as_array().unwrap().len(), 1);
    let (s, _) = f.admin(Method::GET, "/licenses/nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = f
        .admin(Method::GET, "/licenses/pro/seats?state=weird", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = f
        .admin(Method::GET, "/licenses/pro/seats/nobody", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    f.user("someone").await;
    assert_eq!(f.state("pro", "someone").await.0, "none");
    let (s, _) = f
        .admin(Method::POST, "/licenses/pro/preview", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = f.admin(Method::DELETE, "/licenses/pro", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = f.admin(Method::GET, "/licenses/pro", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn selecting_a_group_grants_in_waitlist_order_however_the_work_is_sliced() {
    // Debug builds re-evaluate a selection three users at a time (release: 16,384); the result
    // must be what one pass gives: the pinned user first, then by user id, one digest of the
    // blocked.
    let f = Fixture::new().await;
    let mut users = Vec::new();
    for i in 0..10 {
        let name = format!("s{i:02}");
        users.push((f.user(&name).await, name));
    }
    users.sort();
    let ids: Vec<&str> = users.iter().map(|(id, _)| id.as_str()).collect();
    let g = f.group("Big", &ids).await;
    f.license(json!({"name": "pro", "seats": 4, "groups": []}))
        .await;
    let pinned = users.last().unwrap().1.clone();
    let (s, v) = f
        .admin(
            Method::PUT,
            &format!("/licenses/pro/overrides/{pinned}"),
            Some(json!({"kind": "pin"})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    f.set("pro", json!({"groups": [{"id": g}]})).await;

    let seats = f.seats("pro").await;
    let mut granted = holders(&seats, "granted");
    granted.sort();
    let mut want: Vec<String> = users[..3].iter().map(|(_, n)| n.clone()).collect();
    want.push(pinned);
    want.sort();
    assert_eq!(granted, want, "{seats}");
    let waiting: Vec<String> = users[3..9].iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(holders(&seats, "blocked"), waiting, "{seats}");
    for (k, name) in waiting.iter().enumerate() {
        assert_eq!(
            f.state("pro", name).await,
            ("blocked".to_owned(), Some(k as i64 + 1))
        );
    }
    let (_, outbox) = f.admin(Method::GET, "/notifications", None).await;
    let blocked: Vec<&Value> = outbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "blocked")
        .collect();
    assert_eq!(blocked.len(), 1, "{outbox}");
    assert_eq!(blocked[0]["items"], 6, "{outbox}");
}

#[tokio::test]
async fn a_user_listed_twice_and_through_a_nested_group_gets_one_place() {
    // Selecting a group reads its members without removing duplicates in SQL; a user listed by
    // id and by externalId in one group, and again through a nested group, is still one user:
    // one seat or one place in the waitlist. Debug builds slice the selection by three.
    let f = Fixture::new().await;
    let mut users = Vec::new();
    for i in 0..6 {
        let name = format!("d{i}@x.test");
        let body =
            json!({"schemas": [USER_SCHEMA], "userName": name, "externalId": format!("ext-{i}")});
        f.clock.tick();
        let (s, v) = f.app.scim(&f.tok, Method::POST, "/Users", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        users.push((id(&v), name));
    }
    let ids: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
    let inner = f.group("Inner", &[ids[0], ids[4], ids[5]]).await;
    let mut listed: Vec<String> = ids[..4].iter().map(|u| (*u).to_owned()).collect();
    listed.extend(["ext-0", "ext-1", "ext-2"].map(String::from));
    listed.push(inner.clone());
    let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
    let outer = f.group("Outer", &listed).await;
    f.license(json!({"name": "pro", "seats": 4, "groups": []}))
        .await;
    f.set("pro", json!({"groups": [{"id": outer}]})).await;

    let seats = f.seats("pro").await;
    let mut granted = holders(&seats, "granted");
    let blocked = holders(&seats, "blocked");
    assert_eq!((granted.len(), blocked.len()), (4, 2), "{seats}");
    granted.extend(blocked.iter().cloned());
    granted.sort();
    let mut names: Vec<String> = users.iter().map(|(_, n)| n.clone()).collect();
    names.sort();
    assert_eq!(granted, names, "{seats}");
    for (k, name) in blocked.iter().enumerate() {
        assert_eq!(
            f.state("pro", name).await,
            ("blocked".to_owned(), Some(k as i64 + 1))
        );
    }
}

#[tokio::test]
async fn by_default_a_group_move_keeps_the_seat_through_a_provisioning_cycle() {
    let f = Fixture::new().await;
    let a = f.user("mover").await;
    let b = f.user("waiter").await;
    let team_a = f.group("Team A", &[&a]).await;
    let team_b = f.group("Team B", &[&b]).await;
    let l = f
        .license(json!({"name": "pro", "seats": 1, "groups": [{"displayName": "Team A"}, {"displayName": "Team B"}]}))
        .await;
    assert_eq!(l["grace_seconds"], 7200, "{l}");
    assert_eq!(f.state("pro", "mover").await.0, "granted");
    // Entra moves the user: removed from Team A now, added to Team B a cycle (~40 min) later.
    f.members(&team_a, "remove", &[&a]).await;
    assert_eq!(f.state("pro", "mover").await.0, "releasing");
    assert_eq!(
        f.state("pro", "waiter").await.0,
        "blocked",
        "the seat is not handed on"
    );
    f.clock.advance_secs(40 * 60);
    f.reconcile().await;
    f.members(&team_b, "add", &[&a]).await;
    assert_eq!(
        f.state("pro", "mover").await.0,
        "granted",
        "the mover kept the seat"
    );
    assert_eq!(f.state("pro", "waiter").await.0, "blocked");
}

/// Any change the update takes, an override or a grant is previewed by making it in a
/// transaction that is rolled back: the answer names who moves (and waiting places), and
/// nothing changes — no seat, no audit entry, no notification.
#[tokio::test]
async fn policy_override_and_grant_changes_are_previewed_and_change_nothing() {
    let f = Fixture::new().await;
    let mut ids = Vec::new();
    for n in ["p1", "p2", "p3"] {
        ids.push(f.user(n).await);
    }
    let g = f.group("G", &[] as &[&str]).await;
    f.license(json!({"name": "pro", "seats": 2, "groups": [{"id": g}], "grace_seconds": 0}))
        .await;
    for u in &ids {
        f.members(&g, "add", &[u]).await;
    }
    let before = f.seats("pro").await;
    assert_eq!(holders(&before, "granted"), ["p1", "p2"]);
    let audit = || async {
        f.admin(Method::GET, "/audit?limit=10000", None).await.1["entries"]
            .as_array()
            .unwrap()
            .len()
    };
    let audited = audit().await;
    let preview = |body: Value| {
        let f = &f;
        async move {
            let (s, p) = f
                .admin(Method::POST, "/licenses/pro/preview", Some(body))
                .await;
            assert_eq!(s, StatusCode::OK, "{p}");
            p
        }
    };
    let names = |p: &Value, k: &str| -> Vec<String> {
        let mut v: Vec<String> = p[k]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    // Excluding a holder: they are released at once (no grace), the first waiting is promoted.
    let p = preview(json!({"override": {"user": "p1", "kind": "exclude"}})).await;
    assert_eq!(names(&p, "released"), ["p1"], "{p}");
    assert_eq!(names(&p, "promoted"), ["p3"], "{p}");
    // Pinning the waiting one changes no holder (pins order the waitlist).
    let p = preview(json!({"override": {"user": "p3", "kind": "pin"}})).await;
    assert!(
        names(&p, "released").is_empty() && names(&p, "promoted").is_empty(),
        "{p}"
    );
    // A grant by hand while no seat is free is refused, as the grant would be.
    let (s, e) = f
        .admin(
            Method::POST,
            "/licenses/pro/preview",
            Some(json!({"grant": {"user": "p3"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    // A seat count up with a grace change: p3 promoted; with an overage, the same.
    let p = preview(json!({"seats": 3, "grace_seconds": 600})).await;
    assert_eq!(names(&p, "promoted"), ["p3"], "{p}");
    let p = preview(json!({"overage": 1})).await;
    assert_eq!(names(&p, "promoted"), ["p3"], "{p}");
    // Lowering with block_newest and a policy change at once: who waits, with places.
    let p =
        preview(json!({"seats": 1, "on_capacity_lowered": "block_newest", "grace_seconds": 60}))
            .await;
    assert_eq!(names(&p, "blocked"), ["p2"], "{p}");
    assert_eq!(p["waiting"][0]["user"], "p2", "{p}");
    assert!(p["waiting"][0]["place"].as_i64().is_some(), "{p}");
    // Nothing changed.
    let after = f.seats("pro").await;
    assert_eq!(after["seats"], before["seats"]);
    assert_eq!(audit().await, audited, "a preview is not audited");
    let (_, l) = f.admin(Method::GET, "/licenses/pro", None).await;
    assert_eq!(
        (l["seats"].as_i64(), l["grace_seconds"].as_i64()),
        (Some(2), Some(0)),
        "{l}"
    );
    // Two kinds of change at once are refused.
    let (s, _) = f
        .admin(
            Method::POST,
            "/licenses/pro/preview",
            Some(json!({"seats": 3, "grant": {"user": "p3"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_seat_says_which_group_entitles_it_and_why_it_waits() {
    let s = Scenario::new("Reasons").await;
    let ann = s.user("ann@reasons.example").await;
    let bob = s.user("bob@reasons.example").await;
    let cyd = s.user("cyd@reasons.example").await;
    let dan = s.user("dan@reasons.example").await;
    s.group("Design", &[&ann, &bob, &cyd]).await;
    let _ = dan;
    let (st, l) = s
        .admin(
            Method::POST,
            "/licenses",
            Some(json!({"name": "Figma", "seats": 1, "groups": [{"displayName": "Design"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    let check = |user: &'static str| {
        let s = &s;
        async move {
            let (st, v) = s
                .admin(
                    Method::GET,
                    &format!("/licenses/Figma/seats/{user}?reasons=true"),
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
            v
        }
    };
    let granted = check("ann@reasons.example").await;
    assert_eq!(
        granted["reason"],
        Value::Null,
        "a seat simply held needs no reason: {granted}"
    );
    let waiting = check("cyd@reasons.example").await;
    assert_eq!(waiting["entitledBy"], "Design", "{waiting}");
    assert_eq!(
        waiting["reason"], "the only seat is in use; 1 person is ahead of cyd@reasons.example",
        "{waiting}"
    );
    // The whole list says the same when asked.
    let (_, list) = s
        .admin(Method::GET, "/licenses/Figma/seats?reasons=true", None)
        .await;
    let cyd_row = list["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["userName"] == "cyd@reasons.example")
        .unwrap()
        .clone();
    assert_eq!(
        (cyd_row["reason"].clone(), cyd_row["entitledBy"].clone()),
        (waiting["reason"].clone(), json!("Design"))
    );
    let outside = check("dan@reasons.example").await;
    assert_eq!(outside["reason"], "not in a selected group", "{outside}");
    let (st, _) = s
        .admin(
            Method::PUT,
            "/licenses/Figma/overrides/bob@reasons.example",
            Some(json!({"kind": "exclude"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let excluded = check("bob@reasons.example").await;
    assert!(
        excluded["reason"]
            .as_str()
            .unwrap()
            .starts_with("excluded by the operator on Thu 1 Jan 2026"),
        "{excluded}"
    );
    // The product's seat check says the same.
    let (_, p) = s.admin(Method::POST, "/product-tokens", None).await;
    let (st, v) = s
        .app
        .request(
            Method::GET,
            &format!(
                "/product/v1/tenants/{}/licenses/Figma/users/cyd@reasons.example?reasons=true",
                s.tenant
            ),
            Some(p["token"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let now = check("cyd@reasons.example").await;
    assert_eq!(
        now["reason"], "the only seat is in use; cyd@reasons.example is next",
        "{now}"
    );
    assert_eq!(
        (v["reason"].clone(), v["entitledBy"].clone()),
        (now["reason"].clone(), json!("Design"))
    );
    // Without asking, the sign-in check stays as lean as it was.
    let (_, lean) = s
        .admin(
            Method::GET,
            "/licenses/Figma/seats/cyd@reasons.example",
            None,
        )
        .await;
    assert_eq!(lean["reason"], Value::Null, "{lean}");
}
