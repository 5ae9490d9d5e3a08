//! Which Node belongs to a VPSieNode, and what the group's Nodes must carry.
//!
//! Matching is exact: a Node is ours when its `spec.providerID` is one its machine may register with
//! (`vpsie://<identifier>`, or for a VM we created `vpsie://<hostname>`, which our cloud-init gives the
//! kubelet). A Node with another provider id is never adopted, whatever its name; a Node without any
//! provider id is matched by name only for a VM we created (the host name is ours and unique).

use std::collections::{BTreeMap, HashMap};

use autoscaler_api::constants::{LABEL_DATACENTER, LABEL_MANAGED, LABEL_NODEGROUP, LABEL_OFFERING};
use autoscaler_api::nodegroup::{NodeTaint, ProvisioningMode, TaintEffect};
use autoscaler_api::{NodeGroup, VPSieNode, VPSieNodeSpec};
use autoscaler_decision::selectors::Taint;

use super::phase::NodeView;
use crate::cluster::NodeEntry;
use crate::cluster::snapshot::taint;
use crate::cluster::store::Entries;
use crate::provision::{Machine, provider_id_for_hostname};

/// The labels a node of `vn` registers with: the group's own, then ours (group, datacenter, offering,
/// managed), which win.
pub fn node_labels(group: Option<&NodeGroup>, group_name: &str, spec: &VPSieNodeSpec) -> BTreeMap<String, String> {
    let mut labels = group.map(|g| g.spec.labels.clone()).unwrap_or_default();
    labels.insert(LABEL_NODEGROUP.to_owned(), group_name.to_owned());
    labels.insert(LABEL_DATACENTER.to_owned(), spec.datacenter_id.clone());
    labels.insert(LABEL_OFFERING.to_owned(), spec.offering_id.clone());
    labels.insert(LABEL_MANAGED.to_owned(), "true".to_owned());
    labels
}

/// The taints a node of the group keeps (startup taints are not listed: whatever removes them owns them).
pub fn node_taints(group: Option<&NodeGroup>) -> Vec<Taint> {
    group.map(|g| g.spec.taints.iter().map(taint).collect()).unwrap_or_default()
}

/// What a pass looks up for every VPSieNode, built once per pass from the caches so each lookup is not a
/// scan.
#[derive(Debug, Default)]
pub struct Index {
    /// Cache keys of the Nodes by provider id ([`by_provider_id`]).
    pub nodes_by_provider: HashMap<String, Box<str>>,
    /// Workload pods bound to each node, by node name; counted only when a VPSieNode is being deleted (the
    /// drain decision is their one reader), so a steady pass does not scan every pod.
    pub workload_pods: Option<HashMap<std::sync::Arc<str>, usize>>,
}

impl Index {
    /// The indexes of `cluster`'s caches as they are now; workload pods only if `count_pods`.
    pub fn build(cluster: &crate::cluster::Cluster, count_pods: bool) -> Self {
        Index {
            nodes_by_provider: by_provider_id(&cluster.nodes.read()),
            workload_pods: count_pods.then(|| cluster.workload_pods_by_node()),
        }
    }

    /// Workload pods bound to node `name`; `None` when they were not counted.
    pub fn workload_pods_on(&self, name: &str) -> Option<usize> {
        self.workload_pods.as_ref().map(|by_node| by_node.get(name).copied().unwrap_or(0))
    }
}

/// Cache keys of the Nodes by provider id, built once per pass so each VPSieNode's lookup is not a scan.
pub fn by_provider_id(nodes: &Entries<NodeEntry>) -> HashMap<String, Box<str>> {
    nodes
        .iter()
        .filter_map(|(key, n)| n.provider_id.as_ref().filter(|p| !p.is_empty()).map(|p| (p.clone(), key.clone())))
        .collect()
}

/// The Node of `vn`, if one is registered. `index` is [`by_provider_id`] of `nodes`.
pub fn find_node<'a>(
    nodes: &'a Entries<NodeEntry>,
    index: &HashMap<String, Box<str>>,
    vn: &VPSieNode,
    machine: &Machine,
) -> Option<&'a NodeEntry> {
    let mut ids: Vec<String> = match machine {
        Machine::Active(i) => i.provider_ids.clone(),
        Machine::Pending | Machine::NotListed => Vec::new(),
    };
    let ours_by_name = vn.spec.provisioning_mode == ProvisioningMode::Vm;
    if ours_by_name {
        ids.push(provider_id_for_hostname(&vn.spec.hostname));
    }
    // Checked against the node itself too: the index may be older than the cache.
    let by_id = ids
        .iter()
        .filter_map(|id| index.get(id).and_then(|key| nodes.get(key)).filter(|n| n.provider_id.as_ref() == Some(id)));
    if let Some(n) = by_id.map(|n| &**n).next() {
        return Some(n);
    }
    if !ours_by_name {
        return None;
    }
    nodes
        .get(vn.spec.hostname.to_ascii_lowercase().as_str())
        .map(|n| &**n)
        .filter(|n| n.provider_id.as_deref().is_none_or(str::is_empty))
}

/// What the lifecycle reads of a matched Node; `workload_pods` are the workload pods bound to it, if counted.
pub fn view(
    node: &NodeEntry,
    labels: &BTreeMap<String, String>,
    taints: &[Taint],
    workload_pods: Option<usize>,
) -> NodeView {
    let m = &node.model;
    let labels_ok = labels.iter().all(|(k, v)| m.labels.get(k) == Some(v));
    let taints_ok = taints.iter().all(|t| m.taints.contains(t));
    NodeView {
        name: m.name.clone(),
        ready: m.ready,
        missing_labels_or_taints: !(labels_ok && taints_ok),
        workload_pods,
    }
}

/// The Node's taints with the group's put on: every taint of a key the group names is replaced by the
/// group's taints of that key (a changed value or effect takes effect; before, a taint present with another
/// value was never updated and the lifecycle patched the Node again on every pass); all other taints (the
/// cluster's, other controllers') are kept in their order.
pub fn with_group_taints(
    existing: &[k8s_openapi::api::core::v1::Taint],
    group: &[NodeTaint],
) -> Vec<k8s_openapi::api::core::v1::Taint> {
    let ours = |key: &str| group.iter().any(|t| t.key == key);
    existing
        .iter()
        .filter(|t| !ours(&t.key))
        .cloned()
        .chain(group.iter().map(|t| k8s_openapi::api::core::v1::Taint {
            key: t.key.clone(),
            value: t.value.clone(),
            effect: effect_name(t.effect).to_owned(),
            time_added: None,
        }))
        .collect()
}

/// A taint effect as Kubernetes spells it.
pub fn effect_name(e: TaintEffect) -> &'static str {
    match e {
        TaintEffect::NoSchedule => "NoSchedule",
        TaintEffect::PreferNoSchedule => "PreferNoSchedule",
        TaintEffect::NoExecute => "NoExecute",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_api::VPSieNodeSpec;
    use autoscaler_decision::Node;

    fn vn(hostname: &str) -> VPSieNode {
        VPSieNode::new(
            hostname,
            VPSieNodeSpec {
                node_group_name: "g".into(),
                offering_id: "o".into(),
                datacenter_id: "dc".into(),
                os_image_id: "os".into(),
                hostname: hostname.into(),
                provisioning_mode: ProvisioningMode::Vm,
                ssh_key_ids: vec![],
                tags: vec![],
            },
        )
    }

    fn entries(nodes: &[(&str, Option<&str>)]) -> Entries<NodeEntry> {
        nodes
            .iter()
            .map(|(name, pid)| {
                let entry = NodeEntry {
                    model: Node::new(name, 1000, 1 << 30),
                    provider_id: pid.map(str::to_owned),
                    scale_down_disabled: false,
                    not_ready_since: None,
                    unneeded_since: None,
                };
                (Box::from(*name), Box::new(entry))
            })
            .collect()
    }

    fn k8s_taint(key: &str, value: Option<&str>, effect: &str) -> k8s_openapi::api::core::v1::Taint {
        k8s_openapi::api::core::v1::Taint {
            key: key.into(),
            value: value.map(str::to_owned),
            effect: effect.into(),
            time_added: None,
        }
    }

    #[test]
    fn a_group_taint_replaces_the_taints_of_its_key_and_keeps_every_other() {
        let existing = [
            k8s_taint("node.kubernetes.io/not-ready", None, "NoSchedule"),
            k8s_taint("dedicated", Some("old"), "NoSchedule"),
            k8s_taint("dedicated", Some("old"), "NoExecute"),
            k8s_taint("example.com/other", Some("x"), "NoSchedule"),
        ];
        let group = [NodeTaint { key: "dedicated".into(), value: Some("new".into()), effect: TaintEffect::NoSchedule }];
        let merged = with_group_taints(&existing, &group);
        assert_eq!(
            merged,
            vec![
                k8s_taint("node.kubernetes.io/not-ready", None, "NoSchedule"),
                k8s_taint("example.com/other", Some("x"), "NoSchedule"),
                k8s_taint("dedicated", Some("new"), "NoSchedule"),
            ]
        );
        // Applied twice, the same: the second pass finds nothing to change.
        assert_eq!(with_group_taints(&merged, &group), merged);
    }

    #[test]
    fn nodes_match_by_provider_id_and_a_foreign_node_of_the_same_name_never_does() {
        let nodes = entries(&[("g-a", Some("vpsie://g-a")), ("g-b", Some("vpsie://someone-else")), ("g-c", None)]);
        let index = by_provider_id(&nodes);
        let found =
            |host: &str| find_node(&nodes, &index, &vn(host), &Machine::NotListed).map(|n| n.model.name.clone());
        assert_eq!(found("g-a").as_deref(), Some("g-a"));
        assert_eq!(found("g-b"), None, "same name, another provider id: not ours");
        assert_eq!(found("g-c").as_deref(), Some("g-c"), "no provider id yet: ours by name");
        // An index older than the cache (the node gone) finds nothing rather than a wrong node.
        let fewer = entries(&[("g-b", Some("vpsie://someone-else"))]);
        assert!(find_node(&fewer, &index, &vn("g-a"), &Machine::NotListed).is_none());
    }
}
