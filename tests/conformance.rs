//! Runs the public SCIM conformance checkers (scim2-tester and scim-sanity, from PyPI) against
//! the real daemon on a free port. The checkers are installed once into a virtualenv under
//! cargo's target directory (Python 3 with venv is the only prerequisite; PyPI must be reachable
//! the first time). Checks that do not apply are listed, with reasons, in
//! tests/conformance/expected-failures.txt.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

/// Whether this binary runs on PostgreSQL (see `support/postgres.rs`).
#[allow(dead_code)]
pub const ON_POSTGRES: bool = false;
#[path = "api/helpers.rs"]
#[allow(dead_code)]
pub mod helpers;
#[path = "support/postgres.rs"]
pub mod postgres_support;

#[path = "support/python.rs"]
mod python;

use std::path::{Path, PathBuf};
use std::process::Command;

use helpers::TestApp;

/// The virtualenv with the checkers, created and filled on first use.
fn venv() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    python::venv("conformance-venv", &here.join("requirements.txt"))
}

#[tokio::test(flavor = "multi_thread")]
async fn public_conformance_checkers_pass() {
    let python = tokio::task::spawn_blocking(venv).await.unwrap();
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant("conformance").await;
    let base = format!("{}/scim/v2", app.address);
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(here.join("check.py"))
            .arg(&base)
            .arg(&token)
            .arg(here.join("expected-failures.txt"))
            .output()
            .expect("the checker runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "conformance checks failed:\n{stdout}");
    assert!(
        stdout.contains("conformance: ") && stdout.contains(" 0 failed"),
        "{stdout}"
    );
    app.stop().await;
}
