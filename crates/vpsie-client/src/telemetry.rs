//! Metric names and helpers. Names follow Prometheus conventions with the `vpsie_autoscaler_` prefix.

use std::time::Duration;

/// Counter: API requests by `endpoint` and HTTP `code` (`"timeout"` / `"transport"` when none came back).
pub const REQUESTS_TOTAL: &str = "vpsie_autoscaler_vpsie_api_requests_total";
/// Histogram: request duration in seconds by `endpoint`.
pub const REQUEST_DURATION_SECONDS: &str = "vpsie_autoscaler_vpsie_api_request_duration_seconds";
/// Counter: failed calls by `endpoint` and error `kind` (see [`crate::Error::kind`]).
pub const ERRORS_TOTAL: &str = "vpsie_autoscaler_vpsie_api_errors_total";
/// Gauge: circuit breaker state, 0 closed, 1 half-open, 2 open.
pub const CIRCUIT_BREAKER_STATE: &str = "vpsie_autoscaler_vpsie_api_circuit_breaker_state";

/// Counter: calls held back by the client-side rate limiter (`source="client"`) or refused by the API with
/// HTTP 429 (`source="server"`).
pub const RATE_LIMIT_HITS_TOTAL: &str = "vpsie_autoscaler_api_rate_limit_hits_total";

/// Registers descriptions of this crate's metrics with the installed `metrics` recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(REQUESTS_TOTAL, "VPSie API requests by endpoint and HTTP status code.");
    metrics::describe_histogram!(
        REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Duration of VPSie API requests by endpoint."
    );
    metrics::describe_counter!(ERRORS_TOTAL, "Failed VPSie API calls by endpoint and error kind.");
    metrics::describe_gauge!(CIRCUIT_BREAKER_STATE, "VPSie API circuit breaker: 0 closed, 1 half-open, 2 open.");
    metrics::describe_counter!(
        RATE_LIMIT_HITS_TOTAL,
        "Calls delayed by the client-side limiter (source=client) or refused with 429 (source=server)."
    );
}

pub(crate) fn rate_limit_hit(source: &'static str) {
    metrics::counter!(RATE_LIMIT_HITS_TOTAL, "source" => source).increment(1);
}

pub(crate) fn request(endpoint: &'static str, code: String, elapsed: Duration) {
    metrics::counter!(REQUESTS_TOTAL, "endpoint" => endpoint, "code" => code).increment(1);
    metrics::histogram!(REQUEST_DURATION_SECONDS, "endpoint" => endpoint).record(elapsed.as_secs_f64());
}

pub(crate) fn error(endpoint: &'static str, kind: &'static str) {
    metrics::counter!(ERRORS_TOTAL, "endpoint" => endpoint, "kind" => kind).increment(1);
}

pub(crate) fn breaker_state(value: f64) {
    metrics::gauge!(CIRCUIT_BREAKER_STATE).set(value);
}
