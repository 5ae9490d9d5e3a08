//! What the binary's flags become. [`Config::validate`] refuses combinations that cannot work, naming the
//! flag.

/// How a scale-up chooses among groups and offerings (the decision core's expander).
pub use autoscaler_decision::groups::Expander;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors). The default.
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuditSink {
    /// Standard error, apart from the logs on standard output. The default.
    #[default]
    Stderr,
    /// Appended to this file.
    File(PathBuf),
}

/// Leader-election timing. A holder renews `grace` before its `duration` runs out; others take over
/// after `duration` without a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a Lease is valid after a renewal.
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub grace: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        // 10 s / 3 s: a renewal every ~7 s; a dead leader is replaced within ~11 s.
        Self { duration: Duration::from_secs(10), grace: Duration::from_secs(3) }
    }
}

/// The operator's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Kubeconfig file; `None` uses in-cluster config (or `KUBECONFIG`).
    pub kubeconfig: Option<PathBuf>,
    /// Where `/metrics` is served.
    pub metrics_addr: SocketAddr,
    /// Where `/healthz` and `/readyz` are served.
    pub health_addr: SocketAddr,
    /// Elect a leader through a Lease (off: this process always acts; run one replica only).
    pub leader_elect: bool,
    /// Lease name.
    pub lease_name: String,
    /// Lease namespace.
    pub lease_namespace: String,
    /// Lease timing.
    pub lease: LeaseTiming,
    /// This replica's identity in the Lease and in Events (the Pod name in a cluster).
    pub identity: String,
    /// Name of the VPSie credentials Secret.
    pub vpsie_secret: String,
    /// Namespace of the VPSie credentials Secret.
    pub vpsie_namespace: String,
    /// VPSie API base URL.
    pub vpsie_base_url: String,
    /// Cluster id: the ownership tag on every VM this operator creates.
    pub cluster_id: String,
    /// Decide, log, emit Events and metrics, but never create or delete a VM or a Node.
    pub dry_run: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// Log level or `RUST_LOG`-style filter (`RUST_LOG` wins when set).
    pub log_level: String,
    /// OTLP/gRPC endpoint for traces (`http://collector:4317`); none: no trace export.
    pub otlp_endpoint: Option<String>,
    /// Audit destination.
    pub audit: AuditSink,
    /// How often the VPSie offering catalog is refreshed.
    pub catalog_refresh: Duration,
    /// How long in-flight work may take after SIGTERM before the process exits anyway.
    pub shutdown_grace: Duration,
    /// How long start-up keeps retrying an unreachable API server.
    pub startup_timeout: Duration,
    /// The cloud-init template of VM nodes whose NodeGroup names none (text); the built-in one when `None`.
    pub cloud_init_template: Option<String>,
    /// Namespace of the kubeadm join Secret used when a NodeGroup names none.
    pub join_secret_namespace: String,
    /// Name of that join Secret.
    pub join_secret_name: String,
    /// SSH key identifiers given to VMs of NodeGroups that name none.
    pub default_ssh_key_ids: Vec<String>,
    /// The Kubernetes version new nodes install (`{{kubernetesVersion}}`); the API server's when `None`.
    pub kubernetes_version: Option<String>,
    /// How long one drain may take (evictions refused by PodDisruptionBudgets are retried until then).
    pub drain_timeout: Duration,
    /// How long a VM or Node nobody claims is left before the orphan collector deletes it.
    pub orphan_grace: Duration,
    /// How one scale-up chooses among groups and offerings (one for every group, as in the Cluster
    /// Autoscaler; NodeGroup `priority` feeds `Priority`).
    pub expander: Expander,
    /// How newly unschedulable pods are batched into one scale-up decision.
    pub scale_up_window: crate::scale_up::batch::Window,
    /// The runaway guard: launches that never become usable pause their group.
    pub runaway: crate::scale_up::runaway::Guard,
    /// How often the scale-down and consolidation loop runs when nothing changes.
    pub scale_down_interval: Duration,
    /// How long a node whose removal failed (its drain was refused) is left alone before it may be chosen
    /// again.
    pub scale_down_retry_delay: Duration,
    /// Most nodes being removed (drained) at once across all groups.
    pub max_concurrent_removals: usize,
    /// A workload moved by consolidation is not moved again by consolidation within this period.
    pub consolidation_churn_guard: Duration,
    /// How long a consolidation waits before acting, to re-check its plan against fresh state.
    pub consolidation_validation_delay: Duration,
}

impl Config {
    /// A configuration with the binary's defaults for everything but the cluster id.
    pub fn new(cluster_id: impl Into<String>) -> Self {
        Self {
            kubeconfig: None,
            metrics_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            health_addr: SocketAddr::from(([0, 0, 0, 0], 8081)),
            leader_elect: true,
            lease_name: "vpsie-autoscaler".into(),
            lease_namespace: "kube-system".into(),
            lease: LeaseTiming::default(),
            identity: default_identity(),
            vpsie_secret: "vpsie-secret".into(),
            vpsie_namespace: "kube-system".into(),
            vpsie_base_url: vpsie_client::config::DEFAULT_BASE_URL.into(),
            cluster_id: cluster_id.into(),
            dry_run: false,
            log_format: LogFormat::Json,
            log_level: "info".into(),
            otlp_endpoint: None,
            audit: AuditSink::Stderr,
            catalog_refresh: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(20),
            startup_timeout: Duration::from_secs(60),
            cloud_init_template: None,
            join_secret_namespace: "kube-system".into(),
            join_secret_name: "vpsie-join".into(),
            default_ssh_key_ids: Vec::new(),
            kubernetes_version: None,
            drain_timeout: Duration::from_secs(600),
            orphan_grace: Duration::from_secs(600),
            expander: Expander::LeastWaste,
            scale_up_window: crate::scale_up::batch::Window::default(),
            runaway: crate::scale_up::runaway::Guard::default(),
            scale_down_interval: Duration::from_secs(10),
            scale_down_retry_delay: Duration::from_secs(300),
            max_concurrent_removals: 10,
            consolidation_churn_guard: Duration::from_secs(3600),
            consolidation_validation_delay: Duration::from_secs(15),
        }
    }

    /// Refuses settings that cannot work together, naming the flag.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(Error::Config(m));
        if self.cluster_id.trim().is_empty() {
            return fail("--cluster-id is required: it tags every VM this operator creates".into());
        }
        if !self.cluster_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
            return fail(format!("--cluster-id {:?} may hold only letters, digits, '-', '_' and '.'", self.cluster_id));
        }
        if self.metrics_addr == self.health_addr {
            return fail(format!("--metrics-addr and --health-addr are both {}", self.metrics_addr));
        }
        if self.leader_elect && (self.lease_name.is_empty() || self.lease_namespace.is_empty()) {
            return fail("--lease-name and --lease-namespace must not be empty with --leader-elect".into());
        }
        if self.lease.grace.is_zero() || self.lease.grace >= self.lease.duration {
            return fail(format!(
                "the lease grace ({:?}) must be positive and shorter than the lease duration ({:?})",
                self.lease.grace, self.lease.duration
            ));
        }
        if self.vpsie_secret.is_empty() || self.vpsie_namespace.is_empty() {
            return fail("--vpsie-secret and --vpsie-namespace must not be empty".into());
        }
        if !(self.vpsie_base_url.starts_with("http://") || self.vpsie_base_url.starts_with("https://")) {
            return fail(format!("--vpsie-base-url {:?} needs http:// or https://", self.vpsie_base_url));
        }
        if let Some(e) = &self.otlp_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return fail(format!("--otlp-endpoint {e:?} needs http:// or https://"));
        }
        if let Some(t) = &self.cloud_init_template {
            crate::provision::cloud_init::check(t).map_err(|e| Error::Config(format!("--cloud-init-template: {e}")))?;
        }
        if self.join_secret_namespace.is_empty() || self.join_secret_name.is_empty() {
            return fail("--join-secret must be namespace/name".into());
        }
        if self.identity.is_empty() {
            return fail("the replica identity is empty (set POD_NAME or --identity)".into());
        }
        Ok(())
    }
}

/// `POD_NAME` when set (the Deployment passes it through the downward API), else host name and pid.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(c: &Config) -> String {
        c.validate().err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn defaults_validate_and_conflicts_name_the_flag() {
        let ok = Config::new("prod-1");
        assert!(ok.validate().is_ok());
        assert!(err(&Config::new("")).contains("--cluster-id is required"));
        assert!(err(&Config::new("a b")).contains("--cluster-id"));
        let mut same = Config::new("c");
        same.health_addr = same.metrics_addr;
        assert!(err(&same).contains("--metrics-addr and --health-addr"));
        let mut lease = Config::new("c");
        lease.lease.grace = lease.lease.duration;
        assert!(err(&lease).contains("lease grace"));
        let mut url = Config::new("c");
        url.vpsie_base_url = "api.vpsie.com".into();
        assert!(err(&url).contains("--vpsie-base-url"));
        let mut otlp = Config::new("c");
        otlp.otlp_endpoint = Some("collector:4317".into());
        assert!(err(&otlp).contains("--otlp-endpoint"));
    }
}
