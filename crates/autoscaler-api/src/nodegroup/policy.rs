//! Scaling policies, limits, expander and disruption settings of a NodeGroup.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

/// When to add capacity. Pods that cannot be scheduled trigger a scale-up at once, without any window;
/// this policy only adds headroom ahead of demand.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleUpPolicy {
    /// Whether the group scales up at all (also for unschedulable pods). Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Headroom nodes are added at most once per this many seconds. Never delays scale-up for
    /// unschedulable pods. Default 60.
    #[serde(default = "ScaleUpPolicy::default_window")]
    #[schemars(range(min = 0, max = 3600))]
    pub stabilization_window_seconds: i32,
    /// Add a headroom node when the requested (not used) CPU of the group's nodes passes this percentage
    /// of their allocatable CPU. Default 80.
    #[serde(default = "ScaleUpPolicy::default_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub cpu_threshold: i32,
    /// Add a headroom node when the requested memory of the group's nodes passes this percentage of their
    /// allocatable memory. Default 80.
    #[serde(default = "ScaleUpPolicy::default_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub memory_threshold: i32,
}

impl ScaleUpPolicy {
    fn default_window() -> i32 {
        60
    }
    fn default_threshold() -> i32 {
        80
    }
}

impl Default for ScaleUpPolicy {
    fn default() -> Self {
        Self { enabled: true, stabilization_window_seconds: 60, cpu_threshold: 80, memory_threshold: 80 }
    }
}

/// When to remove a node. A node is a candidate while both its requested CPU and requested memory are
/// under the thresholds; it is removed only after staying a candidate for the whole window, and only if
/// every pod on it can be placed elsewhere without breaking a PodDisruptionBudget.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDownPolicy {
    /// Whether the group scales down at all. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds a node must stay under both thresholds before it is removed. Default 600.
    #[serde(default = "ScaleDownPolicy::default_window")]
    #[schemars(range(min = 0, max = 86400))]
    pub stabilization_window_seconds: i32,
    /// A node is a candidate while its requested CPU is under this percentage of its allocatable CPU.
    /// Default 50.
    #[serde(default = "ScaleDownPolicy::default_threshold")]
    #[schemars(range(min = 0, max = 100))]
    pub cpu_threshold: i32,
    /// A node is a candidate while its requested memory is under this percentage of its allocatable
    /// memory. Default 50.
    #[serde(default = "ScaleDownPolicy::default_threshold")]
    #[schemars(range(min = 0, max = 100))]
    pub memory_threshold: i32,
}

impl ScaleDownPolicy {
    fn default_window() -> i32 {
        600
    }
    fn default_threshold() -> i32 {
        50
    }
}

impl Default for ScaleDownPolicy {
    fn default() -> Self {
        Self { enabled: true, stabilization_window_seconds: 600, cpu_threshold: 50, memory_threshold: 50 }
    }
}

/// How a scale-up chooses among groups and offerings (the operator's `--expander`, one for all groups).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Expander {
    /// The offering that leaves the least CPU and memory idle after placing the pending pods.
    #[default]
    LeastWaste,
    /// The lowest monthly cost per placed pod.
    Cheapest,
    /// The group with the highest `priority` that fits, then least waste.
    Priority,
}

/// Upper bounds of the group as a whole; a scale-up that would pass one is refused and reported.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Most the group's nodes may cost per month, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_monthly_cost: Option<f64>,
    /// Most vCPUs across the group's nodes.
    #[serde(default, rename = "maxCPU", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_cpu: Option<i64>,
    /// Most memory across the group's nodes, in GiB.
    #[serde(default, rename = "maxMemoryGiB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_memory_gib: Option<i64>,
}

/// Limits on voluntary disruption (scale-down and consolidation), as in Karpenter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disruption {
    /// Budgets; the most restrictive active one applies. No budget means one node at a time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub budgets: Vec<DisruptionBudget>,
    /// Moving work onto fewer or cheaper nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidation: Option<Consolidation>,
}

/// How many of the group's nodes may be disrupted at once, optionally only during a schedule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.schedule) == has(self.duration)").message("spec.disruption.budgets[].schedule and spec.disruption.budgets[].duration must be set together"))]
pub struct DisruptionBudget {
    /// A count (`"2"`) or a percentage of the group's nodes (`"10%"`). `"0"` blocks disruption.
    #[schemars(regex(pattern = r"^((100|[0-9]{1,2})%|[0-9]+)$"), length(max = 10))]
    pub nodes: String,
    /// A cron schedule (5 fields, or `@daily` and friends), in UTC, of when the budget starts being active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$"),
        length(max = 100)
    )]
    pub schedule: Option<String>,
    /// How long the budget stays active after each scheduled start, e.g. `"8h"` or `"1h30m"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h))+$"), length(max = 20))]
    pub duration: Option<String>,
}

/// When consolidation may act.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
pub enum ConsolidationPolicy {
    /// Only remove nodes that run no workload pods.
    WhenEmpty,
    /// Also move pods off underutilised nodes onto fewer or cheaper ones.
    #[default]
    WhenUnderutilized,
}

/// Consolidation settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Consolidation {
    /// Whether consolidation runs. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When it may act. Default WhenUnderutilized.
    #[serde(default)]
    pub policy: ConsolidationPolicy,
    /// Only consolidate when it saves at least this much per month, in USD. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub min_monthly_savings: f64,
}
