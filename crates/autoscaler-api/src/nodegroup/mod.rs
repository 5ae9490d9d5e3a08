//! `NodeGroup`: a set of interchangeable VPSie nodes the autoscaler sizes between `minNodes` and
//! `maxNodes`.

mod policy;
mod provisioning;
mod status;

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub use policy::{
    Consolidation, ConsolidationPolicy, Disruption, DisruptionBudget, Expander, Limits, ScaleDownPolicy, ScaleUpPolicy,
};
pub use provisioning::{
    ConfigMapKeyRef, ManagedClusterProvisioning, NodeTaint, OfferingSelector, Provisioning, ProvisioningMode,
    SecretRef, TaintEffect, VmProvisioning,
};
pub use status::{ConditionType, LastDecision, NodeGroupStatus, NodeSummary, OfferingBackoff};

/// The desired shape of a group of VPSie nodes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "autoscaler.vpsie.com",
    version = "v1alpha1",
    kind = "NodeGroup",
    plural = "nodegroups",
    shortname = "ng",
    category = "vpsie",
    status = "NodeGroupStatus",
    printcolumn = r#"{"name":"Min","type":"integer","jsonPath":".spec.minNodes"}"#,
    printcolumn = r#"{"name":"Max","type":"integer","jsonPath":".spec.maxNodes"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".status.desiredNodes"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyNodes"}"#,
    printcolumn = r#"{"name":"Cost","type":"number","jsonPath":".status.monthlyCost","description":"Monthly cost of the group's nodes in USD"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minNodes <= self.maxNodes").message("spec.minNodes must be less than or equal to spec.maxNodes"))]
#[x_kube(validation = Rule::new("has(self.offeringIDs) != has(self.offeringSelector)").message("exactly one of spec.offeringIDs and spec.offeringSelector must be set"))]
#[x_kube(validation = Rule::new("!has(self.preferredInstanceType) || !has(self.offeringIDs) || self.preferredInstanceType in self.offeringIDs").message("spec.preferredInstanceType must be one of spec.offeringIDs"))]
#[allow(clippy::duplicated_attributes)] // several printcolumns of one type trip it falsely
pub struct NodeGroupSpec {
    /// Fewest nodes the group keeps, also when idle.
    #[schemars(range(min = 0, max = 1000))]
    pub min_nodes: i32,
    /// Most nodes the group may have.
    #[schemars(range(min = 1, max = 1000))]
    pub max_nodes: i32,
    /// The VPSie datacenter identifier the nodes are created in.
    #[serde(rename = "datacenterID")]
    #[schemars(length(min = 1, max = 64))]
    pub datacenter_id: String,
    /// The offerings (VPSie plan identifiers or nicknames) nodes may use. Exactly one of `offeringIDs` and
    /// `offeringSelector` is set.
    #[serde(default, rename = "offeringIDs", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50), extend("x-kubernetes-list-type" = "set"))]
    pub offering_ids: Option<Vec<String>>,
    /// Offerings chosen by category, size and price instead of by identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offering_selector: Option<OfferingSelector>,
    /// The offering to use when several fit equally well; must be one of `offeringIDs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub preferred_instance_type: Option<String>,
    /// The OS image identifier of the nodes.
    #[serde(rename = "osImageID")]
    #[schemars(length(min = 1, max = 64))]
    pub os_image_id: String,
    /// Scale-up. Unschedulable pods trigger a scale-up at once and never wait for a window. The thresholds
    /// add headroom nodes ahead of demand when the requested (not used) CPU or memory of the group passes
    /// them, at most once per stabilizationWindowSeconds.
    #[serde(default)]
    pub scale_up_policy: ScaleUpPolicy,
    /// Scale-down. The thresholds are requested-utilization levels under which a node is a removal
    /// candidate; stabilizationWindowSeconds is how long it must stay under them before it is removed.
    /// A node is removed only if all its pods fit elsewhere without breaking a PodDisruptionBudget.
    #[serde(default)]
    pub scale_down_policy: ScaleDownPolicy,
    /// Seconds after a scale-up before the group may scale down. Default 600.
    #[serde(default = "NodeGroupSpec::default_cooldown")]
    #[schemars(range(min = 0, max = 86400))]
    pub cooldown_seconds: i32,
    /// Priority of this group for the operator's `--expander=priority`; higher wins. Default 0. (The
    /// expander is one operator flag for every group, as in the Cluster Autoscaler: one scale-up decision
    /// places pods across all groups at once.)
    #[serde(default)]
    #[schemars(range(min = -1000, max = 1000))]
    pub priority: i32,
    /// Labels set on every node of the group. Keys under kubernetes.io/, k8s.io/ and autoscaler.vpsie.com/
    /// are reserved, except node-role.kubernetes.io/.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64, "additionalProperties" = {"type": "string", "maxLength": 63, "pattern": "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"}))]
    #[x_kube(validation = Rule::new("self.all(k, k.startsWith('node-role.kubernetes.io/') || !(k.startsWith('autoscaler.vpsie.com/') || k.contains('kubernetes.io/') || k.contains('k8s.io/')))").message("spec.labels: keys under kubernetes.io/, k8s.io/ and autoscaler.vpsie.com/ are reserved (node-role.kubernetes.io/ is allowed)"))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) <= 316 && k.matches('^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))").message("spec.labels: every key must be a qualified name such as example.com/pool"))]
    pub labels: BTreeMap<String, String>,
    /// Taints set on every node of the group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub taints: Vec<NodeTaint>,
    /// Taints present only while a node starts (removed by whatever initialises it); the autoscaler
    /// treats them as absent when simulating.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub startup_taints: Vec<NodeTaint>,
    /// VPSie SSH key identifiers installed on the nodes.
    #[serde(default, rename = "sshKeyIDs", skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub ssh_key_ids: Vec<String>,
    /// Extra VPSie tags on the VMs (the autoscaler always adds its own ownership tags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub tags: Vec<String>,
    /// Free text stored with each VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub notes: Option<String>,
    /// The VPSie project identifier the VMs belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub project: Option<String>,
    /// How nodes are created: plain VMs (default) or a managed cluster's node group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<Provisioning>,
    /// Seconds a VM may take to become active before it is deleted and the offering backed off. Default 900.
    #[serde(default = "NodeGroupSpec::default_timeout")]
    #[schemars(range(min = 60, max = 7200))]
    pub provisioning_timeout_seconds: i32,
    /// Seconds an active VM may take to register as a Ready node before it is replaced. Default 900.
    #[serde(default = "NodeGroupSpec::default_timeout")]
    #[schemars(range(min = 60, max = 7200))]
    pub registration_timeout_seconds: i32,
    /// Seconds an involuntary removal of a node (its NodeGroup deleted, `maxNodes` lowered, a repair, a
    /// failed node) may spend draining under PodDisruptionBudgets before what is left is deleted with the
    /// Node, counted from the removal's start (when it became involuntary). Voluntary removals (scale-down,
    /// consolidation) have no such deadline. Default 600.
    #[serde(default = "NodeGroupSpec::default_termination_grace")]
    #[schemars(range(min = 0, max = 86400))]
    pub termination_grace_period_seconds: i32,
    /// Seconds a Ready member's Node may stay NotReady or Unknown before the node is repaired (replaced,
    /// then removed with the involuntary policy). Default 900.
    #[serde(default = "NodeGroupSpec::default_timeout")]
    #[schemars(range(min = 60, max = 86400))]
    pub repair_after_seconds: i32,
    /// Upper bounds of the whole group (cost, CPU, memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Limits on voluntary disruption and consolidation settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<Disruption>,
}

impl NodeGroupSpec {
    fn default_cooldown() -> i32 {
        600
    }
    fn default_timeout() -> i32 {
        900
    }
    fn default_termination_grace() -> i32 {
        600
    }

    /// The provisioning mode, `vm` when unset.
    pub fn provisioning_mode(&self) -> ProvisioningMode {
        self.provisioning.as_ref().map(|p| p.mode).unwrap_or_default()
    }
}
