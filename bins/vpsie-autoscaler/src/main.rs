//! The vpsie-autoscaler operator: parses flags (each with an environment fallback), installs telemetry and
//! runs `autoscaler_controller::run` until SIGTERM or SIGINT, then exits 0 after releasing the Lease.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use autoscaler_controller::config::{AuditSink, Expander, LeaseTiming, LogFormat};
use autoscaler_controller::{Config, telemetry};
use clap::{Parser, ValueEnum};

/// mimalloc returns freed pages to the system; glibc malloc kept the transient list pages of a big initial
/// sync resident (2x the RSS at 6,000 pods; see docs/operator.md, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Text,
}

/// A Kubernetes node autoscaler for VPSie.
#[derive(Debug, Parser)]
#[command(name = "vpsie-autoscaler", version, about)]
struct Flags {
    /// Kubeconfig file; in-cluster configuration when unset.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Address of /metrics (":8080" means every interface).
    #[arg(long, env = "VPSIE_AUTOSCALER_METRICS_ADDR", default_value = ":8080", value_parser = parse_addr)]
    metrics_addr: SocketAddr,
    /// Address of /healthz and /readyz.
    #[arg(long, env = "VPSIE_AUTOSCALER_HEALTH_ADDR", default_value = ":8081", value_parser = parse_addr)]
    health_addr: SocketAddr,
    /// Elect a leader through a Lease; `--leader-elect=false` only for a single replica.
    #[arg(long, env = "VPSIE_AUTOSCALER_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Lease name.
    #[arg(long, env = "VPSIE_AUTOSCALER_LEASE_NAME", default_value = "vpsie-autoscaler")]
    lease_name: String,
    /// Lease namespace.
    #[arg(long, env = "VPSIE_AUTOSCALER_LEASE_NAMESPACE", default_value = "kube-system")]
    lease_namespace: String,
    /// Seconds a Lease stays valid after a renewal (a dead leader is replaced about this long after).
    #[arg(long, env = "VPSIE_AUTOSCALER_LEASE_DURATION_SECONDS", default_value_t = 10)]
    lease_duration_seconds: u64,
    /// Seconds before expiry the leader renews.
    #[arg(long, env = "VPSIE_AUTOSCALER_LEASE_GRACE_SECONDS", default_value_t = 3)]
    lease_grace_seconds: u64,
    /// This replica's identity (the Pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Name of the VPSie credentials Secret.
    #[arg(long, env = "VPSIE_AUTOSCALER_VPSIE_SECRET", default_value = "vpsie-secret")]
    vpsie_secret: String,
    /// Namespace of the VPSie credentials Secret.
    #[arg(long, env = "VPSIE_AUTOSCALER_VPSIE_NAMESPACE", default_value = "kube-system")]
    vpsie_namespace: String,
    /// VPSie API base URL.
    #[arg(long, env = "VPSIE_AUTOSCALER_VPSIE_BASE_URL", default_value = "https://api.vpsie.com")]
    vpsie_base_url: String,
    /// Cluster id: the ownership tag on every VM this operator creates.
    #[arg(long, env = "VPSIE_AUTOSCALER_CLUSTER_ID")]
    cluster_id: String,
    /// Log format.
    #[arg(long, env = "VPSIE_AUTOSCALER_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: Format,
    /// Log level of our crates (`RUST_LOG` wins when set).
    #[arg(long, env = "VPSIE_AUTOSCALER_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// OTLP/gRPC collector for traces, e.g. http://otel-collector:4317.
    #[arg(long, env = "VPSIE_AUTOSCALER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Audit log file (JSON lines, hash-chained); standard error when unset.
    #[arg(long, env = "VPSIE_AUTOSCALER_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Decide, log, emit Events and metrics, never create or delete a VM or a Node.
    #[arg(long, env = "VPSIE_AUTOSCALER_DRY_RUN", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    dry_run: bool,
    /// Seconds between refreshes of the VPSie offering catalog.
    #[arg(long, env = "VPSIE_AUTOSCALER_CATALOG_REFRESH_SECONDS", default_value_t = 300)]
    catalog_refresh_seconds: u64,
    /// Seconds in-flight work may take after SIGTERM.
    #[arg(long, env = "VPSIE_AUTOSCALER_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    shutdown_grace_seconds: u64,
    /// Seconds start-up waits for an unreachable API server.
    #[arg(long, env = "VPSIE_AUTOSCALER_STARTUP_TIMEOUT_SECONDS", default_value_t = 60)]
    startup_timeout_seconds: u64,
    /// File holding the cloud-init template of VM nodes whose NodeGroup names none (the built-in one when
    /// absent; variables in docs/lifecycle.md).
    #[arg(long, env = "VPSIE_AUTOSCALER_CLOUD_INIT_TEMPLATE")]
    cloud_init_template: Option<PathBuf>,
    /// The kubeadm join Secret (`namespace/name`, keys apiServerEndpoint, token, caCertHash) of NodeGroups
    /// that name none.
    #[arg(long, env = "VPSIE_AUTOSCALER_JOIN_SECRET", default_value = "kube-system/vpsie-join")]
    join_secret: String,
    /// SSH key identifier given to VMs of NodeGroups that name none (repeatable).
    #[arg(long = "default-ssh-key-id", env = "VPSIE_AUTOSCALER_DEFAULT_SSH_KEY_IDS", value_delimiter = ',')]
    default_ssh_key_ids: Vec<String>,
    /// Kubernetes version new nodes install (default: the API server's).
    #[arg(long, env = "VPSIE_AUTOSCALER_KUBERNETES_VERSION")]
    kubernetes_version: Option<String>,
    /// Seconds one node drain may take before it is rolled back and retried later.
    #[arg(long, env = "VPSIE_AUTOSCALER_DRAIN_TIMEOUT_SECONDS", default_value_t = 600)]
    drain_timeout_seconds: u64,
    /// Seconds a VM carrying this cluster's tags that no VPSieNode claims (or a Node of ours whose VM is
    /// gone) is left before it is deleted.
    #[arg(long, env = "VPSIE_AUTOSCALER_ORPHAN_GRACE_SECONDS", default_value_t = 600)]
    orphan_grace_seconds: u64,
    /// How a scale-up chooses among groups and offerings, for every group (NodeGroup `priority` feeds
    /// `priority`).
    #[arg(long, env = "VPSIE_AUTOSCALER_EXPANDER", value_enum, default_value = "least-waste")]
    expander: ExpanderFlag,
    /// Seconds between scale-down passes when nothing changes.
    #[arg(long, env = "VPSIE_AUTOSCALER_SCALE_DOWN_INTERVAL_SECONDS", default_value_t = 10)]
    scale_down_interval_seconds: u64,
    /// Most nodes being removed (drained) at once across all groups.
    #[arg(long, env = "VPSIE_AUTOSCALER_MAX_CONCURRENT_REMOVALS", default_value_t = 10)]
    max_concurrent_removals: usize,
    /// Nodes launched within the runaway window that never take their pods before a group stops launching.
    #[arg(long, env = "VPSIE_AUTOSCALER_RUNAWAY_LIMIT", default_value_t = 3)]
    runaway_limit: usize,
    /// Seconds back the runaway guard counts launches.
    #[arg(long, env = "VPSIE_AUTOSCALER_RUNAWAY_WINDOW_SECONDS", default_value_t = 600)]
    runaway_window_seconds: u64,
    /// Seconds a group stays paused once the runaway guard trips.
    #[arg(long, env = "VPSIE_AUTOSCALER_RUNAWAY_BACKOFF_SECONDS", default_value_t = 300)]
    runaway_backoff_seconds: u64,
    /// Seconds a consolidation waits before it acts, re-planned from fresh state then.
    #[arg(long, env = "VPSIE_AUTOSCALER_CONSOLIDATION_VALIDATION_SECONDS", default_value_t = 15)]
    consolidation_validation_seconds: u64,
    /// Seconds during which a workload consolidation moved is not moved by consolidation again.
    #[arg(long, env = "VPSIE_AUTOSCALER_CONSOLIDATION_CHURN_GUARD_SECONDS", default_value_t = 3600)]
    consolidation_churn_guard_seconds: u64,
}

/// `--expander` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExpanderFlag {
    /// The option leaving the least CPU and memory idle.
    LeastWaste,
    /// The lowest monthly price per pod.
    Cheapest,
    /// The highest NodeGroup priority, then least waste.
    Priority,
}

/// `":8080"` is every interface; `"127.0.0.1:8080"` one.
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') { format!("0.0.0.0{s}") } else { s.to_owned() };
    full.parse().map_err(|e| format!("{s:?} is not an address like :8080 or 127.0.0.1:8080: {e}"))
}

impl Flags {
    fn into_config(self) -> Result<Config, String> {
        let mut c = Config::new(self.cluster_id);
        c.kubeconfig = self.kubeconfig;
        c.metrics_addr = self.metrics_addr;
        c.health_addr = self.health_addr;
        c.leader_elect = self.leader_elect;
        c.lease_name = self.lease_name;
        c.lease_namespace = self.lease_namespace;
        c.lease = LeaseTiming {
            duration: Duration::from_secs(self.lease_duration_seconds),
            grace: Duration::from_secs(self.lease_grace_seconds),
        };
        if let Some(id) = self.identity.filter(|i| !i.is_empty()) {
            c.identity = id;
        }
        c.vpsie_secret = self.vpsie_secret;
        c.vpsie_namespace = self.vpsie_namespace;
        c.vpsie_base_url = self.vpsie_base_url;
        c.log_format = match self.log_format {
            Format::Json => LogFormat::Json,
            Format::Text => LogFormat::Text,
        };
        c.log_level = self.log_level;
        c.otlp_endpoint = self.otlp_endpoint;
        c.audit = self.audit_log.map_or(AuditSink::Stderr, AuditSink::File);
        c.dry_run = self.dry_run;
        c.catalog_refresh = Duration::from_secs(self.catalog_refresh_seconds.max(1));
        c.shutdown_grace = Duration::from_secs(self.shutdown_grace_seconds);
        c.startup_timeout = Duration::from_secs(self.startup_timeout_seconds);
        if let Some(path) = &self.cloud_init_template {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("--cloud-init-template {}: {e}", path.display()))?;
            c.cloud_init_template = Some(text);
        }
        let (ns, name) = self
            .join_secret
            .split_once('/')
            .ok_or_else(|| format!("--join-secret {:?} must be namespace/name", self.join_secret))?;
        c.join_secret_namespace = ns.to_owned();
        c.join_secret_name = name.to_owned();
        c.default_ssh_key_ids = self.default_ssh_key_ids.into_iter().filter(|k| !k.is_empty()).collect();
        c.kubernetes_version = self.kubernetes_version.filter(|v| !v.is_empty());
        c.drain_timeout = Duration::from_secs(self.drain_timeout_seconds.max(1));
        c.orphan_grace = Duration::from_secs(self.orphan_grace_seconds.max(1));
        c.expander = match self.expander {
            ExpanderFlag::LeastWaste => Expander::LeastWaste,
            ExpanderFlag::Cheapest => Expander::Cheapest,
            ExpanderFlag::Priority => Expander::Priority,
        };
        c.scale_down_interval = Duration::from_secs(self.scale_down_interval_seconds.max(1));
        c.max_concurrent_removals = self.max_concurrent_removals.max(1);
        c.runaway.limit = self.runaway_limit.max(1);
        c.runaway.window = Duration::from_secs(self.runaway_window_seconds.max(1));
        c.runaway.backoff = Duration::from_secs(self.runaway_backoff_seconds.max(1));
        c.consolidation_validation_delay = Duration::from_secs(self.consolidation_validation_seconds);
        c.consolidation_churn_guard = Duration::from_secs(self.consolidation_churn_guard_seconds);
        Ok(c)
    }
}

async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn main() -> ExitCode {
    // One TLS provider for the whole process (kube's rustls); see shared/known-good-deps.toml.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match Flags::parse().into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vpsie-autoscaler: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = config.validate() {
        eprintln!("vpsie-autoscaler: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vpsie-autoscaler: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let _guard = match telemetry::init(config.log_format, &config.log_level, config.otlp_endpoint.as_deref()) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("vpsie-autoscaler: {e}");
                return ExitCode::from(2);
            }
        };
        match autoscaler_controller::run(config, signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "vpsie-autoscaler stopped");
                eprintln!("vpsie-autoscaler: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_defaults_and_addresses() {
        let f = Flags::try_parse_from(["vpsie-autoscaler", "--cluster-id", "c1", "--leader-elect=false", "--dry-run"]);
        let c = f.map_err(|e| e.to_string()).and_then(Flags::into_config);
        let c = c.as_ref().map_err(String::as_str);
        assert_eq!(
            c.map(|c| (c.metrics_addr.port(), c.health_addr.port(), c.leader_elect, c.dry_run)),
            Ok((8080, 8081, false, true))
        );
        assert_eq!(
            c.map(|c| (c.join_secret_namespace.as_str(), c.join_secret_name.as_str())),
            Ok(("kube-system", "vpsie-join"))
        );
        let bad = Flags::try_parse_from(["vpsie-autoscaler", "--cluster-id", "c1", "--join-secret", "nope"]);
        assert!(
            bad.map_err(|e| e.to_string()).and_then(Flags::into_config).is_err_and(|e| e.contains("--join-secret"))
        );
        let keys = Flags::try_parse_from(["vpsie-autoscaler", "--cluster-id", "c1", "--default-ssh-key-id", "k1,k2"]);
        let keys = keys.map_err(|e| e.to_string()).and_then(Flags::into_config).map(|c| c.default_ssh_key_ids);
        assert_eq!(keys, Ok(vec!["k1".to_owned(), "k2".to_owned()]));
        assert!(parse_addr("127.0.0.1:9").is_ok());
        assert!(parse_addr("nine").is_err());
        assert!(Flags::try_parse_from(["vpsie-autoscaler"]).is_err(), "--cluster-id is required");
    }
}
