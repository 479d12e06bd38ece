//! A real PostgreSQL cluster for the tests, started once per test binary: `initdb` into a
//! temporary directory, the server on a free loopback port with its Unix socket in that
//! directory, stopped when the test binary exits. Each caller gets a database of its own.
//!
//! Each test binary that includes this module defines `ON_POSTGRES` at its root.
//!
//! Needs Debian's `postgresql` package (15 or later; `.ci/run` installs it). `initdb` refuses to
//! run as root, so as root the cluster runs as the `postgres` user the package creates.
//! `SEATKEEPER_PG_BIN` names the directory of `initdb` and `postgres` when they are elsewhere.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

pub struct Cluster {
    pub port: u16,
    pub dir: PathBuf,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static SERVER: Mutex<Option<std::process::Child>> = Mutex::new(None);
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("SEATKEEPER_PG_BIN") {
        return PathBuf::from(d);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.retain(|p| p.join("initdb").exists());
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("no PostgreSQL server found under /usr/lib/postgresql: apt-get install postgresql")
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program` as the user that owns the cluster.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// At exit: a fast shutdown of the server (SIGINT to the postmaster, whose pid it wrote; under
/// `runuser` the child this process started is runuser, not the server), then its directory.
extern "C" fn stop_server() {
    let Some(mut child) = SERVER.lock().ok().and_then(|mut s| s.take()) else {
        return;
    };
    let Some(cluster) = CLUSTER.get() else {
        return;
    };
    if let Some(pid) = postmaster_pid(&cluster.dir) {
        // SAFETY: kill with the pid of the server this process started.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
    for _ in 0..200 {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&cluster.dir);
}

/// Test binaries that crash the database call [`durable`] before anything else: their
/// cluster waits for every commit on disk, so that an acknowledged commit survives a crash.
static DURABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes this binary's cluster durable (`synchronous_commit=on`); call before [`cluster`].
pub fn durable() {
    DURABLE.store(true, Ordering::SeqCst);
}

/// Starts the server of the cluster in `dir` on `port` (its log appended to `server.log`).
fn start_server(dir: &Path, port: u16) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let synchronous = if DURABLE.load(Ordering::SeqCst) {
        "synchronous_commit=on"
    } else {
        // Commits are not waited for on disk: the tests kill seatkeeper nodes, never the
        // database, so nothing they check depends on it, and a suite's thousands of
        // one-tenant commits take seconds instead of minutes. The load benchmark and the
        // failover test run PostgreSQL durably.
        "synchronous_commit=off"
    };
    as_owner(&bin_dir().join("postgres"))
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=400",
            "-c",
            "shared_buffers=64MB",
            "-c",
            synchronous,
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("postgres starts")
}

/// The postmaster's pid, from the file it writes.
fn postmaster_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("data/postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
}

/// The test binary's cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!("seatkeeper-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot give {} to the postgres user", dir.display());
        }
        let data = dir.join("data");
        let out = as_owner(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = start_server(&dir, port);
        *SERVER.lock().unwrap() = Some(child);
        // SAFETY: registering a plain function to run at exit.
        unsafe {
            libc::atexit(stop_server);
        }
        let cluster = Cluster { port, dir };
        let url = cluster.url("postgres");
        // The postgres client blocks (its own runtime): off any async test's thread.
        let up = std::thread::spawn(move || {
            (0..200).any(|_| {
                let ok = postgres::Client::connect(&url, postgres::NoTls).is_ok();
                if !ok {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                ok
            })
        })
        .join()
        .unwrap();
        if up {
            return cluster;
        }
        panic!(
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default()
        );
    })
}

impl Cluster {
    /// Crashes the server as `pg_ctl stop -m immediate` does (SIGQUIT to the postmaster: every
    /// backend ends at once, nothing is checkpointed, recovery replays the WAL at the next
    /// start), keeps it down for `down`, starts it again and waits until it answers.
    pub fn crash_and_restart(&self, down: std::time::Duration) {
        let pid = postmaster_pid(&self.dir).expect("the server runs");
        // SAFETY: a signal to the server this process started.
        unsafe {
            libc::kill(pid, libc::SIGQUIT);
        }
        let mut server = SERVER.lock().unwrap();
        if let Some(mut child) = server.take() {
            for _ in 0..400 {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        std::thread::sleep(down);
        *server = Some(start_server(&self.dir, self.port));
        drop(server);
        let url = self.url("postgres");
        let up = (0..600).any(|_| {
            let ok = postgres::Client::connect(&url, postgres::NoTls).is_ok();
            if !ok {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            ok
        });
        assert!(up, "PostgreSQL did not come back");
    }

    /// The URL of database `db` over TCP.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The URL of database `db` over the Unix socket.
    pub fn socket_url(&self, db: &str) -> String {
        format!(
            "postgresql://postgres@localhost/{db}?host={}&port={}",
            self.dir.display(),
            self.port
        )
    }

    /// A new empty database; returns its URL.
    pub fn database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        );
        let admin = self.url("postgres");
        let create = format!("CREATE DATABASE {name}");
        // The postgres client blocks; a test may call this from async code.
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            c.batch_execute(&create).unwrap();
        })
        .join()
        .unwrap();
        self.url(&name)
    }

    /// The database that stands for the SQLite file `path` in a test (made on first use), so
    /// that a daemon stopped and started again on "the same file" finds its data.
    pub fn database_for(&self, path: &Path) -> String {
        static BY_PATH: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());
        let mut known = BY_PATH.lock().unwrap();
        if let Some((_, url)) = known.iter().find(|(p, _)| p == path) {
            return url.clone();
        }
        let url = self.database();
        known.push((path.to_owned(), url.clone()));
        url
    }
}

/// True when the suites run on PostgreSQL: in the `pg_*` test binaries (their root's
/// `ON_POSTGRES`), or in any with `SEATKEEPER_TEST_ENGINE=postgres`.
pub fn selected() -> bool {
    crate::ON_POSTGRES
        || std::env::var("SEATKEEPER_TEST_ENGINE").is_ok_and(|e| e.eq_ignore_ascii_case("postgres"))
}
