//! Exponential backoff with full jitter ("AWS full jitter"): the n-th delay is uniform in
//! `[0, min(max_delay, base_delay * 2^n)]`, which spreads many clients' retries evenly.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::RetryPolicy;

/// Builds a [`FullJitter`] iterator for backon.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FullJitterBuilder {
    pub(crate) policy: RetryPolicy,
}

/// The delays of one retried call.
#[derive(Debug)]
pub(crate) struct FullJitter {
    policy: RetryPolicy,
    attempt: u32,
    rng: u64,
}

impl backon::BackoffBuilder for FullJitterBuilder {
    type Backoff = FullJitter;
    fn build(self) -> FullJitter {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        FullJitter { policy: self.policy, attempt: 0, rng: u64::from(nanos) | 1 }
    }
}

impl FullJitter {
    /// xorshift64*: enough randomness for jitter, no dependency.
    fn next_unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Iterator for FullJitter {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        if self.attempt as usize >= self.policy.max_retries {
            return None;
        }
        let exp = self.policy.base_delay.saturating_mul(1u32 << self.attempt.min(20));
        let cap = exp.min(self.policy.max_delay);
        self.attempt += 1;
        Some(cap.mul_f64(self.next_unit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    #[test]
    fn delays_are_bounded_by_the_exponential_cap_and_count() {
        let policy = RetryPolicy {
            max_retries: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(1),
        };
        let delays: Vec<_> = FullJitterBuilder { policy }.build().collect();
        assert_eq!(delays.len(), 6);
        let caps = [100, 200, 400, 800, 1000, 1000];
        for (d, cap) in delays.iter().zip(caps) {
            assert!(*d <= Duration::from_millis(cap), "{d:?} > {cap}ms");
        }
    }
}
