//! Hostile input against every admin endpoint that takes a body or a path parameter: malformed
//! JSON, wrong types, huge strings, deep nesting, invalid UTF-8, traversal-like and SQL-looking
//! values. Each gets a 4xx with a JSON error, never a 5xx; the daemon keeps serving and nothing
//! changes.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn hostile_admin_input_gets_4xx_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (tid, tok) = app.tenant("fortress").await;
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tid}/licenses"),
            Some(json!({"name": "pro", "seats": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    app.create_user(&tok, "keep@x.test").await;
    let before_l = app
        .admin(Method::GET, &format!("/tenants/{tid}/licenses"), None)
        .await
        .1;
    let before_t = app.admin(Method::GET, "/tenants", None).await.1;

    let bodies: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        vec![0xff, 0xfe, 0xfd],
        b"[]".to_vec(),
        b"\"string\"".to_vec(),
        format!("{}{}", "[".repeat(3000), "]".repeat(3000)).into_bytes(),
        json!({"name": "x".repeat(100_000), "seats": 1})
            .to_string()
            .into_bytes(),
        json!({"name": "' OR 1=1 --", "seats": "1; DROP TABLE seats"})
            .to_string()
            .into_bytes(),
        json!({"seats": -5, "groups": "all"})
            .to_string()
            .into_bytes(),
        json!({"kind": ["pin"]}).to_string().into_bytes(),
        json!({"notify": "x@y.z", "expected_sync_seconds": "soon"})
            .to_string()
            .into_bytes(),
        vec![b'x'; 300 * 1024],
    ];
    let targets: Vec<(Method, String)> = vec![
        (Method::POST, "/tenants".into()),
        (Method::PATCH, format!("/tenants/{tid}")),
        (Method::POST, format!("/tenants/{tid}/licenses")),
        (Method::PATCH, format!("/tenants/{tid}/licenses/pro")),
        (Method::POST, format!("/tenants/{tid}/licenses/pro/preview")),
        (
            Method::PUT,
            format!("/tenants/{tid}/licenses/pro/overrides/keep@x.test"),
        ),
        (Method::POST, format!("/tenants/{tid}/tokens")),
    ];
    for (m, path) in &targets {
        for body in &bodies {
            let r = app
                .client
                .request(m.clone(), format!("{}/admin/v1{path}", app.address))
                .bearer_auth(ADMIN_TOKEN)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert!(
                status.is_client_error(),
                "{m} {path} with {:?}… → {status} {text}",
                String::from_utf8_lossy(&body[..body.len().min(40)])
            );
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{m} {path}: not a JSON error: {text}"));
            assert!(v["error"].is_string(), "{text}");
        }
    }
    for path in [
        "/tenants/..%2F..%2Fetc%2Fpasswd/licenses".to_string(),
        format!("/tenants/{tid}/licenses/'%20OR%201=1--/seats"),
        format!("/tenants/{tid}/licenses/pro/seats/%00"),
        format!("/tenants/{tid}/seat-events?after=abc"),
        format!("/tenants/{tid}/audit?limit=-1"),
        format!("/tenants/{tid}/licenses/pro/seats?state=%27"),
    ] {
        let (s, v) = app.admin(Method::GET, &path, None).await;
        assert!(s.is_client_error(), "{path} → {s} {v}");
    }
    // Nothing changed, and the daemon still serves.
    assert_eq!(
        app.admin(Method::GET, &format!("/tenants/{tid}/licenses"), None)
            .await
            .1,
        before_l
    );
    assert_eq!(
        app.admin(Method::GET, "/tenants", None).await.1["tenants"]
            .as_array()
            .map(Vec::len),
        before_t["tenants"].as_array().map(Vec::len)
    );
    let (s, _) = app.scim(&tok, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn oversized_member_lists_and_value_lists_are_refused() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("caps").await;
    let emails: Vec<Value> = (0..1001)
        .map(|i| json!({"value": format!("{i}@x.test")}))
        .collect();
    let (s, b) = app
        .scim(
            &tok,
            Method::POST,
            "/Users",
            Some(json!({"userName": "many", "emails": emails})),
        )
        .await;
    assert_scim_error(s, &b, 400, Some("tooMany"));
}

/// Asserts a SCIM answer is 400 `invalidValue`.
fn invalid((s, b): (StatusCode, Value)) {
    assert_scim_error(s, &b, 400, Some("invalidValue"));
}

/// A NUL character (`\u0000`) is valid JSON but no identity attribute holds one, and
/// PostgreSQL cannot store it in text: it is refused as an invalid value, on every engine,
/// wherever it comes (a user, a group, a filter, an admin body), and nothing is stored.
#[tokio::test]
async fn nul_characters_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let (tid, tok) = app.tenant("nul").await;
    let scim_bodies = [
        (
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "a\u{0}b@x.test"}),
        ),
        (
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "c@x.test", "displayName": "C\u{0}"}),
        ),
        (
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "d@x.test", "emails": [{"value": "d\u{0}@x.test"}]}),
        ),
        (
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "e@x.test", "name": {"givenName": "E\u{0}"}}),
        ),
        (
            "/Groups",
            json!({"schemas": [GROUP_SCHEMA], "displayName": "G\u{0}"}),
        ),
    ];
    for (path, body) in scim_bodies {
        invalid(app.scim(&tok, Method::POST, path, Some(body.clone())).await);
    }
    let user = app.create_user(&tok, "kept@x.test").await;
    let at = format!("/Users/{}", id(&user));
    let change = patch(json!([{"op": "replace", "path": "displayName", "value": "K\u{0}"}]));
    invalid(app.scim(&tok, Method::PATCH, &at, Some(change)).await);
    invalid(
        app.scim(
            &tok,
            Method::PUT,
            &at,
            Some(json!({"schemas": [USER_SCHEMA], "userName": "kept@x.test", "title": "\u{0}"})),
        )
        .await,
    );
    // An escaped backslash before "u0000" is no NUL.
    let (s, b) = app
        .scim(
            &tok,
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER_SCHEMA], "userName": "back\\u0000slash@x.test"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{tid}"),
            Some(json!({"notify": ["ops\u{0}@x.test"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tid}/licenses"),
            Some(json!({"name": "p\u{0}", "seats": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // Nothing was stored or changed.
    let (_, list) = app.scim(&tok, Method::GET, "/Users", None).await;
    let names: Vec<&str> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["userName"].as_str())
        .collect();
    assert_eq!(names, ["kept@x.test", "back\\u0000slash@x.test"], "{list}");
    let (_, kept) = app.scim(&tok, Method::GET, &at, None).await;
    assert_eq!(kept["meta"]["version"], user["meta"]["version"], "{kept}");
    let (_, groups) = app.scim(&tok, Method::GET, "/Groups", None).await;
    assert_eq!(groups["totalResults"], 0, "{groups}");
}

/// Indexed values (userName, externalId, displayName, emails, member values) longer than 512
/// characters are refused as invalid on every engine, however they come; before, PostgreSQL
/// answered 500 for one its index cannot hold. A bad create sent among good ones (on PostgreSQL
/// merged into one statement with them) fails alone.
#[tokio::test]
async fn overlong_indexed_values_are_refused_and_fail_alone() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("long").await;
    // Hard to compress, several bytes per character: what a database index cannot hold.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut random = |n: usize| -> String {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_u32(0x4E00 + (x % 0x5000) as u32).unwrap()
            })
            .collect()
    };
    let (ok, long) = (random(512), random(513));
    for attr in ["userName", "externalId", "displayName"] {
        let mut body = json!({"schemas": [USER_SCHEMA], "userName": format!("{attr}@x.test")});
        body[attr] = json!(long);
        invalid(
            app.scim(&tok, Method::POST, "/Users", Some(body.clone()))
                .await,
        );
        body[attr] = json!(ok);
        let (s, b) = app.scim(&tok, Method::POST, "/Users", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{attr}: {b}");
    }
    let body =
        json!({"schemas": [USER_SCHEMA], "userName": "mail@x.test", "emails": [{"value": long}]});
    invalid(app.scim(&tok, Method::POST, "/Users", Some(body)).await);
    let user = app.create_user(&tok, "patched@x.test").await;
    let change = patch(json!([{"op": "replace", "path": "displayName", "value": long}]));
    invalid(
        app.scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{}", id(&user)),
            Some(change),
        )
        .await,
    );
    invalid(
        app.scim(
            &tok,
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": long})),
        )
        .await,
    );
    invalid(app
        .scim(&tok, Method::POST, "/Groups", Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "G", "members": [{"value": long}]})))
        .await);
    // Twenty creates at once, the seventh too long: it alone is refused.
    let bodies: Vec<Value> = (0..20)
        .map(|i| {
            let name = if i == 6 {
                long.clone()
            } else {
                format!("batch{i}@x.test")
            };
            json!({"schemas": [USER_SCHEMA], "userName": name})
        })
        .collect();
    let answers = futures_util::future::join_all(
        bodies
            .iter()
            .map(|b| app.scim(&tok, Method::POST, "/Users", Some(b.clone()))),
    )
    .await;
    for (i, (s, b)) in answers.iter().enumerate() {
        if i == 6 {
            assert_scim_error(*s, b, 400, Some("invalidValue"));
        } else {
            assert_eq!(*s, StatusCode::CREATED, "create {i}: {b}");
        }
    }
    let (_, list) = app.scim(&tok, Method::GET, "/Users?count=0", None).await;
    assert_eq!(list["totalResults"], 3 + 1 + 19, "{list}");
}
