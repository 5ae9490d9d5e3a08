//! What a scale-up should cost: a lower bound no plan can beat, and two baseline strategies shaped like
//! the anchors, run on the same simulation so plans compare side by side.

mod dual;
mod exact;
mod problem;
mod shares;

use crate::groups::NodeGroup;
use crate::model::{Node, Pod};
use crate::scale_up::{ScaleUpInput, ScaleUpPlan, plan_with, to_plan};
use crate::sim::place::{Placer, Strategy};

/// A lower bound on the monthly cost of new nodes carrying `pending` from no nodes at all: the
/// fractional (LP-relaxation) cost, in its dual form, the best of four families of dual solutions.
///
/// - **Shares**: for any weights `a + b + c = 1` on CPU, memory and pod slots, a node of offering `o`
///   carrying pods costs at least the sum over its pods of `price(o) · (a·cpu/cpu(o) + b·mem/mem(o) +
///   c/pods(o))`, so each pod costs at least its cheapest such share over the offerings that could take
///   it; the best weighting on a grid (refined) counts.
/// - **Prices per unit** (see `dual.rs`): a price per unit of CPU, memory, pod slots, each extended
///   resource and, for the largest one-per-node kinds, a per-node slot, scaled down per offering to fit
///   its price. This one knows that GPUs are scarce and that every one-per-node pod needs a node.
/// - **Shares per group** (see `shares.rs`): the first family with one weighting per group, so a
///   memory-rich family charges by CPU and a CPU-rich one by memory; exact for a single pod shape.
/// - **The program itself** (see `exact.rs`): column generation over node patterns, whose prices per
///   pod kind give a bound at every round and the LP optimum once no pattern improves the master. It
///   runs under a fixed budget of rounds: snapshots of up to about 10,000 pods reach the optimum (up to about a
///   second here); larger ones stop short (2-3 s at 20,000) and the best of the four counts.
///
/// Capacities are net of DaemonSet requests. Pods no group can take are left out (every plan leaves them
/// pending); topology spread and affinity are ignored, which only lowers the bound.
pub fn lower_bound(pending: &[Pod], groups: &[NodeGroup]) -> f64 {
    let problem = problem::Problem::build(pending, groups);
    let (uniform, start) = shares::best_uniform(&problem);
    uniform.max(dual::bound(&problem)).max(shares::bound(&problem, &start)).max(exact::bound(&problem))
}

/// The Karpenter-shaped baseline: pods largest first, each into the first new node it fits, a new node
/// in the group whose cheapest fitting offering is cheapest and allowed to grow to that group's largest
/// offering; each node finally becomes the cheapest offering that carries its pods.
pub fn baseline_cheapest_fit(input: ScaleUpInput<'_>) -> ScaleUpPlan {
    plan_with(input, Strategy::CheapestFit)
}

/// The Cluster-Autoscaler-shaped baseline: one (group, offering) at a time, as node groups with one
/// template each. Each round estimates for every option how many nodes the pods it can take need, picks
/// the least idle CPU and memory (ties: cheaper), bin-packs those pods onto nodes of exactly that option,
/// and repeats with what is left.
pub fn baseline_one_group_at_a_time(input: ScaleUpInput<'_>) -> ScaleUpPlan {
    let mut nodes: Vec<Node> = input.nodes.to_vec();
    let mut remaining: Vec<&Pod> = input.pending.iter().collect();
    let mut plan = ScaleUpPlan::default();
    let existing: Vec<&str> = input.nodes.iter().map(|n| n.name.as_str()).collect();
    loop {
        let mut placer = Placer::new(&nodes, remaining.clone(), input.groups, plan.new_nodes.len());
        let Some((g, o)) = placer.least_waste_option() else { break };
        let (placement, placer) = placer.run(Strategy::Fixed(g, o));
        let round = to_plan(&placement, &placer, ScaleUpInput { nodes: &nodes, ..input }, &remaining);
        let placed = round.sequence.len();
        for (pod, node) in &round.sequence {
            if existing.contains(&node.as_str()) {
                plan.on_existing.push((pod.clone(), node.clone()));
            } else if let Some(n) = plan.new_nodes.iter_mut().find(|n| &n.name == node) {
                n.pods.push(pod.clone());
            }
        }
        plan.sequence.extend(round.sequence.iter().cloned());
        plan.new_nodes.extend(round.new_nodes);
        let next_nodes = placer.sim.to_nodes(&nodes, &remaining);
        let placed_ids: std::collections::HashSet<&str> = round.sequence.iter().map(|(p, _)| p.as_str()).collect();
        let left: Vec<&Pod> = remaining.iter().copied().filter(|p| !placed_ids.contains(p.id().as_str())).collect();
        plan.unplaced = round.unplaced;
        nodes = next_nodes;
        remaining = left;
        if placed == 0 || remaining.is_empty() {
            break;
        }
    }
    if plan.unplaced.len() != remaining.len() {
        // No option at all: explain what is left against the cluster as it stands.
        let left: Vec<Pod> = remaining.iter().map(|p| (*p).clone()).collect();
        plan.unplaced =
            plan_with(ScaleUpInput { nodes: &nodes, pending: &left, ..input }, Strategy::NoNewNodes).unplaced;
    }
    plan
}
