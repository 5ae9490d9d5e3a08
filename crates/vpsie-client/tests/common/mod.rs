//! Shared set-up: a simulator on loopback and a client tuned for fast tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use vpsie_client::{BreakerPolicy, ClientConfig, Credentials, RateLimit, RetryPolicy, VpsieClient};
use vpsie_sim::{SimConfig, SimHandle};

pub(crate) const OS: &str = "ubuntu-22.04-lts";
pub(crate) const DC: &str = "dc-us-east-1";

/// A simulator whose VMs stay pending for 2 s: long enough that a test can always see a VM pending,
/// even on a loaded machine. Tests that need a VM active boot it with `SimHandle::force_boot`.
pub(crate) async fn sim() -> SimHandle {
    sim_with(SimConfig { boot_delay: Duration::from_secs(2), ..SimConfig::default() }).await
}

pub(crate) async fn sim_with(config: SimConfig) -> SimHandle {
    SimHandle::start(config).await.expect("simulator starts")
}

/// Fast retries and a generous rate limit so tests measure behaviour, not waiting.
pub(crate) fn fast(mut c: ClientConfig) -> ClientConfig {
    c.retry = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
    };
    c.rate_limit = RateLimit { per_minute: 60_000, burst: 1_000 };
    c.breaker = BreakerPolicy { failure_threshold: 50, open_for: Duration::from_millis(200) };
    c.request_timeout = Duration::from_secs(3);
    c
}

pub(crate) fn token_config(sim: &SimHandle) -> ClientConfig {
    fast(ClientConfig::new(sim.base_url(), Credentials::Token(sim.access_token().into())))
}

pub(crate) fn token_client(sim: &SimHandle) -> VpsieClient {
    VpsieClient::new(token_config(sim)).expect("client")
}

pub(crate) fn credentials_config(sim: &SimHandle) -> ClientConfig {
    fast(ClientConfig::new(
        sim.base_url(),
        Credentials::ClientCredentials {
            client_id: sim.config().client_id.clone(),
            client_secret: sim.config().client_secret.clone().into(),
        },
    ))
}

/// The identifier of offer `nickname` in `dc`.
pub(crate) fn offer(sim: &SimHandle, dc: &str, nickname: &str) -> String {
    sim.catalog().offer_by_nickname(dc, nickname).expect("offer exists").identifier.clone()
}

/// Waits until `f` returns `Some`, polling every 20 ms, for at most `secs`.
pub(crate) async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not met within {secs}s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
