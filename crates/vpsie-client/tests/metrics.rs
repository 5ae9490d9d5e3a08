//! The client's metrics: names, labels and values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use vpsie_client::telemetry;
use vpsie_sim::{FaultKind, FaultRule};

#[tokio::test(flavor = "current_thread")]
async fn requests_errors_and_durations_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    telemetry::describe_metrics();

    let sim = sim().await;
    let client = token_client(&sim);
    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/sshkeys", FaultKind::Unavailable).times(1));
    client.list_ssh_keys().await.unwrap();
    client.get_vm("missing").await.unwrap_err();

    let snapshot = snapshotter.snapshot().into_vec();
    let find = |name: &str, labels: &[(&str, &str)]| {
        snapshot
            .iter()
            .find(|(key, ..)| {
                key.key().name() == name
                    && labels.iter().all(|(k, v)| key.key().labels().any(|l| l.key() == *k && l.value() == *v))
            })
            .map(|(_, _, _, value)| value)
    };
    let counter = |name, labels: &[(&str, &str)]| match find(name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: {other:?}"),
    };
    assert_eq!(counter(telemetry::REQUESTS_TOTAL, &[("endpoint", "sshkey.list"), ("code", "503")]), 1);
    assert_eq!(counter(telemetry::REQUESTS_TOTAL, &[("endpoint", "sshkey.list"), ("code", "200")]), 1);
    assert_eq!(counter(telemetry::ERRORS_TOTAL, &[("endpoint", "vm.get"), ("kind", "not_found")]), 1);
    match find(telemetry::REQUEST_DURATION_SECONDS, &[("endpoint", "sshkey.list")]) {
        Some(DebugValue::Histogram(v)) => assert_eq!(v.len(), 2),
        other => panic!("histogram: {other:?}"),
    }
    assert!(matches!(find(telemetry::CIRCUIT_BREAKER_STATE, &[]), Some(DebugValue::Gauge(_))));
}

#[tokio::test(flavor = "current_thread")]
async fn rate_limit_hits_count_client_waits_and_server_429s() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let sim = sim().await;
    let mut config = token_config(&sim);
    // Two calls of burst, then one every 10 ms: the third call waits on the limiter.
    config.rate_limit = vpsie_client::RateLimit { per_minute: 6_000, burst: 2 };
    let client = vpsie_client::VpsieClient::new(config).unwrap();
    for _ in 0..3 {
        client.list_ssh_keys().await.unwrap();
    }
    sim.add_fault(
        FaultRule::new(Some("GET"), "/apps/v2/tags", FaultKind::RateLimited { retry_after_secs: 0 }).times(1),
    );
    client.list_tags().await.unwrap();

    let snapshot = snapshotter.snapshot().into_vec();
    let hits = |source: &str| {
        snapshot
            .iter()
            .find(|(key, ..)| {
                key.key().name() == telemetry::RATE_LIMIT_HITS_TOTAL
                    && key.key().labels().any(|l| l.key() == "source" && l.value() == source)
            })
            .map(|(_, _, _, value)| value)
    };
    // The third list call, and the tags call and its retry when they come within 10 ms, wait.
    assert!(matches!(hits("client"), Some(&DebugValue::Counter(1..=3))), "{:?}", hits("client"));
    assert_eq!(hits("server"), Some(&DebugValue::Counter(1)));
}
