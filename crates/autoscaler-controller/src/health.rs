//! `/healthz`, `/readyz` and `/metrics` over HTTP (axum).
//!
//! Liveness comes from heartbeats: every long-running task beats at least once per its own period, and
//! `/healthz` fails only when one has stopped beating (a wedged task). It never depends on VPSie or the API
//! server being up. Readiness lists named checks (caches synced, CRDs installed, credentials loaded);
//! `/readyz` is 503 with the failing ones while any fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::error::{Error, Result};

/// A readiness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    /// Every cache has listed its objects once.
    CachesSynced,
    /// The CRDs are installed.
    CrdsInstalled,
    /// VPSie credentials are loaded from the Secret.
    CredentialsLoaded,
}

impl Check {
    fn as_str(self) -> &'static str {
        match self {
            Check::CachesSynced => "caches-synced",
            Check::CrdsInstalled => "crds-installed",
            Check::CredentialsLoaded => "credentials-loaded",
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    beats: BTreeMap<&'static str, (Instant, Duration)>,
    checks: BTreeMap<Check, std::result::Result<(), String>>,
}

/// Shared liveness and readiness state. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<Inner>>,
}

impl Health {
    /// A state where every check is pending.
    pub fn new() -> Self {
        let h = Self::default();
        for c in [Check::CachesSynced, Check::CrdsInstalled, Check::CredentialsLoaded] {
            h.set(c, Err("not checked yet".into()));
        }
        h
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `task` is alive; it must beat again within `max_gap`.
    pub fn beat(&self, task: &'static str, max_gap: Duration) {
        self.lock().beats.insert(task, (Instant::now(), max_gap));
    }

    /// Forgets a task that ended on purpose.
    pub fn retire(&self, task: &'static str) {
        self.lock().beats.remove(task);
    }

    /// Sets a readiness check.
    pub fn set(&self, check: Check, state: std::result::Result<(), String>) {
        self.lock().checks.insert(check, state);
    }

    /// Tasks that missed their heartbeat.
    pub fn stale(&self) -> Vec<String> {
        let now = Instant::now();
        self.lock()
            .beats
            .iter()
            .filter(|(_, (at, gap))| now.duration_since(*at) > *gap)
            .map(|(task, (at, _))| format!("{task}: no heartbeat for {:.0?}", now.duration_since(*at)))
            .collect()
    }

    /// The state of one check (`Err` with the reason while it fails).
    pub fn check(&self, check: Check) -> std::result::Result<(), String> {
        self.lock().checks.get(&check).cloned().unwrap_or_else(|| Err("not checked yet".into()))
    }

    /// Failing readiness checks, as `name: reason`.
    pub fn not_ready(&self) -> Vec<String> {
        self.lock()
            .checks
            .iter()
            .filter_map(|(c, s)| s.as_ref().err().map(|why| format!("{}: {why}", c.as_str())))
            .collect()
    }

    /// Whether every readiness check passes.
    pub fn is_ready(&self) -> bool {
        self.not_ready().is_empty()
    }
}

/// 200 `ok`, or 503 with one problem a line.
fn report(problems: Vec<String>) -> (StatusCode, String) {
    if problems.is_empty() {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n")
    }
}

async fn healthz(State(h): State<Health>) -> impl IntoResponse {
    report(h.stale())
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    report(h.not_ready())
}

async fn metrics(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    handle.run_upkeep();
    ([("content-type", "text/plain; version=0.0.4")], handle.render())
}

/// The two bound HTTP listeners.
#[derive(Debug)]
pub struct Listeners {
    /// `/healthz` and `/readyz`.
    pub health: TcpListener,
    /// `/metrics`.
    pub metrics: TcpListener,
}

/// Binds both listeners, so a bad address fails start-up at once.
pub async fn bind(health_addr: SocketAddr, metrics_addr: SocketAddr) -> Result<Listeners> {
    let health = TcpListener::bind(health_addr).await.map_err(|source| Error::Listen { addr: health_addr, source })?;
    let metrics =
        TcpListener::bind(metrics_addr).await.map_err(|source| Error::Listen { addr: metrics_addr, source })?;
    Ok(Listeners { health, metrics })
}

/// Serves `/healthz` and `/readyz` on one listener and `/metrics` on the other until `shutdown` resolves.
pub async fn serve(
    listeners: Listeners,
    health: Health,
    handle: PrometheusHandle,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let Listeners { health: health_listener, metrics: metrics_listener } = listeners;
    let health_app = Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(health);
    let metrics_app = Router::new().route("/metrics", get(metrics)).with_state(handle);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let a = axum::serve(health_listener, health_app).with_graceful_shutdown(stop(rx.clone()));
    let b = axum::serve(metrics_listener, metrics_app).with_graceful_shutdown(stop(rx));
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let (ra, rb) = tokio::join!(a, b);
    for r in [ra, rb] {
        if let Err(e) = r {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_follows_heartbeats_and_readiness_the_checks() {
        let h = Health::new();
        assert!(!h.is_ready());
        assert_eq!(h.not_ready().len(), 3);
        h.set(Check::CachesSynced, Ok(()));
        h.set(Check::CrdsInstalled, Ok(()));
        h.set(Check::CredentialsLoaded, Err("Secret kube-system/vpsie-secret not found".into()));
        assert_eq!(h.not_ready(), vec!["credentials-loaded: Secret kube-system/vpsie-secret not found".to_owned()]);
        h.set(Check::CredentialsLoaded, Ok(()));
        assert!(h.is_ready());

        h.beat("catalog", Duration::from_secs(60));
        assert!(h.stale().is_empty());
        h.beat("wedged", Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(h.stale().len(), 1);
        h.retire("wedged");
        assert!(h.stale().is_empty());
    }
}
