//! Expensive reads run on a few threads of their own, at a lower CPU priority (nice 10): the
//! listings that examine rows in memory (`query::is_scan`) and license previews. On a machine
//! whose cores they would fill, the HTTP workers, the writer and the cheap reads of every other
//! tenant still get the CPU first (the kernel gives a nice-10 thread about a tenth of a
//! nice-0 one's share when both want it), so one tenant's expensive requests slow down
//! themselves rather than everyone. Together with a tenant's scan slot (`Store::scan_slot`)
//! this bounds what one tenant's expensive reads take: one thread at a time, low priority.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::{Error, Result};

type Task = Box<dyn FnOnce() + Send>;

/// The pool: tasks wait in one queue, taken by whichever thread is free.
pub(super) struct Background {
    tx: Mutex<Option<mpsc::Sender<Task>>>,
}

/// The niceness background threads run at.
const NICE: i32 = 10;

impl Background {
    pub fn start(threads: usize) -> Background {
        let (tx, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("seatkeeper-bg-{i}"))
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
                tracing::warn!(error = %e, "cannot start a background read thread");
            }
        }
        Background {
            tx: Mutex::new(Some(tx)),
        }
    }

    /// Runs `f` on a background thread; resolves with its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err(Error::Internal("a background read panicked".into())));
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

/// Lowers this thread's CPU priority (Linux: a thread's own niceness; raising it needs no
/// privilege). Elsewhere a no-op.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority and gettid have no memory-safety preconditions; on Linux,
    // PRIO_PROCESS with a thread id sets that thread's niceness.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, NICE) != 0 {
            tracing::debug!("cannot lower a background thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_tasks_at_a_lower_priority() {
        let pool = Background::start(2);
        let nice = pool
            .run(|| {
                // SAFETY: getpriority has no memory-safety preconditions.
                Ok(unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) })
            })
            .await
            .unwrap();
        assert!(nice >= NICE, "nice {nice}");
        let r: Result<()> = pool.run(|| panic!("boom")).await;
        assert!(matches!(r, Err(Error::Internal(_))));
        pool.close();
        assert!(matches!(pool.run(|| Ok(1)).await, Err(Error::Closed)));
    }
}
