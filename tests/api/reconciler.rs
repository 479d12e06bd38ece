//! The reconciler as the daemon runs it: its own periodic timer, tenants isolated from each
//! other's failures, stored counters repaired.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// Makes every reconciler pass of the tenant `name` fail inside the database (a trigger on the
/// write that ends a pass), on either engine: a stand-in for whatever breaks one tenant.
fn break_passes_of(database: &std::path::Path, name: &str) {
    if database.to_str().unwrap().starts_with("postgres") {
        run_sql(
            database,
            &format!(
                "CREATE FUNCTION injected_failure() RETURNS trigger LANGUAGE plpgsql AS
                   $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
                 CREATE TRIGGER broken BEFORE UPDATE OF last_reconcile ON tenants
                   FOR EACH ROW WHEN (NEW.name = '{name}') EXECUTE FUNCTION injected_failure();"
            ),
        );
    } else {
        run_sql(
            database,
            &format!(
                "CREATE TRIGGER broken BEFORE UPDATE OF last_reconcile ON tenants
                   WHEN NEW.name = '{name}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
            ),
        );
    }
}

/// Runs `sql` on the daemon's database from outside (damage a test repairs).
fn run_sql(database: &std::path::Path, sql: &str) {
    let db = database.to_str().unwrap();
    if db.starts_with("postgres") {
        // The synchronous client runs a runtime of its own: not on the test's.
        let (db, sql) = (db.to_owned(), sql.to_owned());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&db, postgres::NoTls).unwrap();
            c.batch_execute(&sql).unwrap();
        })
        .join()
        .unwrap();
    } else {
        rusqlite::Connection::open(db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }
}

#[tokio::test]
async fn the_periodic_pass_goes_on_past_a_failing_tenant_and_repairs_counters() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("seatkeeper.db"));
    c.reconcile_interval_seconds = 1;
    let database = c.database.clone();
    let app = TestApp::spawn_with(c).await;
    // Tenants are passed in name order: the broken one comes first.
    let (broken, _) = app.tenant("a-broken").await;
    let (healthy, tok) = app.tenant("b-healthy").await;
    app.license(&healthy, "pro", 5, "Staff").await;
    let u = app.create_user(&tok, "ann@example.com").await;
    app.create_group(&tok, "Staff", &[&id(&u)]).await;
    break_passes_of(&database, "a-broken");
    // Damage from outside: the stored counters (what the seat check and the invariant check
    // read) no longer match the seat rows.
    run_sql(
        &database,
        "UPDATE licenses SET granted = granted + 3, blocked = 2",
    );

    let mut last: Value = Value::Null;
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let (_, status) = app
            .admin(Method::GET, &format!("/tenants/{healthy}/status"), None)
            .await;
        last = status;
        if !last["last_reconcile"]["counters_repaired"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            break;
        }
    }
    let repaired = &last["last_reconcile"]["counters_repaired"][0];
    assert_eq!(repaired["license"], "pro", "{last}");
    assert_eq!(repaired["stored"], json!([4, 0, 2]), "{last}");
    assert_eq!(repaired["actual"], json!([1, 0, 0]), "{last}");
    let (_, license) = app
        .admin(
            Method::GET,
            &format!("/tenants/{healthy}/licenses/pro"),
            None,
        )
        .await;
    assert_eq!(
        (license["granted"].as_i64(), license["blocked"].as_i64()),
        (Some(1), Some(0)),
        "{license}"
    );

    // The broken tenant failed every pass without stopping the others, and the operator can
    // see it.
    let (_, status) = app
        .admin(Method::GET, &format!("/tenants/{broken}/status"), None)
        .await;
    assert!(status["last_reconcile"].is_null(), "{status}");
    let metrics = app.metrics().await;
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("seatkeeper_reconcile_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(failures >= 1, "{metrics}");
    // The drift was recorded where the tenant's admins see it.
    let (_, audit) = app
        .admin(Method::GET, &format!("/tenants/{healthy}/audit"), None)
        .await;
    assert!(audit.to_string().contains("counters_repaired"), "{audit}");
    app.stop().await;
}
