//! Nodes and pods as the decision core sees them: plain data, already converted from Kubernetes objects.

use serde::{Deserialize, Serialize};

use crate::resources::Resources;
use crate::selectors::{LabelSelector, Labels, NodeSelectorTerm, Taint, Toleration};

/// The node label holding its host name.
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// The node label holding its zone (a VPSie datacenter maps to a zone).
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

/// A topology domain key for affinity and spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TopologyKey {
    /// One domain per node.
    Hostname,
    /// One domain per zone.
    Zone,
}

impl TopologyKey {
    /// The node label of the key.
    pub fn label(self) -> &'static str {
        match self {
            TopologyKey::Hostname => LABEL_HOSTNAME,
            TopologyKey::Zone => LABEL_ZONE,
        }
    }
}

/// A required pod (anti-)affinity term.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PodAffinityTerm {
    /// Which pods the term is about.
    pub selector: LabelSelector,
    /// Namespaces of those pods; empty means the pod's own namespace.
    pub namespaces: Vec<String>,
    /// The domain the term applies within.
    pub topology: TopologyKey,
}

/// A `whenUnsatisfiable: DoNotSchedule` topology spread constraint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TopologySpread {
    /// Largest allowed difference between the fullest and emptiest domain.
    pub max_skew: i32,
    /// The domain key.
    pub topology: TopologyKey,
    /// Which pods are counted (in the pod's namespace).
    pub selector: LabelSelector,
}

/// Host port protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// A host port a pod binds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostPort {
    /// Port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Host IP; empty or `0.0.0.0` means every address.
    pub host_ip: String,
}

impl HostPort {
    /// Whether two host ports cannot share a node.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        let wildcard = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
        self.port == other.port
            && self.protocol == other.protocol
            && (wildcard(&self.host_ip) || wildcard(&other.host_ip) || self.host_ip == other.host_ip)
    }
}

/// A pod: what it asks of a node, and what matters for removing it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Labels.
    pub labels: Labels,
    /// Effective request (see [`crate::resources::effective_request`]); `pods` is 1.
    pub requests: Resources,
    /// `nodeSelector`.
    pub node_selector: Labels,
    /// Required node affinity terms (ORed); empty means none.
    pub node_affinity: Vec<NodeSelectorTerm>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// Required pod affinity terms.
    pub pod_affinity: Vec<PodAffinityTerm>,
    /// Required pod anti-affinity terms.
    pub pod_anti_affinity: Vec<PodAffinityTerm>,
    /// DoNotSchedule spread constraints.
    pub topology_spread: Vec<TopologySpread>,
    /// Host ports.
    pub host_ports: Vec<HostPort>,
    /// Kind of the controlling owner (`ReplicaSet`, `StatefulSet`, `DaemonSet`, `Job`…), if any.
    pub owner_kind: Option<String>,
    /// Priority.
    pub priority: i32,
    /// Uses emptyDir or hostPath volumes.
    pub local_storage: bool,
    /// `safe-to-evict` annotation: `Some(false)` blocks removal, `Some(true)` allows it despite local storage.
    pub safe_to_evict: Option<bool>,
    /// `do-not-disrupt` annotation.
    pub do_not_disrupt: bool,
    /// Succeeded or Failed: it holds nothing and needs no eviction.
    #[serde(default)]
    pub finished: bool,
}

impl Pod {
    /// A pod with a name, namespace and CPU/memory request; everything else empty.
    pub fn new(namespace: &str, name: &str, cpu_milli: i64, memory: i64) -> Self {
        let mut requests = Resources::cpu_mem(cpu_milli, memory);
        requests.pods = 1;
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            owner_kind: Some("ReplicaSet".into()),
            requests,
            ..Self::default()
        }
    }

    /// Runs on every node by its DaemonSet (or is a static mirror pod, owned by its `Node`; conversion sets
    /// that owner from the mirror annotation too): it goes away with the node.
    pub fn is_node_bound(&self) -> bool {
        matches!(self.owner_kind.as_deref(), Some("DaemonSet" | "Node"))
    }

    /// Must be evicted (and placed elsewhere) when its node goes: not node-bound and not finished
    /// ([`crate::eviction`]).
    pub fn needs_eviction(&self) -> bool {
        !self.is_node_bound() && !self.finished
    }

    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether a term selects this pod (its selector and namespaces), seen from a pod in `term_namespace`.
    pub fn selected_by(&self, term: &PodAffinityTerm, term_namespace: &str) -> bool {
        let ns_ok = if term.namespaces.is_empty() {
            self.namespace == term_namespace
        } else {
            term.namespaces.contains(&self.namespace)
        };
        ns_ok && term.selector.matches(&self.labels)
    }
}

/// A PodDisruptionBudget as the decision needs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pdb {
    /// Name.
    pub name: String,
    /// Namespace (it selects pods of this namespace only).
    pub namespace: String,
    /// Which pods it covers.
    pub selector: LabelSelector,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
}

impl Pdb {
    /// Whether it covers `pod`.
    pub fn covers(&self, pod: &Pod) -> bool {
        pod.namespace == self.namespace && self.selector.matches(&pod.labels)
    }
}

/// A node and the pods bound to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Name.
    pub name: String,
    /// Labels (host name and zone included).
    pub labels: Labels,
    /// Allocatable resources.
    pub allocatable: Resources,
    /// Taints.
    pub taints: Vec<Taint>,
    /// Cordoned.
    pub unschedulable: bool,
    /// Ready condition.
    pub ready: bool,
    /// The NodeGroup it belongs to.
    pub group: Option<String>,
    /// The offering it runs on.
    pub offering: Option<String>,
    /// Creation time, seconds since the epoch (time is an input, never read from a clock).
    pub created_at: i64,
    /// Pods bound to it.
    pub pods: Vec<Pod>,
}

impl Node {
    /// A ready node with a hostname label, `cpu_milli`, `memory` bytes and 110 pod slots.
    pub fn new(name: &str, cpu_milli: i64, memory: i64) -> Self {
        let mut allocatable = Resources::cpu_mem(cpu_milli, memory);
        allocatable.pods = 110;
        let labels = [(LABEL_HOSTNAME.to_owned(), name.to_owned())].into();
        Self { name: name.to_owned(), labels, allocatable, ready: true, ..Self::default() }
    }

    /// Sum of the requests of its pods.
    pub fn requested(&self) -> Resources {
        let mut r = Resources::default();
        for p in &self.pods {
            r.add(&p.requests);
        }
        r
    }

    /// Allocatable minus requested.
    pub fn free(&self) -> Resources {
        let mut f = self.allocatable.clone();
        f.sub(&self.requested());
        f
    }

    /// The node's domain for a topology key, if it has the label.
    pub fn domain(&self, key: TopologyKey) -> Option<&str> {
        self.labels.get(key.label()).map(String::as_str)
    }
}
