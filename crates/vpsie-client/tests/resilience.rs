//! Retries (idempotent calls only), the circuit breaker and the rate limiter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use vpsie_client::{BreakerPolicy, CreateVmRequest, Error, RateLimit, VpsieClient};
use vpsie_sim::{FaultKind, FaultRule};

#[tokio::test]
async fn idempotent_calls_retry_through_5xx_and_429() {
    let sim = sim().await;
    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/vm", FaultKind::Unavailable).times(1));
    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/vm", FaultKind::BadGateway).times(1));
    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/vm", FaultKind::RateLimited { retry_after_secs: 0 }).times(1));
    token_client(&sim).list_vms(None).await.unwrap();
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 502, 429, 200]);
}

#[tokio::test]
async fn retries_stop_after_the_policy_limit() {
    let sim = sim().await;
    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/scripts", FaultKind::InternalError));
    let err = token_client(&sim).list_scripts().await.unwrap_err();
    assert!(matches!(err, Error::Server { status: 500, .. }), "{err}");
    assert_eq!(sim.count_requests("GET", "/apps/v2/scripts"), 4, "1 attempt + 3 retries");
}

#[tokio::test]
async fn a_long_retry_after_ends_the_retries() {
    let sim = sim().await;
    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/vm", FaultKind::RateLimited { retry_after_secs: 60 }));
    let started = Instant::now();
    let err = token_client(&sim).list_vms(None).await.unwrap_err();
    assert_eq!(err.kind(), "rate_limited");
    assert_eq!(sim.count_requests("GET", "/apps/v2/vm"), 1);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn create_is_never_retried() {
    let sim = sim().await;
    sim.add_fault(FaultRule::new(Some("POST"), "/apps/v2/vm", FaultKind::Unavailable).times(1));
    let client = token_client(&sim);
    let req = CreateVmRequest::new("once", DC, offer(&sim, DC, "sc-2cpu-4gb"), OS);
    let err = client.create_vm(&req).await.unwrap_err();
    assert!(matches!(err, Error::Server { status: 503, .. }), "{err}");
    assert_eq!(sim.count_requests("POST", "/apps/v2/vm"), 1);
    assert!(sim.dump().pending.is_empty());
}

#[tokio::test]
async fn breaker_opens_fails_fast_and_recovers_through_a_probe() {
    let sim = sim().await;
    let mut cfg = token_config(&sim);
    cfg.retry.max_retries = 0;
    cfg.breaker = BreakerPolicy { failure_threshold: 3, open_for: Duration::from_millis(300) };
    let client = VpsieClient::new(cfg).unwrap();
    sim.add_fault(FaultRule::new(None, "", FaultKind::Unavailable));
    for _ in 0..3 {
        assert_eq!(client.list_vms(None).await.unwrap_err().kind(), "server");
    }
    assert!(client.circuit_open());
    let err = client.list_vms(None).await.unwrap_err();
    assert!(matches!(err, Error::CircuitOpen { .. }), "{err}");
    assert_eq!(sim.requests().len(), 3, "no request reached the API while open");

    sim.clear_faults();
    tokio::time::sleep(Duration::from_millis(350)).await;
    client.list_vms(None).await.unwrap();
    assert!(!client.circuit_open());
    client.list_vms(None).await.unwrap();
    assert_eq!(sim.requests().len(), 5);
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker() {
    let sim = sim().await;
    let mut cfg = token_config(&sim);
    cfg.retry.max_retries = 0;
    cfg.breaker = BreakerPolicy { failure_threshold: 2, open_for: Duration::from_millis(200) };
    let client = VpsieClient::new(cfg).unwrap();
    sim.add_fault(FaultRule::new(None, "", FaultKind::BadGateway));
    for _ in 0..2 {
        client.list_vms(None).await.unwrap_err();
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(client.list_vms(None).await.unwrap_err().kind(), "server", "the probe went out and failed");
    assert!(matches!(client.list_vms(None).await.unwrap_err(), Error::CircuitOpen { .. }));
}

#[tokio::test]
async fn client_side_rate_limit_spaces_requests_after_the_burst() {
    let sim = sim().await;
    let mut cfg = token_config(&sim);
    // 600/min = one every 100 ms after a burst of 2.
    cfg.rate_limit = RateLimit { per_minute: 600, burst: 2 };
    let client = VpsieClient::new(cfg).unwrap();
    let started = Instant::now();
    for _ in 0..6 {
        client.list_tags().await.unwrap();
    }
    let elapsed = started.elapsed();
    println!("6 requests at 600/min with burst 2 took {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(350), "took {elapsed:?}");
}
