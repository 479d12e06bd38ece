//! One schema story: a fresh database on each engine, created by the store itself, has the same
//! tables, columns, nullability, indexes (their columns and uniqueness) and foreign keys, but
//! for the short list of intended differences below. A table or column added to one schema and
//! not the other fails here.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

/// Whether this binary runs the suites on PostgreSQL (see `support/postgres.rs`).
#[allow(dead_code)]
pub const ON_POSTGRES: bool = true;

#[path = "support/postgres.rs"]
mod postgres_support;

use std::collections::BTreeSet;

/// What differs on purpose, as `engine: item` lines of the catalogue below.
const INTENDED: &[&str] = &[
    // PostgreSQL keeps its version in a table (SQLite: `PRAGMA user_version`).
    "postgres: table schema_version",
    "postgres: column schema_version.version not null",
    // A user's group references on the user's row, kept by triggers (PostgreSQL reads a user
    // in one index lookup; SQLite reads the memberships, as cheap in-process).
    "postgres: column users.group_refs not null",
    // Commit marks: the outcome of a commit whose connection was lost (SQLite has no
    // connection to lose).
    "postgres: table commit_marks",
    "postgres: column commit_marks.mark not null",
    "postgres: column commit_marks.at not null",
    "postgres: index commit_marks(at)",
    "postgres: unique index commit_marks(mark)",
    // Several nodes: a tenant's waitlist stamp and its reconcile lease live in the database
    // (one SQLite process keeps the stamp in memory and has no other node to lease from).
    "postgres: column tenants.last_order not null",
    "postgres: column tenants.reconcile_lease not null",
    // Names unique case-insensitively: SQLite's NOCASE column, PostgreSQL's index on lower().
    "sqlite: unique index tenants(name)",
    "postgres: unique index tenants((expression))",
    "sqlite: unique index licenses(tenant,name)",
    "postgres: unique index licenses(tenant,(expression))",
];

/// The catalogue of a SQLite database, one line per fact.
fn sqlite_catalogue(path: &std::path::Path) -> BTreeSet<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut out = BTreeSet::new();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in tables {
        out.insert(format!("table {t}"));
        let mut st = c.prepare(&format!("PRAGMA table_info({t})")).unwrap();
        let cols: Vec<(String, bool, bool)> = st
            .query_map([], |r| {
                Ok((
                    r.get(1)?,
                    r.get::<_, i64>(3)? != 0,
                    r.get::<_, i64>(5)? != 0,
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let pk: Vec<String> = cols.iter().filter(|c| c.2).map(|c| c.0.clone()).collect();
        for (name, notnull, in_pk) in &cols {
            // A primary key column is never null, whatever SQLite's table_info says of it.
            let nn = if *notnull || *in_pk { " not null" } else { "" };
            out.insert(format!("column {t}.{name}{nn}"));
        }
        if !pk.is_empty() {
            out.insert(format!("unique index {t}({})", pk.join(",")));
        }
        let mut st = c.prepare(&format!("PRAGMA index_list({t})")).unwrap();
        let indexes: Vec<(String, bool, String)> = st
            .query_map([], |r| Ok((r.get(1)?, r.get::<_, i64>(2)? != 0, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (name, unique, origin) in indexes {
            if origin == "pk" {
                continue;
            }
            let mut st = c.prepare(&format!("PRAGMA index_info({name})")).unwrap();
            let cols: Vec<String> = st
                .query_map([], |r| r.get::<_, Option<String>>(2))
                .unwrap()
                .map(|c| c.unwrap().unwrap_or_else(|| "(expression)".into()))
                .collect();
            let u = if unique { "unique " } else { "" };
            out.insert(format!("{u}index {t}({})", cols.join(",")));
        }
        let mut st = c.prepare(&format!("PRAGMA foreign_key_list({t})")).unwrap();
        let fks: Vec<(String, String)> = st
            .query_map([], |r| Ok((r.get(3)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (from, to) in fks {
            out.insert(format!("foreign key {t}.{from} -> {to}"));
        }
    }
    out
}

/// The catalogue of a PostgreSQL database, in the same form.
fn postgres_catalogue(url: &str) -> BTreeSet<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut out = BTreeSet::new();
    for r in c
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )
        .unwrap()
    {
        out.insert(format!("table {}", r.get::<_, String>(0)));
    }
    for r in c
        .query(
            "SELECT table_name, column_name, is_nullable FROM information_schema.columns WHERE table_schema = current_schema()",
            &[],
        )
        .unwrap()
    {
        let (t, col, nullable): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        let nn = if nullable == "NO" { " not null" } else { "" };
        out.insert(format!("column {t}.{col}{nn}"));
    }
    for r in c
        .query(
            "SELECT t.relname, i.indisunique,
                    array_to_string(ARRAY(SELECT coalesce(a.attname, '(expression)')
                        FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                        LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum AND k.attnum > 0
                        ORDER BY k.n), ',')
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace s ON s.oid = t.relnamespace
             WHERE s.nspname = current_schema()",
            &[],
        )
        .unwrap()
    {
        let (t, unique, cols): (String, bool, String) = (r.get(0), r.get(1), r.get(2));
        let u = if unique { "unique " } else { "" };
        out.insert(format!("{u}index {t}({cols})"));
    }
    for r in c
        .query(
            "SELECT tc.table_name, kcu.column_name, ccu.table_name
             FROM information_schema.table_constraints tc
             JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema
             JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema
             WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()",
            &[],
        )
        .unwrap()
    {
        let (t, from, to): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        out.insert(format!("foreign key {t}.{from} -> {to}"));
    }
    out
}

#[test]
fn both_engines_create_the_same_schema_but_for_the_intended_differences() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("parity.db");
    let url = postgres_support::cluster().database();
    // Each engine's schema as the store itself creates it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for db in [file.clone(), std::path::PathBuf::from(&url)] {
        runtime.block_on(async {
            let store = seatkeeper::store::Store::open(&db).unwrap();
            store.close();
        });
    }
    let sqlite = sqlite_catalogue(&file);
    let postgres = postgres_catalogue(&url);
    let mut unexpected = Vec::new();
    for line in sqlite.difference(&postgres) {
        let item = format!("sqlite: {line}");
        if !INTENDED.contains(&item.as_str()) {
            unexpected.push(item);
        }
    }
    for line in postgres.difference(&sqlite) {
        let item = format!("postgres: {line}");
        if !INTENDED.contains(&item.as_str()) {
            unexpected.push(item);
        }
    }
    let stale: Vec<&&str> = INTENDED
        .iter()
        .filter(|i| {
            let (engine, line) = i.split_once(": ").unwrap();
            let (mine, other) = match engine {
                "sqlite" => (&sqlite, &postgres),
                _ => (&postgres, &sqlite),
            };
            !mine.contains(line) || other.contains(line)
        })
        .collect();
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "the schemas differ beyond the intended list:\n{}\nintended differences no longer there:\n{stale:#?}",
        unexpected.join("\n")
    );
}
