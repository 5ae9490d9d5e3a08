//! Leader election over a `coordination.k8s.io` Lease (kube-lease-manager), and the gate every writer checks.
//!
//! kube-lease-manager acquires and renews the Lease. Its own channel only says when the holder changes,
//! not when renewals start failing, so this module also watches the Lease object and treats this replica as
//! leader only while the Lease names it and its last renewal is younger than the lease duration minus a
//! second of margin. A replica cut off from the API server therefore stops acting within one renew period,
//! before another replica may take over. Caches run on every replica; only the leader acts.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::LeaseTiming;
use crate::error::{Error, Result};
use crate::telemetry::metrics::{LEADER, LEADER_TRANSITIONS};

/// Margin before the Lease's expiry at which this replica stops acting.
const EXPIRY_MARGIN: Duration = Duration::from_secs(1);
/// How often the gate is re-evaluated between events.
const TICK: Duration = Duration::from_millis(200);

/// Whether this replica may act now. Cheap to clone; every loop and writer holds one.
#[derive(Debug, Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
    /// The sender of an always-open gate, kept so the channel never reads as closed.
    _open: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl Leadership {
    /// A gate that is always open (leader election off: one replica only).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        Self { rx, _open: Some(std::sync::Arc::new(tx)) }
    }

    /// A gate driven by a sender, for tests of code that checks leadership.
    pub fn manual(initial: bool) -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(initial);
        (tx, Self { rx, _open: None })
    }

    /// Whether this replica holds the Lease now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until this replica is leader (forever once the election has ended).
    pub async fn acquired(&mut self) {
        if self.rx.wait_for(|l| *l).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Waits until this replica is no longer leader (never returns while it stays leader).
    pub async fn lost(&mut self) {
        if self.rx.wait_for(|l| !*l).await.is_err() {
            // The elector is gone: treat as lost.
        }
    }

    /// Runs `work` each time this replica becomes leader, and drops it (cancels it) the moment leadership
    /// is lost. Returns when `work` returns while leader.
    pub async fn while_leader<F, Fut>(&mut self, mut work: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        loop {
            self.acquired().await;
            let mut watch = self.clone();
            tokio::select! {
                () = work() => return,
                () = watch.lost() => tracing::info!("leadership lost: work stopped"),
            }
        }
    }
}

/// The running election. [`Elector::release`] gives the Lease up on shutdown.
#[derive(Debug)]
pub struct Elector {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Elector {
    /// Stops acting at once, releases the Lease (so another replica takes over without waiting for expiry)
    /// and waits up to `timeout` for the release to be written.
    pub async fn release(self, timeout: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(timeout, self.task).await.is_err() {
            tracing::warn!("Lease release did not finish in {timeout:?}");
        }
    }
}

/// What the election needs.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// Lease name.
    pub name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity.
    pub identity: String,
    /// Timing.
    pub timing: LeaseTiming,
}

/// Starts the election and returns the gate and the handle that releases it.
pub async fn start(
    client: Client,
    cfg: ElectionConfig,
    events: crate::events::Events,
) -> Result<(Leadership, Elector)> {
    let manager = LeaseManagerBuilder::new(client.clone(), &cfg.name)
        .with_namespace(&cfg.namespace)
        .with_identity(&cfg.identity)
        .with_duration(cfg.timing.duration.as_secs())
        .with_grace(cfg.timing.grace.as_secs())
        .with_field_manager(format!("vpsie-autoscaler-lease-{}", cfg.identity))
        .with_create_mode(LeaseCreateMode::AutoCreate)
        .build()
        .await
        .map_err(|e| Error::Leader(format!("Lease {}/{}: {e}", cfg.namespace, cfg.name)))?;
    let (lm_rx, lm_task) = manager.watch().await;
    let (tx, rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    metrics::gauge!(LEADER).set(0.0);
    let task = tokio::spawn(run(client, cfg, lm_rx, lm_task, tx, stop_rx, events));
    Ok((Leadership { rx, _open: None }, Elector { stop: stop_tx, task }))
}

/// Until when the Lease object vouches for `identity`, as a local instant.
fn confirmed_until(lease: &Lease, identity: &str, timing: LeaseTiming) -> Option<Instant> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0;
    let duration = spec.lease_duration_seconds.map_or(timing.duration, |s| Duration::from_secs(s.max(0) as u64));
    let age = jiff::Timestamp::now().duration_since(renewed);
    let left = jiff::SignedDuration::try_from(duration).ok()?.checked_sub(age)?;
    let left = Duration::try_from(left).ok()?.checked_sub(EXPIRY_MARGIN)?;
    Some(Instant::now() + left)
}

async fn run(
    client: Client,
    cfg: ElectionConfig,
    mut lm_rx: watch::Receiver<bool>,
    lm_task: JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
    tx: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
    events: crate::events::Events,
) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let lease_watch =
        watcher(api, watcher::Config::default().fields(&format!("metadata.name={}", cfg.name))).default_backoff();
    tokio::pin!(lease_watch);
    let mut until: Option<Instant> = None;
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = lm_rx.changed() => {}
            ev = lease_watch.next() => match ev {
                Some(Ok(watcher::Event::Apply(l) | watcher::Event::InitApply(l))) => {
                    until = confirmed_until(&l, &cfg.identity, cfg.timing);
                }
                Some(Ok(watcher::Event::Delete(_))) => until = None,
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::debug!(error = %e, "Lease watch"),
                None => break,
            },
            _ = tick.tick() => {}
        }
        let leader = *lm_rx.borrow() && until.is_some_and(|u| Instant::now() < u);
        if leader != *tx.borrow() {
            let _ = tx.send(leader);
            metrics::gauge!(LEADER).set(if leader { 1.0 } else { 0.0 });
            let to = if leader { "leader" } else { "follower" };
            metrics::counter!(LEADER_TRANSITIONS, "to" => to).increment(1);
            if leader {
                tracing::info!(identity = %cfg.identity, lease = %cfg.name, "became leader");
                events.leader_elected(&cfg.namespace, &cfg.name, &cfg.identity).await;
            } else {
                tracing::warn!(identity = %cfg.identity, lease = %cfg.name, "no longer leader: stopped acting");
            }
        }
    }
    // Stop acting before the Lease is released, so two replicas never act at once.
    let _ = tx.send(false);
    metrics::gauge!(LEADER).set(0.0);
    drop(lm_rx); // kube-lease-manager releases the Lease when its channel closes.
    match lm_task.await {
        Ok(Ok(_)) => tracing::info!(identity = %cfg.identity, "Lease released"),
        Ok(Err(e)) => tracing::warn!(error = %e, "Lease release"),
        Err(e) => tracing::warn!(error = %e, "Lease task"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed_secs_ago: i64, duration: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(renewed_secs_ago))),
                lease_duration_seconds: Some(duration),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn the_lease_vouches_only_for_its_holder_until_expiry_minus_margin() {
        let t = LeaseTiming::default();
        let fresh = confirmed_until(&lease("a", 0, 10), "a", t);
        let left = fresh.map(|u| u.duration_since(Instant::now()));
        assert!(left.is_some_and(|l| l > Duration::from_secs(8) && l <= Duration::from_secs(9)), "{left:?}");
        assert!(confirmed_until(&lease("b", 0, 10), "a", t).is_none(), "another holder");
        assert!(confirmed_until(&lease("a", 9, 10), "a", t).is_none(), "within the margin of expiry");
        assert!(confirmed_until(&lease("a", 30, 10), "a", t).is_none(), "expired");
    }

    #[tokio::test]
    async fn while_leader_cancels_work_when_leadership_is_lost() {
        let (tx, mut gate) = Leadership::manual(false);
        let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let s = started.clone();
        let task = tokio::spawn(async move {
            gate.while_leader(|| {
                let s = s.clone();
                async move {
                    s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
            })
            .await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 0, "not leader: no work");
        let _ = tx.send(true);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 1);
        let _ = tx.send(false);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = tx.send(true);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 2, "work restarted after re-election");
        task.abort();
    }
}
