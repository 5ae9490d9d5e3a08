//! The boot hook: what runs when a VM boots, is powered off or on, or is deleted ([`crate::ClusterJoin`] registers Nodes).

use std::time::Duration;

/// A VM (or managed-cluster node) that just became active, or was just deleted.
#[derive(Debug, Clone)]
pub struct BootedVm {
    /// VM identifier.
    pub identifier: String,
    /// Host name as requested.
    pub hostname: String,
    /// Public IPv4.
    pub default_ip: String,
    /// Private IP.
    pub private_ip: String,
    /// cloud-init user data given at create, if any.
    pub user_data: Option<String>,
    /// Tags given at create.
    pub tags: Vec<String>,
    /// vCPUs.
    pub cpu: i64,
    /// Memory in MiB.
    pub ram_mib: i64,
    /// Datacenter identifier.
    pub dc_identifier: String,
    /// The offer it was created from (empty for managed-cluster nodes).
    pub offer_identifier: String,
    /// The offer's nickname (the node group's size name for managed-cluster nodes).
    pub offer_nickname: String,
    /// Disk in GiB.
    pub disk_gib: i64,
    /// How long after boot its kubelet registers.
    pub join_delay: Duration,
    /// It boots but its kubelet never registers (fault `never_join`, taken when it was created).
    pub never_joins: bool,
    /// Taints its Node registers with besides its kubelet flags (setting `join_taints`).
    pub extra_taints: String,
    /// The managed cluster it belongs to, for managed-cluster nodes.
    pub cluster_identifier: Option<String>,
}

/// Called by the simulator when a VM finishes booting and when one is deleted. Runs on the simulator's
/// boot task with no lock held; long work should be spawned.
pub trait BootHook: Send + Sync + 'static {
    /// The VM became active with IPs.
    fn vm_booted(&self, vm: &BootedVm);
    /// The VM was deleted.
    fn vm_deleted(&self, _vm: &BootedVm) {}
    /// The VM was powered off (`on: false`) or on again (`on: true`) through `POST /vm/stop|start` or
    /// [`crate::SimHandle::set_power`].
    fn vm_powered(&self, _vm: &PoweredVm, _on: bool) {}
}

/// A VM whose power changed.
#[derive(Debug, Clone)]
pub struct PoweredVm {
    /// VM identifier.
    pub identifier: String,
    /// Host name as requested.
    pub hostname: String,
}
