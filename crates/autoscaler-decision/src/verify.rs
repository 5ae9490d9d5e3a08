//! Replays a plan through the reference predicates: the check behind the property tests, the benchmark
//! and anyone who wants to trust a plan they did not compute.

use std::collections::{BTreeMap, BTreeSet};

use crate::groups::NodeGroup;
use crate::model::{Node, Pod};
use crate::predicates::feasible;
use crate::scale_up::{PodOnNode, ScaleUpPlan};

/// Checks a scale-up plan against its input.
///
/// Replays [`ScaleUpPlan::sequence`] pod by pod through [`feasible`] (each new node appears, as its
/// group's template with its final offering, when its first pod is placed), then checks that no node is
/// over-committed, that every pending pod is placed or explained exactly once, and that no group passes
/// its `max_nodes` or limits. Returns the first violation as a sentence.
pub fn scale_up_plan(plan: &ScaleUpPlan, nodes: &[Node], pending: &[Pod], groups: &[NodeGroup]) -> Result<(), String> {
    let by_id: BTreeMap<String, &Pod> = pending.iter().map(|p| (p.id(), p)).collect();
    let mut cluster: Vec<Node> = nodes.to_vec();
    let mut index: BTreeMap<String, usize> = cluster.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
    let mut new_nodes = BTreeMap::new();
    for n in &plan.new_nodes {
        let g = groups.iter().find(|g| g.name == n.group).ok_or(format!("{}: unknown group {}", n.name, n.group))?;
        let o = g.offerings.iter().find(|o| o.id == n.offering).ok_or(format!("{}: unknown offering", n.name))?;
        if g.backoff.contains(&o.id) {
            return Err(format!("{} uses backed-off offering {}", n.name, o.id));
        }
        new_nodes.insert(n.name.clone(), g.template(o, &n.name));
    }
    let mut seen = BTreeSet::new();
    for PodOnNode { pod: pod_id, node: node_name } in &plan.sequence {
        let pod = by_id.get(pod_id).ok_or(format!("{pod_id} is not pending"))?;
        if !seen.insert(pod_id.clone()) {
            return Err(format!("{pod_id} is placed twice"));
        }
        let i = match index.get(node_name) {
            Some(&i) => i,
            None => {
                let node = new_nodes.remove(node_name).ok_or(format!("{pod_id} goes to unknown node {node_name}"))?;
                cluster.push(node);
                index.insert(node_name.clone(), cluster.len() - 1);
                cluster.len() - 1
            }
        };
        feasible(pod, &cluster[i], &cluster).map_err(|why| format!("{pod_id} on {node_name}: {why}"))?;
        cluster[i].pods.push((*pod).clone());
    }
    if let Some(name) = new_nodes.keys().next() {
        return Err(format!("new node {name} carries no pod"));
    }
    for n in &cluster {
        if !n.requested().fits_in(&n.allocatable) {
            return Err(format!("{} is over-committed", n.name));
        }
    }
    for u in &plan.unplaced {
        if !seen.insert(u.pod.clone()) {
            return Err(format!("{} is both placed and unplaced", u.pod));
        }
    }
    if seen.len() != pending.len() {
        return Err(format!("{} of {} pending pods are accounted for", seen.len(), pending.len()));
    }
    for g in groups {
        let before = g.usage(nodes);
        let added: Vec<_> = plan.new_nodes.iter().filter(|n| n.group == g.name).collect();
        if added.is_empty() {
            continue;
        }
        let mut after = before.clone();
        for n in &added {
            let o = g.offerings.iter().find(|o| o.id == n.offering).ok_or("unknown offering")?;
            after.nodes += 1;
            after.monthly_cost += o.monthly_price;
            after.cpu_milli += o.allocatable.cpu_milli;
            after.memory += o.allocatable.memory;
        }
        if after.nodes > g.max_nodes {
            return Err(format!("{} grows to {} nodes past maxNodes {}", g.name, after.nodes, g.max_nodes));
        }
        let l = &g.limits;
        let over = l.max_monthly_cost.is_some_and(|m| after.monthly_cost > m + 1e-6)
            || l.max_cpu_milli.is_some_and(|m| after.cpu_milli > m)
            || l.max_memory.is_some_and(|m| after.memory > m);
        if over {
            return Err(format!("{} passes a limit", g.name));
        }
    }
    Ok(())
}

/// Checks a scale-down plan against its input: removals happen in order, each removed node's workload
/// pods are replayed through [`feasible`] onto their targets (never a removed node) in the order of its
/// moves (the drained node stays, cordoned, as it does while the drain runs), no removed node carries a pod
/// the eviction rules keep (do-not-disrupt, safe-to-evict=false and the rest of [`crate::eviction`]), PDB
/// budgets, group minimums and disruption budgets hold. Returns the first violation as a sentence.
pub fn scale_down_plan(
    plan: &crate::scale_down::ScaleDownPlan,
    input: crate::ScaleDownInput<'_>,
) -> Result<(), String> {
    let mut cluster: Vec<Node> = input.nodes.to_vec();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    let mut budget: Vec<i32> = input.pdbs.iter().map(|b| b.disruptions_allowed).collect();
    for r in &plan.remove {
        let i = cluster.iter().position(|n| n.name == r.node).ok_or(format!("unknown node {}", r.node))?;
        gone.insert(r.node.clone());
        let group = input.groups.iter().find(|g| Some(&g.name) == cluster[i].group.as_ref()).ok_or("unmanaged node")?;
        let members = input.nodes.iter().filter(|n| n.group == cluster[i].group).count();
        let removed = plan.remove.iter().filter(|x| x.group == group.name).count();
        if members - removed < group.min_nodes.max(0) as usize || removed > group.scale_down.max_disruptions {
            return Err(format!("{} passes its minimum or disruption budget", group.name));
        }
        let (pods, stay): (Vec<Pod>, Vec<Pod>) = cluster[i].pods.drain(..).partition(|p| p.needs_eviction());
        cluster[i].pods = stay;
        for p in &pods {
            // The eviction rules: do-not-disrupt, safe-to-evict=false, no controller, local storage,
            // kube-system without a budget, a constraint the core cannot check.
            if let Some((code, why)) =
                crate::scale_down::pod_blocker(p, input.pdbs, group.scale_down.allow_local_storage)
            {
                return Err(format!("{} is removed but {why} ({code})", r.node));
            }
            for (k, b) in input.pdbs.iter().enumerate() {
                if b.covers(p) {
                    budget[k] -= 1;
                    if budget[k] < 0 {
                        return Err(format!("PDB {} is broken by {}", b.name, r.node));
                    }
                }
            }
            if !r.moves.iter().any(|m| m.pod == p.id()) {
                return Err(format!("{} not moved", p.id()));
            }
        }
        // The scheduler places the evicted pods one by one, in the plan's order: spread constraints
        // depend on it.
        for PodOnNode { pod: id, node: to } in &r.moves {
            let p = pods.iter().find(|p| p.id() == *id).ok_or(format!("{id} moves but does not run on {}", r.node))?;
            if gone.contains(to) {
                return Err(format!("{} moves to removed node {to}", p.id()));
            }
            let j = cluster.iter().position(|n| &n.name == to).ok_or(format!("unknown target {to}"))?;
            cluster[i].unschedulable = true;
            feasible(p, &cluster[j], &cluster).map_err(|why| format!("{} on {to}: {why}", p.id()))?;
            cluster[j].pods.push(p.clone());
        }
    }
    Ok(())
}
