//! The vpsie-autoscaler operator runtime: what every controller and loop plugs into.
//!
//! [`run`] wires it together: telemetry, the API client (with a bounded wait for an unreachable API
//! server), the CRD check, `/healthz` `/readyz` `/metrics`, the caches ([`cluster`]), the credentials Secret
//! watch ([`credentials`]), leader election ([`leader`], sought only once the caches are warm), the audit
//! log ([`audit`]), the VPSie catalog ([`catalog`]) and the state gauges. Everything that writes to
//! Kubernetes or VPSie checks [`leader::Leadership`] first; `--dry-run` is carried in [`context::Context`].
//!
//! Module map (see `docs/architecture.md`): `config`, `error`, `context`, `cluster` (caches, snapshot),
//! `leader`, `credentials`, `catalog`, `events`, `audit`, `health`, `telemetry` (logs, metrics, traces,
//! state gauges). The node lifecycle, the scaling loops and consolidation plug into [`context::Context`].
#![warn(missing_docs)]

pub mod audit;
pub mod catalog;
pub mod cluster;
pub mod config;
pub mod consolidation;
pub mod context;
pub mod credentials;
pub mod decisions;
pub mod error;
pub mod events;
pub mod failpoint;
pub mod health;
pub mod leader;
pub mod lifecycle;
pub mod membership;
pub mod nodegroup;
pub mod orphans;
pub mod planning;
pub mod provision;
pub mod scale_down;
pub mod scale_up;
pub mod shutdown;
pub mod telemetry;

use std::time::Duration;

use autoscaler_api::{NodeGroup, VPSieNode};
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::sync::mpsc;

pub use config::Config;
pub use context::Context;
pub use error::{Error, Result};

use crate::audit::{Action, AuditLog, Entry};
use crate::cluster::SpecChange;
use crate::health::{Check, Health};
use crate::leader::Leadership;

/// Builds the Kubernetes client from `--kubeconfig`, or the in-cluster / `KUBECONFIG` default.
pub async fn kube_client(config: &Config) -> Result<Client> {
    Client::try_from(kube_config(config).await?).map_err(Error::Kube)
}

/// The Kubernetes client configuration from `--kubeconfig`, or the in-cluster / `KUBECONFIG` default.
pub async fn kube_config(config: &Config) -> Result<kube::Config> {
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::Config(format!("--kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Config(format!("--kubeconfig {}: {e}", path.display())))?
        }
        None => kube::Config::infer().await.map_err(|e| Error::Config(format!("no Kubernetes configuration: {e}")))?,
    };
    Ok(kube_config)
}

/// Waits for the API server to answer, retrying with backoff up to `timeout`; returns its version
/// (`v1.36.3`).
pub async fn wait_for_apiserver(client: &Client, timeout: Duration) -> Result<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(250);
    loop {
        match client.apiserver_version().await {
            Ok(v) => {
                tracing::info!(version = %v.git_version, "API server reachable");
                return Ok(v.git_version);
            }
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, retry_in = ?delay, "API server not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                return Err(Error::Config(format!("the API server did not answer within {timeout:?}: {e}")));
            }
        }
    }
}

/// Refuses to start without the CRDs (a list of each kind answers 404 then).
pub async fn check_crds(client: &Client) -> Result<()> {
    let probe = ListParams::default().limit(1);
    let missing = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 404);
    match Api::<NodeGroup>::all(client.clone()).list_metadata(&probe).await {
        Err(e) if missing(&e) => return Err(Error::CrdMissing("nodegroups.autoscaler.vpsie.com".into())),
        Err(e) => return Err(Error::Kube(e)),
        Ok(_) => {}
    }
    match Api::<VPSieNode>::all(client.clone()).list_metadata(&probe).await {
        Err(e) if missing(&e) => Err(Error::CrdMissing("vpsienodes.autoscaler.vpsie.com".into())),
        Err(e) => Err(Error::Kube(e)),
        Ok(_) => Ok(()),
    }
}

/// Writes one audit line per NodeGroup spec change while this replica leads (followers drop them: the
/// leader sees the same change).
fn spawn_spec_auditor(
    mut changes: mpsc::UnboundedReceiver<SpecChange>,
    audit: std::sync::Arc<AuditLog>,
    leadership: Leadership,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(c) = changes.recv().await {
            if !leadership.is_leader() {
                continue;
            }
            let entry = Entry {
                who: c.by.clone().unwrap_or_else(|| "unknown".into()),
                action: Action::NodeGroupSpecChange,
                object: format!("NodeGroup/{}", c.name),
                why: format!("spec changed: generation {} -> {}", c.from, c.to),
                correlation_id: None,
                dry_run: false,
            };
            if let Err(e) = audit.record(entry) {
                tracing::error!(error = %e, "audit line not written");
            }
        }
    })
}

/// Runs the operator until `shutdown` resolves, then stops acting, releases the Lease and returns.
pub async fn run(config: Config, signal: impl std::future::Future<Output = ()> + Send + 'static) -> Result<()> {
    config.validate()?;
    let prometheus = telemetry::metrics::install()?;
    vpsie_client::telemetry::describe_metrics();
    autoscaler_drain::metrics::describe_metrics();

    let mut config = config;
    let client = kube_client(&config).await?;
    let version = wait_for_apiserver(&client, config.startup_timeout).await?;
    // New nodes install the control plane's version unless told otherwise (kubeadm join refuses a kubelet
    // newer than the API server).
    config.kubernetes_version.get_or_insert(version);
    let drain_client = autoscaler_drain::DrainClient::new(kube_config(&config).await?).map_err(Error::Kube)?;
    check_crds(&client).await?;

    let health = Health::new();
    health.set(Check::CrdsInstalled, Ok(()));
    let listeners = health::bind(config.health_addr, config.metrics_addr).await?;
    let (stop_http_tx, stop_http_rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(health::serve(listeners, health.clone(), prometheus, async move {
        let _ = stop_http_rx.await;
    }));
    tracing::info!(health = %config.health_addr, metrics = %telemetry::metrics::endpoint(config.metrics_addr), "serving health and metrics");

    let events = events::Events::new(client.clone(), &config.identity);
    let cluster = cluster::Cluster::new();
    let (changes_tx, changes_rx) = mpsc::unbounded_channel();
    let mut tasks = cluster.start(&client, &health, changes_tx);

    // Credentials load on every replica (readiness); only the leader publishes Events about them.
    let vpsie = credentials::VpsieHandle::default();
    let (gate_tx, gate) = Leadership::manual(false);
    let creds_cfg = credentials::CredentialsConfig {
        namespace: config.vpsie_namespace.clone(),
        name: config.vpsie_secret.clone(),
        base_url: config.vpsie_base_url.clone(),
        identity: config.identity.clone(),
    };
    tasks.push(credentials::spawn(
        client.clone(),
        creds_cfg,
        vpsie.clone(),
        health.clone(),
        events.gated(gate.clone()),
    ));

    // Warm caches before seeking the Lease, so a new leader acts on them at once.
    health.set(Check::CachesSynced, Err("listing".into()));
    let mut signal = std::pin::pin!(signal);
    loop {
        tokio::select! {
            synced = cluster.wait_synced(Duration::from_millis(500)) => if synced { break },
            () = &mut signal => {
                tracing::info!("shutdown before the caches synced");
                let _ = stop_http_tx.send(());
                return Ok(());
            }
        }
        health.set(Check::CachesSynced, Err(format!("listing {}", cluster.unsynced().join(", "))));
    }
    health.set(Check::CachesSynced, Ok(()));

    let (leadership, elector) = if config.leader_elect {
        let cfg = leader::ElectionConfig {
            name: config.lease_name.clone(),
            namespace: config.lease_namespace.clone(),
            identity: config.identity.clone(),
            timing: config.lease,
        };
        let (l, e) = leader::start(client.clone(), cfg, events.clone()).await?;
        (l, Some(e))
    } else {
        tracing::warn!("leader election off: this replica acts alone (run one replica only)");
        metrics::gauge!(telemetry::metrics::LEADER).set(1.0);
        (Leadership::always(), None)
    };
    // Feed the credentials watcher's Event gate from the election. A replica that becomes leader while the
    // credentials are unusable says so in an Event at once (a follower only logged it).
    let mut follow = leadership.clone();
    let (leader_events, leader_health) = (events.clone(), health.clone());
    let (secret_ns, secret_name) = (config.vpsie_namespace.clone(), config.vpsie_secret.clone());
    tasks.push(tokio::spawn(async move {
        loop {
            let leading = follow.is_leader();
            let _ = gate_tx.send(leading);
            if leading {
                if let Err(problem) = leader_health.check(Check::CredentialsLoaded) {
                    leader_events.credentials_problem(&secret_ns, &secret_name, &problem).await;
                }
                follow.lost().await;
            } else {
                follow.acquired().await;
            }
        }
    }));

    let audit = std::sync::Arc::new(AuditLog::open(&config.audit)?);
    let catalog = catalog::Catalog::default();
    let stop = shutdown::Shutdown::default();
    let ctx = Context {
        client: client.clone(),
        drain_client,
        config: config.clone(),
        cluster: cluster.clone(),
        catalog: catalog.clone(),
        vpsie: vpsie.clone(),
        leadership: leadership.clone(),
        events: events.gated(leadership.clone()),
        audit: audit.clone(),
        health: health.clone(),
        shutdown: stop.clone(),
        notes: decisions::Notes::default(),
    };
    tasks.push(spawn_spec_auditor(changes_rx, audit, leadership.clone()));
    tasks.push(catalog::spawn(
        catalog.clone(),
        vpsie,
        cluster.clone(),
        leadership.clone(),
        health.clone(),
        stop.clone(),
        config.catalog_refresh,
    ));
    tasks.push(telemetry::state::spawn(cluster, catalog, health.clone(), Duration::from_secs(5)));
    tasks.push(lifecycle::spawn(ctx.clone()));
    tasks.push(nodegroup::spawn(ctx.clone()));
    tasks.push(orphans::spawn(ctx.clone()));
    tasks.push(scale_up::spawn(ctx.clone()));
    tasks.push(scale_down::spawn(ctx.clone()));
    tracing::info!(identity = %config.identity, dry_run = ctx.config.dry_run, cluster_id = %ctx.config.cluster_id, "operator running");

    signal.await;
    stop.begin();
    tracing::info!(in_flight = stop.in_flight(), "shutting down: no new work");
    if !stop.drained(config.shutdown_grace).await {
        tracing::warn!(in_flight = stop.in_flight(), grace = ?config.shutdown_grace, "work still in flight after the grace period");
    }
    tracing::info!("releasing the Lease");
    if let Some(e) = elector {
        e.release(config.shutdown_grace).await;
    }
    for t in &tasks {
        t.abort();
    }
    let _ = stop_http_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
    drop(ctx);
    tracing::info!("stopped");
    Ok(())
}
