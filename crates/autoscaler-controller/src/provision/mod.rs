//! Provisioning backends: how a VPSieNode becomes a machine on VPSie and goes away again.
//!
//! Two backends implement [`Provisioner`]: [`vm::VmBackend`] (plain VMs joining through cloud-init, see
//! [`cloud_init`]) and [`managed::ManagedBackend`] (nodes of a VPSie managed Kubernetes cluster). Every
//! operation is idempotent. Lookups go through a [`Pass`]: one listing of the account's VMs (the
//! [`vpsie_client::Fleet`]) and one read per managed cluster, shared by every VPSieNode of a lifecycle
//! pass, so N nodes cost about N requests, not 3N.

pub mod cloud_init;
pub mod managed;
pub mod user_data;
pub mod vm;

use std::collections::{HashMap, HashSet};
use std::future::Future;

use autoscaler_api::VPSieNode;
use vpsie_client::{ClusterNode, Fleet, Secret, VpsieClient};

use crate::error::Result;

/// A machine (VM or managed node) as one pass's listing shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Machine {
    /// In no list. Gone if it was seen before; possibly not listed yet if it was just requested.
    NotListed,
    /// Being created: no identifier yet, so it can be neither matched nor deleted.
    Pending,
    /// Created.
    Active(Instance),
}

/// A created machine.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Instance {
    /// Numeric id (VM id, or managed node id).
    pub id: i64,
    /// Identifier (UUID).
    pub identifier: String,
    /// Host name as VPSie reports it.
    pub hostname: String,
    /// Public IPv4, when assigned.
    pub public_ip: Option<String>,
    /// Private IP, when assigned.
    pub private_ip: Option<String>,
    /// Active, powered on, with an IP.
    pub ready: bool,
    /// The provider ids a Node of this machine may register with.
    pub provider_ids: Vec<String>,
}

/// What a direct lookup says of a machine seen before that a listing lacked.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// It exists: the listing was incomplete.
    Found(Instance),
    /// There is no such machine.
    NotFound,
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The delete was accepted.
    Deleted,
    /// The machine is still being created and cannot be deleted yet.
    StillPending,
    /// Nothing is listed for it.
    NotListed,
}

/// The provider id of a VM by identifier, and the one the cloud-init template gives the kubelet (by host
/// name, which is known before the VM is: VPSie returns no identifier on create).
pub fn vm_provider_ids(identifier: &str, hostname: &str) -> Vec<String> {
    vec![format!("vpsie://{identifier}"), provider_id_for_hostname(hostname)]
}

/// `vpsie://<hostname>`: what a VM we create registers its Node with.
pub fn provider_id_for_hostname(hostname: &str) -> String {
    format!("vpsie://{}", hostname.to_ascii_lowercase())
}

/// One lifecycle pass's view of VPSie, listed lazily and at most once per pass.
#[derive(Debug)]
pub struct Pass {
    client: VpsieClient,
    fleet: Option<Fleet>,
    clusters: HashMap<String, Vec<ClusterNode>>,
    pub(crate) groups: HashMap<String, i64>,
    /// Managed node ids some VPSieNode already holds (see [`vpsie_client::NodeAddition`]).
    pub claimed: HashSet<i64>,
    /// The listing lacks too many known VMs to be believed about what it lacks (see
    /// `lifecycle::listing`): no VM it lacks is looked up or counted missing in this pass.
    pub listing_distrusted: bool,
    /// Listing VPSie's VMs failed in this pass (said once): plain-VM nodes wait for the next pass.
    pub listing_failed: bool,
}

impl Pass {
    /// A pass using `client`; nothing is listed until a backend asks.
    pub fn new(client: VpsieClient) -> Self {
        Self {
            client,
            fleet: None,
            clusters: HashMap::new(),
            groups: HashMap::new(),
            claimed: HashSet::new(),
            listing_distrusted: false,
            listing_failed: false,
        }
    }

    /// The same pass starting from an earlier listing instead of a new one (see the lifecycle's steady
    /// state: nothing being created or deleted).
    pub fn with_fleet(mut self, fleet: Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// The listing this pass used, if it listed (or was given one).
    pub fn listed(&self) -> Option<&Fleet> {
        self.fleet.as_ref()
    }

    /// The client.
    pub fn client(&self) -> &VpsieClient {
        &self.client
    }

    /// The account's VMs, listed on first use (two calls).
    pub async fn fleet(&mut self) -> Result<&mut Fleet> {
        if self.fleet.is_none() {
            self.fleet = Some(self.client.fleet().await?);
        }
        // Just filled above when it was empty.
        self.fleet.as_mut().ok_or_else(|| crate::Error::Task("fleet listing vanished".into()))
    }

    /// The nodes of a managed cluster, read on first use (one call).
    pub async fn cluster_nodes(&mut self, cluster: &str) -> Result<&[ClusterNode]> {
        if !self.clusters.contains_key(cluster) {
            let nodes = self.client.get_cluster(cluster).await?.nodes;
            self.clusters.insert(cluster.to_owned(), nodes);
        }
        Ok(self.clusters.get(cluster).map(Vec::as_slice).unwrap_or_default())
    }

    /// Forgets a managed cluster's nodes (after an add or delete changed them).
    pub fn forget_cluster(&mut self, cluster: &str) {
        self.clusters.remove(cluster);
    }
}

/// Creates, finds and deletes the machine of a VPSieNode. Each operation is idempotent.
pub trait Provisioner {
    /// The machine of `vn` as this pass sees it (by host name for VMs; by the recorded node id, or the
    /// creation-time diff, for managed nodes).
    fn find(&self, pass: &mut Pass, vn: &VPSieNode) -> impl Future<Output = Result<Machine>> + Send;

    /// Sends the create request. The caller has written the intent (`status.createdAt`) first and calls
    /// this once per VPSieNode; `user_data` is the rendered cloud-init (VM backend only).
    fn create(
        &self,
        pass: &mut Pass,
        vn: &VPSieNode,
        user_data: Option<Secret>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes the machine of `vn`.
    fn delete(&self, pass: &mut Pass, vn: &VPSieNode) -> impl Future<Output = Result<Removal>> + Send;

    /// Looks the machine of `vn` up directly by `identifier` (recorded when it was first seen), for when a
    /// listing lacks it: a listing alone never proves a machine gone.
    fn look_up(&self, pass: &mut Pass, vn: &VPSieNode, identifier: &str)
    -> impl Future<Output = Result<Lookup>> + Send;
}
