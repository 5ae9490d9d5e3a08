//! What the autoscaler observed and decided about a NodeGroup.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::{Deserialize, Serialize};

use crate::vpsienode::VPSieNodePhase;

/// Observed state of a NodeGroup. Written by the controller with server-side apply.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeGroupStatus {
    /// Nodes the autoscaler wants.
    #[serde(default)]
    pub desired_nodes: i32,
    /// Nodes that exist (any phase but Deleting).
    #[serde(default)]
    pub current_nodes: i32,
    /// Nodes that are Ready in Kubernetes.
    #[serde(default)]
    pub ready_nodes: i32,
    /// One entry per node of the group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSummary>,
    /// Ready, Scaling, AtMinCapacity, AtMaxCapacity, ScaleUpBlocked, Error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// When the group last grew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_up_time: Option<Time>,
    /// When the group last shrank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_down_time: Option<Time>,
    /// Monthly cost of the group's nodes in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_cost: Option<f64>,
    /// The last scaling decision, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<LastDecision>,
    /// What the last consolidation of the group saves per month, in USD (estimated from offering prices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_monthly_savings: Option<f64>,
    /// Offerings temporarily avoided after failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offering_backoff: Vec<OfferingBackoff>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One node of the group.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    /// VPSieNode (and Kubernetes Node) name.
    pub name: String,
    /// VPSie VM numeric id.
    #[serde(default, rename = "vpsID", skip_serializing_if = "Option::is_none")]
    pub vps_id: Option<i64>,
    /// Offering identifier.
    #[serde(default, rename = "offeringID")]
    pub offering_id: String,
    /// Lifecycle phase.
    pub phase: VPSieNodePhase,
    /// Public IP.
    #[serde(default, rename = "ip", skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// The last decision taken for the group.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastDecision {
    /// When.
    pub time: Time,
    /// One human sentence, e.g. "added 3 x sc-4cpu-8gb for 11 pending pods".
    pub summary: String,
    /// The decision's correlation id, as in the operator's logs, Events and audit lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// An offering avoided until a time.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferingBackoff {
    /// Offering identifier.
    #[serde(rename = "offeringID")]
    pub offering_id: String,
    /// Avoided until.
    pub until: Time,
    /// Why (the failure that caused it).
    pub reason: String,
}

/// NodeGroup condition types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    /// The group reconciled without error.
    Ready,
    /// Nodes are being added or removed.
    Scaling,
    /// The group is at minNodes.
    AtMinCapacity,
    /// The group is at maxNodes.
    AtMaxCapacity,
    /// A needed scale-up cannot happen (limits, max, backoff, quota).
    ScaleUpBlocked,
    /// The last reconcile failed.
    Error,
    /// Broken nodes are not repaired: more of the group's nodes are broken than repair may replace at once
    /// (a cluster-wide problem is not fixed by deleting nodes).
    RepairBlocked,
}

impl ConditionType {
    /// The condition's `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::Scaling => "Scaling",
            ConditionType::AtMinCapacity => "AtMinCapacity",
            ConditionType::AtMaxCapacity => "AtMaxCapacity",
            ConditionType::ScaleUpBlocked => "ScaleUpBlocked",
            ConditionType::Error => "Error",
            ConditionType::RepairBlocked => "RepairBlocked",
        }
    }
}
