//! Fault injection: rules that make matching requests fail, slow down, or answer garbage.

use serde::{Deserialize, Serialize};

/// What a matching request gets instead of its real answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 500 with a JSON error body.
    InternalError,
    /// HTTP 502 with an HTML body, as a proxy in front of the API sends.
    BadGateway,
    /// HTTP 503 with a JSON error body.
    Unavailable,
    /// HTTP 429 with `Retry-After`.
    RateLimited {
        /// Seconds in `Retry-After`.
        retry_after_secs: u64,
    },
    /// HTTP 200 whose body is truncated JSON.
    Garbage,
    /// Only the added latency; the request is then served normally.
    LatencyOnly,
    /// The request is served normally (its effect happens), then the answer is replaced by HTTP 502.
    /// Models a create that succeeded although the caller saw an error.
    FailAfterEffect,
    /// The request is served normally, then a list answer (`data` an array) keeps only its first
    /// `keep_percent` percent of entries, rounded down (0: an empty list). Models a truncated or empty VM
    /// listing from a VPSie that is failing over; answers that are not lists pass unchanged.
    PartialListing {
        /// How much of the list is kept, 0-100.
        keep_percent: u8,
    },
    /// HTTP 200 `{"error":false,"data":true}` without doing anything. Models a create the API accepted
    /// that silently never appears (neither pending nor created).
    Swallowed,
}

/// A fault rule. Matches requests by method and path prefix; fires with probability `rate` while
/// `remaining` (when set) lasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// HTTP method to match (any when absent), e.g. `"POST"`.
    #[serde(default)]
    pub method: Option<String>,
    /// Path prefix to match, e.g. `/apps/v2/vm`. Empty matches every API path.
    #[serde(default)]
    pub path_prefix: String,
    /// What happens.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Probability in `[0, 1]` that a matching request is hit.
    #[serde(default = "one")]
    pub rate: f64,
    /// How many more times the rule may fire; unlimited when absent.
    #[serde(default)]
    pub remaining: Option<u32>,
    /// Latency added to hit requests, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
}

fn one() -> f64 {
    1.0
}

impl FaultRule {
    /// A rule that always fires on `method` + `path_prefix`.
    pub fn new(method: Option<&str>, path_prefix: &str, kind: FaultKind) -> Self {
        Self {
            method: method.map(str::to_owned),
            path_prefix: path_prefix.to_owned(),
            kind,
            rate: 1.0,
            remaining: None,
            latency_ms: 0,
        }
    }

    /// Fires only `n` times.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Fires with probability `rate`.
    pub fn with_rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    /// Adds latency.
    pub fn with_latency_ms(mut self, ms: u64) -> Self {
        self.latency_ms = ms;
        self
    }

    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining != Some(0)
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.starts_with(&self.path_prefix)
    }
}
