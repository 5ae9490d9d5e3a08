//! Scheduling predicates mirroring kube-scheduler's filter plugins, one function each. Every refusal is a
//! [`Unfit`] with a machine-readable variant and a one-sentence explanation.

mod inter_pod;
pub(crate) mod node;
mod spread;

pub use inter_pod::inter_pod_affinity;
pub use node::{host_ports, node_affinity, resources_fit, taints_tolerated, unschedulable};
pub use spread::topology_spread;

use crate::model::{Node, Pod, TopologyKey};
use crate::resources::{ResourceName, format_cpu, format_memory};
use crate::selectors::Taint;

/// Why a pod cannot go on a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Unfit {
    /// Not enough of a resource left (NodeResourcesFit).
    Insufficient {
        /// Which resource.
        resource: ResourceName,
        /// The pod's request.
        requested: i64,
        /// What the node has free.
        free: i64,
    },
    /// The node is cordoned (NodeUnschedulable).
    Unschedulable,
    /// A NoSchedule/NoExecute taint the pod does not tolerate (TaintToleration).
    Taint(Taint),
    /// `nodeSelector` or required node affinity does not match (NodeAffinity).
    NodeAffinity,
    /// A host port is already bound (NodePorts).
    HostPort(u16),
    /// The pod's required anti-affinity matches a pod in the node's domain (InterPodAffinity).
    AntiAffinity {
        /// The domain key.
        topology: TopologyKey,
        /// The pod already there.
        existing: String,
    },
    /// A pod in the node's domain has required anti-affinity against this pod (InterPodAffinity).
    ExistingAntiAffinity {
        /// The domain key.
        topology: TopologyKey,
        /// The pod whose term refuses.
        existing: String,
    },
    /// No pod in the node's domain satisfies a required affinity term (InterPodAffinity).
    Affinity {
        /// The domain key.
        topology: TopologyKey,
    },
    /// Placing the pod would exceed a spread constraint's maxSkew (PodTopologySpread).
    Spread {
        /// The domain key.
        topology: TopologyKey,
        /// The skew placing it here would create.
        skew: i64,
        /// The constraint's maxSkew.
        max_skew: i32,
    },
    /// The node lacks the label a term or constraint needs.
    MissingTopologyLabel(TopologyKey),
}

impl Unfit {
    /// A stable code for metrics and tools.
    pub fn code(&self) -> &'static str {
        match self {
            Unfit::Insufficient { .. } => "insufficient_resources",
            Unfit::Unschedulable => "node_unschedulable",
            Unfit::Taint(_) => "untolerated_taint",
            Unfit::NodeAffinity => "node_affinity",
            Unfit::HostPort(_) => "host_port",
            Unfit::AntiAffinity { .. } => "pod_anti_affinity",
            Unfit::ExistingAntiAffinity { .. } => "existing_pod_anti_affinity",
            Unfit::Affinity { .. } => "pod_affinity",
            Unfit::Spread { .. } => "topology_spread",
            Unfit::MissingTopologyLabel(_) => "missing_topology_label",
        }
    }
}

fn amount(resource: &ResourceName, v: i64) -> String {
    match resource {
        ResourceName::Cpu => format_cpu(v),
        ResourceName::Memory | ResourceName::EphemeralStorage => format_memory(v),
        _ => v.to_string(),
    }
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfit::Insufficient { resource, requested, free } => {
                write!(
                    f,
                    "needs {} {resource}; the node has {} free",
                    amount(resource, *requested),
                    amount(resource, *free)
                )
            }
            Unfit::Unschedulable => f.write_str("the node is cordoned"),
            Unfit::Taint(t) => write!(f, "does not tolerate the taint {t}"),
            Unfit::NodeAffinity => f.write_str("its nodeSelector or required node affinity does not match the node"),
            Unfit::HostPort(p) => write!(f, "host port {p} is already in use on the node"),
            Unfit::AntiAffinity { topology, existing } => {
                write!(f, "its anti-affinity forbids sharing a {} with {existing}", domain_word(*topology))
            }
            Unfit::ExistingAntiAffinity { topology, existing } => {
                write!(f, "{existing} has anti-affinity against it in the same {}", domain_word(*topology))
            }
            Unfit::Affinity { topology } => {
                write!(f, "no pod its affinity requires runs in the node's {}", domain_word(*topology))
            }
            Unfit::Spread { topology, skew, max_skew } => {
                write!(f, "would make the {} spread skew {skew} (maxSkew {max_skew})", domain_word(*topology))
            }
            Unfit::MissingTopologyLabel(t) => write!(f, "the node has no {} label", t.label()),
        }
    }
}

fn domain_word(t: TopologyKey) -> &'static str {
    match t {
        TopologyKey::Hostname => "node",
        TopologyKey::Zone => "zone",
    }
}

/// Runs every predicate, cheapest first; the first refusal wins. `nodes` is the whole cluster (existing
/// and simulated nodes with the pods placed so far), which inter-pod affinity and spread need.
pub fn feasible(pod: &Pod, node: &Node, nodes: &[Node]) -> Result<(), Unfit> {
    unschedulable(pod, node)?;
    node_affinity(pod, node)?;
    taints_tolerated(pod, node)?;
    resources_fit(pod, node)?;
    host_ports(pod, node)?;
    inter_pod_affinity(pod, node, nodes)?;
    topology_spread(pod, node, nodes)
}
