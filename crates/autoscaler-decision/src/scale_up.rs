//! Scale-up: place pending pods on free capacity of existing and in-flight nodes first (in-flight capacity
//! is what prevents a double scale-up), then add new nodes, choosing group and offering by expander, until
//! every pod is placed or explained. One pass produces the whole multi-node plan.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::groups::{Expander, NodeGroup, Offering, Usage};
use crate::model::{Node, Pod};
use crate::predicates::{Unfit, feasible};
use crate::resources::{ResourceName, format_cpu, format_memory};
use crate::sim::place::{Opened, Placement, Placer, Step, Strategy};
use crate::sim::state::PodRef;

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
        let mut reasons: Vec<&str> = self.refusals.iter().map(|r| r.message.as_str()).collect();
        // The same reason from every group is said once.
        reasons.dedup();
        format!("{} stays pending: {}", self.pod, reasons.join("; "))
    }
}

/// A pod and the node it goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodOnNode {
    /// `namespace/name`.
    pub pod: String,
    /// The node.
    pub node: String,
}

impl PodOnNode {
    /// `pod` on `node`.
    pub fn new(pod: impl Into<String>, node: impl Into<String>) -> Self {
        Self { pod: pod.into(), node: node.into() }
    }
}

/// The outcome of a scale-up decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScaleUpPlan {
    /// Pods placed on nodes that already exist or are being created.
    pub on_existing: Vec<PodOnNode>,
    /// Nodes to create, with the pods they take.
    pub new_nodes: Vec<NewNode>,
    /// Pods left pending, with reasons.
    pub unplaced: Vec<Unplaced>,
    /// Every placement in the order it was decided: replaying it pod by pod through
    /// [`crate::feasible`], each new node appearing with its first pod, reproduces the plan.
    pub sequence: Vec<PodOnNode>,
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

/// Plans the scale-up: every pending pod is placed on an existing or in-flight node, on a new node, or
/// explained.
pub fn plan(input: ScaleUpInput<'_>) -> ScaleUpPlan {
    plan_with(input, Strategy::Planner(input.expander))
}

/// The granularities (steps per octave of memory per CPU) the cheapest expander's advice is tried at,
/// the default first. Where pods fall between two kinds or a group between two shapes moves a few pods
/// onto other nodes, and on a few hundred nodes that is worth a few percent either way; no one
/// granularity wins on every mix.
pub(crate) const ADVICE_STEPS: [u32; 5] = [4, 3, 5, 6, 8];

/// How many pod placements the tries may take together (pending pods times tries): every try up to
/// 5,000 pods, fewer above, only the first at 20,000, which keeps large plans as fast as one try.
const TRIES_BUDGET: usize = 25_000;

/// One way to plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Try {
    /// Granularity of the advice.
    pub(crate) steps: u32,
    /// Join the node whose price grows least rather than the first that fits.
    pub(crate) step_fit: bool,
}

/// Plans with a given strategy (the baselines use the same simulation with other strategies).
///
/// The cheapest expander tries several plans as the budget allows and keeps the one that leaves fewest
/// pods pending, then costs least (the first on a tie, so the same input gives the same plan): with
/// advice, one per advice granularity; without (one node shape), first fit and then the step fit
/// (`sim/place/step_fit.rs`), which pays off with many sizes of one shape.
pub(crate) fn plan_with(input: ScaleUpInput<'_>, strategy: Strategy) -> ScaleUpPlan {
    // A pod with a constraint the simulation cannot check is never placed: it is explained instead.
    let (pods, unmodelled): (Vec<&Pod>, Vec<&Pod>) = input.pending.iter().partition(|p| p.unmodelled.is_empty());
    let cheapest = matches!(strategy, Strategy::Planner(Expander::Cheapest));
    let mut tries = vec![Try { steps: ADVICE_STEPS[0], step_fit: false }];
    let mut best: Option<ScaleUpPlan> = None;
    let mut i = 0;
    while let Some(&t) = tries.get(i) {
        if i > 0 && pods.len().saturating_mul(i + 1) > TRIES_BUDGET {
            break;
        }
        let (plan, advised) = plan_once(input, &pods, strategy, t);
        let better = best
            .as_ref()
            .is_none_or(|b| (plan.unplaced.len(), plan.monthly_cost()) < (b.unplaced.len(), b.monthly_cost() - 1e-9));
        if better {
            best = Some(plan);
        }
        if i == 0 && cheapest {
            if advised {
                tries.extend(ADVICE_STEPS[1..].iter().map(|&steps| Try { steps, step_fit: false }));
            } else {
                tries.push(Try { steps: ADVICE_STEPS[0], step_fit: true });
            }
        }
        i += 1;
    }
    let mut plan = best.unwrap_or_default();
    plan.unplaced.extend(unmodelled.into_iter().map(|p| unmodelled_refusal(p, input.groups)));
    plan
}

/// Why a pod with an unmodelled constraint stays pending, as every group's refusal.
fn unmodelled_refusal(pod: &Pod, groups: &[NodeGroup]) -> Unplaced {
    let message = format!("its {} cannot be checked by the autoscaler", pod.unmodelled.join(", "));
    Unplaced {
        pod: pod.id(),
        refusals: groups
            .iter()
            .map(|g| GroupRefusal {
                group: g.name.clone(),
                code: "unmodelled_constraint".into(),
                message: message.clone(),
            })
            .collect(),
    }
}

/// One plan of `pods` the way `t` says, and whether the planner took advice.
pub(crate) fn plan_once(input: ScaleUpInput<'_>, pods: &[&Pod], strategy: Strategy, t: Try) -> (ScaleUpPlan, bool) {
    let mut placer = Placer::new(input.nodes, pods.to_vec(), input.groups, 0).with_advice_steps(t.steps);
    if t.step_fit {
        placer = placer.with_step_fit();
    }
    let (placement, placer) = placer.run(strategy);
    (to_plan(&placement, &placer, input, pods), placer.advised())
}

/// Turns a placement into a plan, explaining each pod left over once per class.
pub(crate) fn to_plan(
    placement: &Placement,
    placer: &Placer<'_>,
    input: ScaleUpInput<'_>,
    pods: &[&Pod],
) -> ScaleUpPlan {
    let sim = &placer.sim;
    let mut plan = ScaleUpPlan::default();
    for &Step { pod: i, node: n } in &placement.sequence {
        let step = PodOnNode::new(pods[i].id(), sim.nodes[n].name.clone());
        if n < placement.existing {
            plan.on_existing.push(step.clone());
        }
        plan.sequence.push(step);
    }
    for &Opened { node: n, group: g, offering: o } in &placement.new_nodes {
        let group = &input.groups[g];
        let offering = &group.offerings[o];
        plan.new_nodes.push(NewNode {
            name: sim.nodes[n].name.clone(),
            group: group.name.clone(),
            offering: offering.id.clone(),
            monthly_price: offering.monthly_price,
            pods: sim.nodes[n]
                .pods
                .iter()
                .filter_map(|r| match r {
                    PodRef::Placed(i) => Some(pods[*i].id()),
                    _ => None,
                })
                .collect(),
        });
    }
    let left: Vec<usize> = (0..pods.len()).filter(|&i| placement.node_of[i].is_none()).collect();
    if !left.is_empty() {
        // The cluster as planned plus one slot for a group's template, built once: cloning the cluster
        // per group and class cost more than the whole plan on large mixes.
        let mut view = sim.to_nodes(input.nodes, pods);
        view.push(Node::default());
        let mut by_class: BTreeMap<usize, Vec<GroupRefusal>> = BTreeMap::new();
        for i in left {
            let refusals = by_class
                .entry(sim.placed_class[i])
                .or_insert_with(|| explain(pods[i], &mut view, input.groups, &placer.usage).refusals);
            plan.unplaced.push(Unplaced { pod: pods[i].id(), refusals: refusals.clone() });
        }
        plan.unplaced.sort_by(|a, b| a.pod.cmp(&b.pod));
    }
    plan
}

/// Why no group can take `pod`, one reason per group. `view` is the cluster plus a last slot that takes
/// each group's template in turn.
fn explain(pod: &Pod, view: &mut [Node], groups: &[NodeGroup], usage: &[Usage]) -> Unplaced {
    let last = view.len() - 1;
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
            view[last] = g.template(largest, &format!("{}-template", g.name));
            match feasible(pod, &view[last], view) {
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
                Err(other) => refuse(other.code(), format!("a new {} node does not fit: {other}", g.name)),
                Ok(()) => match usable.iter().find_map(|o| g.limit_exceeded(&usage[gi], o)) {
                    Some(limit) => refuse("limits", limit),
                    None => refuse("no_option", format!("no offering of {} can take it", g.name)),
                },
            }
        })
        .collect();
    Unplaced { pod: pod.id(), refusals }
}
