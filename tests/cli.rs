//! The command line, run as the real binary against a real database: a SQLite file here, a
//! database of its own in a real PostgreSQL cluster in `tests/pg_cli.rs` (the verbs that copy a
//! SQLite file, `backup` and `restore`, and the test that tampers with the file directly run on
//! SQLite only).

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

use std::process::Command;

use serde_json::Value;

/// Whether this binary runs on PostgreSQL (see `support/postgres.rs`).
#[allow(dead_code)]
pub const ON_POSTGRES: bool = false;

#[path = "support/cli.rs"]
mod cli_support;
#[path = "support/postgres.rs"]
pub mod postgres_support;

/// Runs `seatkeeper ARGS` on the database `db` names: the file, or on PostgreSQL a database of
/// the test cluster that stands for it (the same one for the same path).
fn seatkeeper(db: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    if postgres_support::selected() {
        let url = postgres_support::cluster().database_for(db);
        cli_support::cli(std::path::Path::new(&url), args)
    } else {
        cli_support::cli(db, args)
    }
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn admin_verbs_work_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let (ok, out, err) = seatkeeper(
        &db,
        &["tenant", "create", "acme", "--notify", "ops@acme.test"],
    );
    assert!(ok, "{err}");
    assert_eq!(json(&out)["name"], "acme");
    let (ok, token, err) = seatkeeper(&db, &["token", "issue", "acme"]);
    assert!(ok, "{err}");
    assert!(token.trim().starts_with("skt_"), "{token}");
    assert!(err.contains("shown once"));
    let (ok, out, _) = seatkeeper(&db, &["token", "list", "acme"]);
    assert!(
        ok && !out.contains(token.trim()),
        "the list never shows the secret"
    );
    let token_id = json(&out)[0]["id"].as_str().unwrap().to_owned();

    let (ok, out, err) = seatkeeper(
        &db,
        &[
            "license",
            "create",
            "acme",
            "pro",
            "--seats",
            "3",
            "--group",
            "Sales",
            "--grace-seconds",
            "600",
        ],
    );
    assert!(ok, "{err}");
    let l = json(&out);
    assert_eq!(
        (l["seats"].as_i64(), l["grace_seconds"].as_i64()),
        (Some(3), Some(600))
    );
    assert_eq!(l["groups"][0]["pending"], true);
    let (ok, out, err) = seatkeeper(
        &db,
        &[
            "license",
            "set",
            "acme",
            "pro",
            "--seats",
            "5",
            "--on-capacity-lowered",
            "block_newest",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(json(&out)["on_capacity_lowered"], "block_newest");
    let (ok, out, _) = seatkeeper(&db, &["license", "show", "acme"]);
    assert!(ok);
    assert_eq!(json(&out).as_array().unwrap().len(), 1);
    let (ok, out, _) = seatkeeper(&db, &["license", "seats", "acme", "pro"]);
    assert!(ok);
    assert_eq!(json(&out)["capacity"], 5);
    let (ok, out, err) = seatkeeper(&db, &["license", "preview", "acme", "pro", "--seats", "1"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["capacity"], 1);
    // Reservations and ceilings: --reserve/--max name the license's groups (its current ones
    // when no --group is given); a bad one is refused with the store's words.
    let (ok, out, err) = seatkeeper(
        &db,
        &[
            "license",
            "set",
            "acme",
            "pro",
            "--reserve",
            "Sales=2",
            "--max",
            "Sales=4",
        ],
    );
    assert!(ok, "{err}");
    let g = &json(&out)["groups"][0];
    assert_eq!(
        (g["reserve"].as_i64(), g["max"].as_i64()),
        (Some(2), Some(4)),
        "{out}"
    );
    let (ok, _, err) = seatkeeper(&db, &["license", "set", "acme", "pro", "--seats", "1"]);
    assert!(!ok && err.contains("more than the license's 1"), "{err}");
    let (ok, _, err) = seatkeeper(&db, &["license", "set", "acme", "pro", "--max", "Ops=1"]);
    assert!(!ok && err.contains("no group named"), "{err}");
    let (ok, out, err) = seatkeeper(
        &db,
        &["license", "set", "acme", "pro", "--max", "Sales=none"],
    );
    assert!(ok, "{err}");
    assert!(json(&out)["groups"][0]["max"].is_null(), "{out}");
    let (ok, out, _) = seatkeeper(&db, &["reconcile", "acme"]);
    assert!(ok);
    assert_eq!(json(&out)["repaired"], 0);
    let (ok, out, _) = seatkeeper(&db, &["status", "acme"]);
    assert!(ok);
    assert_eq!(
        json(&out)["pending"]["selectors"][0]["displayName"],
        "Sales"
    );

    let (ok, _, err) = seatkeeper(&db, &["token", "revoke", "acme", &token_id]);
    assert!(ok, "{err}");
    let (ok, _, err) = seatkeeper(&db, &["license", "show", "acme", "nope"]);
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, _, err) = seatkeeper(&db, &["tenant", "create", "acme"]);
    assert!(!ok && err.contains("exists"), "{err}");
}

#[test]
fn a_bad_configuration_value_stops_start_up_naming_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
        .args(["serve"])
        .env("SEATKEEPER_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`listen`") && err.contains("SEATKEEPER_LISTEN"),
        "{err}"
    );
}

#[test]
fn backup_restore_and_check() {
    if postgres_support::selected() {
        return; // a SQLite file's own verbs, or tampering with the file
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    assert!(seatkeeper(&db, &["tenant", "create", "acme"]).0);
    assert!(seatkeeper(&db, &["license", "create", "acme", "pro", "--seats", "2"]).0);
    let (ok, out, err) = seatkeeper(&db, &["check"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["ok"], true);

    let copy = dir.path().join("copy.db");
    let (ok, _, err) = seatkeeper(&db, &["backup", copy.to_str().unwrap()]);
    assert!(ok, "{err}");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a backup is its owner's only: {mode:o}");
    }
    let (ok, _, err) = seatkeeper(&db, &["backup", copy.to_str().unwrap()]);
    assert!(
        !ok && err.contains("exists"),
        "a backup never overwrites: {err}"
    );

    // Restore into a fresh location and find the data there.
    let restored = dir.path().join("restored.db");
    let (ok, _, err) = seatkeeper(&restored, &["restore", copy.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, out, _) = seatkeeper(&restored, &["license", "show", "acme", "pro"]);
    assert!(ok);
    assert_eq!(json(&out)["seats"], 2);

    // Damage the seat counters behind seatkeeper's back: check finds it.
    let c = rusqlite_open(&db);
    c.execute_batch("UPDATE licenses SET granted = 5").unwrap();
    drop(c);
    let (ok, out, _) = seatkeeper(&db, &["check"]);
    assert!(!ok);
    assert_eq!(json(&out)["problems"][0]["kind"], "counters");
}

fn rusqlite_open(p: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(p).unwrap()
}

#[test]
fn notification_verbs_work_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    assert!(seatkeeper(&db, &["tenant", "create", "acme"]).0);
    let (ok, _, err) = seatkeeper(&db, &["notifications", "test", "acme"]);
    assert!(!ok && err.contains("no notify recipients"), "{err}");
    let (ok, out, err) = seatkeeper(
        &db,
        &[
            "tenant",
            "set",
            "acme",
            "--notify",
            "a@acme.test",
            "--notify",
            "b@acme.test",
            "--expected-sync-seconds",
            "3600",
        ],
    );
    assert!(ok, "{err}");
    let t = json(&out);
    assert_eq!(
        t["notify"],
        serde_json::json!(["a@acme.test", "b@acme.test"])
    );
    assert_eq!(t["expected_sync_seconds"], 3600);
    let (ok, _, err) = seatkeeper(
        &db,
        &["tenant", "set", "acme", "--notify", "not-an-address"],
    );
    assert!(!ok && err.contains("not an email address"), "{err}");

    let (ok, out, err) = seatkeeper(&db, &["notifications", "test", "acme"]);
    assert!(ok, "{err}");
    let queued = json(&out);
    assert_eq!(queued["kind"], "test");
    assert_eq!(queued["state"], "closing", "queued for the daemon's sender");
    let (ok, out, _) = seatkeeper(&db, &["notifications", "list", "acme"]);
    assert!(ok);
    assert_eq!(json(&out)["counts"]["closing"], 1);
    let id = queued["id"].to_string();
    let (ok, out, _) = seatkeeper(&db, &["notifications", "show", "acme", &id]);
    assert!(ok);
    assert_eq!(
        json(&out)["events"][0]["to"],
        serde_json::json!(["a@acme.test", "b@acme.test"])
    );
    let (ok, _, err) = seatkeeper(&db, &["notifications", "retry", "acme", &id]);
    assert!(!ok && err.contains("only those can be retried"), "{err}");
    let (ok, token, err) = seatkeeper(&db, &["admin-token", "issue", "acme"]);
    assert!(ok && token.trim().starts_with("ska_"), "{err}");
    let (ok, out, _) = seatkeeper(&db, &["admin-token", "list", "acme"]);
    assert!(ok && !out.contains(token.trim()));
    let admin_id = json(&out)[0]["id"].as_str().unwrap().to_owned();
    assert!(seatkeeper(&db, &["admin-token", "revoke", "acme", &admin_id]).0);
    let (ok, out, _) = seatkeeper(&db, &["tenant", "set", "acme", "--no-notify"]);
    assert!(ok);
    assert_eq!(json(&out)["notify"], serde_json::json!([]));

    // Recipients limited to kinds, the time zone and the weekly summary.
    let (ok, out, err) = seatkeeper(
        &db,
        &[
            "tenant",
            "set",
            "acme",
            "--notify",
            "cfo@acme.test:threshold,weekly_summary",
            "--time-zone",
            "America/New_York",
            "--weekly-summary",
            "friday:16",
        ],
    );
    assert!(ok, "{err}");
    let t = json(&out);
    assert_eq!(
        t["notify"],
        serde_json::json!([{"email": "cfo@acme.test", "kinds": ["threshold", "weekly_summary"]}])
    );
    assert_eq!(t["time_zone"], "America/New_York");
    assert_eq!(
        t["weekly_summary"],
        serde_json::json!({"day": "friday", "hour": 16})
    );
    for bad in [
        &["--time-zone", "Moon/Base"][..],
        &["--weekly-summary", "friday:25"],
        &["--notify", "cfo@acme.test:nonsense"],
    ] {
        let mut args = vec!["tenant", "set", "acme"];
        args.extend_from_slice(bad);
        let (ok, _, err) = seatkeeper(&db, &args);
        assert!(!ok && !err.is_empty(), "{bad:?}");
    }
    let (ok, out, _) = seatkeeper(&db, &["tenant", "set", "acme", "--weekly-summary", "off"]);
    assert!(ok);
    assert_eq!(json(&out)["weekly_summary"], serde_json::Value::Null);

    // Product tokens: a tenant's and the operator's, listed without secrets, revoked.
    let (ok, token, err) = seatkeeper(&db, &["product-token", "issue", "acme"]);
    assert!(ok && token.trim().starts_with("skp_"), "{err}");
    let (ok, op, err) = seatkeeper(&db, &["product-token", "issue", "--operator"]);
    assert!(ok && op.trim().starts_with("skp_"), "{err}");
    let (ok, out, _) = seatkeeper(&db, &["product-token", "list", "acme"]);
    assert!(ok && !out.contains(token.trim()));
    let listed = json(&out);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let pid = listed[0]["id"].as_str().unwrap().to_owned();
    let (ok, out, _) = seatkeeper(&db, &["product-token", "list", "--operator"]);
    assert!(ok && json(&out).as_array().unwrap().len() == 1);
    assert!(seatkeeper(&db, &["product-token", "revoke", "acme", &pid]).0);
    let (ok, out, _) = seatkeeper(&db, &["product-token", "list", "acme"]);
    assert!(ok && json(&out)[0]["revoked"].is_string(), "{out}");
    let (ok, _, err) = seatkeeper(&db, &["product-token", "revoke", "--operator", "nope"]);
    assert!(!ok && err.contains("not found"), "{err}");

    // Webhooks: registered (the URL vetted as by the API), listed without the secret, rotated,
    // disabled and enabled, their deliveries listed, removed; the operator's beside.
    let add = |args: &[&str]| {
        let mut a = vec!["webhook", "add"];
        a.extend_from_slice(args);
        seatkeeper(&db, &a)
    };
    let (ok, _, err) = add(&["acme", "--url", "https://127.0.0.1/hook"]);
    assert!(
        !ok && err.contains("internal address") && !err.contains("127.0.0.1"),
        "{err}"
    );
    let (ok, _, err) = add(&["acme", "--url", "http://93.184.216.34/hook"]);
    assert!(!ok && err.contains("https only"), "{err}");
    let (ok, _, err) = add(&[
        "acme",
        "--url",
        "https://93.184.216.34/hook",
        "--event",
        "seat.eaten",
    ]);
    assert!(!ok && err.contains("unknown event type"), "{err}");
    let (ok, secret, err) = add(&[
        "acme",
        "--url",
        "https://93.184.216.34/hook",
        "--event",
        "seat.granted",
        "--event",
        "seat.blocked",
    ]);
    assert!(ok && secret.trim().starts_with("whsec_"), "{err}");
    let (ok, op_secret, err) = add(&["--operator", "--url", "https://93.184.216.34/all"]);
    assert!(ok && op_secret.trim().starts_with("whsec_"), "{err}");
    let (ok, out, _) = seatkeeper(&db, &["webhook", "list", "acme"]);
    assert!(ok && !out.contains(secret.trim()), "{out}");
    let hooks = json(&out);
    assert_eq!(
        hooks[0]["events"],
        serde_json::json!(["seat.granted", "seat.blocked"])
    );
    let hook = hooks[0]["id"].as_str().unwrap().to_owned();
    let (ok, out, _) = seatkeeper(&db, &["webhook", "list", "--operator"]);
    assert!(ok && json(&out).as_array().unwrap().len() == 1, "{out}");
    let (ok, rotated, err) = seatkeeper(&db, &["webhook", "rotate", "acme", &hook]);
    assert!(
        ok && rotated.trim().starts_with("whsec_") && rotated != secret,
        "{err}"
    );
    let (ok, out, _) = seatkeeper(&db, &["webhook", "disable", "acme", &hook]);
    assert!(ok && json(&out)["enabled"] == false, "{out}");
    let (ok, out, _) = seatkeeper(&db, &["webhook", "enable", "acme", &hook]);
    assert!(ok && json(&out)["enabled"] == true, "{out}");
    let (ok, out, _) = seatkeeper(&db, &["webhook", "deliveries", "acme", &hook]);
    assert!(ok && json(&out).as_array().is_some(), "{out}");
    let (ok, _, err) = seatkeeper(&db, &["webhook", "redeliver", "acme", &hook, "msg_x"]);
    assert!(!ok && err.contains("not found"), "{err}");
    assert!(seatkeeper(&db, &["webhook", "remove", "acme", &hook]).0);
    let (ok, out, _) = seatkeeper(&db, &["webhook", "list", "acme"]);
    assert!(ok && json(&out).as_array().unwrap().is_empty(), "{out}");
    let (ok, _, err) = seatkeeper(&db, &["webhook", "remove", "acme"]);
    assert!(!ok && err.contains("expected 1 id"), "{err}");
}

/// The audit log's hash chain: whole after CLI writes (each naming the OS user), broken and
/// named when an entry is changed or removed in the database behind seatkeeper's back.
#[test]
fn audit_verify_names_the_first_tampered_entry() {
    if postgres_support::selected() {
        return; // a SQLite file's own verbs, or tampering with the file
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    assert!(seatkeeper(&db, &["tenant", "create", "acme"]).0);
    assert!(seatkeeper(&db, &["token", "issue", "acme"]).0);
    assert!(seatkeeper(&db, &["product-token", "issue", "acme"]).0);
    assert!(
        seatkeeper(
            &db,
            &["tenant", "set", "acme", "--expected-sync-seconds", "3600"]
        )
        .0
    );
    assert!(seatkeeper(&db, &["product-token", "issue", "--operator"]).0);
    let (ok, out, err) = seatkeeper(&db, &["audit", "verify"]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("5 entries checked in 2 chains"), "{err}");
    let (ok, out, _) = seatkeeper(&db, &["audit", "list", "acme"]);
    assert!(ok);
    let page = json(&out);
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{page}");
    assert!(
        entries[0]["actor"].as_str().unwrap().starts_with("cli:"),
        "{page}"
    );
    let (ok, out, _) = seatkeeper(&db, &["audit", "export", "acme", "--action", "tenant."]);
    assert!(ok);
    assert_eq!(out.lines().count(), 2, "{out}");
    let (ok, out, _) = seatkeeper(&db, &["audit", "list", "--operator"]);
    assert!(
        ok && json(&out)["entries"][0]["action"] == "product_token.issue",
        "{out}"
    );

    // Changed behind seatkeeper's back: the entry is named.
    let seq: i64 = entries[2]["cursor"].as_i64().unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE audit SET detail = '{\"token\":\"forged\"}' WHERE seq = ?",
        [seq],
    )
    .unwrap();
    let (ok, _, err) = seatkeeper(&db, &["audit", "verify", "acme"]);
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("broken at entry {seq}")) && err.contains("was changed"),
        "{err}"
    );
    // Removed: the entry after the gap no longer links.
    let copy = dir.path().join("audit2.db");
    drop(conn);
    std::fs::copy(&db, &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    conn.execute("DELETE FROM audit WHERE seq = ?", [seq - 1])
        .unwrap();
    let (ok, _, err) = seatkeeper(&copy, &["audit", "verify", "acme"]);
    assert!(!ok, "{err}");
    assert!(err.contains("does not link"), "{err}");
}

#[test]
fn hold_verbs_list_show_and_decide_the_circuit_breakers_holds() {
    use seatkeeper::scim::patch;
    use seatkeeper::scim::resource::normalize;
    use seatkeeper::scim::schema::ResourceKind;
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    assert!(seatkeeper(&db, &["tenant", "create", "acme"]).0);
    // Every directory-made loss is held.
    let (ok, out, err) = seatkeeper(
        &db,
        &[
            "tenant",
            "set",
            "acme",
            "--hold-threshold-percent",
            "0",
            "--hold-min-seats",
            "1",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(json(&out)["hold_min_seats"], 1);
    let (ok, _, err) = seatkeeper(
        &db,
        &["tenant", "set", "acme", "--hold-threshold-percent", "101"],
    );
    assert!(!ok && err.contains("hold_threshold_percent"), "{err}");
    let (ok, _, err) = seatkeeper(
        &db,
        &[
            "license",
            "create",
            "acme",
            "pro",
            "--seats",
            "2",
            "--group",
            "Team",
            "--grace-seconds",
            "600",
        ],
    );
    assert!(ok, "{err}");
    // The directory, as a provider would send it: two users in Team, then one removed.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let database = if postgres_support::selected() {
            std::path::PathBuf::from(postgres_support::cluster().database_for(&db))
        } else {
            db.clone()
        };
        let store = seatkeeper::store::Store::open(&database).unwrap();
        let t = store.tenant("acme").await.unwrap().key;
        let mut ids = Vec::new();
        for name in ["ann", "bob"] {
            let (doc, _) = normalize(ResourceKind::User, &json!({"userName": name})).unwrap();
            ids.push(store.create_user(t, doc).await.unwrap().id);
        }
        let members: Vec<_> = ids.iter().map(|i| json!({"value": i})).collect();
        let (doc, members) = normalize(
            ResourceKind::Group,
            &json!({"displayName": "Team", "members": members}),
        )
        .unwrap();
        let g = store.create_group(t, doc, members).await.unwrap();
        let ops = patch::parse(json!({"Operations": [
            {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])}]}))
        .unwrap();
        store.patch_group(t, g.id, ops, None).await.unwrap();
        store.close();
    });
    let (ok, out, err) = seatkeeper(&db, &["hold", "list", "acme", "--state", "open"]);
    assert!(ok, "{err}");
    let holds = json(&out)["holds"].as_array().unwrap().clone();
    assert_eq!(holds.len(), 1, "{out}");
    assert_eq!(holds[0]["held"], 1);
    let id = holds[0]["id"].to_string();
    let (ok, out, _) = seatkeeper(&db, &["hold", "show", "acme", &id]);
    assert!(ok);
    assert_eq!(json(&out)["users"][0]["userName"], "ann");
    assert_eq!(
        json(&out)["users"][0]["change"],
        "removed from the group Team"
    );
    let (ok, out, err) = seatkeeper(&db, &["hold", "reject", "acme", &id]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["state"], "rejected");
    assert!(json(&out)["decidedBy"]
        .as_str()
        .unwrap()
        .starts_with("cli:"));
    let (ok, _, err) = seatkeeper(&db, &["hold", "reject", "acme", &id]);
    assert!(!ok && err.contains("rejected"), "{err}");
    let (ok, out, err) = seatkeeper(&db, &["hold", "approve", "acme", &id]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["state"], "approved");
    let (ok, out, _) = seatkeeper(&db, &["license", "seats", "acme", "pro"]);
    assert!(ok);
    assert_eq!(
        (
            json(&out)["granted"].as_i64(),
            json(&out)["releasing"].as_i64()
        ),
        (Some(1), Some(1))
    );
    // Capacity planning from the shell.
    let (ok, out, err) = seatkeeper(&db, &["license", "true-up", "acme", "pro"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["peakInUse"], 2, "{out}");
    let (ok, out, _) = seatkeeper(&db, &["license", "true-up", "acme", "pro", "--csv"]);
    assert!(
        ok && out.starts_with("day,seats,overage,peak_in_use,over\n"),
        "{out}"
    );
    let (ok, out, err) = seatkeeper(&db, &["license", "forecast", "acme", "pro"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["capacity"], 2, "{out}");
    let (ok, _, err) = seatkeeper(&db, &["hold", "show", "acme", "424242"]);
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, _, err) = seatkeeper(&db, &["check"]);
    assert!(ok, "{err}");
}

/// Runs `statement` on the database behind the CLI's back (a state only the daemon's sender
/// would reach).
fn behind_the_back(db: &std::path::Path, statement: &str) {
    if postgres_support::selected() {
        let url = postgres_support::cluster().database_for(db);
        let statement = statement.to_owned();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute(&statement).unwrap();
        })
        .join()
        .unwrap();
    } else {
        rusqlite_open(db).execute_batch(statement).unwrap();
    }
}

/// The verbs of a licensing admin's day and of offboarding, on a directory a provider sent:
/// overrides, a grant by hand, a user's seats, the reclaim preview, the event feed, a token
/// rotated, a notification dismissed, a license deleted, and a tenant listed, shown, exported,
/// closed and reopened.
#[test]
fn seat_and_offboarding_verbs_work_from_the_shell() {
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    assert!(
        seatkeeper(
            &db,
            &["tenant", "create", "acme", "--notify", "it@acme.test"]
        )
        .0
    );
    let (ok, _, err) = seatkeeper(
        &db,
        &[
            "license",
            "create",
            "acme",
            "pro",
            "--seats",
            "1",
            "--group",
            "Team",
            "--auto-promote",
            "false",
        ],
    );
    assert!(ok, "{err}");
    team(&db, &["ann", "bob", "cat"]);
    // ann holds the one seat; bob and cat wait.
    let (ok, out, err) = seatkeeper(&db, &["license", "user-seats", "acme", "bob"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)[0]["state"], "blocked", "{out}");
    assert_eq!(json(&out)[0]["license"]["name"], "pro", "{out}");
    let (ok, out, err) = seatkeeper(&db, &["license", "override", "acme", "pro", "cat", "pin"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["pinned"], true, "{out}");
    let (ok, out, err) = seatkeeper(
        &db,
        &["license", "override", "acme", "pro", "ann", "exclude"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        json(&out)["state"],
        "none",
        "excluded: the seat is freed: {out}"
    );
    let (ok, out, err) = seatkeeper(&db, &["license", "overrides", "acme", "pro"]);
    assert!(ok, "{err}");
    let kinds: Vec<(String, String)> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["userName"].as_str().unwrap().to_owned(),
                o["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(kinds.contains(&("cat".into(), "pin".into())), "{out}");
    assert!(kinds.contains(&("ann".into(), "exclude".into())), "{out}");
    assert!(
        json(&out)[0]["setBy"].as_str().unwrap().starts_with("cli:"),
        "{out}"
    );
    // The freed seat waits for an admin (auto-promotion off): granted by hand, out of order.
    let (ok, out, err) = seatkeeper(&db, &["license", "grant", "acme", "pro", "bob"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["state"], "granted", "{out}");
    let (ok, _, err) = seatkeeper(&db, &["license", "grant", "acme", "pro", "cat"]);
    assert!(!ok && err.contains("seat"), "no seat is free: {err}");
    let (ok, out, err) = seatkeeper(&db, &["license", "override", "acme", "pro", "ann", "none"]);
    assert!(ok, "{err}");
    assert_eq!(
        json(&out)["state"],
        "blocked",
        "back on the waitlist: {out}"
    );
    let (ok, out, err) = seatkeeper(&db, &["license", "reclaim", "acme", "pro"]);
    assert!(ok, "{err}");
    assert!(json(&out).is_object(), "{out}");
    let (ok, out, err) = seatkeeper(&db, &["events", "acme"]);
    assert!(ok, "{err}");
    let events = json(&out);
    let types: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect();
    assert!(
        types.contains(&"granted") && types.contains(&"blocked"),
        "{out}"
    );
    assert!(
        types.contains(&"released"),
        "the exclusion freed ann's seat: {out}"
    );

    // A SCIM token rotated: a new secret; both listed until the old one's overlap ends.
    let (ok, _, err) = seatkeeper(&db, &["token", "issue", "acme"]);
    assert!(ok, "{err}");
    let (_, out, _) = seatkeeper(&db, &["token", "list", "acme"]);
    let old = json(&out)[0]["id"].as_str().unwrap().to_owned();
    let (ok, new, err) = seatkeeper(&db, &["token", "rotate", "acme", &old, "--overlap", "60"]);
    assert!(ok && new.trim().starts_with("skt_"), "{err}");
    let (_, out, _) = seatkeeper(&db, &["token", "list", "acme"]);
    assert_eq!(json(&out).as_array().unwrap().len(), 2, "{out}");

    // A failed notification dismissed (only a failed or skipped one can be).
    let (ok, out, err) = seatkeeper(&db, &["notifications", "test", "acme"]);
    assert!(ok, "{err}");
    let id = json(&out)["id"].to_string();
    let (ok, _, err) = seatkeeper(&db, &["notifications", "dismiss", "acme", &id]);
    assert!(!ok && err.contains("only those can be dismissed"), "{err}");
    behind_the_back(
        &db,
        &format!("UPDATE outbox SET state = 'failed' WHERE id = {id}"),
    );
    let (ok, out, err) = seatkeeper(&db, &["notifications", "dismiss", "acme", &id]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["state"], "dismissed");

    // The provider's failing requests (none sent here: the view is empty, the rate 0).
    let (ok, out, err) = seatkeeper(&db, &["tenant", "failures", "acme"]);
    assert!(ok, "{err}");
    let h = json(&out);
    assert_eq!(
        (h["days"].as_i64(), h["failed"].as_i64()),
        (Some(7), Some(0)),
        "{out}"
    );
    assert!(
        h["quarantine"]["rule"].as_str().unwrap().contains("40 %"),
        "{out}"
    );

    // The license deleted, then the tenant listed, shown, exported, closed and reopened.
    let (ok, _, err) = seatkeeper(&db, &["license", "delete", "acme", "pro"]);
    assert!(ok, "{err}");
    let (ok, _, err) = seatkeeper(&db, &["license", "show", "acme", "pro"]);
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, out, _) = seatkeeper(&db, &["tenant", "list"]);
    assert!(ok);
    assert_eq!(json(&out)[0]["name"], "acme");
    let (ok, out, _) = seatkeeper(&db, &["tenant", "show", "acme"]);
    assert!(ok);
    assert_eq!(json(&out)["notify"], json!(["it@acme.test"]));
    let (ok, out, err) = seatkeeper(&db, &["tenant", "export", "acme"]);
    assert!(ok, "{err}");
    let users = out.lines().filter(|l| json(l)["type"] == "user").count();
    assert_eq!(users, 3, "{out}");
    let (ok, _, err) = seatkeeper(&db, &["tenant", "delete", "acme"]);
    assert!(ok, "{err}");
    let (_, out, _) = seatkeeper(&db, &["tenant", "show", "acme"]);
    assert!(json(&out)["closed"].as_str().is_some(), "{out}");
    let (ok, _, err) = seatkeeper(&db, &["tenant", "restore", "acme"]);
    assert!(ok, "{err}");
    let (_, out, _) = seatkeeper(&db, &["tenant", "show", "acme"]);
    assert!(
        json(&out).get("closed").is_none_or(Value::is_null),
        "reopened: {out}"
    );
    let (ok, _, err) = seatkeeper(&db, &["tenant", "delete", "acme", "--purge-now"]);
    assert!(ok, "{err}");
    let (_, out, _) = seatkeeper(&db, &["tenant", "list"]);
    assert_eq!(json(&out).as_array().unwrap().len(), 0, "purged: {out}");
}

/// Users `names` (in that order) in a group Team of tenant acme, as a provider would send them,
/// written through the store behind the CLI's back.
fn team(db: &std::path::Path, names: &[&str]) {
    use seatkeeper::scim::resource::normalize;
    use seatkeeper::scim::schema::ResourceKind;
    use serde_json::json;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let database = if postgres_support::selected() {
            std::path::PathBuf::from(postgres_support::cluster().database_for(db))
        } else {
            db.to_path_buf()
        };
        let store = seatkeeper::store::Store::open(&database).unwrap();
        let t = store.tenant("acme").await.unwrap().key;
        let mut ids = Vec::new();
        for name in names {
            let (doc, _) = normalize(ResourceKind::User, &json!({"userName": name})).unwrap();
            ids.push(store.create_user(t, doc).await.unwrap().id);
        }
        let members: Vec<_> = ids.iter().map(|i| json!({"value": i})).collect();
        let (doc, members) = normalize(
            ResourceKind::Group,
            &json!({"displayName": "Team", "members": members}),
        )
        .unwrap();
        store.create_group(t, doc, members).await.unwrap();
        store.close();
    });
}

/// Shadow mode from the shell: a license created observing, today's holders carried over from
/// a file, the shadow report, and the switch to enforce that keeps them.
#[test]
fn a_cut_over_is_run_from_the_shell() {
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    assert!(seatkeeper(&db, &["tenant", "create", "acme"]).0);
    let (ok, _, err) = seatkeeper(
        &db,
        &[
            "license", "create", "acme", "pro", "--seats", "1", "--group", "Team", "--mode",
            "observe",
        ],
    );
    assert!(ok, "{err}");
    // ann arrives first, so observing gives her the one seat.
    team(&db, &["ann", "bob"]);
    // bob holds the seat today.
    let file = dir.path().join("holders.csv");
    std::fs::write(&file, "userName\nbob\nnobody\n").unwrap();
    let (ok, out, err) = seatkeeper(
        &db,
        &["license", "holders", "acme", "pro", file.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let r = json(&out);
    assert_eq!(r["added"], 1, "{out}");
    assert_eq!(r["unmatched"], json!(["nobody"]), "{out}");
    let (ok, out, err) = seatkeeper(&db, &["license", "shadow", "acme", "pro"]);
    assert!(ok, "{err}");
    let shadow = json(&out);
    assert_eq!(
        shadow["counts"],
        json!({"keep": 1, "gain": 0, "wait": 1, "lose": 0}),
        "{out}"
    );
    assert_eq!(shadow["keep"][0]["userName"], "bob");
    assert_eq!(shadow["wait"][0]["userName"], "ann");
    let (ok, out, err) = seatkeeper(&db, &["license", "set", "acme", "pro", "--mode", "enforce"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["mode"], "enforce");
    let (ok, out, _) = seatkeeper(&db, &["license", "seats", "acme", "pro", "--user", "bob"]);
    assert!(ok);
    assert_eq!(json(&out)["state"], "granted", "{out}");
    // Carrying over is for a license that observes.
    let (ok, _, err) = seatkeeper(
        &db,
        &["license", "holders", "acme", "pro", file.to_str().unwrap()],
    );
    assert!(!ok && err.contains("observe"), "{err}");
}
