//! When a burst of newly unschedulable pods becomes one decision: after a short quiet gap with no new
//! pending pod, or a maximum wait from the first one, whichever comes first. Pure: instants are arguments.

use std::time::Duration;

use tokio::time::Instant;

/// The batching window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Decide once no new pending pod arrived for this long.
    pub idle: Duration,
    /// Decide at the latest this long after the first pending pod of the batch.
    pub max: Duration,
}

impl Default for Window {
    /// 100 ms quiet, 500 ms at most: a burst the scheduler marks within half a second is one decision; a
    /// longer stream (200 pods are marked over a few seconds) is one decision per half second, each counting
    /// the nodes the earlier ones created as in-flight capacity, so no pod waits long and none is planned
    /// twice.
    fn default() -> Self {
        Self { idle: Duration::from_millis(100), max: Duration::from_millis(500) }
    }
}

/// A batch being gathered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Batch {
    /// New pending pods were seen at `now`.
    pub fn saw(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the batch is due, if one is open.
    pub fn due_at(&self, window: Window) -> Option<Instant> {
        match (self.first, self.last) {
            (Some(first), Some(last)) => Some((last + window.idle).min(first + window.max)),
            _ => None,
        }
    }

    /// Whether the batch is due at `now`.
    pub fn is_due(&self, window: Window, now: Instant) -> bool {
        self.due_at(window).is_some_and(|at| at <= now)
    }

    /// Closes the batch (a decision was made).
    pub fn close(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pod_is_decided_after_the_idle_gap() {
        let w = Window::default();
        let t0 = Instant::now();
        let mut b = Batch::default();
        assert_eq!(b.due_at(w), None);
        b.saw(t0);
        assert!(!b.is_due(w, t0 + w.idle / 2));
        assert!(b.is_due(w, t0 + w.idle));
        b.close();
        assert_eq!(b.due_at(w), None);
    }

    #[test]
    fn a_steady_stream_is_cut_at_the_maximum() {
        let w = Window::default();
        let t0 = Instant::now();
        let mut b = Batch::default();
        // A new pod every 50 ms (always inside the idle gap) for ten seconds: one decision at the maximum.
        let mut decided_at = None;
        for i in 0..200u64 {
            let now = t0 + Duration::from_millis(50 * i);
            if b.is_due(w, now) {
                decided_at = Some(now - t0);
                break;
            }
            b.saw(now);
        }
        assert_eq!(decided_at, Some(w.max));
    }
}
