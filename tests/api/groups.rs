//! SCIM Groups over HTTP: the lifecycle with members, users' group references as memberships
//! and names change, nested groups typed as groups, input
//! errors, PATCH answered 200 or 204 (`group_patch_response`), and a large PUT written as its
//! difference.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::users::urlencode;

fn member_ids(g: &Value) -> Vec<String> {
    let mut v: Vec<String> = g["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn group_lifecycle_with_members() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("groups").await;
    let u: Vec<String> = futures_ids(&app, &tok, 4).await;
    let g = app.create_group(&tok, "Sales", &[&u[0], &u[1]]).await;
    let gid = id(&g);
    assert_eq!(member_ids(&g), sorted(&[&u[0], &u[1]]));
    let first = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["value"] == u[0].as_str())
        .unwrap();
    assert_eq!(first["type"], "User");
    assert!(first["$ref"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/Users/{}", u[0])));

    let (_, lean) = app
        .scim(
            &tok,
            Method::GET,
            &format!("/Groups/{gid}?excludedAttributes=members"),
            None,
        )
        .await;
    assert!(lean.get("members").is_none());
    assert_eq!(lean["displayName"], "Sales");

    let (s, p) = app
        .scim(&tok, Method::PATCH, &format!("/Groups/{gid}"), Some(patch(json!([
            {"op": "add", "path": "members", "value": [{"value": u[2]}, {"value": u[3]}, {"value": u[0]}]},
            {"op": "remove", "path": format!("members[value eq \"{}\"]", u[1])}
        ]))))
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(member_ids(&p), sorted(&[&u[0], &u[2], &u[3]]));

    let (_, found) = app
        .scim(
            &tok,
            Method::GET,
            &format!(
                "/Groups?filter={}&excludedAttributes=members",
                urlencode(&format!("members.value eq \"{}\"", u[2]))
            ),
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 1);
    let (_, byname) = app
        .scim(
            &tok,
            Method::GET,
            &format!("/Groups?filter={}", urlencode("displayName eq \"sales\"")),
            None,
        )
        .await;
    assert_eq!(byname["totalResults"], 1);
    let (_, user) = app
        .scim(&tok, Method::GET, &format!("/Users/{}", u[2]), None)
        .await;
    assert_eq!(user["groups"][0]["value"], gid.as_str());
    assert_eq!(user["groups"][0]["display"], "Sales");

    // Deleting a user removes it from the group.
    app.scim(&tok, Method::DELETE, &format!("/Users/{}", u[3]), None)
        .await;
    let (_, after) = app
        .scim(&tok, Method::GET, &format!("/Groups/{gid}"), None)
        .await;
    assert_eq!(member_ids(&after), sorted(&[&u[0], &u[2]]));

    // PUT replaces the member list.
    let (s, put) = app
        .scim(&tok, Method::PUT, &format!("/Groups/{gid}"), Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Sales EMEA", "members": [{"value": u[1]}]})))
        .await;
    assert_eq!(s, StatusCode::OK, "{put}");
    assert_eq!(member_ids(&put), vec![u[1].clone()]);
    assert_eq!(put["displayName"], "Sales EMEA");

    let (s, _) = app
        .scim(&tok, Method::DELETE, &format!("/Groups/{gid}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, user) = app
        .scim(&tok, Method::GET, &format!("/Users/{}", u[1]), None)
        .await;
    assert!(user.get("groups").is_none());
}

/// The `display` of each of a user's group references, read by id and by a `userName eq`
/// filter (two read paths; on PostgreSQL both read the references kept on the user's row).
async fn group_names_of(app: &TestApp, tok: &str, user: &Value) -> Vec<String> {
    let names = |u: &Value| -> Vec<String> {
        u["groups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|g| g["display"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (_, by_id) = app
        .scim(tok, Method::GET, &format!("/Users/{}", id(user)), None)
        .await;
    let filter = format!("userName eq \"{}\"", user["userName"].as_str().unwrap());
    let (_, listed) = app
        .scim(
            tok,
            Method::GET,
            &format!("/Users?filter={}", urlencode(&filter)),
            None,
        )
        .await;
    assert_eq!(names(&by_id), names(&listed["Resources"][0]), "{listed}");
    names(&by_id)
}

/// PATCHes group `g` with `ops`; asserts it succeeded.
async fn patch_group(app: &TestApp, tok: &str, g: &Value, ops: Value) {
    let (s, body) = app
        .scim(
            tok,
            Method::PATCH,
            &format!("/Groups/{}", id(g)),
            Some(patch(ops)),
        )
        .await;
    assert!(s.is_success(), "{s} {body}");
}

#[tokio::test]
async fn users_read_their_groups_as_memberships_and_names_change() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("refs").await;
    let a = app.create_user(&tok, "ann@refs.test").await;
    let b = app.create_user(&tok, "bob@refs.test").await;
    let alpha = app.create_group(&tok, "Alpha", &[&id(&a)]).await;
    let beta = app.create_group(&tok, "Beta", &[&id(&a), &id(&b)]).await;
    assert_eq!(group_names_of(&app, &tok, &a).await, ["Alpha", "Beta"]);
    assert_eq!(group_names_of(&app, &tok, &b).await, ["Beta"]);

    // A rename by PATCH reaches every member's references, in display-name order.
    patch_group(
        &app,
        &tok,
        &alpha,
        json!([
            {"op": "replace", "path": "displayName", "value": "Zeta"}
        ]),
    )
    .await;
    assert_eq!(group_names_of(&app, &tok, &a).await, ["Beta", "Zeta"]);

    // A member removed; another added by PATCH.
    patch_group(
        &app,
        &tok,
        &beta,
        json!([
            {"op": "remove", "path": format!("members[value eq \"{}\"]", id(&a))},
        ]),
    )
    .await;
    patch_group(
        &app,
        &tok,
        &alpha,
        json!([
            {"op": "add", "path": "members", "value": [{"value": id(&b)}]},
        ]),
    )
    .await;
    assert_eq!(group_names_of(&app, &tok, &a).await, ["Zeta"]);
    assert_eq!(group_names_of(&app, &tok, &b).await, ["Beta", "Zeta"]);

    // A PUT renames and replaces the members at once.
    let (s, _) = app
        .scim(&tok, Method::PUT, &format!("/Groups/{}", id(&beta)), Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Gamma", "members": [{"value": id(&a)}]})))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(group_names_of(&app, &tok, &a).await, ["Gamma", "Zeta"]);
    assert_eq!(group_names_of(&app, &tok, &b).await, ["Zeta"]);

    // A deleted group leaves no reference behind.
    let (s, _) = app
        .scim(
            &tok,
            Method::DELETE,
            &format!("/Groups/{}", id(&alpha)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(group_names_of(&app, &tok, &a).await, ["Gamma"]);
    assert!(group_names_of(&app, &tok, &b).await.is_empty());
}

#[tokio::test]
async fn nested_groups_are_typed_as_groups() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("nested").await;
    let inner = app.create_group(&tok, "Inner", &[]).await;
    let outer = app.create_group(&tok, "Outer", &[&id(&inner)]).await;
    assert_eq!(outer["members"][0]["type"], "Group");
    assert!(outer["members"][0]["$ref"]
        .as_str()
        .unwrap()
        .contains("/Groups/"));
}

#[tokio::test]
async fn group_input_errors() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("group-errors").await;
    let (s, b) = app
        .scim(
            &tok,
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_SCHEMA]})),
        )
        .await;
    assert_scim_error(s, &b, 400, Some("invalidValue"));
    let (s, b) = app
        .scim(
            &tok,
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "x", "members": [{"value": ""}]})),
        )
        .await;
    assert_scim_error(s, &b, 400, Some("invalidValue"));
    let g = app.create_group(&tok, "G", &[]).await;
    let (s, b) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{}", id(&g)),
            Some(patch(
                json!([{"op": "replace", "path": "members[value eq \"x\"].display", "value": "y"}]),
            )),
        )
        .await;
    assert_scim_error(s, &b, 400, Some("invalidPath"));
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn futures_ids(app: &TestApp, tok: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(id(&app
            .create_user(tok, &format!("member{i}@example.com"))
            .await));
    }
    out
}

#[tokio::test]
async fn group_patch_can_answer_204_as_entra_and_okta_document() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("seatkeeper.db"));
    c.group_patch_response = seatkeeper::config::GroupPatchResponse::NoContent;
    let app = TestApp::spawn_with(c).await;
    let (_, tok) = app.tenant("t").await;
    let u = id(&app.create_user(&tok, "a@example.com").await);
    let g = id(&app.create_group(&tok, "G", &[]).await);
    let body = patch(json!([{"op": "add", "path": "members", "value": [{"value": u}]}]));
    let r = app
        .client
        .patch(format!("{}/scim/v2/Groups/{g}", app.address))
        .bearer_auth(&tok)
        .header("Content-Type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["etag"], "W/\"2\"");
    // Asking for attributes still gets the resource.
    let (s, v) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{g}?attributes=members"),
            Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "H"}]),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["members"][0]["value"], u.as_str());
}

#[tokio::test]
async fn group_patch_answers_the_resource_for_small_groups_and_204_for_large_ones() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("t").await;
    let u = id(&app.create_user(&tok, "a@example.com").await);
    let small = id(&app.create_group(&tok, "Small", &[]).await);
    // 1,000 members (references not provisioned yet count as members: they are kept pending).
    let many: Vec<String> = (0..1000).map(|i| format!("not-yet-{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let large = id(&app.create_group(&tok, "Large", &refs).await);
    let add = patch(json!([{"op": "add", "path": "members", "value": [{"value": u}]}]));

    let (s, v) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{small}"),
            Some(add.clone()),
        )
        .await;
    assert_eq!(
        (s, v["members"][0]["value"].as_str()),
        (StatusCode::OK, Some(u.as_str()))
    );

    // The 1,001st member tips the answer to 204 with the new version.
    let r = app
        .client
        .patch(format!("{}/scim/v2/Groups/{large}", app.address))
        .bearer_auth(&tok)
        .header("Content-Type", "application/scim+json")
        .body(add.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["etag"], "W/\"2\"");
    let (_, g) = app
        .scim(&tok, Method::GET, &format!("/Groups/{large}"), None)
        .await;
    assert_eq!(g["members"].as_array().unwrap().len(), 1001);

    // Asked for, the attributes come back whatever the size.
    let (s, v) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{large}?attributes=displayName"),
            Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "Larger"}]),
            )),
        )
        .await;
    assert_eq!(
        (s, v["displayName"].as_str()),
        (StatusCode::OK, Some("Larger"))
    );
    assert!(v.get("members").is_none());
}

#[tokio::test]
async fn a_large_put_writes_its_difference_and_allocates_the_members_it_changes() {
    // A PUT of more than 1,000 members is compared with the stored list on a read snapshot and
    // the writer applies only the difference: the result must be exactly the new list, with
    // one version step, and the seats must follow the members it added and removed.
    let app = TestApp::spawn().await;
    let (tenant, tok) = app.tenant("large-put").await;
    let u: Vec<String> = futures_ids(&app, &tok, 3).await;
    let pending = |from: usize, to: usize| -> Vec<String> {
        (from..to).map(|i| format!("not-yet-{i}")).collect()
    };
    let mut first = pending(0, 1500);
    first.extend([u[0].clone(), u[1].clone()]);
    let refs: Vec<&str> = first.iter().map(String::as_str).collect();
    let g = id(&app.create_group(&tok, "Everyone", &refs).await);
    app.license(&tenant, "pro", 10, "Everyone").await;
    let seat = |user: String| {
        let app = &app;
        let tenant = tenant.clone();
        async move {
            app.admin(
                Method::GET,
                &format!("/tenants/{tenant}/licenses/pro/seats/member{user}@example.com"),
                None,
            )
            .await
            .1["state"]
                .as_str()
                .unwrap_or("none")
                .to_owned()
        }
    };
    assert_eq!(seat("0".into()).await, "granted");
    assert_eq!(seat("2".into()).await, "none");

    // Keep 1,200 of the pending references, add 300 new ones and user 2, drop user 1 (and
    // user 0 stays).
    let mut second = pending(300, 1800);
    second.extend([u[0].clone(), u[2].clone()]);
    let members: Vec<Value> = second.iter().map(|v| json!({"value": v})).collect();
    let path = format!("/Groups/{g}");
    let put = || {
        app.scim(
            &tok,
            Method::PUT,
            &path,
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Everyone", "members": members})),
        )
    };
    let (s, v) = put().await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut want = second.clone();
    want.sort();
    assert_eq!(member_ids(&v), want);
    assert_eq!(v["meta"]["version"], "W/\"2\"");
    let (_, read) = app
        .scim(&tok, Method::GET, &format!("/Groups/{g}"), None)
        .await;
    assert_eq!(member_ids(&read), want);
    assert_eq!(seat("0".into()).await, "granted");
    assert_eq!(seat("2".into()).await, "granted");
    // User 1 left the group: its seat goes into its grace period (7,200 s by default).
    assert_eq!(seat("1".into()).await, "releasing");

    // The same list again changes nothing, not even the version.
    let (s, v) = put().await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["meta"]["version"], "W/\"2\"");
    assert_eq!(member_ids(&v), want);
}

#[tokio::test]
async fn a_group_name_or_external_id_is_its_own_in_the_tenant() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tenant("acme").await;
    let (other_t, other_tok) = app.tenant("other").await;
    let create = |tok: String, name: &'static str, ext: Option<&'static str>| {
        let app = &app;
        async move {
            let mut body = json!({"schemas": [GROUP_SCHEMA], "displayName": name});
            if let Some(e) = ext {
                body["externalId"] = json!(e);
            }
            app.scim(&tok, Method::POST, "/Groups", Some(body)).await
        }
    };
    let (s, designers) = create(tok.clone(), "Designers", Some("ext-1")).await;
    assert_eq!(s, StatusCode::CREATED);
    // Microsoft's validator sends this twin and expects 409.
    let (s, e) = create(tok.clone(), "Designers", Some("ext-1")).await;
    assert_scim_error(s, &e, 409, Some("uniqueness"));
    let (s, e) = create(tok.clone(), "DESIGNERS", None).await;
    assert_scim_error(s, &e, 409, Some("uniqueness"));
    let (s, e) = create(tok.clone(), "Someone else", Some("ext-1")).await;
    assert_scim_error(s, &e, 409, Some("uniqueness"));
    // Another tenant has names of its own.
    let (s, _) = create(other_tok.clone(), "Designers", Some("ext-1")).await;
    assert_eq!(s, StatusCode::CREATED);
    // A rename or a replace into a taken name is refused too; into its own name, not.
    let (s, sales) = create(tok.clone(), "Sales", None).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, e) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{}", id(&sales)),
            Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "designers"}]),
            )),
        )
        .await;
    assert_scim_error(s, &e, 409, Some("uniqueness"));
    let (s, e) = app
        .scim(
            &tok,
            Method::PUT,
            &format!("/Groups/{}", id(&sales)),
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Designers"})),
        )
        .await;
    assert_scim_error(s, &e, 409, Some("uniqueness"));
    let (s, _) = app
        .scim(
            &tok,
            Method::PUT,
            &format!("/Groups/{}", id(&designers)),
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "designers", "externalId": "ext-1"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a group keeps its own name in another case"
    );
    let (_, found) = app
        .scim(
            &tok,
            Method::GET,
            "/Groups?filter=displayName eq \"Designers\"",
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 1, "{found}");

    // A tenant whose directory really holds same-named groups allows them; a selector by such
    // a name is ambiguous and selects neither until the admin picks one by id.
    let (s, v) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{other_t}"),
            Some(json!({"group_names_unique": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["group_names_unique"], false);
    let u = app.create_user(&other_tok, "ann@other.example").await;
    let (s, twin) = app
        .scim(
            &other_tok,
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Designers", "members": [{"value": id(&u)}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{twin}");
    let l = app.license(&other_t, "Suite", 5, "Designers").await;
    assert_eq!(l["groups"][0]["ambiguous"], true, "{l}");
    assert_eq!(l["groups"][0]["pending"], true, "{l}");
    assert_eq!(l["granted"], 0, "an ambiguous name selects no one: {l}");
    // Turning uniqueness back on is refused while twins exist.
    let (s, e) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{other_t}"),
            Some(json!({"group_names_unique": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    // By id, the admin picks one.
    let (s, l) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/{other_t}/licenses/Suite"),
            Some(json!({"groups": [{"id": id(&twin)}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(l["granted"], 1, "{l}");
    app.stop().await;
}

/// Members are added and removed a slice of rows per statement: a PATCH of 250 members (past
/// two slices, with repeats and members already there) and a removal of 150 (some never
/// members) leave exactly the set they should, typed, with the license following.
#[tokio::test]
async fn member_patches_past_a_slice_keep_exactly_the_right_set() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("slices").await;
    let mut ids = Vec::new();
    for i in 0..250 {
        ids.push(id(&app
            .create_user(&tok, &format!("m{i:03}@slices.example"))
            .await));
    }
    let nested = app.create_group(&tok, "Nested", &[]).await;
    let g = app.create_group(&tok, "Big", &[&ids[0]]).await;
    app.license(&t, "Suite", 300, "Big").await;
    let mut add: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
    add.push(json!({"value": ids[5]}));
    add.push(json!({"value": id(&nested)}));
    let (s, b) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{}", id(&g)),
            Some(patch(
                json!([{"op": "add", "path": "members", "value": add}]),
            )),
        )
        .await;
    assert!(s.is_success(), "{b}");
    async fn members(app: &TestApp, tok: &str, g: &str) -> Vec<Value> {
        let (_, v) = app
            .scim(tok, Method::GET, &format!("/Groups/{g}"), None)
            .await;
        v["members"].as_array().cloned().unwrap_or_default()
    }
    let m = members(&app, &tok, &id(&g)).await;
    assert_eq!(m.len(), 251, "250 users and the nested group, once each");
    let typed = m.iter().find(|x| x["value"] == id(&nested)).unwrap();
    assert_eq!(typed["type"], "Group", "{typed}");
    let (_, l) = app
        .admin(Method::GET, &format!("/tenants/{t}/licenses/Suite"), None)
        .await;
    assert_eq!(l["granted"], 250, "{l}");
    let gone: Vec<Value> = ids[..140]
        .iter()
        .map(|i| json!({"value": i}))
        .chain((0..10).map(|i| json!({"value": format!("never-{i}")})))
        .collect();
    let (s, b) = app
        .scim(
            &tok,
            Method::PATCH,
            &format!("/Groups/{}", id(&g)),
            Some(patch(
                json!([{"op": "remove", "path": "members", "value": gone}]),
            )),
        )
        .await;
    assert!(s.is_success(), "{b}");
    assert_eq!(members(&app, &tok, &id(&g)).await.len(), 111);
    let (_, l) = app
        .admin(Method::GET, &format!("/tenants/{t}/licenses/Suite"), None)
        .await;
    // 140 lost their entitlement: each is releasing, or held on their seat by the circuit
    // breaker (a mass loss), which counts as granted.
    let (granted, releasing, held) = (
        l["granted"].as_i64().unwrap(),
        l["releasing"].as_i64().unwrap(),
        l["held"].as_i64().unwrap(),
    );
    assert_eq!((granted + releasing, releasing + held), (250, 140), "{l}");
    app.stop().await;
}
