//! The published contract: the admin and product APIs' OpenAPI 3.1 documents are served, name
//! every route the daemon registers (and only those: each documented route is answered by its
//! handler, not by the "no such endpoint" fallback), and pass a real validator
//! (`openapi-spec-validator` from PyPI).

use std::path::Path;
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

fn validator() -> std::path::PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi");
    super::python::venv("openapi-venv", &here.join("requirements.txt"))
}

/// A client that opens a connection per request: the test's long probes outlast the
/// server's keep-alive, and a pooled connection closed meanwhile would fail the next request.
fn fresh() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn fetch(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let r = fresh()
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    let s = r.status();
    record_route_hit("GET", r.url().path(), s);
    (s, r.json().await.unwrap_or(Value::Null))
}

/// `path` with its parameters filled: the tenant by name, anything else a placeholder.
fn concrete(path: &str, tenant: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{tenant}" => tenant.to_owned(),
            s if s.starts_with('{') => "x".to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn check(
    app: &TestApp,
    doc_path: &str,
    table: Vec<(actix_web::http::Method, String)>,
    token: &str,
    tenant: &str,
) {
    let (s, doc) = fetch(app, doc_path).await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, item) in paths {
        documented += item.as_object().unwrap().len();
        for method in item.as_object().unwrap().keys() {
            assert!(
                table
                    .iter()
                    .any(|(m, p)| p == path && m.as_str().eq_ignore_ascii_case(method)),
                "{method} {path} is documented but not registered"
            );
        }
    }
    assert_eq!(documented, table.len(), "every route once");
    for (m, path) in &table {
        let op = &paths[path.as_str()][m.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{m} {path} is not documented");
        assert!(op["summary"].is_string(), "{m} {path}: {op}");
        assert!(
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with('2')),
            "{m} {path} documents no success: {op}"
        );
        // Served by its own handler: whatever it answers, not the fallback for unknown paths.
        let url = concrete(path, tenant);
        let method = Method::from_bytes(m.as_str().as_bytes()).unwrap();
        // A connection of its own each: some refusals close theirs before reading the body.
        let r = fresh()
            .request(method, format!("{}{url}", app.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            !message.starts_with("no such"),
            "{m} {url} is documented but answered {body}"
        );
    }
    // The document passes the validator.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let python = tokio::task::spawn_blocking(validator).await.unwrap();
    let out = Command::new(python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{doc_path} does not validate:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_admin_and_product_documents_cover_every_route_and_validate() {
    let app = TestApp::spawn().await;
    let (tenant, _) = app.tenant("Contoso").await;
    let (_, product) = app.admin(Method::POST, "/product-tokens", None).await;
    let product = product["token"].as_str().unwrap().to_owned();
    check(
        &app,
        "/admin/v1/openapi.json",
        seatkeeper::http::admin::routes().table(),
        ADMIN_TOKEN,
        &tenant,
    )
    .await;
    check(
        &app,
        "/product/v1/openapi.json",
        seatkeeper::http::product::routes().table(),
        &product,
        &tenant,
    )
    .await;
    // Types the product relies on are described, not left open.
    let (_, doc) = fetch(&app, "/product/v1/openapi.json").await;
    let seat = &doc["components"]["schemas"]["ProductSeat"];
    for field in ["state", "position", "since", "releaseAt", "lastUsed"] {
        assert!(seat["properties"][field].is_object(), "{seat}");
    }
    let _: &Value = seat;
}
