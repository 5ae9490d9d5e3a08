//! Drain metrics.

use std::time::Duration;

/// Histogram: drain duration by `nodegroup` and `result` (`success`, `blocked`, `pdb`, `eviction_error`,
/// `timeout`, `api_error`).
pub const DRAIN_DURATION_SECONDS: &str = "vpsie_autoscaler_node_drain_duration_seconds";
/// Counter: pods evicted by drains, by `nodegroup`.
pub const DRAIN_PODS_EVICTED: &str = "vpsie_autoscaler_node_drain_pods_evicted";

/// Registers descriptions of the drain metrics.
pub fn describe_metrics() {
    metrics::describe_histogram!(DRAIN_DURATION_SECONDS, metrics::Unit::Seconds, "Node drain duration by result.");
    metrics::describe_counter!(DRAIN_PODS_EVICTED, "Pods evicted by node drains.");
}

pub(crate) fn record(nodegroup: &str, result: &'static str, elapsed: Duration, evicted: usize) {
    metrics::histogram!(DRAIN_DURATION_SECONDS, "nodegroup" => nodegroup.to_owned(), "result" => result)
        .record(elapsed.as_secs_f64());
    metrics::counter!(DRAIN_PODS_EVICTED, "nodegroup" => nodegroup.to_owned()).increment(evicted as u64);
}
