//! The writer is shared fairly between tenants, on both engines: while one tenant's large job
//! holds its writer and it floods more writes, another tenant's write is taken at its turn
//! (SQLite: right after the job in progress; PostgreSQL: at once), and the flood past the
//! tenant's queue is answered `Busy` (503 with `Retry-After` at the edge) after
//! `WRITE_QUEUE_WAIT` instead of waiting without end.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

use std::sync::Arc;
use std::time::{Duration, Instant};

use seatkeeper::store::{Error, Lock, Store, WRITE_QUEUE_PER_TENANT, WRITE_QUEUE_WAIT};

#[allow(dead_code)]
const ON_POSTGRES: bool = false;
#[path = "support/postgres.rs"]
mod postgres_support;

async fn flood_while_a_large_job_runs(store: Store) {
    let a = store
        .create_tenant(
            "flooding".into(),
            vec![],
            seatkeeper::store::events::audit::Actor::cli(),
        )
        .await
        .unwrap()
        .key;
    let b = store
        .create_tenant(
            "quiet".into(),
            vec![],
            seatkeeper::store::events::audit::Actor::cli(),
        )
        .await
        .unwrap()
        .key;
    let start = Instant::now();
    // Tenant A's large job holds its writer for longer than a write waits for room.
    let hold = WRITE_QUEUE_WAIT + Duration::from_secs(1);
    let large = {
        let s = store.clone();
        tokio::spawn(async move {
            s.write_alone(Lock::Tenant(a), move |_| {
                std::thread::sleep(hold);
                Ok(())
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A floods: more small writes than its queue holds.
    let done_a = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut flood = Vec::new();
    for _ in 0..WRITE_QUEUE_PER_TENANT + 100 {
        let (s, done) = (store.clone(), done_a.clone());
        flood.push(tokio::spawn(async move {
            let r = s.write(Lock::Tenant(a), |_| Ok(())).await;
            done.lock().unwrap().push(start.elapsed());
            r
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // B writes once, behind all of that.
    let r = store.write(Lock::Tenant(b), |_| Ok(())).await;
    let b_done = start.elapsed();
    assert!(r.is_ok(), "{r:?}");
    large.await.unwrap().unwrap();
    let mut busy = 0;
    for f in flood {
        match f.await.unwrap() {
            Ok(()) => {}
            Err(Error::Busy) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        busy >= 1,
        "the flood past A's queue is refused, not kept waiting"
    );
    let a_last = done_a.lock().unwrap().iter().max().copied().unwrap();
    if store.engine() == seatkeeper::store::engine::sql::Engine::Postgres {
        // Tenants do not wait for each other at all.
        assert!(b_done < hold, "B waited {b_done:?} behind A's lock");
    } else {
        // One writer: B waits for the job in progress, then goes before A's queue.
        assert!(
            b_done < hold + Duration::from_millis(500),
            "B took {b_done:?}"
        );
    }
    assert!(
        b_done < a_last,
        "B ({b_done:?}) before A's flood ({a_last:?})"
    );
    store.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite_one_tenants_flood_does_not_queue_another_tenants_write() {
    let dir = tempfile::tempdir().unwrap();
    flood_while_a_large_job_runs(Store::open(&dir.path().join("db")).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_one_tenants_flood_does_not_queue_another_tenants_write() {
    let url = postgres_support::cluster().database();
    flood_while_a_large_job_runs(Store::open(std::path::Path::new(&url)).unwrap()).await;
}
