//! The decision core's input, built from the caches in one pass: existing Nodes with the pods bound (or
//! nominated) to them, in-flight VPSieNodes as nodes of their group and offering, the pending pods, the
//! PodDisruptionBudgets, and each NodeGroup as a template with offering prices, backoff and DaemonSet
//! overhead. Pure: no I/O, the time is an argument, so tests feed it by hand.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use autoscaler_api::constants::{LABEL_DATACENTER, LABEL_NODEGROUP};
use autoscaler_api::nodegroup::{NodeTaint, TaintEffect as ApiEffect};
use autoscaler_api::{NodeGroup, VPSieNode, VPSieNodePhase};
use autoscaler_decision::groups::{Limits, NodeGroup as GroupModel, Offering, ScaleDown, Usage};
use autoscaler_decision::model::NamespaceLabels;
use autoscaler_decision::selectors::{Taint, TaintEffect};
use autoscaler_decision::{Node, Pdb, Pod, Resources};
use kube::ResourceExt;

use super::{Cluster, budget_schedule};
use crate::catalog::CatalogOffer;

/// Pod slots of a new node (the kubelet's default `--max-pods`).
pub const NODE_PODS: i64 = 110;

/// Taints a node of ours carries only while it starts; the snapshot treats them as gone on nodes still
/// within their registration timeout, so pods waiting for such a node do not trigger a second scale-up.
pub const STARTING_TAINTS: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.cloudprovider.kubernetes.io/uninitialized",
    autoscaler_api::constants::TAINT_INITIALIZING,
];

/// A NodeGroup left out of plans, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupProblem {
    /// NodeGroup name.
    pub group: String,
    /// Why it cannot grow.
    pub reason: String,
}

/// Everything a plan reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Existing nodes with their pods, then in-flight nodes (VPSieNodes without a Node yet).
    pub nodes: Vec<Node>,
    /// Names of the in-flight nodes among `nodes`.
    pub in_flight: Vec<String>,
    /// Pods the scheduler marked Unschedulable.
    pub pending: Vec<Pod>,
    /// PodDisruptionBudgets.
    pub pdbs: Vec<Pdb>,
    /// Group templates.
    pub groups: Vec<GroupModel>,
    /// Groups left out.
    pub problems: Vec<GroupProblem>,
}

fn effect(e: ApiEffect) -> TaintEffect {
    match e {
        ApiEffect::NoSchedule => TaintEffect::NoSchedule,
        ApiEffect::PreferNoSchedule => TaintEffect::PreferNoSchedule,
        ApiEffect::NoExecute => TaintEffect::NoExecute,
    }
}

/// A NodeGroup taint in the decision core's form.
pub fn taint(t: &NodeTaint) -> Taint {
    Taint { key: t.key.clone(), value: t.value.clone().unwrap_or_default(), effect: effect(t.effect) }
}

/// The offerings a group may use, in its datacenter; a second value names the ids it asked for that the
/// catalog lacks.
pub fn offerings(ng: &NodeGroup, catalog: &[CatalogOffer]) -> (Vec<Offering>, Vec<String>) {
    let spec = &ng.spec;
    let here = catalog.iter().filter(|o| o.datacenter == spec.datacenter_id);
    let chosen: Vec<&CatalogOffer>;
    let mut unknown = Vec::new();
    if let Some(ids) = &spec.offering_ids {
        let mut found = Vec::new();
        for id in ids {
            match here.clone().find(|o| o.identifier == *id || o.nickname == *id) {
                Some(o) => found.push(o),
                None => unknown.push(id.clone()),
            }
        }
        chosen = found;
    } else {
        let sel = spec.offering_selector.clone().unwrap_or_default();
        chosen = here
            .filter(|o| sel.categories.is_empty() || sel.categories.iter().any(|c| c.eq_ignore_ascii_case(&o.category)))
            .filter(|o| sel.min_cpu.is_none_or(|m| o.cpu >= i64::from(m)))
            .filter(|o| sel.max_cpu.is_none_or(|m| o.cpu <= i64::from(m)))
            .filter(|o| sel.min_memory_gib.is_none_or(|m| o.ram_mib >= i64::from(m) * 1024))
            .filter(|o| sel.max_memory_gib.is_none_or(|m| o.ram_mib <= i64::from(m) * 1024))
            .filter(|o| sel.max_monthly_price.is_none_or(|p| o.monthly_price <= p))
            .collect();
    }
    let models = chosen
        .into_iter()
        .map(|o| {
            let mut allocatable = Resources::cpu_mem(o.cpu * 1000, o.ram_mib << 20);
            allocatable.pods = NODE_PODS;
            allocatable.ephemeral_storage = o.disk_gib << 30;
            Offering { id: o.identifier.clone(), allocatable, monthly_price: o.monthly_price }
        })
        .collect();
    (models, unknown)
}

/// How many of `nodes` nodes the budgets let one decision disrupt at `now`: the most restrictive of the
/// active budgets (one with a schedule is active for its duration after each scheduled start); one when
/// no budget is active. A schedule or duration that cannot be read counts its budget as active (the safe
/// side) and is logged with its field.
pub fn max_disruptions(ng: &NodeGroup, nodes: usize, now: jiff::Timestamp) -> usize {
    let budgets = ng.spec.disruption.as_ref().map(|d| d.budgets.as_slice()).unwrap_or_default();
    budgets
        .iter()
        .enumerate()
        .filter(|(i, b)| {
            let (Some(schedule), Some(duration)) = (&b.schedule, &b.duration) else { return true };
            budget_schedule::active(schedule, duration, now).unwrap_or_else(|e| {
                tracing::warn!(nodegroup = %ng.name_any(), field = %format!("spec.disruption.budgets[{i}]"), error = %e,
                    "a disruption budget's schedule cannot be read; it counts as always active");
                true
            })
        })
        .map(|(_, b)| match b.nodes.strip_suffix('%') {
            // A percentage rounds down, as Karpenter's does.
            Some(pct) => pct.parse::<usize>().map_or(0, |p| nodes * p.min(100) / 100),
            None => b.nodes.parse::<usize>().unwrap_or(0),
        })
        .min()
        .unwrap_or(1)
}

/// The identifier of the group's `preferredInstanceType`, which names an offering by identifier or nickname
/// (as `offeringIDs` may); the name itself when the catalog does not have it in the group's datacenter.
pub fn preferred_offering(ng: &NodeGroup, catalog: &[CatalogOffer]) -> Option<String> {
    let spec = &ng.spec;
    let preferred = spec.preferred_instance_type.as_deref()?;
    let found = catalog
        .iter()
        .find(|o| o.datacenter == spec.datacenter_id && (o.identifier == preferred || o.nickname == preferred));
    Some(found.map_or_else(|| preferred.to_owned(), |o| o.identifier.clone()))
}

/// A NodeGroup as the decision core's template. `nodes` is how many nodes the group has now (for
/// percentage budgets).
pub fn group_model(
    ng: &NodeGroup,
    catalog: &[CatalogOffer],
    daemonsets: &[Pod],
    nodes: usize,
    now: jiff::Timestamp,
) -> Result<GroupModel, String> {
    let name = ng.name_any();
    let spec = &ng.spec;
    let (mut offers, unknown) = offerings(ng, catalog);
    // `preferredInstanceType` decides between offerings that fit equally well: the planner keeps the first
    // of equally good offerings, so the preferred one goes first (identifier or nickname, as offeringIDs).
    if let Some(id) = preferred_offering(ng, catalog) {
        offers.sort_by_key(|o| o.id != id);
    }
    if offers.is_empty() {
        return Err(if unknown.is_empty() {
            format!("no offering in datacenter {} matches spec.offeringSelector", spec.datacenter_id)
        } else {
            format!("none of spec.offeringIDs {unknown:?} is offered in datacenter {}", spec.datacenter_id)
        });
    }
    let mut labels: BTreeMap<String, String> = spec.labels.clone();
    labels.insert(LABEL_NODEGROUP.to_owned(), name.clone());
    labels.insert(LABEL_DATACENTER.to_owned(), spec.datacenter_id.clone());
    let backoff: BTreeSet<String> = ng
        .status
        .iter()
        .flat_map(|s| s.offering_backoff.iter())
        .filter(|b| b.until.0 > now)
        .map(|b| b.offering_id.clone())
        .collect();
    let limits = spec.limits.as_ref().map_or_else(Limits::default, |l| Limits {
        max_monthly_cost: l.max_monthly_cost,
        // The CRD counts vCPUs and GiB; the core counts millicores and bytes.
        max_cpu_milli: l.max_cpu.map(|c| c.saturating_mul(1000)),
        max_memory: l.max_memory_gib.map(|g| g.saturating_mul(1 << 30)),
    });
    let policy = &spec.scale_down_policy;
    let mut group = GroupModel {
        name,
        min_nodes: spec.min_nodes,
        max_nodes: spec.max_nodes,
        offerings: offers,
        labels,
        taints: spec.taints.iter().map(taint).collect(),
        zone: Some(spec.datacenter_id.clone()),
        priority: spec.priority,
        limits,
        backoff,
        daemonset_pods: Vec::new(),
        absent_members: Usage::default(),
        scale_down: ScaleDown {
            enabled: policy.enabled,
            cpu_threshold: f64::from(policy.cpu_threshold) / 100.0,
            memory_threshold: f64::from(policy.memory_threshold) / 100.0,
            max_disruptions: max_disruptions(ng, nodes, now),
            allow_local_storage: false,
        },
    };
    // DaemonSet pods a new node would run: those whose node selector, affinity and tolerations admit the
    // group's template (checked on the largest offering, so no resource shortfall hides one).
    if let Some(largest) = group.offerings.iter().max_by_key(|o| (o.allocatable.cpu_milli, o.allocatable.memory)) {
        let template = group.template(largest, "template");
        group.daemonset_pods = daemonsets
            .iter()
            .filter(|p| autoscaler_decision::feasible(p, &template, std::slice::from_ref(&template)).is_ok())
            .cloned()
            .collect();
    }
    Ok(group)
}

/// Builds the snapshot from the caches and the catalog at `now`.
pub fn build(cluster: &Cluster, catalog: &[CatalogOffer], now: jiff::Timestamp) -> Snapshot {
    let mut snap = Snapshot::default();
    let vpsienodes: HashMap<String, VPSieNode> =
        cluster.vpsienodes.read().values().map(|v| (v.name_any(), (**v).clone())).collect();
    let groups: HashMap<String, NodeGroup> =
        cluster.nodegroups.read().values().map(|e| (e.group.name_any(), e.group.clone())).collect();

    // Existing nodes, with starting nodes of ours seen as they will be once started.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut group_sizes: HashMap<String, usize> = HashMap::new();
    // Members that are no capacity but still count toward maxNodes and the limits, by group.
    let mut absent: HashMap<String, Usage> = HashMap::new();
    let price = |offering: Option<&str>| {
        offering.and_then(|id| catalog.iter().find(|o| o.identifier == id)).map_or(0.0, |o| o.monthly_price)
    };
    let mut registered: BTreeSet<String> = BTreeSet::new();
    for entry in cluster.nodes.read().values() {
        let mut node = entry.model.clone();
        registered.insert(node.name.clone());
        // A node whose removal began, or whose group is being deleted, is leaving (its drain keeps it
        // cordoned between attempts): never a destination, even before the drain's cordon shows.
        let group_leaving =
            node.group.as_ref().and_then(|g| groups.get(g)).is_some_and(|g| g.metadata.deletion_timestamp.is_some());
        if group_leaving || vpsienodes.get(&node.name).is_some_and(crate::membership::is_removing) {
            node.unschedulable = true;
        }
        if let Some(g) = node.group.clone()
            && vpsienodes.contains_key(&node.name)
        {
            *group_sizes.entry(g.clone()).or_default() += 1;
            let timeout = groups.get(&g).map_or(900, |ng| i64::from(ng.spec.registration_timeout_seconds));
            let young = now.as_second() - node.created_at <= timeout;
            if !node.ready && !young {
                // Unready past its registration timeout: no longer capacity, still a member.
                let cost = price(node.offering.as_deref());
                count_absent(
                    absent.entry(g.clone()).or_default(),
                    node.allocatable.cpu_milli,
                    node.allocatable.memory,
                    cost,
                );
                continue;
            }
            // A node still starting: unready, or Ready while the controller-manager or its agents have not
            // yet removed their taints (that takes a moment after Ready). Within its registration timeout
            // it is seen as it will be once started.
            if young {
                let startup: Vec<String> = groups
                    .get(&g)
                    .map(|ng| ng.spec.startup_taints.iter().map(|t| t.key.clone()).collect())
                    .unwrap_or_default();
                node.taints.retain(|t| !STARTING_TAINTS.contains(&t.key.as_str()) && !startup.contains(&t.key));
            }
        }
        index.insert(node.name.clone(), snap.nodes.len());
        snap.nodes.push(node);
    }

    // In-flight VPSieNodes: asked for, no Node yet, not failing or going away. Each counts in its group's
    // size for disruption budgets; it is capacity to wait for until the timeout of its phase (the lifecycle
    // then fails it).
    // One template per group, built at its first in-flight node (without DaemonSet pods: those are fitted
    // to each node's own offering below).
    let mut templates: HashMap<&str, Option<GroupModel>> = HashMap::new();
    for (name, v) in &vpsienodes {
        if registered.contains(name) || v.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(ng) = groups.get(&v.spec.node_group_name).filter(|g| g.metadata.deletion_timestamp.is_none()) else {
            continue;
        };
        let phase = v.status.as_ref().map(|s| s.phase).unwrap_or_default();
        if matches!(phase, VPSieNodePhase::Failed | VPSieNodePhase::Terminating | VPSieNodePhase::Deleting) {
            continue;
        }
        *group_sizes.entry(v.spec.node_group_name.clone()).or_default() += 1;
        if past_its_phase_timeout(v, ng, now) {
            // No capacity to wait for, still a member until the lifecycle fails it.
            let offer = catalog.iter().find(|o| o.identifier == v.spec.offering_id);
            count_absent(
                absent.entry(v.spec.node_group_name.clone()).or_default(),
                offer.map_or(0, |o| o.cpu.saturating_mul(1000)),
                offer.map_or(0, |o| o.ram_mib.saturating_mul(1 << 20)),
                offer.map_or(0.0, |o| o.monthly_price),
            );
            continue;
        }
        let model = templates
            .entry(v.spec.node_group_name.as_str())
            .or_insert_with(|| group_model(ng, catalog, &[], 0, now).ok());
        let Some(model) = model.as_ref() else { continue };
        let Some(offering) = model.offerings.iter().find(|o| o.id == v.spec.offering_id) else { continue };
        let node = model.template(offering, name);
        index.insert(name.clone(), snap.nodes.len());
        snap.in_flight.push(name.clone());
        snap.nodes.push(node);
    }

    // DaemonSet pods in-flight nodes will run, and every bound or nominated pod on its node.
    let daemonsets: Vec<Pod> = cluster.daemonsets.read().values().map(|d| d.pod.clone()).collect();
    for name in &snap.in_flight {
        if let Some(&i) = index.get(name) {
            let template = snap.nodes[i].clone();
            let fits = daemonsets
                .iter()
                .filter(|p| autoscaler_decision::feasible(p, &template, std::slice::from_ref(&template)).is_ok());
            snap.nodes[i].pods.extend(fits.cloned());
        }
    }
    for p in cluster.pods.read().values() {
        let target = p.node_name.as_ref().or(p.nominated_node.as_ref());
        match target.and_then(|n| index.get(&**n)) {
            Some(&i) => snap.nodes[i].pods.push(p.model()),
            None if p.node_name.is_none() && p.unschedulable_since.is_some() && !p.terminating => {
                snap.pending.push(p.model());
            }
            None => {}
        }
    }
    // A pod affinity term's namespaceSelector is read against the namespaces' labels as they are now.
    if snap.pending.iter().chain(snap.nodes.iter().flat_map(|n| &n.pods)).any(Pod::has_namespace_selector) {
        let labels: NamespaceLabels =
            cluster.namespaces.read().iter().map(|(name, labels)| (name.to_string(), (**labels).clone())).collect();
        for p in snap.pending.iter_mut().chain(snap.nodes.iter_mut().flat_map(|n| n.pods.iter_mut())) {
            p.resolve_namespace_selectors(&labels);
        }
    }
    snap.pdbs = cluster.pdbs.read().values().map(|p| (**p).clone()).collect();

    let mut names: Vec<&String> = groups.keys().collect();
    names.sort();
    for name in names {
        let ng = &groups[name];
        // A group being deleted is no plan's target: its nodes are all leaving.
        if ng.metadata.deletion_timestamp.is_some() {
            snap.problems.push(GroupProblem { group: name.clone(), reason: "the NodeGroup is being deleted".into() });
            continue;
        }
        match group_model(ng, catalog, &daemonsets, group_sizes.get(name).copied().unwrap_or(0), now) {
            Ok(mut g) => {
                g.absent_members = absent.remove(name).unwrap_or_default();
                snap.groups.push(g);
            }
            Err(reason) => snap.problems.push(GroupProblem { group: name.clone(), reason }),
        }
    }
    snap
}

/// Adds one member that is no capacity to its group's absent usage.
fn count_absent(absent: &mut Usage, cpu_milli: i64, memory: i64, monthly_cost: f64) {
    absent.nodes += 1;
    absent.cpu_milli += cpu_milli;
    absent.memory += memory;
    absent.monthly_cost += monthly_cost;
}

/// Whether an in-flight VPSieNode is past the timeout of its phase, aged by that phase's own time stamp
/// (not by the VPSieNode's creation): `Provisioning` from the create intent with the provisioning timeout,
/// later phases from the VM's activation with the registration timeout. A `Pending` node has sent nothing
/// yet (its create waits out a VPSie outage, say) and does not age: its pods wait for it instead of being
/// planned again after the outage.
fn past_its_phase_timeout(v: &VPSieNode, ng: &NodeGroup, now: jiff::Timestamp) -> bool {
    let status = v.status.as_ref();
    let older_than = |at: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>, seconds: i32| {
        at.is_some_and(|t| now.as_second() - t.0.as_second() > i64::from(seconds))
    };
    match status.map(|s| s.phase).unwrap_or_default() {
        VPSieNodePhase::Pending => false,
        VPSieNodePhase::Provisioning => {
            older_than(status.and_then(|s| s.created_at.as_ref()), ng.spec.provisioning_timeout_seconds)
        }
        _ => older_than(status.and_then(|s| s.provisioned_at.as_ref()), ng.spec.registration_timeout_seconds),
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
