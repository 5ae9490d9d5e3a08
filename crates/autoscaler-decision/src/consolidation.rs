//! Consolidation: remove one or more nodes whose pods fit on the remaining nodes plus at most one new,
//! cheaper node, when that saves at least `min_monthly_savings` a month.

use serde::Serialize;

use crate::groups::{Expander, NodeGroup};
use crate::model::{Node, Pdb, Pod};
use crate::scale_down::{Kept, group_allows_one_more, node_price, pod_blocker, replace_pods, take_pdb_share};
use crate::scale_up::{NewNode, PodOnNode};
use crate::sim::place::Strategy;

/// Everything a consolidation looks at.
#[derive(Debug, Clone, Copy)]
pub struct ConsolidationInput<'a> {
    /// Every node with its pods.
    pub nodes: &'a [Node],
    /// The groups (offerings, minimum, budget).
    pub groups: &'a [NodeGroup],
    /// PodDisruptionBudgets with their current `disruptionsAllowed`.
    pub pdbs: &'a [Pdb],
    /// Nothing is proposed below this monthly saving.
    pub min_monthly_savings: f64,
    /// Only nodes without workload pods may go (the `WhenEmpty` policy).
    pub only_empty: bool,
}

/// A consolidation to carry out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsolidationPlan {
    /// Nodes to drain and delete.
    pub remove: Vec<String>,
    /// The cheaper node to create first, if any.
    pub replacement: Option<NewNode>,
    /// Where each moved pod goes.
    pub moves: Vec<PodOnNode>,
    /// Monthly price of the removed nodes minus the replacement's.
    pub monthly_saving: f64,
}

/// The outcome: a plan, or why there is none, with the reasons nodes were passed over.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Consolidation {
    /// The plan, when one saves enough.
    pub plan: Option<ConsolidationPlan>,
    /// One sentence on the outcome.
    pub summary: String,
    /// Nodes that could not be part of it, with reasons.
    pub kept: Vec<Kept>,
}

/// Finds the consolidation with the largest monthly saving, greedily: candidate nodes from the most
/// expensive down, each added to the set when the set's pods still fit the remaining nodes plus at most
/// one new node and the saving grows.
pub fn consolidate(input: ConsolidationInput<'_>) -> Consolidation {
    let mut kept = Vec::new();
    let mut candidates: Vec<(usize, usize, f64)> = Vec::new();
    for (i, n) in input.nodes.iter().enumerate() {
        let keep = |code: &str, message: String| Kept { node: n.name.clone(), code: code.into(), message };
        let Some(g) = input.groups.iter().position(|g| Some(&g.name) == n.group.as_ref()) else { continue };
        let group = &input.groups[g];
        let workload: Vec<&Pod> = n.pods.iter().filter(|p| p.needs_eviction()).collect();
        if !n.ready || n.unschedulable {
            kept.push(keep("not_ready", format!("{} is not ready or is cordoned", n.name)));
        } else if input.only_empty && !workload.is_empty() {
            kept.push(keep(
                "not_empty",
                format!("{} runs {} workload pods (policy WhenEmpty)", n.name, workload.len()),
            ));
        } else if let Some((code, message)) =
            workload.iter().find_map(|p| pod_blocker(p, input.pdbs, group.scale_down.allow_local_storage))
        {
            kept.push(keep(code, message));
        } else {
            candidates.push((i, g, node_price(n, input.groups)));
        }
    }
    candidates.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| input.nodes[a.0].name.cmp(&input.nodes[b.0].name)));
    let mut chosen: Vec<usize> = Vec::new();
    let mut per_group = vec![0usize; input.groups.len()];
    let mut best: Option<ConsolidationPlan> = None;
    for (i, g, price) in candidates {
        let n = &input.nodes[i];
        let group = &input.groups[g];
        let keep = |code: &str, message: String| Kept { node: n.name.clone(), code: code.into(), message };
        if let Err((code, message)) = group_allows_one_more(group, input.nodes, per_group[g]) {
            kept.push(keep(code, message));
            continue;
        }
        let mut trial = chosen.clone();
        trial.push(i);
        let moving: Vec<&Pod> =
            trial.iter().flat_map(|&t| input.nodes[t].pods.iter()).filter(|p| p.needs_eviction()).collect();
        // The whole set is checked against the budgets each time.
        let mut left: Vec<i32> = input.pdbs.iter().map(|b| b.disruptions_allowed).collect();
        if let Err(message) = take_pdb_share(&moving, input.pdbs, &mut left) {
            kept.push(keep("pdb", message));
            continue;
        }
        let removed_price: f64 = trial.iter().map(|&t| node_price(&input.nodes[t], input.groups)).sum();
        let groups: &[NodeGroup] = if input.only_empty { &[] } else { input.groups };
        let strategy = if input.only_empty { Strategy::NoNewNodes } else { Strategy::Planner(Expander::Cheapest) };
        let outcome = replace_pods(input.nodes, &trial, groups, strategy);
        let plan = match outcome {
            Ok((p, _)) if p.new_nodes.len() <= 1 => p,
            Ok(_) => {
                kept.push(keep("no_room", format!("moving {}'s pods would need more than one new node", n.name)));
                continue;
            }
            Err(pod) => {
                kept.push(keep("no_room", format!("pod {} fits nowhere else, even on a new node", pod.id())));
                continue;
            }
        };
        let replacement = plan.new_nodes.first().cloned();
        let saving = removed_price - replacement.as_ref().map_or(0.0, |r| r.monthly_price);
        if best.as_ref().is_some_and(|b| saving <= b.monthly_saving + 1e-9) || saving <= 1e-9 {
            let message = format!("removing {} (${price:.2}/month) would not add to the saving", n.name);
            kept.push(keep("no_saving", message));
            continue;
        }
        chosen = trial;
        per_group[g] += 1;
        best = Some(ConsolidationPlan {
            remove: chosen.iter().map(|&t| input.nodes[t].name.clone()).collect(),
            replacement,
            moves: plan.sequence,
            monthly_saving: saving,
        });
    }
    let (plan, summary) = match best {
        Some(p) if p.monthly_saving + 1e-9 >= input.min_monthly_savings => {
            let summary = format!(
                "remove {} node(s){} to save ${:.2}/month",
                p.remove.len(),
                p.replacement.as_ref().map_or(String::new(), |r| format!(" and add one {}", r.offering)),
                p.monthly_saving
            );
            (Some(p), summary)
        }
        Some(p) => (
            None,
            format!(
                "the best consolidation saves ${:.2}/month, under minMonthlySavings ${:.2}",
                p.monthly_saving, input.min_monthly_savings
            ),
        ),
        None => (None, "no node can be removed or replaced by a cheaper one".to_owned()),
    };
    kept.sort_by(|a, b| a.node.cmp(&b.node));
    Consolidation { plan, summary, kept }
}
