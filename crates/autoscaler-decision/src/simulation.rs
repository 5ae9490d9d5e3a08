//! The simulation behind every plan, opened to tools that measure plans rather than run them (the
//! benchmark lab, `crates/decision-lab`): planning with another strategy, one round of a one-template
//! strategy, and the pending pods grouped into scheduling classes with the offerings each could open.
//! The operator itself only calls [`crate::plan`], [`crate::plan_scale_down`] and [`crate::consolidate`].

use crate::groups::NodeGroup;
use crate::model::{Node, Pod};
use crate::resources::Resources;
use crate::scale_up::{ScaleUpInput, ScaleUpPlan, to_plan};
use crate::sim::place::Placer;

pub use crate::sim::place::Strategy;

/// Plans with `strategy` on the same simulation as [`crate::plan`] (which is `Strategy::Planner` with the
/// input's expander).
pub fn plan_with(input: ScaleUpInput<'_>, strategy: Strategy) -> ScaleUpPlan {
    crate::scale_up::plan_with(input, strategy)
}

/// One configuration of the planner: the cheapest expander plans several and keeps the cheapest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannerTry {
    /// Granularity of the advice (steps of memory per CPU per octave).
    pub advice_steps: u32,
    /// Join the new node whose price grows least rather than the first that fits.
    pub step_fit: bool,
}

/// The granularities the cheapest expander tries, the default first.
pub const ADVICE_STEPS: [u32; 5] = crate::scale_up::ADVICE_STEPS;

/// A plan of one planner configuration, and whether it took the fractional optimum's advice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TryOutcome {
    /// The plan.
    pub plan: ScaleUpPlan,
    /// The planner took advice (the linear program was solved and had more than one node shape).
    pub advised: bool,
}

/// Plans with one configuration of the planner only (what [`crate::plan`] compares its tries by).
pub fn plan_try(input: ScaleUpInput<'_>, strategy: Strategy, t: PlannerTry) -> TryOutcome {
    let pods: Vec<&Pod> = input.pending.iter().collect();
    let (plan, advised) = crate::scale_up::plan_once(
        input,
        &pods,
        strategy,
        crate::scale_up::Try { steps: t.advice_steps, step_fit: t.step_fit },
    );
    TryOutcome { plan, advised }
}

/// One round of a one-template-at-a-time strategy, and the cluster after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Round {
    /// The round's plan (new node names continue after the `planned_before` it was given).
    pub plan: ScaleUpPlan,
    /// The input nodes and the round's new nodes, with the pods placed on them.
    pub nodes_after: Vec<Node>,
}

/// The (group, offering) a one-template-per-group autoscaler would scale next (for each, the pending
/// pods it can take and the nodes they need by requests; the least idle share wins, then the cheaper),
/// and those pods placed on nodes of exactly that template. `None` when no template can take a pod.
pub fn least_waste_template_round(input: ScaleUpInput<'_>, planned_before: usize) -> Option<Round> {
    let pods: Vec<&Pod> = input.pending.iter().collect();
    let mut placer = Placer::new(input.nodes, pods.clone(), input.groups, planned_before);
    let template = placer.least_waste_option()?;
    let (placement, placer) = placer.run(template);
    let plan = to_plan(&placement, &placer, input, &pods);
    let nodes_after = placer.sim.to_nodes(input.nodes, &pods);
    Some(Round { plan, nodes_after })
}

/// An offering a new node for a class could be.
#[derive(Debug, Clone, PartialEq)]
pub struct UsableOffering {
    /// Index of the group.
    pub group: usize,
    /// Index of the offering in the group.
    pub offering: usize,
    /// What a node of it has for pods: allocatable net of the group's DaemonSet pods (CPU, memory,
    /// ephemeral storage, pod slots; extended resources are the offering's).
    pub capacity: Resources,
}

/// Pods with identical scheduling requirements.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingClass {
    /// The effective request of each of its pods.
    pub requests: Resources,
    /// Every offering a new node for it could be (selectors, taints, backoff, size and extended
    /// resources allow it).
    pub offerings: Vec<UsableOffering>,
    /// Its own required hostname anti-affinity term (an id shared by the classes it selects), if it has
    /// one: such pods go one per node.
    pub one_per_node: Option<usize>,
}

/// The pending pods by class.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingClasses {
    /// The classes.
    pub classes: Vec<PendingClass>,
    /// The class of each pending pod, in input order.
    pub class_of: Vec<usize>,
}

/// Groups `pending` into scheduling classes, each with the offerings of `groups` a new node for it could
/// be (as if no node existed yet).
pub fn pending_classes(pending: &[Pod], groups: &[NodeGroup]) -> PendingClasses {
    let pods: Vec<&Pod> = pending.iter().collect();
    let mut placer = Placer::new(&[], pods, groups, 0);
    let mut index: Vec<Option<usize>> = vec![None; placer.sim.reg.classes.len()];
    let mut out = PendingClasses::default();
    for i in 0..pending.len() {
        let c = placer.sim.placed_class[i];
        let k = match index[c] {
            Some(k) => k,
            None => {
                let offerings = placer.options_for(c);
                let class = &placer.sim.reg.classes[c];
                out.classes.push(PendingClass {
                    requests: class.rep.requests.clone(),
                    offerings,
                    one_per_node: class.own_hostname_term(),
                });
                index[c] = Some(out.classes.len() - 1);
                out.classes.len() - 1
            }
        };
        out.class_of.push(k);
    }
    out
}
