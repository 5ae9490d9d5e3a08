//! Predicates that look at one node only.

use super::Unfit;
use crate::model::{Node, Pod};
use crate::selectors::{Labels, NodeSelectorTerm, Taint, TaintEffect, Toleration};

/// The taint kube-scheduler treats a cordoned node as having.
fn unschedulable_taint() -> Taint {
    Taint::new("node.kubernetes.io/unschedulable", "", TaintEffect::NoSchedule)
}

/// NodeUnschedulable: a cordoned node takes only pods that tolerate `node.kubernetes.io/unschedulable`.
pub fn unschedulable(pod: &Pod, node: &Node) -> Result<(), Unfit> {
    if node.unschedulable && !tolerates_unschedulable(pod) {
        return Err(Unfit::Unschedulable);
    }
    Ok(())
}

/// Whether the pod tolerates the taint of a cordoned node.
pub(crate) fn tolerates_unschedulable(pod: &Pod) -> bool {
    let taint = unschedulable_taint();
    pod.tolerations.iter().any(|t| t.tolerates(&taint))
}

/// NodeAffinity: every `nodeSelector` label matches, and one of the required terms (if any) matches.
pub fn node_affinity(pod: &Pod, node: &Node) -> Result<(), Unfit> {
    if node_labels_match(pod, &node.labels) { Ok(()) } else { Err(Unfit::NodeAffinity) }
}

/// Whether node labels satisfy the pod's `nodeSelector` and required node affinity.
pub(crate) fn node_labels_match(pod: &Pod, labels: &Labels) -> bool {
    selector_and_affinity_match(&pod.node_selector, &pod.node_affinity, labels)
}

/// Every `nodeSelector` entry is among `labels`, and one of the terms (if any) matches them.
pub(crate) fn selector_and_affinity_match(selector: &Labels, terms: &[NodeSelectorTerm], labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        && (terms.is_empty() || terms.iter().any(|t| t.matches(labels)))
}

/// TaintToleration: every NoSchedule and NoExecute taint is tolerated (PreferNoSchedule never blocks).
pub fn taints_tolerated(pod: &Pod, node: &Node) -> Result<(), Unfit> {
    match untolerated(pod, &node.taints) {
        Some(t) => Err(Unfit::Taint(t.clone())),
        None => Ok(()),
    }
}

/// The first NoSchedule/NoExecute taint among `taints` the pod does not tolerate.
pub(crate) fn untolerated<'t>(pod: &Pod, taints: &'t [Taint]) -> Option<&'t Taint> {
    untolerated_by(&pod.tolerations, taints)
}

/// The first NoSchedule/NoExecute taint among `taints` that none of `tolerations` tolerates.
pub(crate) fn untolerated_by<'t>(tolerations: &[Toleration], taints: &'t [Taint]) -> Option<&'t Taint> {
    taints
        .iter()
        .filter(|t| t.effect != TaintEffect::PreferNoSchedule)
        .find(|t| !tolerations.iter().any(|tol| tol.tolerates(t)))
}

/// NodeResourcesFit: the request fits in allocatable minus what bound pods request.
pub fn resources_fit(pod: &Pod, node: &Node) -> Result<(), Unfit> {
    let free = node.free();
    match pod.requests.first_shortfall(&free) {
        Some((resource, requested, free)) => Err(Unfit::Insufficient { resource, requested, free }),
        None => Ok(()),
    }
}

/// NodePorts: no host port of the pod is bound on the node.
pub fn host_ports(pod: &Pod, node: &Node) -> Result<(), Unfit> {
    for want in &pod.host_ports {
        if node.pods.iter().filter(|p| !p.finished).flat_map(|p| &p.host_ports).any(|have| have.conflicts(want)) {
            return Err(Unfit::HostPort(want.port));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HostPort, Protocol};
    use crate::resources::ResourceName;
    use crate::selectors::{NodeSelectorTerm, Operator, Requirement, Toleration};

    const GI: i64 = 1 << 30;

    fn node() -> Node {
        let mut n = Node::new("n1", 4000, 8 * GI);
        n.labels.insert("pool".into(), "general".into());
        n.labels.insert("cpu".into(), "4".into());
        n
    }

    #[test]
    fn resources_count_bound_pods_and_pod_slots() {
        let mut n = node();
        n.pods.push(Pod::new("ns", "a", 3000, GI));
        assert!(resources_fit(&Pod::new("ns", "b", 1000, GI), &n).is_ok());
        assert_eq!(
            resources_fit(&Pod::new("ns", "c", 1500, GI), &n),
            Err(Unfit::Insufficient { resource: ResourceName::Cpu, requested: 1500, free: 1000 })
        );
        n.allocatable.pods = 1;
        assert!(matches!(
            resources_fit(&Pod::new("ns", "d", 0, 0), &n),
            Err(Unfit::Insufficient { resource: ResourceName::Pods, .. })
        ));
        let msg = Unfit::Insufficient { resource: ResourceName::Cpu, requested: 6000, free: 4000 }.to_string();
        assert_eq!(msg, "needs 6 cpu; the node has 4 free");
    }

    #[test]
    fn cordoned_nodes_take_only_tolerating_pods() {
        let mut n = node();
        n.unschedulable = true;
        let mut p = Pod::new("ns", "p", 100, 0);
        assert_eq!(unschedulable(&p, &n), Err(Unfit::Unschedulable));
        p.tolerations.push(Toleration::exists("node.kubernetes.io/unschedulable", Some(TaintEffect::NoSchedule)));
        assert!(unschedulable(&p, &n).is_ok());
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let n = node();
        let mut p = Pod::new("ns", "p", 100, 0);
        p.node_selector.insert("pool".into(), "general".into());
        assert!(node_affinity(&p, &n).is_ok());
        p.node_selector.insert("pool".into(), "gpu".into());
        assert_eq!(node_affinity(&p, &n), Err(Unfit::NodeAffinity));
        p.node_selector.clear();
        // Terms are ORed, requirements inside a term ANDed.
        p.node_affinity = vec![
            NodeSelectorTerm { requirements: vec![Requirement::new("pool", Operator::In, &["gpu"])] },
            NodeSelectorTerm {
                requirements: vec![
                    Requirement::new("pool", Operator::In, &["general"]),
                    Requirement::new("cpu", Operator::Gt, &["2"]),
                ],
            },
        ];
        assert!(node_affinity(&p, &n).is_ok());
        p.node_affinity = vec![NodeSelectorTerm {
            requirements: vec![
                Requirement::new("pool", Operator::In, &["general"]),
                Requirement::new("cpu", Operator::Gt, &["8"]),
            ],
        }];
        assert_eq!(node_affinity(&p, &n), Err(Unfit::NodeAffinity));
        p.node_affinity = vec![NodeSelectorTerm::default()];
        assert_eq!(node_affinity(&p, &n), Err(Unfit::NodeAffinity), "an empty term matches nothing");
    }

    #[test]
    fn taints_block_unless_tolerated_and_prefer_never_blocks() {
        let mut n = node();
        n.taints.push(Taint::new("soft", "", TaintEffect::PreferNoSchedule));
        let mut p = Pod::new("ns", "p", 100, 0);
        assert!(taints_tolerated(&p, &n).is_ok());
        n.taints.push(Taint::new("dedicated", "gpu", TaintEffect::NoSchedule));
        assert_eq!(
            taints_tolerated(&p, &n),
            Err(Unfit::Taint(Taint::new("dedicated", "gpu", TaintEffect::NoSchedule)))
        );
        assert_eq!(
            Unfit::Taint(Taint::new("dedicated", "gpu", TaintEffect::NoSchedule)).to_string(),
            "does not tolerate the taint dedicated=gpu:NoSchedule"
        );
        p.tolerations.push(Toleration::equal("dedicated", "gpu", None));
        assert!(taints_tolerated(&p, &n).is_ok());
        n.taints.push(Taint::new("evict", "", TaintEffect::NoExecute));
        assert!(taints_tolerated(&p, &n).is_err());
    }

    #[test]
    fn host_ports_conflict_on_same_port_protocol_and_overlapping_ip() {
        let mut n = node();
        let mut bound = Pod::new("ns", "a", 100, 0);
        bound.host_ports.push(HostPort { port: 8080, protocol: Protocol::Tcp, host_ip: "10.0.0.1".into() });
        n.pods.push(bound);
        let want = |port, protocol, ip: &str| {
            let mut p = Pod::new("ns", "b", 100, 0);
            p.host_ports.push(HostPort { port, protocol, host_ip: ip.into() });
            host_ports(&p, &n)
        };
        assert_eq!(want(8080, Protocol::Tcp, ""), Err(Unfit::HostPort(8080)));
        assert_eq!(want(8080, Protocol::Tcp, "10.0.0.1"), Err(Unfit::HostPort(8080)));
        assert!(want(8080, Protocol::Tcp, "10.0.0.2").is_ok());
        assert!(want(8080, Protocol::Udp, "").is_ok());
        assert!(want(9090, Protocol::Tcp, "").is_ok());
    }
}
