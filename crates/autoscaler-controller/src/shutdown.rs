//! Graceful shutdown: on SIGTERM the operator stops taking new work, lets the work in flight (a VPSie call,
//! a status write) finish within `--shutdown-grace-seconds`, and only then gives up the Lease, so a successor
//! never starts while this replica is still mid-call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    stopping: AtomicBool,
    in_flight: AtomicUsize,
    changed: Notify,
}

/// Shared shutdown state. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

/// Held while one piece of work runs; dropping it marks the work done.
#[derive(Debug)]
pub struct Work {
    inner: Arc<Inner>,
}

impl Drop for Work {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.inner.changed.notify_waiters();
    }
}

impl Shutdown {
    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Acquire)
    }

    /// Registers one piece of work about to start; `None` once shutdown has begun (start nothing new).
    pub fn start_work(&self) -> Option<Work> {
        self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        let work = Work { inner: self.inner.clone() };
        if self.is_stopping() {
            return None; // dropping `work` undoes the count
        }
        Some(work)
    }

    /// Work in flight now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// Begins shutdown: no new work from now on.
    pub fn begin(&self) {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.changed.notify_waiters();
    }

    /// Waits until no work is in flight, at most `within`. Returns whether everything finished.
    pub async fn drained(&self, within: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.inner.changed.notified();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_in_flight_finishes_and_no_new_work_starts() {
        let s = Shutdown::default();
        let running = s.start_work();
        assert!(running.is_some());
        s.begin();
        assert!(s.start_work().is_none(), "no new work once stopping");
        assert_eq!(s.in_flight(), 1);
        assert!(!s.drained(Duration::from_millis(20)).await, "still running");
        let s2 = s.clone();
        let done = tokio::spawn(async move { s2.drained(Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(running);
        assert!(done.await.unwrap_or(false), "drained once the work finished");
    }
}
