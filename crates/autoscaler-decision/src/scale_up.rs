//! Scale-up: place pending pods on free capacity of existing and in-flight nodes first (in-flight capacity
//! is what prevents a double scale-up), then add new nodes, choosing group and offering by expander, until
//! every pod is placed or explained. One pass produces the whole multi-node plan.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::groups::{Expander, NodeGroup, Offering, Usage};
use crate::model::{Node, Pod};
use crate::predicates::{Unfit, feasible};
use crate::resources::{ResourceName, format_cpu, format_memory};

/// A new node in a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewNode {
    /// The simulated node name (`<group>-new-<n>`).
    pub name: String,
    /// Its group.
    pub group: String,
    /// Its offering.
    pub offering: String,
    /// Monthly price.
    pub monthly_price: f64,
    /// Pending pods placed on it.
    pub pods: Vec<String>,
}

/// Why a pod stays pending, per group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRefusal {
    /// The group.
    pub group: String,
    /// A stable code: `max_nodes`, `backoff`, `limits`, or a predicate code such as `insufficient_resources`.
    pub code: String,
    /// One sentence.
    pub message: String,
}

/// A pod the plan leaves pending.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unplaced {
    /// `namespace/name`.
    pub pod: String,
    /// Why, per group (empty when there is no group at all).
    pub refusals: Vec<GroupRefusal>,
}

impl Unplaced {
    /// One human sentence.
    pub fn sentence(&self) -> String {
        if self.refusals.is_empty() {
            return format!("{} stays pending: there is no NodeGroup", self.pod);
        }
        let reasons: Vec<&str> = self.refusals.iter().map(|r| r.message.as_str()).collect();
        format!("{} stays pending: {}", self.pod, reasons.join("; "))
    }
}

/// The outcome of a scale-up decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScaleUpPlan {
    /// Pods placed on nodes that already exist or are being created: `(pod, node)`.
    pub on_existing: Vec<(String, String)>,
    /// Nodes to create, with the pods they take.
    pub new_nodes: Vec<NewNode>,
    /// Pods left pending, with reasons.
    pub unplaced: Vec<Unplaced>,
}

impl ScaleUpPlan {
    /// Monthly cost of the new nodes.
    pub fn monthly_cost(&self) -> f64 {
        self.new_nodes.iter().map(|n| n.monthly_price).sum()
    }

    /// New nodes per `(group, offering)`.
    pub fn counts(&self) -> BTreeMap<(String, String), usize> {
        let mut m = BTreeMap::new();
        for n in &self.new_nodes {
            *m.entry((n.group.clone(), n.offering.clone())).or_default() += 1;
        }
        m
    }
}

/// Everything a scale-up looks at.
#[derive(Debug, Clone, Copy)]
pub struct ScaleUpInput<'a> {
    /// Existing and in-flight nodes with their pods.
    pub nodes: &'a [Node],
    /// Pods the scheduler could not place.
    pub pending: &'a [Pod],
    /// The groups that may grow.
    pub groups: &'a [NodeGroup],
    /// How to choose among options.
    pub expander: Expander,
}

/// Larger pods first (first-fit decreasing), then by name, so the plan is deterministic.
fn order(pending: &[Pod]) -> Vec<&Pod> {
    let mut v: Vec<&Pod> = pending.iter().collect();
    v.sort_by(|a, b| {
        (b.requests.cpu_milli, b.requests.memory)
            .cmp(&(a.requests.cpu_milli, a.requests.memory))
            .then_with(|| a.id().cmp(&b.id()))
    });
    v
}

/// A scored option for one new node.
struct Option_ {
    group: usize,
    offering: usize,
    /// Pending pods (indexes into the ordered queue) the node would take.
    takes: Vec<usize>,
    waste: f64,
    price_per_pod: f64,
    priority: i32,
    price: f64,
}

/// Plans the scale-up.
pub fn plan(input: ScaleUpInput<'_>) -> ScaleUpPlan {
    let queue = order(input.pending);
    let mut cluster: Vec<Node> = input.nodes.to_vec();
    let mut usage: Vec<Usage> = input.groups.iter().map(|g| g.usage(input.nodes)).collect();
    let mut placed = vec![false; queue.len()];
    let mut plan = ScaleUpPlan::default();

    // Phase 1: free capacity of existing and in-flight nodes, for every pod that fits there. Doing this
    // before opening any new node keeps a new node's greedy fill from taking pods that already have room.
    for (i, pod) in queue.iter().enumerate() {
        if let Some(n) = (0..cluster.len()).find(|&n| feasible(pod, &cluster[n], &cluster).is_ok()) {
            cluster[n].pods.push((*pod).clone());
            placed[i] = true;
            plan.on_existing.push((pod.id(), cluster[n].name.clone()));
        }
    }
    // Phase 2: new nodes for the rest, each filled greedily with the pending pods it can take.
    let existing = cluster.len();
    for i in 0..queue.len() {
        if placed[i] {
            continue;
        }
        let pod = queue[i];
        if let Some(n) = (existing..cluster.len()).find(|&n| feasible(pod, &cluster[n], &cluster).is_ok()) {
            cluster[n].pods.push(pod.clone());
            placed[i] = true;
            if let Some(new) = plan.new_nodes.get_mut(n - existing) {
                new.pods.push(pod.id());
            }
            continue;
        }
        match best_option(&queue, &placed, i, &cluster, input.groups, &usage, input.expander, plan.new_nodes.len()) {
            Some(opt) => {
                let group = &input.groups[opt.group];
                let offering = &group.offerings[opt.offering];
                let name = format!("{}-new-{}", group.name, plan.new_nodes.len() + 1);
                let mut node = group.template(offering, &name);
                let mut pods = Vec::new();
                for &k in &opt.takes {
                    node.pods.push(queue[k].clone());
                    placed[k] = true;
                    pods.push(queue[k].id());
                }
                cluster.push(node);
                let u = &mut usage[opt.group];
                u.nodes += 1;
                u.monthly_cost += offering.monthly_price;
                u.cpu_milli += offering.allocatable.cpu_milli;
                u.memory += offering.allocatable.memory;
                plan.new_nodes.push(NewNode {
                    name,
                    group: group.name.clone(),
                    offering: offering.id.clone(),
                    monthly_price: offering.monthly_price,
                    pods,
                });
            }
            None => plan.unplaced.push(explain(pod, &cluster, input.groups, &usage)),
        }
    }
    plan
}

/// The best new node for `queue[first]`, filled greedily with the other pending pods it can take.
#[allow(clippy::too_many_arguments)]
fn best_option(
    queue: &[&Pod],
    placed: &[bool],
    first: usize,
    cluster: &[Node],
    groups: &[NodeGroup],
    usage: &[Usage],
    expander: Expander,
    planned: usize,
) -> Option<Option_> {
    let mut best: Option<Option_> = None;
    let mut view: Vec<Node> = cluster.to_vec();
    for (gi, group) in groups.iter().enumerate() {
        if usage[gi].nodes >= group.max_nodes {
            continue;
        }
        for (oi, offering) in group.offerings.iter().enumerate() {
            if group.backoff.contains(&offering.id) || group.limit_exceeded(&usage[gi], offering).is_some() {
                continue;
            }
            let template = group.template(offering, &format!("{}-new-{}", group.name, planned + 1));
            view.push(template);
            let last = view.len() - 1;
            let mut takes = Vec::new();
            if feasible(queue[first], &view[last], &view).is_ok() {
                view[last].pods.push(queue[first].clone());
                takes.push(first);
                for k in first + 1..queue.len() {
                    if !placed[k] && feasible(queue[k], &view[last], &view).is_ok() {
                        view[last].pods.push(queue[k].clone());
                        takes.push(k);
                    }
                }
            }
            let node = view.pop();
            let Some(node) = node.filter(|_| !takes.is_empty()) else { continue };
            let used = node.requested();
            let alloc = &node.allocatable;
            let frac = |u: i64, a: i64| if a > 0 { 1.0 - u as f64 / a as f64 } else { 0.0 };
            let waste = (frac(used.cpu_milli, alloc.cpu_milli) + frac(used.memory, alloc.memory)) / 2.0;
            let candidate = Option_ {
                group: gi,
                offering: oi,
                price_per_pod: offering.monthly_price / takes.len() as f64,
                takes,
                waste,
                priority: group.priority,
                price: offering.monthly_price,
            };
            if best.as_ref().is_none_or(|b| better(&candidate, b, expander)) {
                best = Some(candidate);
            }
        }
    }
    best
}

/// Whether `a` beats `b` under the expander; ties fall to price, then to the earlier option.
fn better(a: &Option_, b: &Option_, expander: Expander) -> bool {
    const EPS: f64 = 1e-9;
    let by_waste = |a: &Option_, b: &Option_| {
        if (a.waste - b.waste).abs() > EPS { a.waste < b.waste } else { a.price + EPS < b.price }
    };
    match expander {
        Expander::LeastWaste => by_waste(a, b),
        Expander::Cheapest => {
            if (a.price_per_pod - b.price_per_pod).abs() > EPS {
                a.price_per_pod < b.price_per_pod
            } else {
                by_waste(a, b)
            }
        }
        Expander::Priority => {
            if a.priority != b.priority {
                a.priority > b.priority
            } else {
                by_waste(a, b)
            }
        }
    }
}

/// Why no group can take `pod`, one reason per group.
fn explain(pod: &Pod, cluster: &[Node], groups: &[NodeGroup], usage: &[Usage]) -> Unplaced {
    let refusals = groups
        .iter()
        .enumerate()
        .map(|(gi, g)| {
            let refuse =
                |code: &str, message: String| GroupRefusal { group: g.name.clone(), code: code.to_owned(), message };
            if usage[gi].nodes >= g.max_nodes {
                return refuse("max_nodes", format!("{} is at maxNodes {}", g.name, g.max_nodes));
            }
            let usable: Vec<&Offering> = g.offerings.iter().filter(|o| !g.backoff.contains(&o.id)).collect();
            if usable.is_empty() {
                return refuse("backoff", format!("every offering of {} is backed off after failures", g.name));
            }
            // The largest usable offering speaks for the group: if the pod does not fit there, it fits nowhere.
            let largest = usable.iter().copied().max_by_key(|o| (o.allocatable.cpu_milli, o.allocatable.memory));
            let Some(largest) = largest else {
                return refuse("backoff", format!("{} has no offering", g.name));
            };
            let mut view = cluster.to_vec();
            view.push(g.template(largest, &format!("{}-template", g.name)));
            let last = view.len() - 1;
            match feasible(pod, &view[last], &view) {
                Err(Unfit::Insufficient { resource, requested, .. }) => {
                    let mut free = largest.allocatable.clone();
                    for d in &g.daemonset_pods {
                        free.sub(&d.requests);
                    }
                    let (need, have) = match resource {
                        ResourceName::Cpu => (format!("{} CPU", format_cpu(requested)), format_cpu(free.cpu_milli)),
                        ResourceName::Memory => {
                            (format!("{} memory", format_memory(requested)), format_memory(free.memory))
                        }
                        ref other => (format!("{requested} {other}"), "none".to_owned()),
                    };
                    refuse(
                        "insufficient_resources",
                        format!("needs {need}; the largest offering of {} has {have}", g.name),
                    )
                }
                Err(Unfit::Taint(t)) => {
                    refuse("untolerated_taint", format!("does not tolerate {}'s taint {t}", g.name))
                }
                Err(other) => refuse(other.code(), format!("on a new {} node it {other}", g.name)),
                Ok(()) => match usable.iter().find_map(|o| g.limit_exceeded(&usage[gi], o)) {
                    Some(limit) => refuse("limits", limit),
                    None => refuse("no_option", format!("no offering of {} can take it", g.name)),
                },
            }
        })
        .collect();
    Unplaced { pod: pod.id(), refusals }
}
