//! A consecutive-failure circuit breaker shared by all endpoints of one client.
//!
//! Closed: requests flow; `failure_threshold` consecutive outages (5xx, timeout, transport error) open it.
//! Open: requests fail fast with [`crate::Error::CircuitOpen`] for `open_for`. Then one probe request is let
//! through (half-open): success closes the breaker, an outage opens it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::BreakerPolicy;
use crate::telemetry;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is in flight since `since`. A probe whose caller gave up is replaced after `open_for`.
    HalfOpen {
        since: Instant,
    },
}

/// The state as a number for the `circuit_breaker_state` gauge: 0 closed, 1 half-open, 2 open.
fn gauge_value(s: &State) -> f64 {
    match s {
        State::Closed { .. } => 0.0,
        State::HalfOpen { .. } => 1.0,
        State::Open { .. } => 2.0,
    }
}

/// Outcome of an attempt as the breaker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The API answered (success or a client error): it is healthy.
    Healthy,
    /// A 5xx, timeout or transport error.
    Outage,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    policy: BreakerPolicy,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(policy: BreakerPolicy) -> Self {
        telemetry::breaker_state(0.0);
        Self { policy, state: Mutex::new(State::Closed { failures: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked while holding it; the state is still valid.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks to send a request. `Err(remaining)` means fail fast.
    pub(crate) fn acquire(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut st = self.lock();
        match *st {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now < until => Err(until - now),
            State::HalfOpen { since } if now < since + self.policy.open_for => Err(Duration::ZERO),
            State::Open { .. } | State::HalfOpen { .. } => {
                *st = State::HalfOpen { since: now };
                telemetry::breaker_state(gauge_value(&st));
                Ok(())
            }
        }
    }

    /// Records the outcome of a request let through by [`Breaker::acquire`].
    pub(crate) fn record(&self, verdict: Verdict) {
        let mut st = self.lock();
        let next = match (verdict, *st) {
            (Verdict::Healthy, _) => State::Closed { failures: 0 },
            (Verdict::Outage, State::Closed { failures }) if failures + 1 < self.policy.failure_threshold => {
                State::Closed { failures: failures + 1 }
            }
            (Verdict::Outage, _) => State::Open { until: Instant::now() + self.policy.open_for },
        };
        if gauge_value(&next) != gauge_value(&st) {
            tracing::warn!(from = gauge_value(&st), to = gauge_value(&next), "VPSie API circuit breaker changed state");
            telemetry::breaker_state(gauge_value(&next));
        }
        *st = next;
    }

    /// Whether the breaker is currently open (for health reporting).
    pub(crate) fn is_open(&self) -> bool {
        matches!(*self.lock(), State::Open { until } if Instant::now() < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, open_ms: u64) -> Breaker {
        Breaker::new(BreakerPolicy { failure_threshold: threshold, open_for: Duration::from_millis(open_ms) })
    }

    #[test]
    fn opens_after_threshold_and_recovers_through_one_probe() {
        let b = breaker(3, 30);
        for _ in 0..2 {
            assert!(b.acquire().is_ok());
            b.record(Verdict::Outage);
        }
        assert!(!b.is_open());
        assert!(b.acquire().is_ok());
        b.record(Verdict::Outage);
        assert!(b.is_open());
        assert!(b.acquire().is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.acquire().is_ok(), "one probe after open_for");
        assert_eq!(b.acquire(), Err(Duration::ZERO), "no second request while the probe is out");
        b.record(Verdict::Healthy);
        assert!(b.acquire().is_ok());
    }

    #[test]
    fn failed_probe_reopens_and_success_resets_count() {
        let b = breaker(2, 20);
        b.record(Verdict::Outage);
        b.record(Verdict::Healthy);
        b.record(Verdict::Outage);
        assert!(!b.is_open(), "a success in between resets the count");
        b.record(Verdict::Outage);
        assert!(b.is_open());
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.acquire().is_ok());
        b.record(Verdict::Outage);
        assert!(b.is_open());
    }
}
