//! Noisy-neighbour benchmark (prints figures; not a timed test). Run with:
//!
//!     cargo bench --bench noisy
//!     SEATKEEPER_LOAD_DATABASE=postgres://... cargo bench --bench noisy   # on PostgreSQL
//!
//! Two tenants on one daemon (the release binary, production defaults for every limit):
//! tenant B runs an Entra-like sync (create a user, add it to a selected group, check its
//! seat) in three phases: alone; with both cores kept busy by two spinning threads at the priority
//! seatkeeper gives expensive work (`SCHED_IDLE`) and no request from A, which measures the floor
//! this machine's scheduler sets; and while tenant A floods the service with everything one
//! tenant (or a stranger at B's address) can send: listings filtered and sorted on unindexed
//! attributes over A's users, PUTs of a huge group, previews of a license over it, and junk
//! tokens from the same address as B. A's client runs on a thread of its own at nice 19 (in
//! life it runs elsewhere). The three phases run in rounds (alone, busy, flooded, then again),
//! so that a drift of the machine during the run weighs on each phase alike, and each phase's
//! p99 is read from all its rounds' requests. It prints B's p50/p99 per operation in the three phases side by
//! side, how many of B's requests were refused or failed (target: none) and the p99 ratios
//! (target: within 3x of alone).
//!
//! Settings (environment): `SEATKEEPER_NOISY_USERS` (A's users, 100000),
//! `SEATKEEPER_NOISY_FLOOD` (which parts of the flood run: `filter,sort,put,preview,junk`),
//! `SEATKEEPER_NOISY_SYNC` (B's users per phase and round, 400), `SEATKEEPER_NOISY_ROUNDS`
//! (3), `SEATKEEPER_LOAD_DATABASE` (a
//! `postgres://` URL of an empty database).

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "noisy-benchmark-admin-token";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// B's concurrent provisioning connections (Entra uses a handful).
const B_CONCURRENCY: usize = 4;
/// Members in the group A PUTs over and over.
const HUGE_GROUP: usize = 20_000;
/// Different member lists A's PUTs cycle through (neighbours differ by about 2,000 members).
const PUT_BODIES: usize = 16;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

#[derive(Clone)]
struct Api {
    client: Client,
    base: String,
}

impl Api {
    fn req(&self, m: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(token)
    }

    async fn json(&self, m: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let mut r = self.req(m, path, token);
        if let Some(b) = body {
            r = r
                .header("Content-Type", "application/scim+json")
                .body(b.to_string());
        }
        let r = r.send().await.expect("answered");
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }
}

/// B's latencies per operation, and its requests that were refused or failed.
#[derive(Default)]
struct Phase {
    create: Vec<f64>,
    member_add: Vec<f64>,
    seat_check: Vec<f64>,
    failed: Vec<String>,
}

impl Phase {
    fn extend(&mut self, other: Phase) {
        self.create.extend(other.create);
        self.member_add.extend(other.member_add);
        self.seat_check.extend(other.seat_check);
        self.failed.extend(other.failed);
    }
}

fn pct(v: &[f64], q: f64) -> f64 {
    let mut l = v.to_vec();
    l.sort_by(|a, b| a.total_cmp(b));
    if l.is_empty() {
        return f64::NAN;
    }
    l[((l.len() as f64 - 1.0) * q).round() as usize] * 1000.0
}

/// B's sync: `n` users, each created, added to the selected group, and its seat checked.
async fn sync_b(api: &Api, b: &B, prefix: &str, n: usize) -> Phase {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..B_CONCURRENCY {
        let (api, b, next, prefix) = (api.clone(), b.clone(), next.clone(), prefix.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut p = Phase::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let name = format!("{prefix}{i}@b.example");
                let t = Instant::now();
                let r = api
                    .req(Method::POST, "/scim/v2/Users", &b.scim)
                    .header("Content-Type", "application/scim+json")
                    .body(json!({"schemas": [USER], "userName": name, "active": true}).to_string())
                    .send()
                    .await;
                p.create.push(t.elapsed().as_secs_f64());
                let id = match r {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
                    }
                    Ok(r) => {
                        p.failed.push(format!("create: {}", r.status()));
                        continue;
                    }
                    Err(e) => {
                        p.failed.push(format!("create: {e}"));
                        continue;
                    }
                };
                let t = Instant::now();
                let r = api
                    .req(Method::PATCH, &format!("/scim/v2/Groups/{}", b.group), &b.scim)
                    .header("Content-Type", "application/scim+json")
                    .body(
                        json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]})
                            .to_string(),
                    )
                    .send()
                    .await;
                p.member_add.push(t.elapsed().as_secs_f64());
                match r {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => p.failed.push(format!("member add: {}", r.status())),
                    Err(e) => p.failed.push(format!("member add: {e}")),
                }
                let t = Instant::now();
                let r = api
                    .req(
                        Method::GET,
                        &format!("/admin/v1/tenants/{}/licenses/pro/seats/{name}", b.tenant),
                        &b.admin,
                    )
                    .send()
                    .await;
                p.seat_check.push(t.elapsed().as_secs_f64());
                match r {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => p.failed.push(format!("seat check: {}", r.status())),
                    Err(e) => p.failed.push(format!("seat check: {e}")),
                }
            }
            p
        }));
    }
    let mut all = Phase::default();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// B's sync while both cores are kept busy at the priority seatkeeper gives expensive work
/// (`background::lower_priority`), with no request from A: the machine's floor. What B loses
/// here is the kernel's scheduling, which no server on these cores can avoid; the flood's
/// figures are read against it too.
async fn floor(api: &Api, b: &B, prefix: &str, n: usize) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                seatkeeper::background::lower_priority();
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let busy = sync_b(api, b, prefix, n).await;
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        let _ = s.join();
    }
    busy
}

/// What tenant A floods with.
struct Flood {
    a: (String, String, String),
    huge: String,
    bodies: Arc<Vec<String>>,
}

impl Flood {
    /// Runs `phase` (B's sync) while A floods, from a runtime and a connection pool of its
    /// own on another thread, as it would from another client: B's requests never wait in the
    /// benchmark's own scheduler. The flood starts 2 s before the phase and ends with it.
    async fn during(
        &self,
        api: &Api,
        phase: impl std::future::Future<Output = Phase>,
    ) -> (Phase, Vec<(String, Vec<f64>)>) {
        let stop = Arc::new(AtomicBool::new(false));
        let flooding = {
            let (base, stop) = (api.base.clone(), stop.clone());
            let (a, huge, bodies) = (self.a.clone(), self.huge.clone(), self.bodies.clone());
            std::thread::spawn(move || {
                // A's client runs on other machines in life: here its own CPU (building
                // requests, reading answers) yields to the daemon's and B's, so that the
                // figures measure what the daemon does under A's requests rather than two
                // programs sharing two cores.
                // SAFETY: setpriority and gettid have no memory-safety preconditions.
                unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
                }
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let api = Api {
                        client: Client::new(),
                        base,
                    };
                    let mut sent = Vec::new();
                    for f in flood(&api, a, huge, bodies, stop) {
                        sent.push(f.await.unwrap());
                    }
                    sent
                })
            })
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        let flooded = phase.await;
        stop.store(true, Ordering::Relaxed);
        (flooded, flooding.join().unwrap())
    }
}

#[derive(Clone)]
struct B {
    tenant: String,
    scim: String,
    admin: String,
    group: String,
}

/// A tenant with a SCIM token and a tenant admin token.
async fn tenant(api: &Api, name: &str) -> (String, String, String) {
    let t = api
        .json(
            Method::POST,
            "/admin/v1/tenants",
            ADMIN,
            Some(json!({"name": name})),
        )
        .await;
    let id = t["id"].as_str().unwrap().to_owned();
    let s = api
        .json(
            Method::POST,
            &format!("/admin/v1/tenants/{id}/tokens"),
            ADMIN,
            None,
        )
        .await;
    let a = api
        .json(
            Method::POST,
            &format!("/admin/v1/tenants/{id}/admin-tokens"),
            ADMIN,
            None,
        )
        .await;
    (
        id,
        s["token"].as_str().unwrap().to_owned(),
        a["token"].as_str().unwrap().to_owned(),
    )
}

/// One loop of A's flood: its name and the latency of each request it sent.
type Flooder = tokio::task::JoinHandle<(String, Vec<f64>)>;

/// Tenant A's flood, until `stop`: loops of one kind of request each, one at a time.
fn flood(
    api: &Api,
    a: (String, String, String),
    huge: String,
    bodies: Arc<Vec<String>>,
    stop: Arc<AtomicBool>,
) -> Vec<Flooder> {
    let (tenant, scim, admin) = a;
    let mut tasks = Vec::new();
    let kinds = std::env::var("SEATKEEPER_NOISY_FLOOD")
        .unwrap_or_else(|_| "filter,sort,put,preview,junk".into());
    let on = |k: &str| kinds.split(',').any(|x| x.trim() == k);
    let job = |name: &'static str,
               f: Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync>| {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let _ = f(lat.len()).send().await.map(|r| r.status());
                lat.push(t.elapsed().as_secs_f64());
            }
            (name.to_owned(), lat)
        })
    };
    for _ in 0..2 {
        let (api1, scim1) = (api.clone(), scim.clone());
        if on("filter") {
            tasks.push(job(
                "unindexed filter over A's users",
                Arc::new(move |i| {
                    api1.req(
                        Method::GET,
                        &format!(
                            "/scim/v2/Users?filter=title%20co%20%22{}%22&count=100",
                            i % 10
                        ),
                        &scim1,
                    )
                }),
            ));
        }
        let (api2, scim2) = (api.clone(), scim.clone());
        if on("sort") {
            tasks.push(job(
                "unindexed sort over A's users",
                Arc::new(move |i| {
                    api2.req(
                        Method::GET,
                        &format!(
                            "/scim/v2/Users?sortBy=title&startIndex={}&count=100",
                            1 + (i % 50) * 100
                        ),
                        &scim2,
                    )
                }),
            ));
        }
    }
    if on("put") {
        let (api, scim) = (api.clone(), scim.clone());
        tasks.push(job(
            "PUT of a 20,000-member group",
            Arc::new(move |i| {
                api.req(Method::PUT, &format!("/scim/v2/Groups/{huge}"), &scim)
                    .header("Content-Type", "application/scim+json")
                    .body(bodies[i % bodies.len()].clone())
            }),
        ));
    }
    if on("preview") {
        let (api, admin, tenant) = (api.clone(), admin.clone(), tenant.clone());
        tasks.push(job(
            "previews of a license over all of A's users",
            Arc::new(move |i| {
                api.req(
                    Method::POST,
                    &format!("/admin/v1/tenants/{tenant}/licenses/all/preview"),
                    &admin,
                )
                .json(&json!({"seats": 1000 + (i % 7) * 1000}))
            }),
        ));
    }
    for _ in 0..2 {
        if !on("junk") {
            break;
        }
        let api = api.clone();
        tasks.push(job(
            "junk tokens from B's address",
            Arc::new(move |i| {
                api.req(Method::GET, "/scim/v2/Users", &format!("skt_junk{i}_guess"))
            }),
        ));
    }
    tasks
}

#[tokio::main]
async fn main() {
    let n = env_usize("SEATKEEPER_NOISY_USERS", 100_000);
    let sync = env_usize("SEATKEEPER_NOISY_SYNC", 400);
    let rounds = env_usize("SEATKEEPER_NOISY_ROUNDS", 3).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let db = std::env::var("SEATKEEPER_LOAD_DATABASE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| tmp.path().join("noisy.db"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
            .arg("serve")
            .env("SEATKEEPER_DATABASE", &db)
            .env("SEATKEEPER_LISTEN", format!("127.0.0.1:{port}"))
            .env("SEATKEEPER_ADMIN_TOKEN", ADMIN)
            .env("SEATKEEPER_LOG_LEVEL", "error")
            .env("SEATKEEPER_MAX_BODY_BYTES", "67108864")
            // B's seat checks go through the admin API (100/s per token by default) until the
            // product API exists; every other limit stays at its default.
            .env("SEATKEEPER_ADMIN_REQUESTS_PER_SECOND", "100000")
            .stdout(Stdio::null())
            .spawn()
            .expect("the daemon starts"),
    );
    let api = Api {
        client: Client::builder()
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    while !api
        .client
        .get(format!("{}/readyz", api.base))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("seatkeeper noisy-neighbour benchmark: tenant A {n} users; tenant B syncs {sync} users per phase; database {}", db.display());

    // Tenant A: n users (with titles, for the unindexed filters and sorts), a license over
    // all of them, and a huge group to PUT. Loaded through Bulk, with the operator's rates.
    let a = tenant(&api, "noisy-a").await;
    let mut ids = Vec::with_capacity(n);
    let t = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                "data": {"schemas": [USER], "userName": format!("a{i}@a.example"), "title": format!("title {}", i % 1000), "active": true}}))
            .collect();
        let r = loop {
            let r = api
                .req(Method::POST, "/scim/v2/Bulk", &a.1)
                .header("Content-Type", "application/scim+json")
                .body(json!({"schemas": [BULK], "Operations": ops}).to_string())
                .send()
                .await
                .unwrap();
            if r.status() != StatusCode::TOO_MANY_REQUESTS {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let v: Value = r.json().await.unwrap();
        for op in v["Operations"].as_array().unwrap() {
            let loc = op["location"].as_str().unwrap_or_default();
            ids.push(loc.rsplit('/').next().unwrap().to_owned());
        }
    }
    let everyone = api
        .json(
            Method::POST,
            "/scim/v2/Groups",
            &a.1,
            Some(json!({"schemas": [GROUP], "displayName": "Everyone"})),
        )
        .await;
    for chunk in ids.chunks(10_000) {
        let members: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
        api.json(
            Method::PATCH,
            &format!("/scim/v2/Groups/{}", everyone["id"].as_str().unwrap()),
            &a.1,
            Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": members}]})),
        )
        .await;
    }
    let selecting = Instant::now();
    api.json(
        Method::POST,
        &format!("/admin/v1/tenants/{}/licenses", a.0),
        ADMIN,
        Some(json!({"name": "all", "seats": n / 2, "groups": [{"displayName": "Everyone"}]})),
    )
    .await;
    let selected = selecting.elapsed().as_secs_f64();
    let huge = api
        .json(
            Method::POST,
            "/scim/v2/Groups",
            &a.1,
            Some(json!({"schemas": [GROUP], "displayName": "Huge"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    println!(
        "tenant A loaded in {:.1} s (its license selecting all {n} users: {selected:.1} s)",
        t.elapsed().as_secs_f64()
    );

    // Tenant B: a license of 100 seats over one group.
    let (bt, bs, ba) = tenant(&api, "quiet-b").await;
    let group = api
        .json(
            Method::POST,
            "/scim/v2/Groups",
            &bs,
            Some(json!({"schemas": [GROUP], "displayName": "Staff"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.json(
        Method::POST,
        &format!("/admin/v1/tenants/{bt}/licenses"),
        ADMIN,
        Some(json!({"name": "pro", "seats": 100, "groups": [{"displayName": "Staff"}]})),
    )
    .await;
    let b = B {
        tenant: bt,
        scim: bs,
        admin: ba,
        group,
    };

    // The PUT bodies are built once, before any flood: A's client runs on another machine in
    // life, and building 20,000-member bodies during a phase would take this machine's CPU
    // from B's.
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..PUT_BODIES)
            .map(|i| {
                // A smaller tenant A (`SEATKEEPER_NOISY_USERS`) puts all its users.
                let size = HUGE_GROUP.min(ids.len());
                let start = (i * 997) % (ids.len() - size).max(1);
                let members: Vec<Value> = ids[start..start + size]
                    .iter()
                    .map(|id| json!({"value": id}))
                    .collect();
                json!({"schemas": [GROUP], "displayName": "Huge", "members": members}).to_string()
            })
            .collect(),
    );
    let flood_of_a = Flood { a, huge, bodies };

    // The phases run in rounds (alone, cores busy, flooded; again), so that a drift of the
    // machine over the run falls on every phase alike, and each phase's p99 is read from
    // `rounds` x `sync` requests. Between two phases B rests until its tenant's SCIM bucket
    // (200/s) has refilled what the phase took, so that no phase starts on an emptied bucket.
    let (mut alone, mut busy, mut flooded) = (Phase::default(), Phase::default(), Phase::default());
    let mut sent: Vec<(String, Vec<f64>)> = Vec::new();
    let mut per_round = Vec::new();
    let rest = Duration::from_millis((sync as u64 * 2 * 1000) / 200 + 500);
    for round in 0..rounds {
        let a1 = sync_b(&api, &b, &format!("alone{round}-"), sync).await;
        tokio::time::sleep(rest).await;
        let b1 = floor(&api, &b, &format!("busy{round}-"), sync).await;
        tokio::time::sleep(rest).await;
        let (f1, s1) = flood_of_a
            .during(&api, sync_b(&api, &b, &format!("flooded{round}-"), sync))
            .await;
        tokio::time::sleep(rest).await;
        per_round.push([
            (pct(&f1.create, 0.99), pct(&a1.create, 0.99)),
            (pct(&f1.member_add, 0.99), pct(&a1.member_add, 0.99)),
            (pct(&f1.seat_check, 0.99), pct(&a1.seat_check, 0.99)),
        ]);
        alone.extend(a1);
        busy.extend(b1);
        flooded.extend(f1);
        for (name, lat) in s1 {
            match sent.iter_mut().find(|(n, _)| *n == name) {
                Some((_, l)) => l.extend(lat),
                None => sent.push((name, lat)),
            }
        }
    }

    println!();
    println!(
        "B's latencies over {rounds} rounds of {sync} users per phase ({} requests per operation and phase):",
        rounds * sync
    );
    println!();
    println!("| B's operation | alone p50 / p99 | cores busy at low priority p50 / p99 | under A's flood p50 / p99 | flood p99 / alone p99 | flood p99 / busy p99 |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, x, z, y) in [
        (
            "create user (POST /Users)",
            &alone.create,
            &busy.create,
            &flooded.create,
        ),
        (
            "add member (PATCH /Groups)",
            &alone.member_add,
            &busy.member_add,
            &flooded.member_add,
        ),
        (
            "seat check (GET .../seats/{user})",
            &alone.seat_check,
            &busy.seat_check,
            &flooded.seat_check,
        ),
    ] {
        println!(
            "| {name} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2}x | {:.2}x |",
            pct(x, 0.5),
            pct(x, 0.99),
            pct(z, 0.5),
            pct(z, 0.99),
            pct(y, 0.5),
            pct(y, 0.99),
            pct(y, 0.99) / pct(x, 0.99),
            pct(y, 0.99) / pct(z, 0.99)
        );
    }
    println!();
    println!("Each round alone, flood p99 / alone p99 (of {sync} requests each):");
    for (i, r) in per_round.iter().enumerate() {
        let [c, m, s] = r.map(|(f, a)| format!("{:.2}x ({f:.2} / {a:.2} ms)", f / a));
        println!(
            "- round {}: create {c}, add member {m}, seat check {s}",
            i + 1
        );
    }
    println!();
    println!(
        "B's requests refused or failed: alone {}, cores busy {}, under the flood {} {:?}",
        alone.failed.len(),
        busy.failed.len(),
        flooded.failed.len(),
        flooded.failed.iter().take(5).collect::<Vec<_>>()
    );
    println!("A's flood during B's flooded phases (each loop one request at a time; loops of one kind together):");
    for (name, lat) in sent {
        println!(
            "- {name}: {} requests, p50 {:.1} ms, p99 {:.1} ms",
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
    }
}
