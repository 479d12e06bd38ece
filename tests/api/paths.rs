//! SCIM URLs as clients write them: a trailing slash, repeated slashes and endpoint names in any
//! case reach the same endpoint for every method, with the query kept; ids stay exact; answers
//! carry canonical locations.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::users::urlencode;

/// The ways a client writes the canonical SCIM path `/scim/v2{rest}` (rest like `/Users/ID`):
/// as is, with a trailing slash, with doubled slashes, endpoint names in lower and upper case.
fn forms(rest: &str) -> Vec<String> {
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let name = |f: fn(&str) -> String, segments: &[&str]| -> String {
        let mut out = String::from("/scim/v2");
        for (i, s) in segments.iter().enumerate() {
            out.push('/');
            // Endpoint names change case; ids (anything else) never do.
            let is_name = i == 0 || s.starts_with('.');
            out.push_str(&if is_name { f(s) } else { (*s).to_owned() });
        }
        out
    };
    let canonical = name(|s| s.to_owned(), &segments);
    let lower = name(str::to_lowercase, &segments);
    let upper = name(str::to_uppercase, &segments);
    let doubled = format!("/scim/v2//{}", segments.join("//"));
    vec![
        canonical.clone(),
        format!("{canonical}/"),
        doubled,
        lower,
        format!("{upper}/"),
    ]
}

async fn call(
    app: &TestApp,
    tok: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.request(method, path, Some(tok), body).await
}

#[tokio::test]
async fn every_scim_endpoint_and_method_answers_each_form() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("paths").await;

    for (n, form_of) in (0..forms("/Users").len()).enumerate() {
        let at = |rest: &str| forms(rest)[form_of].clone();

        // Users: create, list with a filter (query kept), search, read, replace, patch, delete.
        let (s, u) = call(&app, &tok, Method::POST, &at("/Users"), Some(json!({"schemas": [USER_SCHEMA], "userName": format!("user{n}@example.com"), "active": true}))).await;
        assert_eq!(s, StatusCode::CREATED, "{} {u}", at("/Users"));
        let uid = id(&u);
        let loc = u["meta"]["location"].as_str().unwrap();
        assert!(
            loc.ends_with(&format!("/scim/v2/Users/{uid}")),
            "canonical location, got {loc}"
        );
        let filter = urlencode(&format!(r#"userName eq "user{n}@example.com""#));
        let (s, l) = call(
            &app,
            &tok,
            Method::GET,
            &format!("{}?filter={filter}&aadOptscim062020", at("/Users")),
            None,
        )
        .await;
        assert_eq!(
            (s, l["totalResults"].as_i64()),
            (StatusCode::OK, Some(1)),
            "{} {l}",
            at("/Users")
        );
        let (s, l) = call(&app, &tok, Method::POST, &at("/Users/.search"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": format!(r#"userName eq "user{n}@example.com""#)}))).await;
        assert_eq!(
            (s, l["totalResults"].as_i64()),
            (StatusCode::OK, Some(1)),
            "{} {l}",
            at("/Users/.search")
        );
        let (s, g) = call(
            &app,
            &tok,
            Method::GET,
            &format!("{}?attributes=userName", at(&format!("/Users/{uid}"))),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{g}");
        assert_eq!(g["userName"], format!("user{n}@example.com"));
        assert!(
            g.get("active").is_none(),
            "the query string (attributes) is kept: {g}"
        );
        let (s, r) = call(&app, &tok, Method::PUT, &at(&format!("/Users/{uid}")), Some(json!({"schemas": [USER_SCHEMA], "userName": format!("user{n}@example.com"), "displayName": "Replaced", "active": true}))).await;
        assert_eq!(
            (s, &r["displayName"]),
            (StatusCode::OK, &json!("Replaced")),
            "{r}"
        );
        let (s, r) = call(
            &app,
            &tok,
            Method::PATCH,
            &at(&format!("/Users/{uid}")),
            Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "Patched"}]),
            )),
        )
        .await;
        assert_eq!(
            (s, &r["displayName"]),
            (StatusCode::OK, &json!("Patched")),
            "{r}"
        );

        // Groups: the same methods.
        let (s, gr) = call(&app, &tok, Method::POST, &at("/Groups"), Some(json!({"schemas": [GROUP_SCHEMA], "displayName": format!("group{n}"), "members": [{"value": uid}]}))).await;
        assert_eq!(s, StatusCode::CREATED, "{gr}");
        let gid = id(&gr);
        assert!(gr["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/scim/v2/Groups/{gid}")));
        assert_eq!(
            gr["members"][0]["$ref"]
                .as_str()
                .map(|r| r.ends_with(&format!("/scim/v2/Users/{uid}"))),
            Some(true),
            "{gr}"
        );
        let (s, l) = call(
            &app,
            &tok,
            Method::GET,
            &format!(
                "{}?filter={}",
                at("/Groups"),
                urlencode(&format!(r#"displayName eq "group{n}""#))
            ),
            None,
        )
        .await;
        assert_eq!(
            (s, l["totalResults"].as_i64()),
            (StatusCode::OK, Some(1)),
            "{l}"
        );
        let (s, l) = call(&app, &tok, Method::POST, &at("/Groups/.search"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": format!(r#"displayName eq "group{n}""#)}))).await;
        assert_eq!(
            (s, l["totalResults"].as_i64()),
            (StatusCode::OK, Some(1)),
            "{l}"
        );
        let (s, _) = call(
            &app,
            &tok,
            Method::GET,
            &at(&format!("/Groups/{gid}")),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, r) = call(&app, &tok, Method::PUT, &at(&format!("/Groups/{gid}")), Some(json!({"schemas": [GROUP_SCHEMA], "displayName": format!("group{n}"), "members": []}))).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let (s, r) = call(
            &app,
            &tok,
            Method::PATCH,
            &at(&format!("/Groups/{gid}")),
            Some(patch(
                json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]),
            )),
        )
        .await;
        assert!(s.is_success(), "{s} {r}");

        // The root search, Bulk and discovery.
        let (s, l) = call(&app, &tok, Method::POST, &at("/.search"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": format!(r#"displayName eq "group{n}""#)}))).await;
        assert_eq!(s, StatusCode::OK, "{} {l}", at("/.search"));
        let (s, b) = call(&app, &tok, Method::POST, &at("/Bulk"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [{"method": "POST", "path": "/Users", "bulkId": "b1", "data": {"schemas": [USER_SCHEMA], "userName": format!("bulk{n}@example.com")}}]}))).await;
        assert_eq!(
            (s, &b["Operations"][0]["status"]),
            (StatusCode::OK, &json!("201")),
            "{b}"
        );
        for rest in [
            "/ServiceProviderConfig",
            "/ResourceTypes",
            "/ResourceTypes/User",
            "/Schemas",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group",
        ] {
            let (s, d) = call(&app, &tok, Method::GET, &at(rest), None).await;
            assert_eq!(s, StatusCode::OK, "{} {d}", at(rest));
        }

        // Deletes.
        let (s, _) = call(
            &app,
            &tok,
            Method::DELETE,
            &at(&format!("/Groups/{gid}")),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = call(
            &app,
            &tok,
            Method::DELETE,
            &at(&format!("/Users/{uid}")),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, b) = call(&app, &tok, Method::GET, &at(&format!("/Users/{uid}")), None).await;
        assert_scim_error(s, &b, 404, None);
    }
}

#[tokio::test]
async fn ids_stay_exact_and_unknown_endpoints_stay_scim_404s() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("exact").await;
    let u = app.create_user(&tok, "exact@example.com").await;
    let uid = id(&u);
    assert_ne!(uid, uid.to_uppercase(), "the test needs an id with letters");

    let (s, _) = call(
        &app,
        &tok,
        Method::GET,
        &format!("/scim/v2/users/{uid}/"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = call(
        &app,
        &tok,
        Method::GET,
        &format!("/scim/v2/Users/{}", uid.to_uppercase()),
        None,
    )
    .await;
    assert_scim_error(s, &b, 404, None);

    for path in [
        "/scim/v2/",
        "/scim/v2//",
        "/scim/v2/Widgets/",
        "/scim/v2/us-ers",
        "/scim/v2/Bulk/.search",
    ] {
        let (s, b) = call(&app, &tok, Method::GET, path, None).await;
        assert_scim_error(s, &b, 404, None);
    }
    // A known endpoint in another case still refuses a method it does not serve.
    let (s, _) = call(&app, &tok, Method::DELETE, "/scim/v2/users/", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn admin_paths_forgive_a_trailing_slash() {
    let app = TestApp::spawn().await;
    let (s, t) = app
        .admin(Method::POST, "/tenants/", Some(json!({"name": "slash"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let (s, l) = app.admin(Method::GET, "/tenants/", None).await;
    assert_eq!(s, StatusCode::OK, "{l}");
    let (s, t) = app.admin(Method::GET, "/tenants/slash//", None).await;
    assert_eq!((s, &t["name"]), (StatusCode::OK, &json!("slash")), "{t}");
    let (s, tok) = app
        .admin(Method::POST, "/tenants/slash/tokens/", None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{tok}");
    // An empty segment in the middle is not dropped: it could name an empty parameter.
    let (s, _) = app.admin(Method::GET, "/tenants//tokens", None).await;
    assert_ne!(s, StatusCode::OK);
}

/// Unknown admin and product endpoints, and known ones asked with a method they do not serve,
/// answer the API's JSON 404 at every depth (routes are matched in nested scopes).
#[tokio::test]
async fn unknown_admin_and_product_endpoints_answer_json_404s() {
    let app = TestApp::spawn().await;
    let (tid, _) = app.tenant("nowhere").await;
    let (s, l) = app
        .admin(
            Method::POST,
            &format!("/tenants/{tid}/licenses"),
            Some(json!({"name": "pro", "seats": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    for (m, path) in [
        (Method::GET, "/nothing".to_owned()),
        (Method::GET, format!("/tenants/{tid}/nothing")),
        (Method::GET, format!("/tenants/{tid}/licenses/pro/nothing")),
        (
            Method::GET,
            format!("/tenants/{tid}/licenses/pro/seats/a/b/c"),
        ),
        (Method::DELETE, format!("/tenants/{tid}/status")),
        (Method::PUT, format!("/tenants/{tid}/licenses")),
    ] {
        let (s, b) = app.admin(m.clone(), &path, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {path}: {b}");
        assert_eq!(b["error"], "not_found", "{m} {path}: {b}");
    }
    let (s, b) = app
        .admin(Method::GET, &format!("/tenants/{tid}/licenses/pro"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let r = app
        .client
        .get(format!(
            "{}/product/v1/tenants/{tid}/licenses/pro/nothing",
            app.address
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"], "not_found", "{b}");
}
