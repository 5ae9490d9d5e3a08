//! How the nodes of a NodeGroup are created on VPSie, and what they carry.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The two provisioning backends.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ProvisioningMode {
    /// Plain VPSie VMs that join the cluster through cloud-init and kubeadm.
    #[default]
    Vm,
    /// Nodes of a VPSie managed-Kubernetes cluster, added through its node-group API.
    ManagedCluster,
}

/// How nodes are provisioned. When absent, mode `vm` with the operator's default cloud-init template and
/// join Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'managedCluster' || has(self.managedCluster)").message("spec.provisioning.managedCluster.clusterIdentifier is required when spec.provisioning.mode is managedCluster"))]
#[x_kube(validation = Rule::new("self.mode != 'vm' || !has(self.managedCluster)").message("spec.provisioning.managedCluster must not be set when spec.provisioning.mode is vm"))]
pub struct Provisioning {
    /// `vm` (default) or `managedCluster`.
    #[serde(default)]
    pub mode: ProvisioningMode,
    /// Settings of mode `vm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<VmProvisioning>,
    /// Settings of mode `managedCluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_cluster: Option<ManagedClusterProvisioning>,
}

/// Plain-VM provisioning: a cloud-init template and the kubeadm join parameters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VmProvisioning {
    /// A ConfigMap key holding the cloud-init template; the operator's default template when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_init_template_ref: Option<ConfigMapKeyRef>,
    /// A Secret with the kubeadm join parameters (`apiServerEndpoint`, `token`, `caCertHash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_secret_ref: Option<SecretRef>,
}

/// Managed-cluster provisioning.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedClusterProvisioning {
    /// The VPSie managed cluster identifier.
    #[schemars(length(min = 1, max = 64))]
    pub cluster_identifier: String,
}

/// A key of a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// ConfigMap name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// ConfigMap namespace.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Key. Default `user-data`.
    #[serde(default = "ConfigMapKeyRef::default_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

impl ConfigMapKeyRef {
    fn default_key() -> String {
        "user-data".to_owned()
    }
}

/// A Secret by name and namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Secret namespace.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
}

/// The effect of a taint.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum TaintEffect {
    /// New pods that do not tolerate it are not scheduled.
    NoSchedule,
    /// The scheduler tries to avoid the node.
    PreferNoSchedule,
    /// Running pods that do not tolerate it are evicted.
    NoExecute,
}

/// A taint put on the group's nodes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeTaint {
    /// Taint key (a qualified name such as `dedicated` or `example.com/gpu`).
    #[schemars(
        regex(pattern = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"),
        length(min = 1, max = 316)
    )]
    pub key: String,
    /// Taint value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub value: Option<String>,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    pub effect: TaintEffect,
}

/// Chooses offerings by properties instead of listing their identifiers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.minCPU) || !has(self.maxCPU) || self.minCPU <= self.maxCPU").message("spec.offeringSelector.minCPU must be less than or equal to maxCPU"))]
#[x_kube(validation = Rule::new("!has(self.minMemoryGiB) || !has(self.maxMemoryGiB) || self.minMemoryGiB <= self.maxMemoryGiB").message("spec.offeringSelector.minMemoryGiB must be less than or equal to maxMemoryGiB"))]
pub struct OfferingSelector {
    /// Plan category names, e.g. `Shared CPU`, `Compute Optimized`. Any when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub categories: Vec<String>,
    /// Fewest vCPUs.
    #[serde(default, rename = "minCPU", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 512))]
    pub min_cpu: Option<i32>,
    /// Most vCPUs.
    #[serde(default, rename = "maxCPU", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 512))]
    pub max_cpu: Option<i32>,
    /// Least memory in GiB.
    #[serde(default, rename = "minMemoryGiB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4096))]
    pub min_memory_gib: Option<i32>,
    /// Most memory in GiB.
    #[serde(default, rename = "maxMemoryGiB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4096))]
    pub max_memory_gib: Option<i32>,
    /// Highest monthly price in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_monthly_price: Option<f64>,
}
