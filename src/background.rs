//! Low-priority worker threads for CPU-heavy work that one request can ask for: the store's
//! expensive reads (listings that examine rows in memory, license previews: see
//! `store::Store::read_expensive`) and the HTTP layer's parsing and rendering of large bodies
//! (a Bulk request, a group of thousands of members, a preview's user lists: [`cpu`]). On a
//! machine whose cores they would fill, the HTTP workers, the writer and the cheap requests of
//! every other tenant still get the CPU first, so one tenant's expensive requests slow down
//! themselves rather than everyone.
//!
//! On Linux the threads run under `SCHED_IDLE` ([`lower_priority`]): a thread of normal priority
//! that wakes (an HTTP worker with a request) takes the core from them at once, and when both
//! want the CPU they get about 1/340 of a normal thread's share. A thread's niceness alone (10
//! gives about a tenth) is not enough for the tail of the others' latency: the kernel lets a
//! running nice-10 thread finish its slice (milliseconds) before a woken request runs. Where
//! `SCHED_IDLE` is refused, the threads fall back to nice [`NICE`]; they still get the CPU the
//! others leave, so an expensive request is slow on a busy machine, never starved on an idle
//! one.
//!
//! Also the wait between passes of the daemon's polling loops (the mail sender, the webhook
//! dispatcher): [`idle`]; and the count of requests in flight ([`InFlight`]), by which a paced
//! large job knows whether anyone else wants the machine.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

type Task = Box<dyn FnOnce() + Send>;

/// Waits between two passes of a polling loop: until `wake` is notified or `poll` has passed.
/// False when the loop is to end (`stop` turned true, or its sender is gone).
pub async fn idle(
    wake: &tokio::sync::Notify,
    poll: std::time::Duration,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = wake.notified() => true,
        _ = tokio::time::sleep(poll) => true,
        _ = stop.changed() => false,
    }
}

/// A background pass's view of a database outage: it logs one line when the database becomes
/// unreachable and one when it is back, and backs off meanwhile (instead of an error on every
/// poll of every node).
#[derive(Debug, Default)]
pub struct Outage {
    since: Option<std::time::Instant>,
    failures: u32,
}

impl Outage {
    /// A pass failed because the database cannot be reached.
    pub fn failed(&mut self, what: &str, e: &dyn std::fmt::Display) {
        if self.since.is_none() {
            tracing::warn!(error = %e, "{what}: the database is unreachable; backing off until it answers");
            self.since = Some(std::time::Instant::now());
        }
        self.failures = self.failures.saturating_add(1);
    }

    /// A pass went through.
    pub fn ok(&mut self, what: &str) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                seconds = since.elapsed().as_secs_f64(),
                "{what}: the database answers again"
            );
        }
        self.failures = 0;
    }

    /// How long to wait before the next pass: `normal`, or doubling from it while the database
    /// is unreachable, up to 5 s.
    pub fn pause(&self, normal: std::time::Duration) -> std::time::Duration {
        if self.since.is_none() {
            return normal;
        }
        let doubled = normal.saturating_mul(1u32 << self.failures.min(5));
        doubled.min(std::time::Duration::from_secs(5))
    }
}

/// Requests this process is serving now (counted by the HTTP layer).
static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One request in flight, for as long as this lives.
pub struct InFlight(());

impl InFlight {
    pub fn enter() -> InFlight {
        IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight(())
    }

    /// True when requests other than the caller's own are in flight.
    pub fn others() -> bool {
        IN_FLIGHT.load(std::sync::atomic::Ordering::Relaxed) > 1
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Why a task gave no result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("the background threads have stopped")]
    Closed,
    #[error("a background task panicked")]
    Panicked,
}

/// A pool: tasks wait in one queue, taken by whichever thread is free.
pub struct Background {
    tx: Mutex<Option<mpsc::Sender<Task>>>,
}

/// The niceness background threads run at where `SCHED_IDLE` is refused.
const NICE: i32 = 10;

/// Threads of the HTTP layer's pool ([`cpu`]).
const CPU_THREADS: usize = 2;

/// The HTTP layer's pool for parsing and rendering large bodies, started on first use.
pub fn cpu() -> &'static Background {
    static CPU: OnceLock<Background> = OnceLock::new();
    CPU.get_or_init(|| Background::start("seatkeeper-cpu", CPU_THREADS))
}

impl Background {
    /// Starts `threads` threads named `name-N`.
    pub fn start(name: &str, threads: usize) -> Background {
        let (tx, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let task = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match task {
                            Ok(t) => t(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a background thread");
            }
        }
        Background {
            tx: Mutex::new(Some(tx)),
        }
    }

    /// Runs `f` on a background thread; resolves with its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .map_err(|_| Error::Panicked);
            let _ = reply.send(r);
        });
        self.tx
            .lock()
            .map_err(|_| Error::Closed)?
            .as_ref()
            .ok_or(Error::Closed)?
            .send(task)
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Lets the threads end once the tasks queued are done.
    pub fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
    }
}

/// Lowers this thread's CPU priority (Linux: `SCHED_IDLE`, else nice [`NICE`]; lowering
/// needs no privilege). Elsewhere a no-op.
#[allow(unsafe_code, reason = "two documented libc calls, see SAFETY")]
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler reads the parameter struct we pass by reference for the
    // duration of the call; setpriority and gettid have no memory-safety preconditions. On
    // Linux both act on the calling thread (pid 0; PRIO_PROCESS with a thread id).
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::gettid() as libc::id_t;
            if libc::setpriority(libc::PRIO_PROCESS, tid, NICE) != 0 {
                tracing::debug!("cannot lower a background thread's priority");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_flight_are_counted_while_they_live() {
        let mine = InFlight::enter();
        assert!(!InFlight::others());
        let other = InFlight::enter();
        assert!(InFlight::others());
        drop(other);
        assert!(!InFlight::others());
        drop(mine);
    }

    #[tokio::test]
    #[allow(unsafe_code, reason = "reads the thread's niceness, see SAFETY")]
    async fn runs_tasks_at_a_lower_priority() {
        let pool = Background::start("test", 2);
        let (policy, nice) = pool
            .run(|| {
                // SAFETY: sched_getscheduler, getpriority and gettid have no memory-safety
                // preconditions.
                unsafe {
                    (
                        libc::sched_getscheduler(0),
                        libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t),
                    )
                }
            })
            .await
            .unwrap();
        assert!(
            policy == libc::SCHED_IDLE || nice >= NICE,
            "policy {policy}, nice {nice}"
        );
        let r: Result<(), Error> = pool.run(|| panic!("boom")).await;
        assert_eq!(r, Err(Error::Panicked));
        pool.close();
        assert_eq!(pool.run(|| 1).await, Err(Error::Closed));
    }
}
