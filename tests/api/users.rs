//! SCIM Users over HTTP: the CRUD round trip, case-insensitive userName uniqueness, filters and
//! pagination, projections, ETags with If-Match and If-None-Match, SCIM errors for bad input,
//! sorting, `meta.location` behind a proxy, and filters with a groups condition.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn user_crud_round_trip() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("crud").await;
    let body = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": "bjensen@example.com",
        "externalId": "ext-bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "active": true,
        ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"}
    });
    let (s, u) = app.scim(&tok, Method::POST, "/Users", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let uid = id(&u);
    assert_eq!(u["meta"]["resourceType"], "User");
    assert_eq!(u["meta"]["version"], "W/\"1\"");
    assert!(u["meta"]["location"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/scim/v2/Users/{uid}")));
    assert_eq!(u["schemas"], json!([USER_SCHEMA, ENTERPRISE]));
    assert_eq!(u[ENTERPRISE]["department"], "Tour Operations");

    let r = app
        .client
        .get(format!("{}/scim/v2/Users/{uid}", app.address))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    assert_eq!(r.headers()["etag"], "W/\"1\"");

    // PUT replaces everything the client may set.
    let (s, put) = app
        .scim(&tok, Method::PUT, &format!("/Users/{uid}"), Some(json!({"schemas": [USER_SCHEMA], "userName": "bjensen@example.com", "displayName": "Babs"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{put}");
    assert_eq!(put["displayName"], "Babs");
    assert!(put.get("name").is_none() && put.get(ENTERPRISE).is_none());
    assert_eq!(put["meta"]["version"], "W/\"2\"");
    assert_eq!(put["id"], uid.as_str(), "id is immutable");

    let (s, _) = app
        .scim(&tok, Method::DELETE, &format!("/Users/{uid}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app
        .scim(&tok, Method::GET, &format!("/Users/{uid}"), None)
        .await;
    assert_scim_error(s, &b, 404, None);
    let (s, b) = app
        .scim(&tok, Method::DELETE, &format!("/Users/{uid}"), None)
        .await;
    assert_scim_error(s, &b, 404, None);
}

#[tokio::test]
async fn user_name_is_unique_case_insensitively() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("unique").await;
    let a = app.create_user(&tok, "Alice@Example.com").await;
    let (s, b) = app
        .scim(
            &tok,
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER_SCHEMA], "userName": "alice@example.COM"})),
        )
        .await;
    assert_scim_error(s, &b, 409, Some("uniqueness"));
    let other = app.create_user(&tok, "bob@example.com").await;
    let (s, b) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{}", id(&other)),
            Some(patch(
                json!([{"op": "replace", "path": "userName", "value": "ALICE@example.com"}]),
            )),
        )
        .await;
    assert_scim_error(s, &b, 409, Some("uniqueness"));
    // Changing the case of one's own userName is allowed.
    let (s, b) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{}", id(&a)),
            Some(patch(
                json!([{"op": "replace", "path": "userName", "value": "alice@example.com"}]),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn filters_and_pagination() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("filters").await;
    for i in 0..7 {
        let (s, _) = app
            .scim(
                &tok,
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER_SCHEMA], "userName": format!("user{i}@example.com"), "externalId": format!("ext-{i}"),
                            "active": i % 2 == 0, "emails": [{"value": format!("User{i}@Mail.example"), "type": "work"}],
                            "title": if i < 3 { "Engineer" } else { "Manager" }})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let q = |f: &str| format!("/Users?filter={}", urlencode(f));
    let total = |v: &Value| v["totalResults"].as_i64().unwrap();

    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &q(r#"userName eq "USER3@example.com""#),
            None,
        )
        .await;
    assert_eq!(total(&r), 1);
    assert_eq!(r["Resources"][0]["userName"], "user3@example.com");
    let (_, r) = app
        .scim(&tok, Method::GET, &q(r#"externalId eq "ext-4""#), None)
        .await;
    assert_eq!(total(&r), 1);
    let (_, r) = app
        .scim(&tok, Method::GET, &q(r#"externalId eq "EXT-4""#), None)
        .await;
    assert_eq!(total(&r), 0, "externalId is case-exact");
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &q(r#"emails.value eq "user5@mail.example""#),
            None,
        )
        .await;
    assert_eq!(total(&r), 1);
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &q(r#"emails[value eq "user6@mail.example"]"#),
            None,
        )
        .await;
    assert_eq!(total(&r), 1);
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &q(r#"userName eq "user1@example.com" or userName eq "user2@example.com""#),
            None,
        )
        .await;
    assert_eq!(total(&r), 2);
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &q(r#"active eq true and title eq "Engineer""#),
            None,
        )
        .await;
    assert_eq!(total(&r), 2, "users 0 and 2");
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &q(r#"userName sw "user" and not (title eq "manager")"#),
            None,
        )
        .await;
    assert_eq!(total(&r), 3);

    // Pagination: stable creation order, 1-based startIndex.
    let (_, p1) = app
        .scim(&tok, Method::GET, "/Users?startIndex=1&count=3", None)
        .await;
    let (_, p3) = app
        .scim(&tok, Method::GET, "/Users?startIndex=7&count=3", None)
        .await;
    assert_eq!(
        (
            total(&p1),
            p1["itemsPerPage"].as_i64(),
            p1["startIndex"].as_i64()
        ),
        (7, Some(3), Some(1))
    );
    assert_eq!(p1["Resources"][0]["userName"], "user0@example.com");
    assert_eq!(p3["Resources"].as_array().unwrap().len(), 1);
    assert_eq!(p3["Resources"][0]["userName"], "user6@example.com");
    let (_, c0) = app.scim(&tok, Method::GET, "/Users?count=0", None).await;
    assert_eq!(
        (total(&c0), c0["Resources"].as_array().unwrap().len()),
        (7, 0)
    );

    // POST /.search
    let (s, r) = app
        .scim(
            &tok,
            Method::POST,
            "/Users/.search",
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
              "filter": "title eq \"Manager\"", "count": 2, "attributes": ["userName"]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(total(&r), 4);
    assert_eq!(r["Resources"].as_array().unwrap().len(), 2);
    assert!(r["Resources"][0].get("title").is_none());

    // Bad filters
    for bad in [
        "userName eq",
        "userName zz \"x\"",
        "(userName eq \"x\"",
        "userName eq \"x\" and",
    ] {
        let (s, b) = app.scim(&tok, Method::GET, &q(bad), None).await;
        assert_scim_error(s, &b, 400, Some("invalidFilter"));
        assert!(b["detail"].as_str().unwrap().contains("position"), "{b}");
    }
    let (s, b) = app
        .scim(&tok, Method::GET, "/Users?startIndex=abc", None)
        .await;
    assert_scim_error(s, &b, 400, Some("invalidValue"));
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn projection_on_reads_and_writes() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("projection").await;
    let (_, u) = app
        .scim(
            &tok,
            Method::POST,
            "/Users?attributes=userName",
            Some(
                json!({"schemas": [USER_SCHEMA], "userName": "p@example.com",
              "name": {"givenName": "P", "familyName": "Q"}, "title": "T"}),
            ),
        )
        .await;
    assert_eq!(
        u.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["schemas", "id", "userName"]
    );
    let (_, g) = app
        .scim(
            &tok,
            Method::GET,
            &format!("/Users/{}?excludedAttributes=title,name.familyName", id(&u)),
            None,
        )
        .await;
    assert!(g.get("title").is_none());
    assert_eq!(g["name"], json!({"givenName": "P"}));
    assert!(g.get("meta").is_some());
}

#[tokio::test]
async fn etags_if_match_and_if_none_match() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("etags").await;
    let u = app.create_user(&tok, "etag@example.com").await;
    let url = format!("{}/scim/v2/Users/{}", app.address, id(&u));
    let r = app
        .client
        .get(&url)
        .bearer_auth(&tok)
        .header("If-None-Match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let body = patch(json!([{"op": "replace", "path": "title", "value": "x"}])).to_string();
    let r = app
        .client
        .patch(&url)
        .bearer_auth(&tok)
        .header("If-Match", "W/\"7\"")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["status"], "412");
    let r = app
        .client
        .patch(&url)
        .bearer_auth(&tok)
        .header("If-Match", "W/\"1\"")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "W/\"2\"");
    let r = app
        .client
        .delete(&url)
        .bearer_auth(&tok)
        .header("If-Match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    // An unchanged PATCH keeps the version.
    let (_, same) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{}", id(&u)),
            Some(patch(
                json!([{"op": "replace", "path": "title", "value": "x"}]),
            )),
        )
        .await;
    assert_eq!(same["meta"]["version"], "W/\"2\"");
}

#[tokio::test]
async fn bad_input_gets_scim_errors_and_the_daemon_keeps_serving() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("hostile").await;
    let u = app.create_user(&tok, "victim@example.com").await;
    let upath = format!("/Users/{}", id(&u));
    type Case<'a> = (Method, String, Option<Value>, u16, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/Users".into(),
            Some(json!({"schemas": [USER_SCHEMA]})),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".into(),
            Some(json!({"userName": 42})),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".into(),
            Some(json!({"userName": "a", "active": "maybe"})),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".into(),
            Some(json!({"userName": "a", "emails": "x"})),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".into(),
            Some(json!(["not", "an", "object"])),
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::PATCH,
            upath.clone(),
            Some(json!({"Operations": [{"op": "explode"}]})),
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::PATCH,
            upath.clone(),
            Some(patch(json!([{"op": "remove"}]))),
            400,
            Some("noTarget"),
        ),
        (
            Method::PATCH,
            upath.clone(),
            Some(patch(
                json!([{"op": "replace", "path": "id", "value": "x"}]),
            )),
            400,
            Some("mutability"),
        ),
        (
            Method::PATCH,
            upath.clone(),
            Some(patch(
                json!([{"op": "replace", "path": "bad[[path", "value": "x"}]),
            )),
            400,
            Some("invalidPath"),
        ),
        (
            Method::PATCH,
            upath.clone(),
            Some(patch(
                json!([{"op": "replace", "path": "noSuchAttr", "value": "x"}]),
            )),
            400,
            Some("invalidPath"),
        ),
        (
            Method::GET,
            "/Users/..%2F..%2Fetc%2Fpasswd".into(),
            None,
            404,
            None,
        ),
        (Method::GET, "/Users/'%20OR%201=1--".into(), None, 404, None),
        (Method::GET, "/Nope".into(), None, 404, None),
        (Method::DELETE, "/Users".into(), None, 405, None),
    ];
    for (m, path, body, want, t) in cases {
        let (s, b) = app.scim(&tok, m.clone(), &path, body).await;
        assert_scim_error(s, &b, want, t);
    }
    // Malformed and oversized bodies
    let r = app
        .client
        .post(format!("{}/scim/v2/Users", app.address))
        .bearer_auth(&tok)
        .body("{\"userName\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .client
        .post(format!("{}/scim/v2/Users", app.address))
        .bearer_auth(&tok)
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let r = app
        .client
        .post(format!("{}/scim/v2/Users", app.address))
        .bearer_auth(&tok)
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let huge = json!({"userName": "x".repeat(300 * 1024)}).to_string();
    let r = app
        .client
        .post(format!("{}/scim/v2/Users", app.address))
        .bearer_auth(&tok)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["status"], "413");
    // Missing token
    let (s, b) = app.request(Method::GET, "/scim/v2/Users", None, None).await;
    assert_scim_error(s, &b, 401, None);

    // Nothing changed, and the daemon still serves.
    let (s, list) = app.scim(&tok, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["totalResults"], 1);
    let (_, same) = app.scim(&tok, Method::GET, &upath, None).await;
    assert_eq!(same["meta"]["version"], "W/\"1\"");
}

#[tokio::test]
async fn sorting_indexed_and_not() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("sorting").await;
    for (name, title, email) in [
        ("Carol", "b", "z@x"),
        ("alice", "c", "y@x"),
        ("Bob", "a", "x@x"),
        ("dave", "", ""),
    ] {
        let mut body = json!({"schemas": [USER_SCHEMA], "userName": name});
        if !title.is_empty() {
            body["title"] = json!(title);
            body["emails"] = json!([{"value": "other@x", "type": "home"}, {"value": email, "type": "work", "primary": true}]);
        }
        let (s, _) = app.scim(&tok, Method::POST, "/Users", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let names = |v: &Value| -> Vec<String> {
        v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, r) = app
        .scim(&tok, Method::GET, "/Users?sortBy=userName", None)
        .await;
    assert_eq!(
        names(&r),
        ["alice", "Bob", "Carol", "dave"],
        "userName sorts case-insensitively"
    );
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            "/Users?sortBy=userName&sortOrder=descending&count=2",
            None,
        )
        .await;
    assert_eq!(names(&r), ["dave", "Carol"]);
    let (_, r) = app
        .scim(&tok, Method::GET, "/Users?sortBy=title", None)
        .await;
    assert_eq!(
        names(&r),
        ["Bob", "Carol", "alice", "dave"],
        "missing values last"
    );
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            "/Users?sortBy=title&sortOrder=descending",
            None,
        )
        .await;
    assert_eq!(
        names(&r),
        ["dave", "alice", "Carol", "Bob"],
        "missing values first descending"
    );
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            "/Users?sortBy=emails&startIndex=2&count=2",
            None,
        )
        .await;
    assert_eq!(
        names(&r),
        ["alice", "Carol"],
        "multi-valued attributes sort by their primary value"
    );
    let (_, r) = app
        .scim(
            &tok,
            Method::GET,
            &format!(
                "/Users?sortBy=meta.created&filter={}",
                urlencode("title pr")
            ),
            None,
        )
        .await;
    assert_eq!(names(&r), ["Carol", "alice", "Bob"]);
    // Sorting in memory keeps a bounded window, never the tenant: a page past the first
    // 10,000 sorted results is refused with tooMany (an indexed sort is not limited).
    let (s, b) = app
        .scim(
            &tok,
            Method::GET,
            "/Users?sortBy=title&startIndex=9950&count=100",
            None,
        )
        .await;
    assert_scim_error(s, &b, 400, Some("tooMany"));
    let (s, _) = app
        .scim(
            &tok,
            Method::GET,
            "/Users?sortBy=title&startIndex=9900&count=100",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .scim(
            &tok,
            Method::GET,
            "/Users?sortBy=userName&startIndex=99000&count=100",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app
        .scim(
            &tok,
            Method::GET,
            "/Users?sortBy=title&sortOrder=sideways",
            None,
        )
        .await;
    assert_scim_error(s, &b, 400, Some("invalidValue"));
}

/// Without `public_url`, resource locations follow the request: the `Host` it was sent to, or
/// what a reverse proxy forwarded (`X-Forwarded-Proto` / `X-Forwarded-Host`, `Forwarded`).
#[tokio::test]
async fn locations_follow_the_host_or_the_forwarding_proxy() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("hosts").await;
    let u = app.create_user(&tok, "hosted@example.com").await;
    let uid = id(&u);
    let location = |headers: Vec<(&'static str, &'static str)>| {
        let mut rb = app
            .client
            .get(format!("{}/scim/v2/Users/{uid}", app.address))
            .bearer_auth(&tok);
        for (name, value) in headers {
            rb = rb.header(name, value);
        }
        async move {
            let v: Value = rb.send().await.unwrap().json().await.unwrap();
            v["meta"]["location"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(
        location(vec![("Host", "licensing.example.com")]).await,
        format!("http://licensing.example.com/scim/v2/Users/{uid}")
    );
    assert_eq!(
        location(vec![
            ("Host", "127.0.0.1"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "licensing.example.com")
        ])
        .await,
        format!("https://licensing.example.com/scim/v2/Users/{uid}")
    );
    assert_eq!(
        location(vec![("Forwarded", "proto=https;host=scim.example.org")]).await,
        format!("https://scim.example.org/scim/v2/Users/{uid}")
    );
}

#[tokio::test]
async fn an_indexed_filter_with_a_groups_condition_reads_each_users_groups() {
    // An indexed part (`userName eq`) and a condition on the user's groups, on both engines.
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("indexed-groups").await;
    let ann = id(&app.create_user(&tok, "ann@example.com").await);
    app.create_user(&tok, "bob@example.com").await;
    let g = id(&app.create_group(&tok, "Staff", &[&ann]).await);
    for (name, want) in [("ann@example.com", 1), ("bob@example.com", 0)] {
        let filter = urlencode(&format!(
            "userName eq \"{name}\" and groups.value eq \"{g}\""
        ));
        let (s, v) = app
            .scim(&tok, Method::GET, &format!("/Users?filter={filter}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["totalResults"], want, "{name}: {v}");
    }
}

/// externalId is unique per tenant where given: a create (alone, or among concurrent creates
/// that an engine merges), a replace or a PATCH into a taken one answers 409 `uniqueness`; users
/// without one, and another tenant's user with the same one, are fine.
#[tokio::test]
async fn external_id_is_unique_per_tenant() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("ext-unique").await;
    let (_, other_tok) = app.tenant("ext-other").await;
    let user = |name: &str, ext: Option<&str>| {
        let mut u = json!({"schemas": [USER_SCHEMA], "userName": name});
        if let Some(e) = ext {
            u["externalId"] = json!(e);
        }
        u
    };
    let (s, a) = app
        .scim(
            &tok,
            Method::POST,
            "/Users",
            Some(user("a@x.example", Some("E-1"))),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let (s, b) = app
        .scim(
            &tok,
            Method::POST,
            "/Users",
            Some(user("b@x.example", Some("E-1"))),
        )
        .await;
    assert_scim_error(s, &b, 409, Some("uniqueness"));
    for n in ["c@x.example", "d@x.example"] {
        let (s, b) = app
            .scim(&tok, Method::POST, "/Users", Some(user(n, None)))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, b) = app
        .scim(
            &other_tok,
            Method::POST,
            "/Users",
            Some(user("a@x.example", Some("E-1"))),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "another tenant's externalId: {b}");
    // Twenty creates at once, two pairs sharing an externalId: one of each pair is refused.
    let sends = (0..20).map(|i| {
        let (app, tok) = (&app, &tok);
        async move {
            let ext = format!("C-{}", i % 18);
            app.scim(
                tok,
                Method::POST,
                "/Users",
                Some(user(&format!("c{i}@y.example"), Some(&ext))),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(sends).await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s != StatusCode::CREATED)
        .collect();
    assert_eq!(created, 18, "{answers:?}");
    for (s, b) in refused {
        assert_scim_error(*s, b, 409, Some("uniqueness"));
    }
    // Into a taken one by PATCH and by PUT.
    let (s, c) = app
        .scim(
            &tok,
            Method::POST,
            "/Users",
            Some(user("e@x.example", Some("E-2"))),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Users/{}", id(&c)),
            Some(patch(
                json!([{"op": "replace", "path": "externalId", "value": "E-1"}]),
            )),
        )
        .await;
    assert_scim_error(s, &b, 409, Some("uniqueness"));
    let (s, b) = app
        .scim(
            &tok,
            Method::PUT,
            &format!("/Users/{}", id(&c)),
            Some(user("e@x.example", Some("E-1"))),
        )
        .await;
    assert_scim_error(s, &b, 409, Some("uniqueness"));
    // Keeping one's own is fine.
    let (s, b) = app
        .scim(
            &tok,
            Method::PUT,
            &format!("/Users/{}", id(&c)),
            Some(user("e2@x.example", Some("E-2"))),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// `seatkeeper check` lists users that share an externalId (a database from before it was kept
/// unique may hold them).
#[tokio::test]
async fn check_lists_users_that_share_an_external_id() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("seatkeeper.db"));
    let database = c.database.clone();
    let app = TestApp::spawn_with(c).await;
    let (_, tok) = app.tenant("old-twins").await;
    for (name, ext) in [("a@t.example", "T-1"), ("b@t.example", "T-2")] {
        let (s, b) = app
            .scim(
                &tok,
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER_SCHEMA], "userName": name, "externalId": ext})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (ok, out, _) = super::cli_support::cli(&database, &["check"]);
    assert!(ok && !out.contains("user_twins"), "{out}");
    sql(
        &database,
        "UPDATE users SET external_id = 'T-1' WHERE external_id = 'T-2'",
    )
    .await;
    let (ok, out, _) = super::cli_support::cli(&database, &["check"]);
    assert!(!ok, "{out}");
    assert!(out.contains("user_twins") && out.contains("T-1"), "{out}");
    app.stop().await;
}
