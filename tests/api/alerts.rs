//! The operator's alerting recipe names only what the daemon exports: every `seatkeeper_*`
//! metric in `deploy/prometheus/seatkeeper-alerts.yml` and `deploy/grafana/seatkeeper-dashboard.json`
//! is in `/metrics` of a daemon with a tenant, a license and a webhook (`promtool check rules`
//! checks the rules' syntax in CI, `.ci/deploy-check`).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

/// The metric names in `text` (a histogram's series named by its family).
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("seatkeeper_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[start..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(family.to_owned());
        i = end;
    }
    out
}

#[tokio::test]
async fn every_metric_the_alerts_and_the_dashboard_name_is_exported() {
    let app = TestApp::spawn().await;
    let (t, tok) = app.tenant("acme").await;
    let u = app.create_user(&tok, "ann@acme.example").await;
    app.create_group(&tok, "Sales", &[&id(&u)]).await;
    app.license(&t, "Suite", 5, "Sales").await;
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/tenants/{t}/webhooks"),
            Some(json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let exported = names(&app.metrics().await);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    for file in [
        "prometheus/seatkeeper-alerts.yml",
        "grafana/seatkeeper-dashboard.json",
    ] {
        let named = names(&std::fs::read_to_string(root.join(file)).unwrap());
        assert!(!named.is_empty(), "{file} names seatkeeper metrics");
        let missing: Vec<&String> = named.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{file} names metrics the daemon does not export: {missing:?}"
        );
    }
    app.stop().await;
}
