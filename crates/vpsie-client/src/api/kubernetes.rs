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
