//! Logs, traces and metrics.
//!
//! Logs: `tracing` with JSON lines by default (`--log-format text` for people), the level from
//! `--log-level` unless `RUST_LOG` is set. Every line inside a decision or reconcile span carries that span's
//! `correlation_id` (JSON output lists the current span and its parents). Traces: with `--otlp-endpoint`,
//! spans go to an OTLP/gRPC collector through `tracing-opentelemetry`. Metrics: see [`metrics`].
//!
//! Secrets never reach any of them: credential values live in `vpsie_client::Secret`, whose `Debug` and
//! `Display` are redacted, and no span or event records a Secret's data.

pub mod metrics;
pub mod state;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;
use crate::error::{Error, Result};

/// Keeps the trace exporter alive; flushes it when dropped.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("trace exporter shutdown: {e}");
        }
    }
}

/// The filter: `RUST_LOG` when set, else `level` for our crates and `warn` for the rest.
pub fn filter(level: &str) -> Result<EnvFilter> {
    if let Ok(v) = std::env::var("RUST_LOG")
        && !v.is_empty()
    {
        return EnvFilter::try_new(v).map_err(|e| Error::Config(format!("RUST_LOG: {e}")));
    }
    let ours = ["autoscaler_controller", "vpsie_autoscaler", "vpsie_client", "autoscaler_drain", "kube_lease_manager"];
    let mut directives = vec!["warn".to_owned()];
    directives.extend(ours.iter().map(|c| format!("{c}={level}")));
    EnvFilter::try_new(directives.join(",")).map_err(|e| Error::Config(format!("--log-level {level:?}: {e}")))
}

/// Installs the global subscriber: logs to standard output in `format`, and spans to `otlp_endpoint` when
/// given.
pub fn init(format: LogFormat, level: &str, otlp_endpoint: Option<&str>) -> Result<TelemetryGuard> {
    let filter = filter(level)?;
    let (otel, provider) = match otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| Error::Telemetry(format!("OTLP exporter for {endpoint}: {e}")))?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(opentelemetry_sdk::Resource::builder().with_service_name("vpsie-autoscaler").build())
                .build();
            let tracer = provider.tracer("vpsie-autoscaler");
            (Some(tracing_opentelemetry::layer().with_tracer(tracer)), Some(provider))
        }
        None => (None, None),
    };
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = match format {
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_current_span(true).with_span_list(true))
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
            )
            .try_init(),
    };
    installed.map_err(|e| Error::Telemetry(format!("tracing subscriber: {e}")))?;
    Ok(TelemetryGuard { provider })
}

/// A new correlation id: 16 hex digits, unique enough to find one decision's lines across logs, Events and
/// traces.
pub fn correlation_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    // splitmix64 over time, counter and pid: distinct across calls and replicas.
    let mut z = t ^ n.rotate_left(32) ^ u64::from(std::process::id()).rotate_left(48);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{:016x}", z ^ (z >> 31))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_differ() {
        let ids: std::collections::BTreeSet<_> = (0..1000).map(|_| correlation_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|i| i.len() == 16));
    }

    #[test]
    fn level_filter_is_checked() {
        // RUST_LOG is not set in the test environment of CI; when it is, it wins and this only checks parsing.
        if std::env::var("RUST_LOG").is_err() {
            assert!(filter("debug").is_ok());
            assert!(filter("not a level!").is_err());
        }
    }
}
