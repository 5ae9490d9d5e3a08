//! Two baselines shaped like the anchors, run on the decision core's own simulation so plans compare side
//! by side: Karpenter-shaped (cheapest fit) and Cluster-Autoscaler-shaped (one template at a time).

use std::collections::HashSet;

use autoscaler_decision::simulation::{Strategy, least_waste_template_round, plan_with};
use autoscaler_decision::{Node, Pod, ScaleUpInput, ScaleUpPlan};

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
    let mut remaining: Vec<Pod> = input.pending.to_vec();
    let mut plan = ScaleUpPlan::default();
    let existing: Vec<&str> = input.nodes.iter().map(|n| n.name.as_str()).collect();
    loop {
        let round_input = ScaleUpInput { nodes: &nodes, pending: &remaining, ..input };
        let Some(round) = least_waste_template_round(round_input, plan.new_nodes.len()) else { break };
        let placed = round.plan.sequence.len();
        for step in &round.plan.sequence {
            if existing.contains(&step.node.as_str()) {
                plan.on_existing.push(step.clone());
            } else if let Some(n) = plan.new_nodes.iter_mut().find(|n| n.name == step.node) {
                n.pods.push(step.pod.clone());
            }
        }
        plan.sequence.extend(round.plan.sequence.iter().cloned());
        plan.new_nodes.extend(round.plan.new_nodes);
        let placed_ids: HashSet<&str> = round.plan.sequence.iter().map(|s| s.pod.as_str()).collect();
        let left: Vec<Pod> = remaining.iter().filter(|p| !placed_ids.contains(p.id().as_str())).cloned().collect();
        plan.unplaced = round.plan.unplaced;
        nodes = round.nodes_after;
        remaining = left;
        if placed == 0 || remaining.is_empty() {
            break;
        }
    }
    if plan.unplaced.len() != remaining.len() {
        // No option at all: explain what is left against the cluster as it stands.
        plan.unplaced =
            plan_with(ScaleUpInput { nodes: &nodes, pending: &remaining, ..input }, Strategy::NoNewNodes).unplaced;
    }
    plan
}
