//! Nodes of a VPSie managed Kubernetes cluster, added to and removed from a VPSie node group named after
//! the NodeGroup.
//!
//! The add-node call returns no node id and the API lets no name or tag be chosen, so the node one
//! VPSieNode asked for is found by the only diff the API allows: the oldest worker of the group created
//! after the request that no other VPSieNode holds ([`vpsie_client::NodeAddition`]). The request time is
//! the VPSieNode's `status.createdAt`, written before the request, so the same diff finds the node after a
//! crash; once found, its id is recorded in `status.vpsID` and the node is found by id from then on.
//! Deletion is targeted: that exact node, never "one node of the group".

use autoscaler_api::VPSieNode;
use vpsie_client::{ClusterNode, NodeAddition, Secret};

use super::{Instance, Lookup, Machine, Pass, Provisioner, Removal};
use crate::error::{Error, Result};

/// The managed-cluster backend for the VPSieNodes of one NodeGroup.
#[derive(Debug, Clone)]
pub struct ManagedBackend {
    /// The VPSie managed cluster identifier.
    pub cluster: String,
}

fn instance(n: &ClusterNode) -> Instance {
    Instance {
        id: n.id,
        identifier: n.identifier.clone(),
        hostname: n.hostname.clone(),
        public_ip: Some(n.default_ip.clone()).filter(|ip| !ip.is_empty()),
        private_ip: n.private_ip.clone().filter(|ip| !ip.is_empty()),
        ready: !n.default_ip.is_empty(),
        provider_ids: vec![format!("vpsie://{}", n.identifier)],
    }
}

/// The VPSie node size of a VPSieNode (its `offeringID` holds the managed size id).
fn size_id(vn: &VPSieNode) -> Result<i64> {
    vn.spec.offering_id.parse().map_err(|_| {
        Error::Config(format!(
            "VPSieNode {}: offeringID {:?} is not a managed Kubernetes size id (a number)",
            vn.spec.hostname, vn.spec.offering_id
        ))
    })
}

impl ManagedBackend {
    /// The VPSie node group of the NodeGroup, created on first use (found by name afterwards).
    async fn group_id(&self, pass: &mut Pass, vn: &VPSieNode, create: bool) -> Result<Option<i64>> {
        let name = &vn.spec.node_group_name;
        let key = format!("{}/{name}", self.cluster);
        if let Some(id) = pass.groups.get(&key) {
            return Ok(Some(*id));
        }
        let groups = pass.client().list_node_groups(&self.cluster).await?;
        let id = match groups.iter().find(|g| &g.group_name == name) {
            Some(g) => g.id,
            None if create => pass.client().add_node_group(&self.cluster, name, size_id(vn)?).await?.id,
            None => return Ok(None),
        };
        pass.groups.insert(key, id);
        Ok(Some(id))
    }
}

impl Provisioner for ManagedBackend {
    async fn find(&self, pass: &mut Pass, vn: &VPSieNode) -> Result<Machine> {
        let status = vn.status.clone().unwrap_or_default();
        if let Some(id) = status.vps_id {
            let nodes = pass.cluster_nodes(&self.cluster).await?;
            return Ok(nodes.iter().find(|n| n.id == id).map_or(Machine::NotListed, |n| Machine::Active(instance(n))));
        }
        let Some(requested) = status.created_at else { return Ok(Machine::NotListed) };
        let Some(group_id) = self.group_id(pass, vn, false).await? else { return Ok(Machine::NotListed) };
        let claimed = pass.claimed.clone();
        let addition = NodeAddition { group_id, requested_at: requested.0 };
        let nodes = pass.cluster_nodes(&self.cluster).await?;
        let found = addition.find(nodes, &claimed).map(instance);
        Ok(match found {
            Some(i) => {
                pass.claimed.insert(i.id);
                Machine::Active(i)
            }
            None => Machine::NotListed,
        })
    }

    async fn create(&self, pass: &mut Pass, vn: &VPSieNode, _user_data: Option<Secret>) -> Result<()> {
        let group = self.group_id(pass, vn, true).await?.ok_or_else(|| {
            Error::Config(format!("managed cluster {}: node group {} not found", self.cluster, vn.spec.node_group_name))
        })?;
        pass.client().add_group_node(&self.cluster, group).await?;
        pass.forget_cluster(&self.cluster);
        tracing::info!(cluster = %self.cluster, group, vpsienode = %vn.spec.hostname, "managed node requested");
        Ok(())
    }

    /// `find` already read the cluster's nodes directly (no account-wide listing to be incomplete), so a
    /// node it lacks is not there; the lifecycle's grace period still applies.
    async fn look_up(&self, _pass: &mut Pass, _vn: &VPSieNode, _identifier: &str) -> Result<Lookup> {
        Ok(Lookup::NotFound)
    }

    async fn delete(&self, pass: &mut Pass, vn: &VPSieNode) -> Result<Removal> {
        let Machine::Active(node) = self.find(pass, vn).await? else { return Ok(Removal::NotListed) };
        match pass.client().delete_cluster_node(&self.cluster, &node.identifier).await {
            Ok(()) | Err(vpsie_client::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        pass.forget_cluster(&self.cluster);
        Ok(Removal::Deleted)
    }
}
