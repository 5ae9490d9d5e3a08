//! Node groups as the decision core sees them: what a new node of each offering would look like, and
//! what the group may still grow by.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{LABEL_HOSTNAME, LABEL_ZONE, Node, Pod};
use crate::resources::Resources;
use crate::selectors::{Labels, Taint};

/// A machine size a group can create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offering {
    /// Offering identifier.
    pub id: String,
    /// What a node of it offers to pods (after system reservations).
    pub allocatable: Resources,
    /// Monthly price in USD.
    pub monthly_price: f64,
}

/// How a scale-up chooses among groups and offerings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Expander {
    /// The option leaving the least CPU and memory idle on the new node.
    #[default]
    LeastWaste,
    /// The lowest monthly price per pod the new node carries.
    Cheapest,
    /// The highest group priority, then least waste.
    Priority,
}

/// Upper bounds of a group as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Most the group's nodes may cost per month.
    pub max_monthly_cost: Option<f64>,
    /// Most CPU (millicores) across the group's nodes.
    pub max_cpu_milli: Option<i64>,
    /// Most memory (bytes) across the group's nodes.
    pub max_memory: Option<i64>,
}

/// A node group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeGroup {
    /// Name.
    pub name: String,
    /// Fewest nodes.
    pub min_nodes: i32,
    /// Most nodes.
    pub max_nodes: i32,
    /// Offerings new nodes may use.
    pub offerings: Vec<Offering>,
    /// Labels of its nodes.
    pub labels: Labels,
    /// Taints of its nodes (startup taints excluded: they go away once a node is initialised).
    pub taints: Vec<Taint>,
    /// Zone (datacenter) of its nodes.
    pub zone: Option<String>,
    /// Priority for the `Priority` expander.
    pub priority: i32,
    /// Group-wide limits.
    pub limits: Limits,
    /// Offerings temporarily avoided after failures.
    pub backoff: BTreeSet<String>,
    /// The DaemonSet pods every new node of the group will carry.
    pub daemonset_pods: Vec<Pod>,
    /// When its nodes may be removed.
    pub scale_down: ScaleDown,
    /// Members that count toward `max_nodes` and the limits but are not among the nodes given to a plan
    /// (no capacity): a node NotReady past its registration timeout, a node in flight past its phase's
    /// timeout. Without them a group at `max_nodes` with a dead node would plan one more, which the
    /// NodeGroup controller would delete again, forever.
    #[serde(default)]
    pub absent_members: Usage,
}

/// Scale-down settings of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleDown {
    /// Whether its nodes may be removed at all.
    pub enabled: bool,
    /// A node is a candidate while requested CPU is under this fraction of allocatable.
    pub cpu_threshold: f64,
    /// A node is a candidate while requested memory is under this fraction of allocatable.
    pub memory_threshold: f64,
    /// Most of its nodes one decision may remove (the disruption budget in force).
    pub max_disruptions: usize,
    /// Whether pods with emptyDir or hostPath volumes may be evicted.
    pub allow_local_storage: bool,
}

impl Default for ScaleDown {
    fn default() -> Self {
        Self {
            enabled: true,
            cpu_threshold: 0.5,
            memory_threshold: 0.5,
            max_disruptions: 1,
            allow_local_storage: false,
        }
    }
}

/// What a group already has (existing and in-flight nodes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Nodes.
    pub nodes: i32,
    /// Monthly cost.
    pub monthly_cost: f64,
    /// Allocatable CPU.
    pub cpu_milli: i64,
    /// Allocatable memory.
    pub memory: i64,
}

impl NodeGroup {
    /// What the group's nodes among `nodes` add up to, with its members absent from them.
    pub fn usage(&self, nodes: &[Node]) -> Usage {
        let mut u = self.absent_members.clone();
        for n in nodes.iter().filter(|n| n.group.as_deref() == Some(self.name.as_str())) {
            u.nodes += 1;
            u.cpu_milli += n.allocatable.cpu_milli;
            u.memory += n.allocatable.memory;
            let price = n
                .offering
                .as_ref()
                .and_then(|o| self.offerings.iter().find(|x| &x.id == o))
                .map_or(0.0, |o| o.monthly_price);
            u.monthly_cost += price;
        }
        u
    }

    /// Why one more node of `offering` would break a limit, if it would.
    pub fn limit_exceeded(&self, usage: &Usage, offering: &Offering) -> Option<String> {
        let l = &self.limits;
        if let Some(max) = l.max_monthly_cost
            && usage.monthly_cost + offering.monthly_price > max + 1e-9
        {
            return Some(format!("{} would pass its maxMonthlyCost {max:.2}", self.name));
        }
        if let Some(max) = l.max_cpu_milli
            && usage.cpu_milli + offering.allocatable.cpu_milli > max
        {
            return Some(format!("{} would pass its CPU limit", self.name));
        }
        if let Some(max) = l.max_memory
            && usage.memory + offering.allocatable.memory > max
        {
            return Some(format!("{} would pass its memory limit", self.name));
        }
        None
    }

    /// The labels a new node named `name` registers with: the group's labels, host name and zone.
    pub fn template_labels(&self, name: &str) -> Labels {
        let mut labels = self.labels.clone();
        labels.insert(LABEL_HOSTNAME.to_owned(), name.to_owned());
        if let Some(zone) = &self.zone {
            labels.insert(LABEL_ZONE.to_owned(), zone.clone());
        }
        labels
    }

    /// A node of `offering` as it would register, carrying the group's DaemonSet pods.
    pub fn template(&self, offering: &Offering, name: &str) -> Node {
        Node {
            name: name.to_owned(),
            labels: self.template_labels(name),
            allocatable: offering.allocatable.clone(),
            taints: self.taints.clone(),
            unschedulable: false,
            ready: false,
            group: Some(self.name.clone()),
            offering: Some(offering.id.clone()),
            created_at: 0,
            pods: self.daemonset_pods.clone(),
        }
    }
}
