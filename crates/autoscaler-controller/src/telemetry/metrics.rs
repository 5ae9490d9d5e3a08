//! Every metric family the operator publishes, in one table ([`FAMILIES`]) that `describe_all` registers,
//! `docs/metrics.md` documents and a test compares with the live `/metrics` exposition.
//!
//! Names follow Prometheus conventions with the `vpsie_autoscaler_` prefix. Families recorded inside
//! `vpsie-client` and `autoscaler-drain` keep the names those crates already use.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::error::{Error, Result};

/// What kind of series a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Histogram.
    Histogram,
}

impl Kind {
    /// The Prometheus `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// Full name.
    pub name: &'static str,
    /// Series kind.
    pub kind: Kind,
    /// Label names.
    pub labels: &'static [&'static str],
    /// Help text.
    pub help: &'static str,
    /// Which code records it; `None` while the code that records it has not landed (listed in the docs).
    pub recorded_by: Option<&'static str>,
}

macro_rules! name {
    ($n:literal) => {
        concat!("vpsie_autoscaler_", $n)
    };
}

/// Build info gauge (always 1) with the version.
pub const BUILD_INFO: &str = name!("build_info");
/// 1 while this replica holds the Lease.
pub const LEADER: &str = name!("leader");
/// Leader transitions of this replica, by `to` (`leader` / `follower`).
pub const LEADER_TRANSITIONS: &str = name!("leader_transitions_total");
/// Objects in the caches, by `kind`.
pub const CACHE_OBJECTS: &str = name!("cache_objects");
/// Objects the decision core could not convert, by `kind`.
pub const CONVERT_ERRORS: &str = name!("convert_errors_total");
/// 1 while VPSie credentials are loaded.
pub const CREDENTIALS_LOADED: &str = name!("credentials_loaded");
/// Credential reloads, by `result`.
pub const CREDENTIAL_RELOADS: &str = name!("credential_reloads_total");
/// Offerings in the cached VPSie catalog.
pub const CATALOG_OFFERINGS: &str = name!("catalog_offerings");
/// Pods that the scheduler marked unschedulable.
pub const UNSCHEDULABLE_PODS: &str = name!("unschedulable_pods");
/// NodeGroup min nodes.
pub const NODEGROUP_MIN: &str = name!("nodegroup_min_nodes");
/// NodeGroup max nodes.
pub const NODEGROUP_MAX: &str = name!("nodegroup_max_nodes");
/// NodeGroup desired nodes (from its status).
pub const NODEGROUP_DESIRED: &str = name!("nodegroup_desired_nodes");
/// NodeGroup current nodes (its VPSieNodes).
pub const NODEGROUP_CURRENT: &str = name!("nodegroup_current_nodes");
/// NodeGroup Ready Nodes.
pub const NODEGROUP_READY: &str = name!("nodegroup_ready_nodes");
/// NodeGroup monthly cost of its VPSieNodes' offerings.
pub const NODEGROUP_MONTHLY_COST: &str = name!("nodegroup_monthly_cost");
/// VPSieNodes by phase.
pub const VPSIENODES: &str = name!("vpsienodes");
/// Audit lines written, by `action`.
pub const AUDIT_RECORDS: &str = name!("audit_records_total");
/// Reconcile errors by `controller` and `error`.
pub const RECONCILE_ERRORS: &str = name!("controller_reconcile_errors_total");
/// Work queued per controller.
pub const QUEUE_DEPTH: &str = name!("reconciliation_queue_depth");
/// Scaling decisions by `decision`.
pub const SCALING_DECISIONS: &str = name!("scaling_decisions_total");
/// Scale-downs blocked, by `nodegroup` and `reason`.
pub const SCALE_DOWN_BLOCKED: &str = name!("scale_down_blocked_total");
/// Safety checks that failed, by `check_type` and `nodegroup`.
pub const SAFETY_CHECK_FAILURES: &str = name!("safety_check_failures_total");
/// Estimated monthly savings of consolidation, by `nodegroup`.
pub const COST_SAVINGS: &str = name!("cost_savings_estimated_monthly");
/// Seconds from a pod marked unschedulable to the VPSie create request for it.
pub const PENDING_TO_CREATE: &str = name!("pending_pod_to_create_seconds");
/// Orphans the collector deleted, by `kind` (`vm`, `node`).
pub const ORPHANS_DELETED: &str = name!("orphans_deleted_total");
/// Seconds from VPSieNode creation to its Node Ready, by `nodegroup`.
pub const PROVISIONING_DURATION: &str = name!("provisioning_duration_seconds");
/// VPSie VM listings not believed because they lacked too many known VMs.
pub const LISTING_DISTRUSTED: &str = name!("vpsie_listing_distrusted_total");

/// Every family, in the order `docs/metrics.md` lists them.
pub const FAMILIES: &[Family] = &[
    Family {
        name: BUILD_INFO,
        kind: Kind::Gauge,
        labels: &["version"],
        help: "Always 1; the version label says which build runs.",
        recorded_by: Some("runtime start"),
    },
    Family {
        name: LEADER,
        kind: Kind::Gauge,
        labels: &[],
        help: "1 while this replica holds the Lease and may act, else 0.",
        recorded_by: Some("leader"),
    },
    Family {
        name: LEADER_TRANSITIONS,
        kind: Kind::Counter,
        labels: &["to"],
        help: "Times this replica became leader or follower.",
        recorded_by: Some("leader"),
    },
    Family {
        name: CACHE_OBJECTS,
        kind: Kind::Gauge,
        labels: &["kind"],
        help: "Objects held in the operator's caches, by kind.",
        recorded_by: Some("cluster caches"),
    },
    Family {
        name: CONVERT_ERRORS,
        kind: Kind::Counter,
        labels: &["kind"],
        help: "Objects the decision core's conversion refused (left out of plans), by kind.",
        recorded_by: Some("cluster caches"),
    },
    Family {
        name: CREDENTIALS_LOADED,
        kind: Kind::Gauge,
        labels: &[],
        help: "1 while usable VPSie credentials are loaded from the Secret.",
        recorded_by: Some("credentials"),
    },
    Family {
        name: CREDENTIAL_RELOADS,
        kind: Kind::Counter,
        labels: &["result"],
        help: "Credential Secret (re)loads by result: loaded, missing, invalid.",
        recorded_by: Some("credentials"),
    },
    Family {
        name: CATALOG_OFFERINGS,
        kind: Kind::Gauge,
        labels: &[],
        help: "Offerings in the cached VPSie catalog (all datacenters).",
        recorded_by: Some("catalog"),
    },
    Family {
        name: UNSCHEDULABLE_PODS,
        kind: Kind::Gauge,
        labels: &[],
        help: "Pods whose PodScheduled condition is False with reason Unschedulable.",
        recorded_by: Some("state metrics"),
    },
    Family {
        name: NODEGROUP_MIN,
        kind: Kind::Gauge,
        labels: &["nodegroup"],
        help: "NodeGroup spec.minNodes.",
        recorded_by: Some("state metrics"),
    },
    Family {
        name: NODEGROUP_MAX,
        kind: Kind::Gauge,
        labels: &["nodegroup"],
        help: "NodeGroup spec.maxNodes.",
        recorded_by: Some("state metrics"),
    },
    Family {
        name: NODEGROUP_DESIRED,
        kind: Kind::Gauge,
        labels: &["nodegroup"],
        help: "NodeGroup status.desiredNodes.",
        recorded_by: Some("state metrics"),
    },
    Family {
        name: NODEGROUP_CURRENT,
        kind: Kind::Gauge,
        labels: &["nodegroup"],
        help: "VPSieNodes of the NodeGroup.",
        recorded_by: Some("state metrics"),
    },
    Family {
        name: NODEGROUP_READY,
        kind: Kind::Gauge,
        labels: &["nodegroup"],
        help: "Ready Nodes labelled with the NodeGroup.",
        recorded_by: Some("state metrics"),
    },
    Family {
        name: NODEGROUP_MONTHLY_COST,
        kind: Kind::Gauge,
        labels: &["nodegroup"],
        help: "Monthly price of the NodeGroup's VPSieNodes' offerings (USD).",
        recorded_by: Some("state metrics"),
    },
    Family {
        name: VPSIENODES,
        kind: Kind::Gauge,
        labels: &["phase"],
        help: "VPSieNodes by phase.",
        recorded_by: Some("state metrics"),
    },
    Family {
        name: AUDIT_RECORDS,
        kind: Kind::Counter,
        labels: &["action"],
        help: "Audit lines written, by action.",
        recorded_by: Some("audit"),
    },
    Family {
        name: vpsie_client::telemetry::REQUESTS_TOTAL,
        kind: Kind::Counter,
        labels: &["endpoint", "code"],
        help: "VPSie API requests by endpoint and HTTP status code.",
        recorded_by: Some("vpsie-client"),
    },
    Family {
        name: vpsie_client::telemetry::REQUEST_DURATION_SECONDS,
        kind: Kind::Histogram,
        labels: &["endpoint"],
        help: "Duration of VPSie API requests by endpoint.",
        recorded_by: Some("vpsie-client"),
    },
    Family {
        name: vpsie_client::telemetry::ERRORS_TOTAL,
        kind: Kind::Counter,
        labels: &["endpoint", "kind"],
        help: "Failed VPSie API calls by endpoint and error kind.",
        recorded_by: Some("vpsie-client"),
    },
    Family {
        name: vpsie_client::telemetry::CIRCUIT_BREAKER_STATE,
        kind: Kind::Gauge,
        labels: &[],
        help: "VPSie API circuit breaker: 0 closed, 1 half-open, 2 open.",
        recorded_by: Some("vpsie-client"),
    },
    Family {
        name: vpsie_client::telemetry::RATE_LIMIT_HITS_TOTAL,
        kind: Kind::Counter,
        labels: &["source"],
        help: "Calls delayed by the client-side limiter (source=client) or refused with 429 (source=server).",
        recorded_by: Some("vpsie-client"),
    },
    Family {
        name: autoscaler_drain::metrics::DRAIN_DURATION_SECONDS,
        kind: Kind::Histogram,
        labels: &["nodegroup", "result"],
        help: "Node drain duration by result.",
        recorded_by: Some("node lifecycle, per event"),
    },
    Family {
        name: autoscaler_drain::metrics::DRAIN_PODS_EVICTED,
        kind: Kind::Counter,
        labels: &["nodegroup"],
        help: "Pods evicted by node drains.",
        recorded_by: Some("node lifecycle, per event"),
    },
    Family {
        name: RECONCILE_ERRORS,
        kind: Kind::Counter,
        labels: &["controller", "error"],
        help: "Reconcile errors by controller and error label.",
        recorded_by: Some("node lifecycle, per event"),
    },
    Family {
        name: QUEUE_DEPTH,
        kind: Kind::Gauge,
        labels: &["controller"],
        help: "Objects waiting for a reconcile, by controller.",
        recorded_by: None,
    },
    Family {
        name: SCALING_DECISIONS,
        kind: Kind::Counter,
        labels: &["decision"],
        help: "Scaling decisions by kind (scale_up, scale_down, consolidate, none).",
        recorded_by: Some("scaling loops, per event"),
    },
    Family {
        name: SCALE_DOWN_BLOCKED,
        kind: Kind::Counter,
        labels: &["nodegroup", "reason"],
        help: "Scale-downs blocked, by NodeGroup and reason.",
        recorded_by: Some("scale-down, per event"),
    },
    Family {
        name: SAFETY_CHECK_FAILURES,
        kind: Kind::Counter,
        labels: &["check_type", "nodegroup"],
        help: "Safety checks that stopped an action, by check and NodeGroup.",
        recorded_by: Some("scaling loops, per event"),
    },
    Family {
        name: COST_SAVINGS,
        kind: Kind::Gauge,
        labels: &["nodegroup"],
        help: "Estimated monthly savings of consolidation (USD), by NodeGroup.",
        recorded_by: Some("consolidation, per event"),
    },
    Family {
        name: PENDING_TO_CREATE,
        kind: Kind::Histogram,
        labels: &[],
        help: "Seconds from a pod seen unschedulable by this replica to the VPSieNode created for it.",
        recorded_by: Some("scale-up, per event"),
    },
    Family {
        name: ORPHANS_DELETED,
        kind: Kind::Counter,
        labels: &["kind"],
        help: "VMs and Nodes nobody claims that the orphan collector deleted, by kind (vm, node).",
        recorded_by: Some("orphan collector, per event"),
    },
    Family {
        name: PROVISIONING_DURATION,
        kind: Kind::Histogram,
        labels: &["nodegroup"],
        help: "Seconds from a VPSieNode's creation to its Node Ready.",
        recorded_by: Some("node lifecycle, per event"),
    },
    Family {
        name: LISTING_DISTRUSTED,
        kind: Kind::Counter,
        labels: &[],
        help: "VPSie VM listings not believed because they lacked at least half (and at least 2) of the VMs seen running.",
        recorded_by: Some("node lifecycle, per event"),
    },
];

/// Histogram buckets in seconds: from a 5 ms API call to a 10-minute drain.
pub const SECONDS_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// Registers the help text of every family with the installed recorder.
pub fn describe_all() {
    for f in FAMILIES {
        match f.kind {
            Kind::Counter => metrics::describe_counter!(f.name, f.help),
            Kind::Gauge => metrics::describe_gauge!(f.name, f.help),
            Kind::Histogram => metrics::describe_histogram!(f.name, f.help),
        }
    }
}

/// Installs the process-wide Prometheus recorder (no HTTP listener of its own: `/metrics` is served by
/// [`crate::health`]) and describes every family.
pub fn install() -> Result<PrometheusHandle> {
    // Buckets make every histogram a Prometheus histogram (aggregatable), not a client-side summary.
    let handle = PrometheusBuilder::new()
        .set_buckets(SECONDS_BUCKETS)
        .map_err(|e| Error::Telemetry(format!("metrics buckets: {e}")))?
        .install_recorder()
        .map_err(|e| Error::Telemetry(format!("metrics recorder: {e}")))?;
    describe_all();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    zero_known_series();
    Ok(handle)
}

/// Counters whose label values are known up front start at 0, so a rate over them is defined from the
/// first scrape (Prometheus' advice for known label sets) and dashboards show "none yet" rather than "no data".
pub fn zero_known_series() {
    for to in ["leader", "follower"] {
        metrics::counter!(LEADER_TRANSITIONS, "to" => to).absolute(0);
    }
    for result in ["loaded", "missing", "invalid"] {
        metrics::counter!(CREDENTIAL_RELOADS, "result" => result).absolute(0);
    }
    for kind in ["nodes", "pods", "poddisruptionbudgets", "daemonsets", "namespaces", "nodegroups", "vpsienodes"] {
        metrics::counter!(CONVERT_ERRORS, "kind" => kind).absolute(0);
    }
    for action in [
        crate::audit::Action::ScaleUp,
        crate::audit::Action::ScaleDown,
        crate::audit::Action::VmCreate,
        crate::audit::Action::VmDelete,
        crate::audit::Action::NodeTermination,
        crate::audit::Action::NodeGroupSpecChange,
    ] {
        metrics::counter!(AUDIT_RECORDS, "action" => action.as_str()).absolute(0);
    }
    for source in ["client", "server"] {
        metrics::counter!(vpsie_client::telemetry::RATE_LIMIT_HITS_TOTAL, "source" => source).absolute(0);
    }
    metrics::gauge!(CATALOG_OFFERINGS).set(0.0);
    metrics::gauge!(CREDENTIALS_LOADED).set(0.0);
}

/// Where the binary serves metrics (for logs).
pub fn endpoint(addr: SocketAddr) -> String {
    format!("http://{addr}/metrics")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_unique_and_counters_end_in_total() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FAMILIES {
            assert!(f.name.starts_with("vpsie_autoscaler_"), "{}", f.name);
            assert!(seen.insert(f.name), "{} listed twice", f.name);
            // The drain crate's evicted-pod counter predates this rule and keeps its name.
            if f.kind == Kind::Counter && f.name != autoscaler_drain::metrics::DRAIN_PODS_EVICTED {
                assert!(f.name.ends_with("_total"), "{}", f.name);
            }
        }
    }
}
