//! HTTP load benchmark (prints figures; not a timed test). Run with:
//!
//!     cargo bench --bench load                               # 100,000 users
//!     SEATKEEPER_LOAD_USERS=1000000 cargo bench --bench load # the 1M-user figures
//!
//! It starts the real daemon (the release binary) on a free loopback port with a fresh SQLite
//! file (WAL, synchronous=FULL: every write durable before its 2xx) and drives it over HTTP with
//! many concurrent keep-alive connections, as an identity provider would. For each workload it
//! prints throughput and p50/p99 latency; then the daemon's peak RSS, the database size and the
//! start-up time at that size. `/healthz` on the same server is measured first: it is the HTTP
//! ceiling of this machine (client and server share its cores), so every figure can be read as a
//! ratio to it. The measured requests go out through a minimal HTTP/1.1 keep-alive client
//! ([`Conn`]: requests written as prepared bytes, answers parsed by their Content-Length) on
//! one thread's event loop ([`drive_with`]), so that on a machine where client and daemon share
//! the cores, the client takes as little of them as it can; setup calls use reqwest.
//!
//! Settings (environment): `SEATKEEPER_LOAD_USERS` (100000), `SEATKEEPER_LOAD_CONCURRENCY` (64),
//! `SEATKEEPER_LOAD_REQUESTS` (single adds and cycle operations, 50000),
//! `SEATKEEPER_LOAD_POINT_READS` (filters, each seat check, `/healthz` and the raw SELECT; three
//! times the former, 150000), `SEATKEEPER_LOAD_DIR`
//! (where the database goes; default the system temp dir), `SEATKEEPER_LOAD_DATABASE` (a
//! `postgres://` URL of an empty database: the daemon runs on PostgreSQL instead, and the run
//! first measures what PostgreSQL itself gives on this machine with the same client crate and
//! concurrency, a durable one-row INSERT and a prepared point SELECT by primary key, printed
//! beside the daemon's figures; before the reads it runs `VACUUM (ANALYZE)`, timed, so that
//! autovacuum's cleanup of the write phases does not overlap the measured reads). On
//! PostgreSQL it ends with many tenants at once through two nodes on the one database
//! (`SEATKEEPER_LOAD_TENANTS`, 8, 0 to skip; `SEATKEEPER_LOAD_TENANT_USERS`, 4000 each): single
//! membership adds of one tenant through one node first, then of every tenant through both,
//! printing the aggregate rate against the first and each tenant's p99.

#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)] // tests fail loudly; the support starts and stops servers with libc

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, Method};
use serde_json::{json, Value};

const ADMIN: &str = "load-benchmark-admin-token";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Members per group PATCH, as Entra batches them.
const MEMBER_BATCH: usize = 100;
/// Users per group of the initial sync.
const GROUP_SIZE: usize = 1000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

struct Daemon {
    child: Child,
    base: String,
}

impl Daemon {
    /// Starts the daemon on `db`; returns it and how long it took to answer `/readyz`.
    async fn start(db: &std::path::Path, port: u16) -> (Daemon, Duration) {
        let t = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_seatkeeper"))
            .arg("serve")
            .env("SEATKEEPER_DATABASE", db)
            .env("SEATKEEPER_LISTEN", format!("127.0.0.1:{port}"))
            .env("SEATKEEPER_ADMIN_TOKEN", ADMIN)
            .env("SEATKEEPER_LOG_LEVEL", "warn")
            .env("SEATKEEPER_SCIM_REQUESTS_PER_SECOND", "0")
            .env("SEATKEEPER_ADMIN_REQUESTS_PER_SECOND", "0")
            .env("SEATKEEPER_PRODUCT_REQUESTS_PER_SECOND", "0")
            .env("SEATKEEPER_MAX_BODY_BYTES", "67108864")
            .env("SEATKEEPER_RECONCILE_INTERVAL_SECONDS", "86400")
            .stdout(Stdio::null())
            .spawn()
            .expect("the daemon starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = Client::new();
        loop {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (Daemon { child, base }, t.elapsed())
    }

    /// Peak resident set size in MiB (VmHWM).
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }

    fn stop(mut self) {
        // SIGTERM: graceful stop (WAL checkpoint), as an operator would.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// What one workload measured.
struct Figures {
    name: String,
    requests: usize,
    seconds: f64,
    latencies: Vec<f64>,
}

impl Figures {
    fn print(&self, unit: &str, per_request: usize) {
        let mut l = self.latencies.clone();
        l.sort_by(|a, b| a.total_cmp(b));
        let p = |q: f64| l[((l.len() as f64 - 1.0) * q).round() as usize] * 1000.0;
        println!(
            "| {} | {} | {:.0} {unit}/s | {:.2} ms | {:.2} ms |",
            self.name,
            self.requests * per_request,
            (self.requests * per_request) as f64 / self.seconds,
            p(0.5),
            p(0.99)
        );
    }
}

type OnBody = Arc<dyn Fn(usize, &[u8]) + Send + Sync>;

/// One keep-alive HTTP/1.1 connection of the load client.
struct Conn {
    addr: std::net::SocketAddr,
    stream: Option<tokio::net::TcpStream>,
    buf: Vec<u8>,
    /// When the last answer arrived: a connection idle for longer than the server's keep-alive
    /// is reopened before it is used, so no request goes out on a closing connection.
    last: Instant,
}

/// An HTTP answer: status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Conn {
    fn new(addr: std::net::SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            last: Instant::now(),
        }
    }

    /// Sends `request` (a whole HTTP/1.1 request) and reads the answer.
    async fn send(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if self.last.elapsed() > Duration::from_secs(2) {
            self.stream = None;
        }
        let stream = match &mut self.stream {
            Some(s) => s,
            None => {
                let s = tokio::net::TcpStream::connect(self.addr).await?;
                s.set_nodelay(true)?;
                self.buf.clear();
                self.stream.insert(s)
            }
        };
        stream.write_all(request).await?;
        // Read until the head is complete, then until the body is.
        let (head_len, status, length, close) = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end])
                    .map_err(|_| std::io::Error::other("answer head is not UTF-8"))?;
                let mut lines = head.split("\r\n");
                let status = lines
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .and_then(|c| c.parse::<u16>().ok())
                    .ok_or_else(|| std::io::Error::other("no status line"))?;
                let mut length = 0usize;
                let mut close = false;
                for line in lines {
                    let Some((name, value)) = line.split_once(':') else {
                        continue;
                    };
                    let value = value.trim();
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value
                            .parse()
                            .map_err(|_| std::io::Error::other("bad length"))?;
                    } else if name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(std::io::Error::other("chunked answers are not expected"));
                    } else if name.eq_ignore_ascii_case("connection") {
                        close = value.eq_ignore_ascii_case("close");
                    }
                }
                break (end + 4, status, length, close);
            }
            if stream.read_buf(&mut self.buf).await? == 0 {
                self.stream = None;
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        };
        while self.buf.len() < head_len + length {
            if stream.read_buf(&mut self.buf).await? == 0 {
                self.stream = None;
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        let body = self.buf[head_len..head_len + length].to_vec();
        self.buf.drain(..head_len + length);
        if close {
            self.stream = None;
        }
        self.last = Instant::now();
        Ok(Answer { status, body })
    }
}

/// A whole HTTP/1.1 request as bytes.
fn http(method: &str, path: &str, token: &str, body: Option<&str>) -> Vec<u8> {
    let mut r =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n");
    if let Some(b) = body {
        r.push_str(&format!(
            "Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ));
    } else {
        r.push_str("\r\n");
    }
    r.into_bytes()
}

/// Runs `n` requests built by `make(i)` over `concurrency` connections; each must answer 2xx.
async fn drive<F>(
    name: &str,
    addr: std::net::SocketAddr,
    n: usize,
    concurrency: usize,
    make: F,
) -> Figures
where
    F: Fn(usize) -> Vec<u8> + Send + Sync + 'static,
{
    drive_with(name, addr, n, concurrency, make, Arc::new(|_, _| {})).await
}

/// As [`drive`], handing each answer's body to `on_body`. The connections are driven by one
/// thread with an event loop of its own (a current-thread runtime), as `wrk -t1` drives them:
/// on a machine where client and daemon share the cores, a client spread over the benchmark's
/// multi-threaded runtime took more of them per request (its tasks woken across threads).
async fn drive_with<F>(
    name: &str,
    addr: std::net::SocketAddr,
    n: usize,
    concurrency: usize,
    make: F,
    on_body: OnBody,
) -> Figures
where
    F: Fn(usize) -> Vec<u8> + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let (done, latencies) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let client = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let latencies = client.block_on(async move {
            let tasks: Vec<_> = (0..concurrency.min(n.max(1)))
                .map(|_| {
                    let make = make.clone();
                    let next = next.clone();
                    let on_body = on_body.clone();
                    tokio::spawn(async move {
                        let mut conn = Conn::new(addr);
                        let mut lat = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= n {
                                break;
                            }
                            let request = make(i);
                            let s = Instant::now();
                            let answer = conn.send(&request).await.expect("request answered");
                            assert!(
                                (200..300).contains(&answer.status),
                                "request {i} answered {}: {}",
                                answer.status,
                                String::from_utf8_lossy(&answer.body)
                            );
                            lat.push(s.elapsed().as_secs_f64());
                            on_body(i, &answer.body);
                        }
                        lat
                    })
                })
                .collect();
            let mut latencies = Vec::with_capacity(n);
            for t in tasks {
                latencies.extend(t.await.unwrap());
            }
            latencies
        });
        let _ = done.send(latencies);
    });
    let latencies = latencies.await.expect("the client thread finished");
    Figures {
        name: name.into(),
        requests: n,
        seconds: t.elapsed().as_secs_f64(),
        latencies,
    }
}

/// What PostgreSQL itself gives on this machine, with the same client crate and concurrency
/// as the daemon's: `concurrency` connections, each on a thread, running a durable one-row
/// INSERT (autocommit), `inserts` of them, and then `selects` prepared point SELECTs by primary key
/// of the inserted rows.
async fn raw_postgres(
    url: &str,
    concurrency: usize,
    inserts: usize,
    selects: usize,
) -> Vec<Figures> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin
            .batch_execute(
                "DROP SCHEMA IF EXISTS load_raw CASCADE; CREATE SCHEMA load_raw;
                 CREATE TABLE load_raw.t (k BIGINT PRIMARY KEY, v TEXT NOT NULL)",
            )
            .unwrap();
        let run = |name: &str, sql: &'static str, insert: bool| {
            let requests = if insert { inserts } else { selects };
            let next = Arc::new(AtomicUsize::new(0));
            let t = Instant::now();
            let threads: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (url, next) = (url.clone(), next.clone());
                    std::thread::spawn(move || {
                        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                        let st = c.prepare(sql).unwrap();
                        let mut lat = Vec::new();
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k >= requests {
                                return lat;
                            }
                            let key = if insert {
                                k as i64
                            } else {
                                ((k * 7_727 + 3) % inserts) as i64
                            };
                            let s = Instant::now();
                            if insert {
                                c.execute(&st, &[&key, &format!("user{key:07}@load.test")])
                                    .unwrap();
                            } else {
                                c.query_opt(&st, &[&key]).unwrap();
                            }
                            lat.push(s.elapsed().as_secs_f64());
                        }
                    })
                })
                .collect();
            let mut latencies = Vec::new();
            for th in threads {
                latencies.extend(th.join().unwrap());
            }
            Figures {
                name: name.to_owned(),
                requests,
                seconds: t.elapsed().as_secs_f64(),
                latencies,
            }
        };
        let figures = vec![
            run(
                "PostgreSQL raw: one-row durable INSERT (autocommit)",
                "INSERT INTO load_raw.t (k, v) VALUES ($1, $2)",
                true,
            ),
            run(
                "PostgreSQL raw: prepared point SELECT by primary key",
                "SELECT v FROM load_raw.t WHERE k = $1",
                false,
            ),
        ];
        admin.batch_execute("DROP SCHEMA load_raw CASCADE").unwrap();
        figures
    })
    .await
    .unwrap()
}

fn user_name(i: usize) -> String {
    format!("user{i:07}@load.test")
}

fn dir_size_mib(dir: &std::path::Path) -> f64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>()
        })
        .unwrap_or(0) as f64
        / (1024.0 * 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env_usize("SEATKEEPER_LOAD_USERS", 100_000);
    let c = env_usize("SEATKEEPER_LOAD_CONCURRENCY", 64);
    let reads = env_usize("SEATKEEPER_LOAD_REQUESTS", 50_000);
    // Point reads run at tens of thousands a second: 50,000 of them is a phase of one or two
    // seconds, too short to outlast a warm-up or a passing disturbance on two cores.
    let point_reads = env_usize("SEATKEEPER_LOAD_POINT_READS", 3 * reads);
    let dir = std::env::var("SEATKEEPER_LOAD_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let tmp = tempfile::tempdir_in(&dir).unwrap();
    let pg_url = std::env::var("SEATKEEPER_LOAD_DATABASE").ok();
    let db = match &pg_url {
        Some(url) => std::path::PathBuf::from(url),
        None => tmp.path().join("load.db"),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (daemon, _) = Daemon::start(&db, port).await;
    let base = daemon.base.clone();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    // Idle connections are dropped before the server's 5 s keep-alive closes them, so a request
    // never goes out on a connection the server is closing.
    let client = Client::builder()
        .pool_max_idle_per_host(c)
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    println!(
        "seatkeeper HTTP load benchmark: {n} users, {c} concurrent connections, database {}",
        db.display()
    );
    println!(
        "machine: {} cores; group_patch_response = {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::env::var("SEATKEEPER_GROUP_PATCH_RESPONSE").unwrap_or_else(|_| "auto".into())
    );
    println!();
    println!("| workload | requests or items | throughput | p50 | p99 |");
    println!("| --- | --- | --- | --- | --- |");
    if let Some(url) = &pg_url {
        for f in raw_postgres(url, c, reads, point_reads).await {
            f.print("stmt", 1);
        }
    }

    let admin = |m: Method, path: &str| {
        client
            .request(m, format!("{base}/admin/v1{path}"))
            .bearer_auth(ADMIN)
    };
    let (tenant, token) = new_tenant(&client, &base, "load").await;

    // The ceiling: a trivial endpoint of the same server.
    drive(
        "GET /healthz (the HTTP ceiling)",
        addr,
        point_reads,
        c,
        |_| b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
    )
    .await
    .print("req", 1);

    // Initial sync, 1: every user, as Entra creates them (one POST each).
    let ids = Arc::new(std::sync::Mutex::new(vec![String::new(); n]));
    {
        let (tk, ids2) = (token.clone(), ids.clone());
        let make = move |i: usize| {
            let body = json!({"schemas": [USER], "userName": user_name(i), "externalId": format!("ext{i}"),
                              "active": true, "displayName": format!("User {i}"),
                              "emails": [{"value": user_name(i), "type": "work", "primary": true}]});
            http("POST", "/scim/v2/Users", &tk, Some(&body.to_string()))
        };
        let on_body: OnBody = Arc::new(move |i, body| {
            let v: Value = serde_json::from_slice(body).unwrap();
            ids2.lock().unwrap()[i] = v["id"].as_str().unwrap().to_owned();
        });
        let f = drive_with(
            "initial sync: create users (POST /Users)",
            addr,
            n,
            c,
            make,
            on_body,
        )
        .await;
        f.print("users", 1);
    }
    let ids: Arc<Vec<String>> = Arc::new(std::mem::take(&mut *ids.lock().unwrap()));

    // A license selecting half of the groups, created before they arrive (pending selectors),
    // with seats for a third of the users: members allocate as they are added.
    let groups = n.div_ceil(GROUP_SIZE);
    let selected: Vec<Value> = (0..groups)
        .step_by(2)
        .map(|g| json!({"displayName": format!("Group {g}")}))
        .collect();
    let lic = answer(
        admin(Method::POST, &format!("/tenants/{tenant}/licenses"))
            .json(&json!({"name": "Pro", "seats": n / 3, "groups": selected})),
    )
    .await;
    let license = lic["id"].as_str().unwrap().to_owned();

    // Initial sync, 2: groups created empty, then members PATCHed in batches of 100.
    let group_ids = Arc::new(std::sync::Mutex::new(vec![String::new(); groups]));
    {
        let tk = token.clone();
        let out = group_ids.clone();
        let on_body: OnBody = Arc::new(move |g, body| {
            let v: Value = serde_json::from_slice(body).unwrap();
            out.lock().unwrap()[g] = v["id"].as_str().unwrap().to_owned();
        });
        let f = drive_with(
            "initial sync: create groups (POST /Groups)",
            addr,
            groups,
            c,
            move |g| {
                let body = json!({"schemas": [GROUP], "displayName": format!("Group {g}"), "externalId": format!("g{g}")});
                http("POST", "/scim/v2/Groups", &tk, Some(&body.to_string()))
            },
            on_body,
        )
        .await;
        f.print("groups", 1);
    }
    let group_ids: Arc<Vec<String>> = Arc::new(std::mem::take(&mut *group_ids.lock().unwrap()));
    {
        let batches = n.div_ceil(MEMBER_BATCH);
        let (tk, ids, gids) = (token.clone(), ids.clone(), group_ids.clone());
        let f = drive(
            "initial sync: add members, 100 per PATCH, with allocation",
            addr,
            batches,
            c,
            move |k| {
                let first = k * MEMBER_BATCH;
                let last = (first + MEMBER_BATCH).min(ids.len());
                let members: Vec<Value> = ids[first..last].iter().map(|id| json!({"value": id})).collect();
                let g = first / GROUP_SIZE;
                let body = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": members}]});
                http("PATCH", &format!("/scim/v2/Groups/{}", gids[g]), &tk, Some(&body.to_string()))
            },
        )
        .await;
        f.print("members", MEMBER_BATCH);
    }
    let seats = answer(admin(
        Method::GET,
        &format!("/tenants/{tenant}/licenses/{license}"),
    ))
    .await;
    println!(
        "| (license after the sync: {} granted, {} blocked of {} seats) | | | | |",
        seats["granted"], seats["blocked"], seats["seats"]
    );

    // Membership adds with allocation, one member per PATCH (the incremental case): users of
    // the unselected groups join a selected one.
    {
        let adds = reads.min(n / 2);
        let (tk, ids, gids) = (token.clone(), ids.clone(), group_ids.clone());
        let f = drive("membership add with allocation, 1 per PATCH", addr, adds, c, move |k| {
            // A user of an odd (unselected) group joins the even (selected) group before it;
            // consecutive requests go to different groups, as a provider's sync spreads them.
            let pairs = (gids.len() / 2).max(1);
            let (p, offset) = (k % pairs, k / pairs);
            let u = ((2 * p + 1) * GROUP_SIZE + offset) % ids.len();
            let body = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": ids[u]}]}]});
            http("PATCH", &format!("/scim/v2/Groups/{}", gids[2 * p]), &tk, Some(&body.to_string()))
        })
        .await;
        f.print("adds", 1);
    }

    // Incremental cycle: updates, deactivations, membership adds and removes, interleaved.
    {
        let ops = reads.min(n);
        let (tk, ids, gids) = (token.clone(), ids.clone(), group_ids.clone());
        let f = drive("incremental cycle (update / deactivate / add / remove)", addr, ops, c, move |k| {
            let u = (k * 7919) % ids.len();
            let g = u / GROUP_SIZE;
            let patch = |path: String, body: Value| {
                http("PATCH", &format!("/scim/v2{path}"), &tk, Some(&body.to_string()))
            };
            match k % 4 {
                0 => patch(format!("/Users/{}", ids[u]),
                    json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": format!("Renamed {k}")}]})),
                1 => patch(format!("/Users/{}", ids[u]),
                    json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": false}}]})),
                2 => patch(format!("/Groups/{}", gids[(g + 2) % gids.len()]),
                    json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": ids[u]}]}]})),
                _ => patch(format!("/Groups/{}", gids[g]),
                    json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[u])}]})),
            }
        })
        .await;
        f.print("ops", 1);
    }

    // On PostgreSQL the write phases leave dead row versions that autovacuum cleans up over the
    // next minute, on the same two cores: the reads would be measured against whichever part of
    // that cleanup overlaps them (the seat checks lost up to a fifth in some runs). Vacuum now,
    // timed, so that the reads are measured on the settled database they meet between bursts
    // of provisioning, as the raw SELECT is (on its fresh table).
    if let Some(url) = &pg_url {
        let url = url.clone();
        let took = tokio::task::spawn_blocking(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let t = Instant::now();
            c.batch_execute("VACUUM (ANALYZE)").unwrap();
            t.elapsed()
        })
        .await
        .unwrap();
        println!(
            "| (PostgreSQL: VACUUM (ANALYZE) after the writes, before the reads: {:.1} s) | | | | |",
            took.as_secs_f64()
        );
    }

    // Reads: filter by userName, random existing users.
    {
        let tk = token.clone();
        let f = drive(
            "GET /Users?filter=userName eq \"...\"",
            addr,
            point_reads,
            c,
            move |k| {
                let i = (k * 104_729 + 17) % n;
                // `userName eq "user0000017@load.test"`, percent-encoded.
                let filter = format!("userName%20eq%20%22{}%22", user_name(i).replace('@', "%40"));
                http("GET", &format!("/scim/v2/Users?filter={filter}"), &tk, None)
            },
        )
        .await;
        f.print("req", 1);
    }

    // The seat check a product calls at sign-in.
    {
        let (t, l) = (tenant.clone(), license.clone());
        let f = drive(
            "seat check GET .../licenses/{l}/seats/{userName}",
            addr,
            point_reads,
            c,
            move |k| {
                let i = (k * 7_727 + 3) % n;
                let path = format!("/admin/v1/tenants/{t}/licenses/{l}/seats/{}", user_name(i));
                http("GET", &path, ADMIN, None)
            },
        )
        .await;
        f.print("req", 1);
    }

    // The same seat check through the product API, with a product token (a token lookup more).
    {
        let issued = answer(admin(
            Method::POST,
            &format!("/tenants/{tenant}/product-tokens"),
        ))
        .await;
        let product = issued["token"].as_str().unwrap().to_owned();
        let (t, l) = (tenant.clone(), license.clone());
        let f = drive(
            "seat check GET /product/v1/.../licenses/{l}/users/{user}",
            addr,
            point_reads,
            c,
            move |k| {
                let i = (k * 7_727 + 3) % n;
                let path = format!(
                    "/product/v1/tenants/{t}/licenses/{l}/users/{}",
                    user_name(i)
                );
                http("GET", &path, &product, None)
            },
        )
        .await;
        f.print("req", 1);
    }

    // Selecting a group of every user for a second license: one request.
    {
        // The group arrives as a provider builds it: created, then members in batches (a
        // request carries at most 100,000 members).
        let r = client
            .post(format!("{base}/scim/v2/Groups"))
            .bearer_auth(&token)
            .header("Content-Type", "application/scim+json")
            .body(json!({"schemas": [GROUP], "displayName": "Everyone"}).to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let everyone: Value = r.json().await.unwrap();
        let gid = everyone["id"].as_str().unwrap().to_owned();
        for chunk in ids.chunks(10_000) {
            let members: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
            let r = client
                .patch(format!("{base}/scim/v2/Groups/{gid}?excludedAttributes=members"))
                .bearer_auth(&token)
                .header("Content-Type", "application/scim+json")
                .body(json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": members}]}).to_string())
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_success(),
                "{}",
                r.text().await.unwrap_or_default()
            );
        }
        let t0 = Instant::now();
        let r = admin(Method::POST, &format!("/tenants/{tenant}/licenses"))
            .json(&json!({"name": "Everyone", "seats": n / 2, "groups": [{"displayName": "Everyone"}]}))
            .send()
            .await
            .unwrap();
        let s = t0.elapsed().as_secs_f64();
        assert!(r.status().is_success());
        println!(
            "| select a {n}-member group for a license ({} seats) | 1 | {s:.2} s | | |",
            n / 2
        );
    }

    let rss = daemon.peak_rss_mib();
    if let Some(url) = &pg_url {
        let tenants = env_usize("SEATKEEPER_LOAD_TENANTS", 8);
        if tenants > 0 {
            let per = env_usize("SEATKEEPER_LOAD_TENANT_USERS", 4000);
            tenants_phase(url, &daemon, tenants, per, c).await;
        }
    }
    daemon.stop();
    let size = match &pg_url {
        Some(url) => {
            let url = url.clone();
            tokio::task::spawn_blocking(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let bytes: i64 = c
                    .query_one("SELECT pg_database_size(current_database())", &[])
                    .unwrap()
                    .get(0);
                bytes as f64 / (1024.0 * 1024.0)
            })
            .await
            .unwrap()
        }
        None => dir_size_mib(tmp.path()),
    };
    let (daemon, startup) = Daemon::start(&db, port).await;
    println!();
    println!(
        "daemon peak RSS: {rss:.0} MiB; database: {size:.0} MiB; start-up at {n} users: {} ms",
        startup.as_millis()
    );
    daemon.stop();
}

/// Many tenants, several nodes: `tenants` tenants provisioning at once through two daemons on
/// one PostgreSQL database. Each tenant gets `per` users, a selected group and a license with
/// seats for half of them; then single membership adds with allocation run first for one
/// tenant through one node (the baseline), then for every tenant at once, each request sent to
/// either node in turn. Prints the aggregate rate, its ratio to the baseline, and each
/// tenant's p99.
async fn tenants_phase(url: &str, first: &Daemon, tenants: usize, per: usize, c: usize) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (second, _) = Daemon::start(std::path::Path::new(url), port).await;
    let nodes: Vec<std::net::SocketAddr> = [&first.base, &second.base]
        .iter()
        .map(|b| b.trim_start_matches("http://").parse().unwrap())
        .collect();
    let client = Client::new();
    let admin = |m: Method, path: &str| {
        client
            .request(m, format!("{}/admin/v1{path}", first.base))
            .bearer_auth(ADMIN)
    };
    // Each tenant: its token, its users' ids, and its selected group.
    let mut setup: Vec<(String, Vec<String>, String)> = Vec::new();
    for t in 0..tenants {
        let (tenant, token) = new_tenant(&client, &first.base, &format!("load-{t}")).await;
        let ids = Arc::new(std::sync::Mutex::new(vec![String::new(); per]));
        let (tk, out) = (token.clone(), ids.clone());
        drive_with(
            "tenant users",
            nodes[t % 2],
            per,
            c,
            move |i| {
                let body = json!({"schemas": [USER], "userName": format!("t{t}u{i}@load.test"), "active": true});
                http("POST", "/scim/v2/Users", &tk, Some(&body.to_string()))
            },
            Arc::new(move |i, body: &[u8]| {
                let v: Value = serde_json::from_slice(body).unwrap();
                out.lock().unwrap()[i] = v["id"].as_str().unwrap().to_owned();
            }),
        )
        .await;
        let ids = std::mem::take(&mut *ids.lock().unwrap());
        let group = answer(
            client
                .post(format!("{}/scim/v2/Groups", first.base))
                .bearer_auth(&token)
                .header("Content-Type", "application/scim+json")
                .body(json!({"schemas": [GROUP], "displayName": "Licensed"}).to_string()),
        )
        .await;
        let group = group["id"].as_str().unwrap().to_owned();
        let r = admin(Method::POST, &format!("/tenants/{tenant}/licenses"))
            .json(
                &json!({"name": "Pro", "seats": per / 2, "groups": [{"displayName": "Licensed"}]}),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        setup.push((token, ids, group));
    }
    let setup = Arc::new(setup);
    // The baseline: one tenant, one node, the first half of its users.
    let half = per / 2;
    let s = setup.clone();
    let one = drive(
        "many tenants: one tenant through one node, 1 add per PATCH (the baseline)",
        nodes[0],
        half,
        c,
        move |k| http_add(&s[0].0, &s[0].2, &s[0].1[k]),
    )
    .await;
    one.print("adds", 1);
    // Every tenant at once, through both nodes: request k is tenant k % tenants's, sent to
    // node (k / tenants) % 2; each tenant's latencies are kept apart.
    let n = tenants * (per - half);
    let per_tenant: Arc<Vec<std::sync::Mutex<Vec<f64>>>> = Arc::new(
        (0..tenants)
            .map(|_| std::sync::Mutex::new(Vec::new()))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..c {
        let (setup, per_tenant, next, node) = (
            setup.clone(),
            per_tenant.clone(),
            next.clone(),
            nodes[w % 2],
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(node);
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n {
                    break;
                }
                let (t, i) = (k % tenants, half + k / tenants);
                let (token, ids, group) = &setup[t];
                let request = http_add(token, group, &ids[i]);
                let s = Instant::now();
                let answer = conn.send(&request).await.expect("request answered");
                assert!(
                    (200..300).contains(&answer.status),
                    "answered {}",
                    answer.status
                );
                per_tenant[t]
                    .lock()
                    .unwrap()
                    .push(s.elapsed().as_secs_f64());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seconds = t0.elapsed().as_secs_f64();
    let all: Vec<f64> = per_tenant
        .iter()
        .flat_map(|l| l.lock().unwrap().clone())
        .collect();
    let figures = Figures {
        name: format!("{tenants} tenants at once through 2 nodes, 1 add per PATCH"),
        requests: n,
        seconds,
        latencies: all,
    };
    figures.print("adds", 1);
    let p99 = |l: &[f64]| {
        let mut l = l.to_vec();
        l.sort_by(|a, b| a.total_cmp(b));
        l[((l.len() as f64 - 1.0) * 0.99).round() as usize] * 1000.0
    };
    let each: Vec<String> = per_tenant
        .iter()
        .map(|l| format!("{:.0}", p99(&l.lock().unwrap())))
        .collect();
    println!(
        "| ({tenants} tenants, 2 nodes: aggregate {:.2}x the one-tenant, one-node rate; each tenant's p99 in ms: {}) | | | | |",
        (n as f64 / seconds) / (one.requests as f64 / one.seconds),
        each.join(", ")
    );
    second.stop();
}

/// Creates a tenant named `name` through the admin API at `base` and a SCIM token for it:
/// (tenant id, token).
async fn new_tenant(client: &Client, base: &str, name: &str) -> (String, String) {
    let made = answer(
        client
            .post(format!("{base}/admin/v1/tenants"))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": name })),
    )
    .await;
    let tenant = made["id"].as_str().unwrap().to_owned();
    let tok = answer(
        client
            .post(format!("{base}/admin/v1/tenants/{tenant}/tokens"))
            .bearer_auth(ADMIN),
    )
    .await;
    (tenant, tok["token"].as_str().unwrap().to_owned())
}

/// The JSON answer of a setup request (which must be answered).
async fn answer(r: reqwest::RequestBuilder) -> Value {
    r.send().await.unwrap().json().await.unwrap()
}

/// A PATCH adding one member to a group, as bytes.
fn http_add(token: &str, group: &str, user: &str) -> Vec<u8> {
    let body = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}]});
    http(
        "PATCH",
        &format!("/scim/v2/Groups/{group}"),
        token,
        Some(&body.to_string()),
    )
}
