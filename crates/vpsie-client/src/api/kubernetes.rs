//! VPSie managed Kubernetes: clusters, node groups and their nodes (`shared/vpsie-api.md` §5.10).
//!
//! Node additions are asynchronous and return no node id: callers discover new nodes by re-reading the
//! cluster. Node groups use their numeric `id` for add/reduce and their `identifier` for delete.

use http::Method;
use serde::Deserialize;

use crate::api::vms::enc;
use crate::client::{Body, Call, VpsieClient};
use crate::error::{Error, Result};
use crate::wire::flex;

/// A managed cluster as listed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Cluster {
    /// Identifier.
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Name.
    #[serde(default, deserialize_with = "flex::string")]
    pub cluster_name: String,
    /// Node count.
    #[serde(default, deserialize_with = "flex::i64")]
    pub count: i64,
    /// Kubernetes version without a leading `v`, when sent.
    #[serde(default, deserialize_with = "flex::string")]
    pub kube_version: String,
    /// Monthly price of the cluster.
    #[serde(default, deserialize_with = "flex::f64")]
    pub price: f64,
    /// Nodes (only in the by-id answer).
    #[serde(default)]
    pub nodes: Vec<ClusterNode>,
}

/// A node of a managed cluster.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClusterNode {
    /// Numeric id.
    #[serde(default, deserialize_with = "flex::i64")]
    pub id: i64,
    /// Identifier, for targeted delete (not sent by every API version).
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Host name; compare case-insensitively with Kubernetes node names.
    #[serde(default, deserialize_with = "flex::string")]
    pub hostname: String,
    /// Public IP.
    #[serde(default, deserialize_with = "flex::string")]
    pub default_ip: String,
    /// Private IP.
    #[serde(default, deserialize_with = "flex::opt_string")]
    pub private_ip: Option<String>,
    /// Node type (1 master, 2 worker).
    #[serde(default, deserialize_with = "flex::i64")]
    pub node_type: i64,
    /// The node group it belongs to, when sent.
    #[serde(default, deserialize_with = "flex::opt_i64")]
    pub group_id: Option<i64>,
    /// Creation time as the API sent it (RFC 3339, or `YYYY-MM-DD HH:MM:SS` in UTC).
    #[serde(default, deserialize_with = "flex::string")]
    pub created_on: String,
}

impl ClusterNode {
    /// [`ClusterNode::created_on`] parsed; `None` when absent or unreadable.
    pub fn created_at(&self) -> Option<jiff::Timestamp> {
        parse_time(&self.created_on)
    }
}

/// Reads an API time stamp: RFC 3339, or a civil `YYYY-MM-DD HH:MM:SS` taken as UTC.
fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    let text = text.trim();
    text.parse::<jiff::Timestamp>().ok().or_else(|| {
        text.parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
    })
}

/// One add-node request, remembered so the node it made can be found again (also after a crash).
///
/// The add-node call is asynchronous and returns no node id, and nodes carry no tag or name we choose.
/// What the API does give is each node's group and creation time, so the only safe way to tell which
/// node an addition made is a diff: the oldest worker of the group created at or after the request
/// (less an allowance for clock skew between us and VPSie) that no other addition has claimed. Record
/// `requested_at` durably **before** sending the request; after a crash, the same diff finds the node.
/// Additions to one group are interchangeable (same size), so when several are in flight, handing them
/// out oldest-request-first to the oldest nodes keeps every claim one-to-one.
///
/// Limitation: a worker someone else adds to the same group within the skew allowance before our request
/// could be claimed; give the autoscaler groups of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAddition {
    /// The group's numeric id.
    pub group_id: i64,
    /// When the add-node request was about to be sent.
    pub requested_at: jiff::Timestamp,
}

impl NodeAddition {
    /// Allowance for the API's clock being behind ours.
    pub const CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);

    /// The node this addition made, if it has appeared: among `nodes` (a cluster's node list), the
    /// oldest worker of the group created no earlier than the request less [`Self::CLOCK_SKEW`], whose
    /// id is not in `claimed` (nodes other additions or VPSieNodes already hold).
    pub fn find<'a>(
        &self,
        nodes: &'a [ClusterNode],
        claimed: &std::collections::HashSet<i64>,
    ) -> Option<&'a ClusterNode> {
        let earliest = self.requested_at.checked_sub(Self::CLOCK_SKEW).ok()?;
        nodes
            .iter()
            .filter(|n| n.node_type == 2 && n.group_id == Some(self.group_id) && !claimed.contains(&n.id))
            .filter_map(|n| n.created_at().filter(|t| *t >= earliest).map(|t| (t, n)))
            .min_by_key(|(t, n)| (*t, n.id))
            .map(|(_, n)| n)
    }
}

/// A node group of a managed cluster.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NodeGroup {
    /// Numeric id: used by add-node and reduce.
    #[serde(default, deserialize_with = "flex::i64")]
    pub id: i64,
    /// Identifier: used by delete-group.
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Name.
    #[serde(default, deserialize_with = "flex::string")]
    pub group_name: String,
    /// Size id (equals the [`crate::api::catalog::K8sOffer`] id).
    #[serde(default, deserialize_with = "flex::i64")]
    pub boxsize_id: i64,
    /// vCPUs per node.
    #[serde(default, deserialize_with = "flex::i64")]
    pub cpu: i64,
    /// Memory per node in MiB.
    #[serde(default, deserialize_with = "flex::i64")]
    pub ram: i64,
    /// Disk per node in GiB.
    #[serde(default, deserialize_with = "flex::i64")]
    pub ssd: i64,
    /// Nodes in the group.
    #[serde(default, deserialize_with = "flex::i64")]
    pub nodes_count: i64,
    /// Datacenter identifier.
    #[serde(default, rename = "dcIdentifier", deserialize_with = "flex::string")]
    pub dc_identifier: String,
}

const DELETE_STATISTIC: &str = "deleted by vpsie-autoscaler";

impl VpsieClient {
    /// Lists managed clusters.
    pub async fn list_clusters(&self) -> Result<Vec<Cluster>> {
        Ok(self.call(Call::get("k8s.cluster.list", "/apps/v2/k8s/cluster/all")).await?.data)
    }

    /// Gets a cluster with its nodes.
    pub async fn get_cluster(&self, cluster: &str) -> Result<Cluster> {
        let path = format!("/apps/v2/k8s/cluster/byId/{}", enc(cluster));
        Ok(self.call(Call::get("k8s.cluster.get", path)).await?.data)
    }

    /// Lists the node groups of a cluster.
    pub async fn list_node_groups(&self, cluster: &str) -> Result<Vec<NodeGroup>> {
        let path = format!("/apps/v2/k8s/node/groups/byClusterId/{}", enc(cluster));
        Ok(self.call(Call::get("k8s.group.list", path)).await?.data)
    }

    /// Creates a node group of one node size and returns it (found again by name).
    pub async fn add_node_group(&self, cluster: &str, group_name: &str, kube_size_id: i64) -> Result<NodeGroup> {
        if let Some(g) = self.list_node_groups(cluster).await?.into_iter().find(|g| g.group_name == group_name) {
            return Ok(g);
        }
        let body = Body::Json(serde_json::json!({
            "clusterIdentifier": cluster, "groupName": group_name, "KubeSizeID": kube_size_id,
        }));
        self.call::<serde_json::Value>(Call::send(
            "k8s.group.add",
            Method::POST,
            "/apps/v2/k8s/cluster/add/group",
            body,
        ))
        .await?;
        self.list_node_groups(cluster)
            .await?
            .into_iter()
            .find(|g| g.group_name == group_name)
            .ok_or(Error::NotFound { endpoint: "k8s.group.add" })
    }

    /// Deletes a node group by its identifier.
    pub async fn delete_node_group(&self, group_identifier: &str) -> Result<()> {
        let path = format!("/apps/v2/k8s/cluster/delete/group/{}", enc(group_identifier));
        let body =
            Body::Json(serde_json::json!({ "deleteStatistic": { "reason": "scale-down", "note": DELETE_STATISTIC } }));
        self.call::<serde_json::Value>(Call::send("k8s.group.delete", Method::DELETE, path, body).retryable()).await?;
        Ok(())
    }

    /// Asks for one more worker in a group. Asynchronous: the node appears in [`VpsieClient::get_cluster`]
    /// later. Not retried: a resend could add two nodes.
    pub async fn add_group_node(&self, cluster: &str, group_id: i64) -> Result<()> {
        let path = format!("/apps/v2/k8s/cluster/byId/{}/add/slave/group/{group_id}", enc(cluster));
        self.call::<serde_json::Value>(Call::send("k8s.node.add", Method::POST, path, Body::None)).await?;
        Ok(())
    }

    /// Removes one worker of a group; the API chooses which. Not retried.
    pub async fn reduce_group(&self, cluster: &str, group_id: i64) -> Result<()> {
        let path = format!("/apps/v2/k8s/cluster/byId/{}/reduce/slave", enc(cluster));
        let body = Body::Json(serde_json::json!({ "groupId": group_id }));
        self.call::<serde_json::Value>(Call::send("k8s.node.reduce", Method::DELETE, path, body)).await?;
        Ok(())
    }

    /// Deletes one node by identifier (targeted scale-down).
    pub async fn delete_cluster_node(&self, cluster: &str, node_identifier: &str) -> Result<()> {
        let path = format!("/apps/v2/k8s/cluster/byId/{}/delete/slave", enc(cluster));
        let body = Body::Json(serde_json::json!({ "identifier": node_identifier }));
        self.call::<serde_json::Value>(Call::send("k8s.node.delete", Method::DELETE, path, body).retryable()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn node(id: i64, group: i64, created_on: &str) -> ClusterNode {
        ClusterNode {
            id,
            identifier: format!("n{id}"),
            hostname: format!("w{id}"),
            default_ip: String::new(),
            private_ip: None,
            node_type: 2,
            group_id: Some(group),
            created_on: created_on.to_owned(),
        }
    }

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn an_addition_claims_the_oldest_new_unclaimed_worker_of_its_group() {
        let nodes = vec![
            node(1, 7, "2026-12-01T10:00:00Z"), // long before: not ours
            node(2, 8, "2026-12-01T12:00:05Z"), // other group
            node(3, 7, "2026-12-01 12:00:09"),  // civil time, UTC
            node(4, 7, "2026-12-01T12:00:04Z"),
            node(5, 7, "garbage"),
        ];
        let first = NodeAddition { group_id: 7, requested_at: at("2026-12-01T12:00:03Z") };
        let second = NodeAddition { group_id: 7, requested_at: at("2026-12-01T12:00:03.5Z") };
        let mut claimed = HashSet::new();
        let a = first.find(&nodes, &claimed).map(|n| n.id);
        assert_eq!(a, Some(4));
        claimed.extend(a);
        // The second in-flight addition gets the other new node, never the same one.
        assert_eq!(second.find(&nodes, &claimed).map(|n| n.id), Some(3));
        claimed.insert(3);
        assert_eq!(second.find(&nodes, &claimed), None, "not appeared yet");
        // A node older than the request less the skew allowance is never claimed.
        let late = NodeAddition { group_id: 7, requested_at: at("2026-12-01T10:00:31Z") };
        assert_eq!(late.find(&nodes[..1], &HashSet::new()), None);
        let within_skew = NodeAddition { group_id: 7, requested_at: at("2026-12-01T10:00:29Z") };
        assert_eq!(within_skew.find(&nodes[..1], &HashSet::new()).map(|n| n.id), Some(1));
    }
}
