//! `VPSieNode`: one VPSie VM the autoscaler owns, from create request to deletion.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::nodegroup::ProvisioningMode;

/// The VM a NodeGroup asked for. The spec never changes after creation: a different VM is a new
/// VPSieNode.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "autoscaler.vpsie.com",
    version = "v1alpha1",
    kind = "VPSieNode",
    plural = "vpsienodes",
    shortname = "vn",
    category = "vpsie",
    status = "VPSieNodeStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Group","type":"string","jsonPath":".spec.nodeGroupName"}"#,
    printcolumn = r#"{"name":"Offering","type":"string","jsonPath":".spec.offeringID"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".status.nodeName"}"#,
    printcolumn = r#"{"name":"IP","type":"string","jsonPath":".status.ipAddress"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable: create a new VPSieNode for a different VM"))]
#[allow(clippy::duplicated_attributes)] // several printcolumns of one type trip it falsely
pub struct VPSieNodeSpec {
    /// The NodeGroup this node belongs to.
    #[schemars(length(min = 1, max = 253))]
    pub node_group_name: String,
    /// The offering identifier the VM is created from.
    #[serde(rename = "offeringID")]
    #[schemars(length(min = 1, max = 64))]
    pub offering_id: String,
    /// The datacenter identifier.
    #[serde(rename = "datacenterID")]
    #[schemars(length(min = 1, max = 64))]
    pub datacenter_id: String,
    /// The OS image identifier.
    #[serde(rename = "osImageID")]
    #[schemars(length(min = 1, max = 64))]
    pub os_image_id: String,
    /// The VM host name, unique in the account; how the VM is found again after a crash. Lowercase
    /// RFC 1123 label.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(min = 1, max = 63))]
    pub hostname: String,
    /// How the VM is provisioned.
    #[serde(default)]
    pub provisioning_mode: ProvisioningMode,
    /// SSH key identifiers.
    #[serde(default, rename = "sshKeyIDs", skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub ssh_key_ids: Vec<String>,
    /// VPSie tags (ownership tags included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 30))]
    pub tags: Vec<String>,
}

/// Lifecycle of a VPSieNode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
pub enum VPSieNodePhase {
    /// Accepted; nothing sent to VPSie yet.
    #[default]
    Pending,
    /// Create requested; the VM is booting.
    Provisioning,
    /// The VM is active with an IP.
    Provisioned,
    /// Waiting for the Kubernetes Node to register.
    Joining,
    /// The Node is Ready.
    Ready,
    /// Being drained before deletion.
    Terminating,
    /// The VM is being deleted.
    Deleting,
    /// Gave up (see lastError); the VM, if any, is deleted.
    Failed,
}

/// CPU, memory and disk of the VM.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeResources {
    /// vCPUs.
    pub cpu: i64,
    /// Memory in MiB.
    #[serde(rename = "memoryMiB")]
    pub memory_mib: i64,
    /// Disk in GiB.
    #[serde(rename = "diskGiB")]
    pub disk_gib: i64,
}

/// Observed state of a VPSieNode.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VPSieNodeStatus {
    /// Lifecycle phase.
    #[serde(default)]
    pub phase: VPSieNodePhase,
    /// VPSie VM numeric id.
    #[serde(default, rename = "vpsID", skip_serializing_if = "Option::is_none")]
    pub vps_id: Option<i64>,
    /// VPSie VM identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_identifier: Option<String>,
    /// The Kubernetes Node name once registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Public IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Private IP.
    #[serde(default, rename = "privateIP", skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// Size of the VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<NodeResources>,
    /// Monthly price in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_price: Option<f64>,
    /// When the create was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// When the VM became active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_at: Option<Time>,
    /// When the Node registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_at: Option<Time>,
    /// When the Node became Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<Time>,
    /// When termination started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating_at: Option<Time>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The last error, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Create attempts so far.
    #[serde(default)]
    pub attempts: i32,
}
