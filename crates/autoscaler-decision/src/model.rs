//! Nodes and pods as the decision core sees them: plain data, already converted from Kubernetes objects.

use std::collections::BTreeMap;

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

/// Labels of each namespace, by name: what resolves a term's `namespaceSelector`.
pub type NamespaceLabels = BTreeMap<String, Labels>;

/// The namespaces a pod (anti-)affinity term looks at: the union of its `namespaces` list and the
/// namespaces its `namespaceSelector` matches, as kube-scheduler reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Namespaces {
    /// The pod's own namespace (neither `namespaces` nor `namespaceSelector` set).
    #[default]
    Own,
    /// Exactly these (an empty list selects no pod).
    Listed(Vec<String>),
    /// Every namespace (an empty `namespaceSelector`).
    All,
    /// A `namespaceSelector` not yet resolved against namespace labels
    /// ([`Pod::resolve_namespace_selectors`]), with the names listed beside it. Until it is resolved the core
    /// takes the safe side: an anti-affinity term counts pods of every namespace (it can only refuse more),
    /// an affinity term only those of the listed names (it can only accept less).
    Selector {
        /// Names listed in `namespaces`.
        listed: Vec<String>,
        /// The `namespaceSelector`.
        selector: LabelSelector,
    },
}

/// How a term's namespaces are read while a selector is unresolved: the safe side differs by the kind of
/// term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermKind {
    /// Pod affinity: it must find a pod, so reading fewer namespaces is the safe side.
    Affinity,
    /// Pod anti-affinity: it must find none, so reading more namespaces is the safe side.
    AntiAffinity,
}

impl Namespaces {
    /// Whether a pod in `namespace` is within the term of a pod in `owner`.
    pub fn admits(&self, namespace: &str, owner: &str, kind: TermKind) -> bool {
        match self {
            Namespaces::Own => namespace == owner,
            Namespaces::Listed(names) => names.iter().any(|n| n == namespace),
            Namespaces::All => true,
            Namespaces::Selector { listed, .. } => match kind {
                TermKind::AntiAffinity => true,
                TermKind::Affinity => listed.iter().any(|n| n == namespace),
            },
        }
    }

    /// The selector resolved against `labels`: the listed names plus every namespace it matches.
    pub fn resolved(&self, labels: &NamespaceLabels) -> Namespaces {
        match self {
            Namespaces::Selector { listed, selector } => {
                let mut names = listed.clone();
                names.extend(labels.iter().filter(|(_, l)| selector.matches(l)).map(|(n, _)| n.clone()));
                names.sort();
                names.dedup();
                Namespaces::Listed(names)
            }
            other => other.clone(),
        }
    }
}

/// A required pod (anti-)affinity term.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PodAffinityTerm {
    /// Which pods the term is about.
    pub selector: LabelSelector,
    /// The namespaces of those pods.
    pub namespaces: Namespaces,
    /// The domain the term applies within.
    pub topology: TopologyKey,
}

/// Whether a spread constraint's node inclusion policy (`nodeAffinityPolicy`, `nodeTaintsPolicy`) honours
/// the pod's node affinity or taints when it counts domains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Inclusion {
    /// Only nodes the pod could use by that filter count.
    Honor,
    /// Every node with the topology label counts.
    #[default]
    Ignore,
}

/// A `whenUnsatisfiable: DoNotSchedule` topology spread constraint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TopologySpread {
    /// Largest allowed difference between the fullest and emptiest domain.
    pub max_skew: i32,
    /// The domain key.
    pub topology: TopologyKey,
    /// Which pods are counted (in the pod's namespace); `matchLabelKeys` already merged in.
    pub selector: LabelSelector,
    /// `minDomains`: while fewer eligible domains exist, the global minimum counts as zero.
    #[serde(default = "one")]
    pub min_domains: i32,
    /// `nodeAffinityPolicy` (default Honor).
    #[serde(default = "honor")]
    pub node_affinity: Inclusion,
    /// `nodeTaintsPolicy` (default Ignore).
    #[serde(default)]
    pub node_taints: Inclusion,
}

fn one() -> i32 {
    1
}

fn honor() -> Inclusion {
    Inclusion::Honor
}

impl TopologySpread {
    /// A constraint with the API's defaults: `minDomains` 1, node affinity honoured, taints ignored.
    pub fn new(max_skew: i32, topology: TopologyKey, selector: LabelSelector) -> Self {
        Self {
            max_skew,
            topology,
            selector,
            min_domains: 1,
            node_affinity: Inclusion::Honor,
            node_taints: Inclusion::Ignore,
        }
    }
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
    /// Required constraints the core cannot model (a topology key other than hostname and zone), one
    /// sentence each. They are left out of the constraints above; the pod still counts on its node, a plan
    /// never places it (its constraint could not be checked) and a scale-down never moves it.
    #[serde(default)]
    pub unmodelled: Vec<String>,
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
    pub fn selected_by(&self, term: &PodAffinityTerm, term_namespace: &str, kind: TermKind) -> bool {
        term.namespaces.admits(&self.namespace, term_namespace, kind) && term.selector.matches(&self.labels)
    }

    /// Resolves every `namespaceSelector` of its affinity terms against the namespaces' labels (the
    /// controller calls this on each snapshot, so a namespace relabelled later is read afresh). Returns
    /// whether any term had one.
    pub fn resolve_namespace_selectors(&mut self, labels: &NamespaceLabels) -> bool {
        let mut any = false;
        for t in self.pod_affinity.iter_mut().chain(self.pod_anti_affinity.iter_mut()) {
            if matches!(t.namespaces, Namespaces::Selector { .. }) {
                t.namespaces = t.namespaces.resolved(labels);
                any = true;
            }
        }
        any
    }

    /// Whether some affinity term still has a `namespaceSelector` to resolve.
    pub fn has_namespace_selector(&self) -> bool {
        self.pod_affinity
            .iter()
            .chain(&self.pod_anti_affinity)
            .any(|t| matches!(t.namespaces, Namespaces::Selector { .. }))
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

    /// Sum of the requests of its pods (finished pods hold nothing: kube-scheduler does not see them).
    pub fn requested(&self) -> Resources {
        let mut r = Resources::default();
        for p in self.pods.iter().filter(|p| !p.finished) {
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
