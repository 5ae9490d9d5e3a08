//! Scale-down: nodes whose requested CPU and memory are under their group's thresholds, removed only when
//! every pod on them can be re-placed on the remaining nodes by simulation, without breaking a
//! PodDisruptionBudget, a `do-not-disrupt` or `safe-to-evict=false` annotation, or a group's minimum and
//! disruption budget. Several nodes may go in one decision; each later one is simulated with the pods
//! the earlier ones moved.

use serde::Serialize;

use crate::eviction::{BlockReason, Eviction, EvictionPolicy, eviction};
use crate::groups::NodeGroup;
use crate::model::{Node, Pdb, Pod};
use crate::predicates::feasible;
use crate::scale_up::PodOnNode;
use crate::sim::place::{Placer, Strategy};

/// Everything a scale-down looks at.
#[derive(Debug, Clone, Copy)]
pub struct ScaleDownInput<'a> {
    /// Every node with its pods.
    pub nodes: &'a [Node],
    /// The groups (thresholds, minimum, budget).
    pub groups: &'a [NodeGroup],
    /// PodDisruptionBudgets with their current `disruptionsAllowed`.
    pub pdbs: &'a [Pdb],
}

/// A node the plan removes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removal {
    /// The node.
    pub node: String,
    /// Its group.
    pub group: String,
    /// Requested CPU and memory as fractions of allocatable (workload pods only).
    pub utilization: Utilization,
    /// What it costs per month (0 when its offering is unknown).
    pub monthly_saving: f64,
    /// Where each of its pods goes.
    pub moves: Vec<PodOnNode>,
}

/// A node the plan keeps, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kept {
    /// The node.
    pub node: String,
    /// A stable code: `not_managed`, `scale_down_disabled`, `not_ready`, `above_threshold`, `min_nodes`,
    /// `disruption_budget`, `do_not_disrupt`, `not_safe_to_evict`, `no_controller`, `local_storage`,
    /// `kube_system_without_pdb`, `unmodelled_constraint`, `pdb`, `no_room`.
    pub code: String,
    /// One sentence.
    pub message: String,
}

/// The outcome of a scale-down decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScaleDownPlan {
    /// Nodes to drain and delete, in order.
    pub remove: Vec<Removal>,
    /// Every other node, with its reason.
    pub kept: Vec<Kept>,
}

/// Requested CPU and memory of a node's workload pods, as fractions of its allocatable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Utilization {
    /// CPU requested / allocatable.
    pub cpu: f64,
    /// Memory requested / allocatable.
    pub memory: f64,
}

/// Requested CPU and memory of a node's workload pods as fractions of its allocatable.
pub fn utilization(node: &Node) -> Utilization {
    let (mut cpu, mut mem) = (0i64, 0i64);
    for p in node.pods.iter().filter(|p| p.needs_eviction()) {
        cpu += p.requests.cpu_milli;
        mem += p.requests.memory;
    }
    let frac = |u: i64, a: i64| if a > 0 { u as f64 / a as f64 } else { 1.0 };
    Utilization { cpu: frac(cpu, node.allocatable.cpu_milli), memory: frac(mem, node.allocatable.memory) }
}

/// Why evicting `pod` is not allowed by itself, if it is not: `(code, sentence)`. The rule is
/// [`crate::eviction::eviction`], the drain's too.
pub(crate) fn pod_blocker(pod: &Pod, pdbs: &[Pdb], allow_local_storage: bool) -> Option<(&'static str, String)> {
    if !pod.unmodelled.is_empty() && pod.needs_eviction() {
        // Where it could go cannot be simulated, so whether it would fit elsewhere cannot be known.
        let id = pod.id();
        return Some((
            "unmodelled_constraint",
            format!("pod {id} has a {} the autoscaler cannot check", pod.unmodelled.join(", ")),
        ));
    }
    let covered = pdbs.iter().any(|b| b.covers(pod));
    let policy = EvictionPolicy { allow_local_storage, ..EvictionPolicy::default() };
    let Eviction::Block(reason) = eviction(pod, covered, &policy) else { return None };
    let id = pod.id();
    let sentence = match reason {
        BlockReason::DoNotDisrupt => format!("pod {id} has the do-not-disrupt annotation"),
        BlockReason::SafeToEvictFalse => format!("pod {id} is annotated safe-to-evict=false"),
        BlockReason::NoController => format!("pod {id} has no controller, so nothing would recreate it"),
        BlockReason::LocalStorage => format!("pod {id} uses local storage (emptyDir or hostPath)"),
        BlockReason::SystemPodWithoutBudget => format!("kube-system pod {id} has no PodDisruptionBudget"),
    };
    Some((reason.as_str(), sentence))
}

/// Checks `pods` against the budgets still allowed (`left`, per PDB); takes their share on success.
pub(crate) fn take_pdb_share(pods: &[&Pod], pdbs: &[Pdb], left: &mut [i32]) -> Result<(), String> {
    let mut need = vec![0i32; pdbs.len()];
    for p in pods {
        for (i, b) in pdbs.iter().enumerate() {
            if b.covers(p) {
                need[i] += 1;
            }
        }
    }
    if let Some(i) = (0..pdbs.len()).find(|&i| need[i] > left[i]) {
        let b = &pdbs[i];
        return Err(format!(
            "blocked by PDB {} ({} disruptions allowed, {} of its pods run here)",
            b.name, left[i], need[i]
        ));
    }
    for (l, n) in left.iter_mut().zip(need) {
        *l -= n;
    }
    Ok(())
}

/// Re-places the workload pods of the nodes in `gone` on the other nodes of `cluster`, optionally with
/// new nodes of `groups`. The gone nodes stay in the simulation, cordoned and without their workload
/// pods, as they are while a drain runs. Returns the moves and the cluster after them, or the first pod
/// that fits nowhere.
pub(crate) fn replace_pods(
    cluster: &[Node],
    gone: &[usize],
    groups: &[NodeGroup],
    strategy: Strategy,
) -> Result<(crate::scale_up::ScaleUpPlan, Vec<Node>), Box<Pod>> {
    let mut drained: Vec<Node> = cluster.to_vec();
    let mut moving: Vec<Pod> = Vec::new();
    for &g in gone {
        let (leave, stay): (Vec<Pod>, Vec<Pod>) = drained[g].pods.drain(..).partition(|p| p.needs_eviction());
        drained[g].pods = stay;
        moving.extend(leave);
    }
    let refs: Vec<&Pod> = moving.iter().collect();
    let mut placer = Placer::new(&drained, refs.clone(), groups, 0);
    for (i, n) in drained.iter().enumerate() {
        if gone.contains(&i) || !n.ready {
            placer.sim.nodes[i].accepts = false;
        }
    }
    let (placement, placer) = placer.run(strategy);
    if let Some(i) = placement.node_of.iter().position(Option::is_none) {
        return Err(Box::new(moving[i].clone()));
    }
    let input = crate::ScaleUpInput { nodes: &drained, pending: &[], groups, expander: Default::default() };
    let plan = crate::scale_up::to_plan(&placement, &placer, input, &refs);
    let mut after = placer.sim.to_nodes(&drained, &refs);
    for (i, n) in after.iter_mut().enumerate().take(drained.len()) {
        n.unschedulable = drained[i].unschedulable;
    }
    Ok((plan, after))
}

/// The sentence for a pod that fits no remaining node: the refusal of the node with most free CPU.
pub(crate) fn no_room(pod: &Pod, cluster: &[Node], gone: &[usize]) -> String {
    let others: Vec<&Node> =
        cluster.iter().enumerate().filter(|(i, n)| !gone.contains(i) && n.ready).map(|(_, n)| n).collect();
    let roomiest = others.iter().max_by_key(|n| (n.free().cpu_milli, n.free().memory));
    match roomiest.map(|n| (n, feasible(pod, n, cluster))) {
        Some((n, Err(why))) => {
            format!("pod {} fits on no other node (on {}, the roomiest: it {why})", pod.id(), n.name)
        }
        _ => format!("pod {} fits on no other node", pod.id()),
    }
}

/// Whether `group`, with `removed` of its nodes already going, may lose one more: its minimum and its
/// disruption budget.
pub(crate) fn group_allows_one_more(
    group: &NodeGroup,
    nodes: &[Node],
    removed: usize,
) -> Result<(), (&'static str, String)> {
    let members = nodes.iter().filter(|x| x.group.as_ref() == Some(&group.name)).count();
    if members.saturating_sub(removed) <= group.min_nodes.max(0) as usize {
        return Err(("min_nodes", format!("{} is at minNodes {}", group.name, group.min_nodes)));
    }
    if removed >= group.scale_down.max_disruptions {
        let budget = group.scale_down.max_disruptions;
        return Err((
            "disruption_budget",
            format!("{}'s disruption budget allows {budget} node(s) at a time", group.name),
        ));
    }
    Ok(())
}

/// The monthly price of a node by its group's offering.
pub(crate) fn node_price(node: &Node, groups: &[NodeGroup]) -> f64 {
    let group = groups.iter().find(|g| Some(&g.name) == node.group.as_ref());
    group
        .and_then(|g| g.offerings.iter().find(|o| Some(&o.id) == node.offering.as_ref()))
        .map_or(0.0, |o| o.monthly_price)
}

/// Plans the scale-down.
pub fn plan_scale_down(input: ScaleDownInput<'_>) -> ScaleDownPlan {
    let mut plan = ScaleDownPlan::default();
    let mut cluster: Vec<Node> = input.nodes.to_vec();
    let mut gone: Vec<usize> = Vec::new();
    let mut pdb_left: Vec<i32> = input.pdbs.iter().map(|b| b.disruptions_allowed).collect();
    let mut removed_per_group = vec![0usize; input.groups.len()];
    let mut candidates = Vec::new();
    for (i, n) in input.nodes.iter().enumerate() {
        let keep = |code: &str, message: String| Kept { node: n.name.clone(), code: code.into(), message };
        let Some(g) = input.groups.iter().position(|g| Some(&g.name) == n.group.as_ref()) else {
            plan.kept.push(keep("not_managed", format!("{} belongs to no NodeGroup", n.name)));
            continue;
        };
        let group = &input.groups[g];
        let Utilization { cpu, memory: mem } = utilization(n);
        let sd = &group.scale_down;
        if !sd.enabled {
            plan.kept.push(keep("scale_down_disabled", format!("{} has scale-down disabled", group.name)));
        } else if !n.ready || n.unschedulable {
            plan.kept.push(keep("not_ready", format!("{} is not ready or is cordoned", n.name)));
        } else if cpu >= sd.cpu_threshold || mem >= sd.memory_threshold {
            plan.kept.push(keep(
                "above_threshold",
                format!(
                    "requests use {:.0}% CPU and {:.0}% memory; a candidate is under {:.0}% and {:.0}%",
                    cpu * 100.0,
                    mem * 100.0,
                    sd.cpu_threshold * 100.0,
                    sd.memory_threshold * 100.0
                ),
            ));
        } else {
            candidates.push((i, g, cpu, mem));
        }
    }
    // Emptiest first: they free the most for the least disruption.
    candidates.sort_by(|a, b| {
        (a.2.max(a.3)).total_cmp(&b.2.max(b.3)).then_with(|| input.nodes[a.0].name.cmp(&input.nodes[b.0].name))
    });
    for (i, g, cpu, mem) in candidates {
        let n = &input.nodes[i];
        let group = &input.groups[g];
        let keep = |code: &str, message: String| Kept { node: n.name.clone(), code: code.into(), message };
        // A pod that may not be evicted is the node's own reason and is reported before the group's
        // minimum or budget, which another node's removal may have used up.
        let moving: Vec<&Pod> = cluster[i].pods.iter().filter(|p| p.needs_eviction()).collect();
        if let Some((code, message)) =
            moving.iter().find_map(|p| pod_blocker(p, input.pdbs, group.scale_down.allow_local_storage))
        {
            plan.kept.push(keep(code, message));
            continue;
        }
        if let Err((code, message)) = group_allows_one_more(group, input.nodes, removed_per_group[g]) {
            plan.kept.push(keep(code, message));
            continue;
        }
        let mut left = pdb_left.clone();
        if let Err(message) = take_pdb_share(&moving, input.pdbs, &mut left) {
            plan.kept.push(keep("pdb", message));
            continue;
        }
        let mut trial = gone.clone();
        trial.push(i);
        let outcome = replace_pods(&cluster, &trial, &[], Strategy::NoNewNodes)
            .map(|(p, after)| (p.sequence, after))
            .map_err(|pod| no_room(&pod, &cluster, &trial));
        match outcome {
            Ok((moves, after)) => {
                plan.remove.push(Removal {
                    node: n.name.clone(),
                    group: group.name.clone(),
                    utilization: Utilization { cpu, memory: mem },
                    monthly_saving: node_price(n, input.groups),
                    moves,
                });
                cluster = after;
                gone = trial;
                pdb_left = left;
                removed_per_group[g] += 1;
            }
            Err(message) => plan.kept.push(keep("no_room", message)),
        }
    }
    plan.kept.sort_by(|a, b| a.node.cmp(&b.node));
    plan
}
