//! Shadow mode and the cut-over: 500 people hold seats today (carried over, as JSON and as CSV),
//! the directory then sends 800 entitled people in a shuffled order to a 600-seat license that
//! observes; the shadow report matches, person for person, the allocation that enforcing then
//! produces; every entitled carried-over user keeps a seat across the switch; and nothing was
//! emailed or sent to a webhook while the license observed.

use std::collections::{BTreeSet, HashMap};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::receiver::Receiver;

/// `n` users `person00000@contoso.example`, ... through SCIM Bulk; their ids in that order.
pub async fn people(s: &Scenario, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                "data": {"schemas": [USER_SCHEMA], "userName": format!("person{i:05}@contoso.example"),
                    "externalId": format!("ext-{i}"), "active": true}}))
            .collect();
        s.clock.tick();
        let (st, b) = s
            .app
            .scim(
                &s.tok,
                Method::POST,
                "/Bulk",
                Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        for op in b["Operations"].as_array().unwrap() {
            assert_eq!(op["status"], "201", "{op}");
            ids.push(
                op["location"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    ids
}

/// A deterministic shuffle (a linear congruential generator, Fisher–Yates).
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
}

/// Posts `body` as CSV to `path` under the admin API.
async fn post_csv(app: &TestApp, path: &str, body: String) -> (StatusCode, Value) {
    let r = app
        .client
        .post(format!("{}/admin/v1{path}", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .header("Content-Type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    record_route_hit("POST", r.url().path(), s);
    (s, r.json().await.unwrap_or(Value::Null))
}

/// The license's seats by user id: (state, position).
async fn seats(s: &Scenario, l: &str) -> HashMap<String, (String, Option<i64>)> {
    let (st, v) = s
        .admin(Method::GET, &format!("/licenses/{l}/seats"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["userId"].as_str().unwrap().to_owned(),
                (
                    x["state"].as_str().unwrap().to_owned(),
                    x["position"].as_i64(),
                ),
            )
        })
        .collect()
}

fn ids_of(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["userId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_cut_over_keeps_todays_seat_holders_and_the_shadow_report_foretells_it() {
    let s = Scenario::new("Contoso").await;
    let rx = Receiver::start().await;
    let (st, hook) = s
        .admin(
            Method::POST,
            "/webhooks",
            Some(json!({"url": rx.url("/hooks/cut-over"), "events": []})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{hook}");
    rx.trust("/hooks/cut-over", &[hook["secret"].as_str().unwrap()])
        .await;
    let users = people(&s, 900).await;
    let staff = s.group::<&str>("Staff", &[]).await;
    let (st, l) = s
        .admin(
            Method::POST,
            "/licenses",
            Some(json!({"name": "Zendesk", "seats": 600, "mode": "observe",
                "groups": [{"displayName": "Staff"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    assert_eq!(l["mode"], "observe");
    let l = id(&l);

    // Today's 500 seat holders: people 0-499, the first 200 as JSON (by userName, id, externalId),
    // the rest as CSV with a header; three references that match nobody, one repeat.
    let mut refs: Vec<String> = Vec::new();
    for (i, u) in users.iter().enumerate().take(200) {
        refs.push(match i % 3 {
            0 => format!("PERSON{i:05}@contoso.example"),
            1 => u.clone(),
            _ => format!("ext-{i}"),
        });
    }
    refs.push("nobody@contoso.example".into());
    refs.push(users[0].clone());
    let holders = format!("/tenants/{}/licenses/{l}/holders", s.tenant);
    let (st, r) = s
        .app
        .admin(Method::POST, &holders, Some(json!({ "holders": refs })))
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["added"], 200, "{r}");
    assert_eq!(r["unmatched"], json!(["nobody@contoso.example"]));
    // Nobody is in Staff yet: all of them would lose their seat today.
    assert_eq!(r["not_entitled"].as_array().unwrap().len(), 200);
    let mut csv = String::from("userName,name\r\n");
    for i in 200..500 {
        csv.push_str(&format!("person{i:05}@contoso.example,\"Person, {i}\"\r\n"));
    }
    csv.push_str("ghost@contoso.example,Ghost\r\nlost-ext,Lost\r\n");
    let (st, r) = post_csv(&s.app, &holders, csv).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        (r["added"].as_i64(), r["carried_over"].as_i64()),
        (Some(300), Some(500))
    );
    assert_eq!(r["unmatched"], json!(["ghost@contoso.example", "lost-ext"]));

    // The directory sends 800 entitled people (50-849: 450 of those carried over, 350 not) in a
    // shuffled order, a few at a time; 0-49 are carried over but never entitled.
    let mut entitled: Vec<String> = users[50..850].to_vec();
    shuffle(&mut entitled, 2026);
    let mut rest = entitled.as_slice();
    let mut k = 0;
    // The waitlist's order: one PATCH after another, the people of one PATCH by id.
    let mut arrival: Vec<String> = Vec::new();
    while !rest.is_empty() {
        let n = (k % 7 + 1).min(rest.len());
        k += 1;
        let (now, later) = rest.split_at(n);
        s.members(&staff, "add", now).await;
        let mut batch = now.to_vec();
        batch.sort();
        arrival.extend(batch);
        rest = later;
    }

    // Observing: the product is told each state, not enforced.
    let (st, p) = s.admin(Method::POST, "/product-tokens", None).await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let ptoken = p["token"].as_str().unwrap().to_owned();
    let (st, check) = s
        .app
        .request(
            Method::GET,
            &format!(
                "/product/v1/tenants/{}/licenses/{l}/users/{}",
                s.tenant, arrival[0]
            ),
            Some(&ptoken),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{check}");
    assert_eq!(check["enforced"], false, "{check}");
    assert_eq!(
        check["state"], "granted",
        "the first to arrive holds a seat: {check}"
    );

    // The shadow report, and the preview of the switch, which must agree.
    let (st, shadow) = s
        .admin(Method::GET, &format!("/licenses/{l}/shadow"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{shadow}");
    assert_eq!(shadow["carried_over"], 500);
    assert_eq!(
        shadow["counts"],
        json!({"keep": 450, "gain": 100, "wait": 250, "lose": 50}),
        "450 carried over keep theirs; 50 carried over and not entitled keep theirs through the grace (their seats count), so 100 of the 350 others gain one"
    );
    let carried: BTreeSet<String> = users[..500].iter().cloned().collect();
    let keep = ids_of(&shadow["keep"]);
    assert_eq!(keep, users[50..500].iter().cloned().collect());
    for p in shadow["lose"].as_array().unwrap() {
        assert_eq!(p["reason"], "grace", "{p}");
        assert!(p["releaseAt"].is_string(), "{p}");
    }
    assert_eq!(
        ids_of(&shadow["lose"]),
        users[..50].iter().cloned().collect()
    );
    let gain = ids_of(&shadow["gain"]);
    assert!(gain.is_disjoint(&carried));
    // The 100 gaining are the first 100 of the others to arrive (the waitlist's order).
    let others: Vec<&String> = arrival.iter().filter(|u| !carried.contains(*u)).collect();
    assert_eq!(gain, others[..100].iter().map(|u| (*u).clone()).collect());
    let places: Vec<(String, i64)> = shadow["wait"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["userId"].as_str().unwrap().to_owned(),
                p["place"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        places.iter().map(|(u, _)| u).collect::<Vec<_>>(),
        others[100..].to_vec()
    );
    assert_eq!(places.last().unwrap().1, 250);
    let (st, preview) = s
        .admin(
            Method::POST,
            &format!("/licenses/{l}/preview"),
            Some(json!({"mode": "enforce"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{preview}");
    assert_eq!(
        preview["after"],
        json!({"granted": 550, "blocked": 250, "releasing": 50}),
        "{preview}"
    );

    // Nothing was sent while observing: no email queued, no webhook delivered.
    s.clock.advance_secs(3600);
    s.app.sender_pass().await;
    s.app.dispatcher_pass().await;
    let (_, outbox) = s.admin(Method::GET, "/notifications", None).await;
    assert_eq!(
        outbox["notifications"].as_array().unwrap().len(),
        0,
        "{outbox:#}"
    );
    assert!(
        std::fs::read_dir(s.app.mail_dir())
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
    assert_eq!(rx.received().await, Vec::<Value>::new());

    // Enforce: the allocation is the report's, person for person.
    let (st, v) = s
        .admin(
            Method::PATCH,
            &format!("/licenses/{l}"),
            Some(json!({"mode": "enforce"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["mode"].as_str(), v["carried_over"].as_i64()),
        (Some("enforce"), Some(0))
    );
    let after = seats(&s, &l).await;
    let in_state = |state: &str| -> BTreeSet<String> {
        after
            .iter()
            .filter(|(_, (st, _))| st == state)
            .map(|(u, _)| u.clone())
            .collect()
    };
    assert_eq!(in_state("granted"), keep.union(&gain).cloned().collect());
    assert_eq!(in_state("releasing"), ids_of(&shadow["lose"]));
    for (u, place) in &places {
        assert_eq!(after[u], ("blocked".to_owned(), Some(*place)), "{u}");
    }
    for u in &users[50..500] {
        assert_eq!(after[u].0, "granted", "carried over and entitled: {u}");
    }
    let (_, check) = s
        .app
        .request(
            Method::GET,
            &format!(
                "/product/v1/tenants/{}/licenses/{l}/users/{}",
                s.tenant, users[60]
            ),
            Some(&ptoken),
            None,
        )
        .await;
    assert_eq!(
        (check["state"].as_str(), check["enforced"].as_bool()),
        (Some("granted"), Some(true))
    );

    // Now the license tells: the waiting people are emailed, the product gets its webhooks.
    let (_, outbox) = s.admin(Method::GET, "/notifications", None).await;
    let blocked: Vec<&Value> = outbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "blocked")
        .collect();
    assert_eq!(blocked.len(), 1, "{outbox:#}");
    assert_eq!(blocked[0]["items"], 250, "{outbox:#}");
    s.app.dispatcher_pass().await;
    let mut got = Vec::new();
    for _ in 0..200 {
        got = rx.received().await;
        if got.iter().any(|d| d["body"]["type"] == "license.updated") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        got.iter().any(|d| d["body"]["type"] == "license.updated"),
        "{got:#?}"
    );
    // A shadow report is for a license that observes; carrying over too.
    let (st, e) = s
        .admin(Method::GET, &format!("/licenses/{l}/shadow"), None)
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    let (st, e) = s
        .app
        .admin(
            Method::POST,
            &holders,
            Some(json!([users[900 - 1].clone()])),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    // The switch and the carrying over are in the audit log.
    let (_, audit) = s.admin(Method::GET, "/audit?limit=50", None).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "license.holders").count(),
        2,
        "{actions:?}"
    );
    assert!(actions.contains(&"license.update"));
}

#[tokio::test]
async fn holders_are_refused_clearly_and_forgotten_on_request() {
    let s = Scenario::new("Contoso").await;
    let ann = s.user("ann@contoso.example").await;
    s.group("Staff", &[&ann]).await;
    let (st, l) = s
        .admin(
            Method::POST,
            "/licenses",
            Some(json!({"name": "Jira", "seats": 1, "mode": "observe", "groups": [{"displayName": "Staff"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    let l = id(&l);
    let path = format!("/tenants/{}/licenses/{l}/holders", s.tenant);
    for (body, why) in [
        (json!({"holders": "ann"}), "not a list"),
        (json!([1, 2]), "not strings"),
        (json!([]), "empty"),
        (json!({"people": ["ann"]}), "another key"),
    ] {
        let (st, e) = s.app.admin(Method::POST, &path, Some(body)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{why}: {e}");
    }
    let (st, e) = s
        .admin(
            Method::PATCH,
            &format!("/licenses/{l}"),
            Some(json!({"mode": "shadow"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let (st, r) = s
        .app
        .admin(Method::POST, &path, Some(json!(["ANN@contoso.example"])))
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        (
            r["added"].as_i64(),
            r["not_entitled"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0))
    );
    let (st, r) = s.app.admin(Method::DELETE, &path, None).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["forgotten"], 1);
    let (_, v) = s.admin(Method::GET, &format!("/licenses/{l}"), None).await;
    assert_eq!(v["carried_over"], 0);
    // A missing license is a 404, another tenant's license too.
    let (st, _) = s
        .app
        .admin(
            Method::GET,
            &format!("/tenants/{}/licenses/nope/shadow", s.tenant),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
