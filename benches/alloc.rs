//! Allocation benchmark (prints figures; not a timed test). Run with:
//!
//!     cargo bench --bench alloc                # 100,000 users (the size)
//!     SEATKEEPER_BENCH_USERS=20000 cargo bench --bench alloc
//!
//! It drives the real store (SQLite file in WAL mode, synchronous=FULL, the writer thread with
//! group commit, the allocator inside each transaction) directly, without HTTP, and prints:
//! - the time to load N users and a group of N members;
//! - the time to select that N-member group for a license (allocating N seats or waitlist places);
//! - the per-request cost of a membership add with allocation, sequential and concurrent.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

use std::time::Instant;

use futures_util::future::join_all;
use seatkeeper::scim::patch;
use seatkeeper::scim::resource::{normalize, MemberRef};
use seatkeeper::scim::schema::ResourceKind;
use seatkeeper::store::{LicenseChange, LicenseSpec, Selector, Store};
use serde_json::json;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("SEATKEEPER_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::var("SEATKEEPER_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let tmp = tempfile::tempdir_in(&dir).unwrap();
    let db = tmp.path().join("bench.db");
    let store = Store::open(&db).unwrap();
    let tenant = store
        .create_tenant(
            "bench".into(),
            vec![],
            seatkeeper::store::events::audit::Actor::cli(),
        )
        .await
        .unwrap()
        .key;
    println!(
        "seatkeeper allocation benchmark: {n} users, database {}",
        db.display()
    );

    let t = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(512) {
        let futs = chunk.iter().map(|i| {
            let (doc, _) = normalize(
                ResourceKind::User,
                &json!({"userName": format!("user{i:07}@bench.test"), "active": true}),
            )
            .unwrap();
            store.create_user(tenant, doc)
        });
        for u in join_all(futs).await {
            ids.push(u.unwrap().id);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "create users:            {n} in {secs:.2} s ({:.0}/s, 512 concurrent)",
        n as f64 / secs
    );

    let t = Instant::now();
    let members: Vec<MemberRef> = ids
        .iter()
        .map(|id| MemberRef {
            value: id.clone(),
            display: None,
            kind: Some("User".into()),
        })
        .collect();
    let (doc, _) = normalize(ResourceKind::Group, &json!({"displayName": "Everyone"})).unwrap();
    let group = store.create_group(tenant, doc, members).await.unwrap().id;
    println!("create group of {n}:  {:.2} s", t.elapsed().as_secs_f64());

    let seats = (n / 2) as i64;
    let spec = LicenseSpec {
        name: "pro".into(),
        seats,
        groups: vec![],
        auto_promote: true,
        grace_seconds: 0,
        on_capacity_lowered: seatkeeper::alloc::OnLowered::Keep,
        free_on_delete: true,
        notify: vec![],
        reclaim_idle_days: 0,
        reclaim_notice_days: 3,
        overage: 0,
        overage_percent: 0,
        mode: Default::default(),
    };
    store
        .create_license(tenant, spec, seatkeeper::store::events::audit::Actor::cli())
        .await
        .unwrap();
    let t = Instant::now();
    let l = store
        .update_license(
            tenant,
            "pro".into(),
            LicenseChange {
                groups: Some(vec![Selector::Id(group.clone()).into()]),
                ..Default::default()
            },
            seatkeeper::store::events::audit::Actor::cli(),
        )
        .await
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "select {n}-member group: {secs:.2} s ({} granted, {} blocked; {:.1} µs per user)",
        l.granted,
        l.blocked,
        secs * 1e6 / n as f64
    );

    // Membership adds with allocation, at N users: new users join the selected group.
    let extra = 2000;
    let mut new_ids = Vec::new();
    for i in 0..extra {
        let (doc, _) = normalize(
            ResourceKind::User,
            &json!({"userName": format!("late{i:05}@bench.test")}),
        )
        .unwrap();
        new_ids.push(store.create_user(tenant, doc).await.unwrap().id);
    }
    let add = |id: &str| {
        patch::parse(
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]}),
        )
        .unwrap()
    };
    let mut lat = Vec::new();
    let t = Instant::now();
    for id in &new_ids[..extra / 2] {
        let s = Instant::now();
        store
            .patch_group(tenant, group.clone(), add(id), None)
            .await
            .unwrap();
        lat.push(s.elapsed().as_secs_f64() * 1e3);
    }
    let secs = t.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "membership add, 1 at a time:  {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        (extra / 2) as f64 / secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    let t = Instant::now();
    let futs = new_ids[extra / 2..]
        .iter()
        .map(|id| store.patch_group(tenant, group.clone(), add(id), None));
    for r in join_all(futs).await {
        r.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "membership add, {} concurrent: {:.0}/s",
        extra / 2,
        (extra / 2) as f64 / secs
    );
    let l = store.license(tenant, "pro".into()).await.unwrap();
    assert!(l.granted + l.releasing <= l.seats, "the invariant holds");
    println!(
        "final: {} granted, {} blocked of {} seats",
        l.granted, l.blocked, l.seats
    );
    store.close();
}
