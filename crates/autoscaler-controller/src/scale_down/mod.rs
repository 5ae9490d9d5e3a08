//! Scale-down: every `--scale-down-interval` (and soon after Nodes, VPSieNodes or NodeGroups change) the
//! decision core's scale-down plan, with every group's budget lifted, names the nodes that could go
//! together. Their clock and a `PreferNoSchedule` taint go on the Node ([`marks`]); once a node has been
//! unneeded for its group's stabilization window, outside the cooldown after a scale-up, and within the
//! disruption budget, minNodes and the cap on concurrent removals ([`unneeded`]), its VPSieNode is deleted:
//! the finalizer drains the node (PodDisruptionBudgets are honoured by the Eviction API) and deletes the
//! VM. Only the leader acts; `--dry-run` decides and reports without writing.

pub mod marks;
pub mod unneeded;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use autoscaler_api::{NodeGroup, VPSieNode};
use k8s_openapi::api::core::v1::Node as K8sNode;
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::audit::Action;
use crate::cluster::snapshot::{self, Snapshot};
use crate::context::Context;
use crate::decisions::correlation_id;
use crate::events::reference;
use crate::scale_up::headroom;
use crate::telemetry::metrics::{SAFETY_CHECK_FAILURES, SCALE_DOWN_BLOCKED, SCALING_DECISIONS};
use unneeded::{GroupLimits, Seen};

/// Passes are at least this far apart however often the caches change.
const MIN_GAP: Duration = Duration::from_secs(1);

/// Codes of the decision core's kept nodes that mean "would go, but something protects it". (A group at
/// minNodes is not news on every node; a due node held by minNodes is reported by [`unneeded::step`].)
const BLOCKING: &[&str] = &[
    "do_not_disrupt",
    "not_safe_to_evict",
    "no_controller",
    "local_storage",
    "kube_system_without_pdb",
    "unmodelled_constraint",
    "pdb",
    "no_room",
];

/// Starts the loop.
pub fn spawn(ctx: Context) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut memory = Memory::default();
        loop {
            let cluster = &ctx.cluster;
            let (nodes, vns, groups) =
                (cluster.nodes.notified(), cluster.vpsienodes.notified(), cluster.nodegroups.notified());
            tokio::pin!(nodes, vns, groups);
            nodes.as_mut().enable();
            vns.as_mut().enable();
            groups.as_mut().enable();
            if ctx.leadership.is_leader() && !ctx.shutdown.is_stopping() {
                let id = correlation_id();
                pass(&ctx, &mut memory, &id).instrument(tracing::info_span!("scale_down", decision = %id)).await;
            }
            tokio::time::sleep(MIN_GAP).await;
            tokio::select! {
                () = &mut nodes => {}
                () = &mut vns => {}
                () = &mut groups => {}
                () = tokio::time::sleep(ctx.config.scale_down_interval.saturating_sub(MIN_GAP)) => {}
            }
        }
    })
}

/// What the loop remembers between passes.
#[derive(Debug, Default)]
struct Memory {
    /// Consolidation in progress.
    consolidator: crate::consolidation::Consolidator,
    /// Nodes whose removal failed, and when they may be tried again.
    retry_at: HashMap<String, jiff::Timestamp>,
    /// What each node was last told (`ScaleDownBlocked` only when it changes).
    told: HashMap<String, String>,
    /// With `--dry-run` the clock is not written to the Nodes: it is kept here instead, so a dry run
    /// still comes to "would remove".
    dry_since: HashMap<String, jiff::Timestamp>,
    /// Nodes a dry run already reported it would remove (reported once, not on every pass).
    dry_reported: BTreeSet<String>,
}

async fn pass(ctx: &Context, memory: &mut Memory, id: &str) {
    let Some(_work) = ctx.shutdown.start_work() else { return };
    let catalog = ctx.catalog.offers();
    if catalog.is_empty() {
        return;
    }
    let now = jiff::Timestamp::now();
    let snap = snapshot::build(&ctx.cluster, &catalog, now);
    let groups: BTreeMap<String, NodeGroup> =
        ctx.cluster.nodegroups.read().values().map(|e| (e.group.name_any(), e.group.clone())).collect();
    let vpsienodes: HashMap<String, VPSieNode> =
        ctx.cluster.vpsienodes.read().values().map(|v| (v.name_any(), (**v).clone())).collect();
    let disabled: BTreeSet<String> =
        ctx.cluster.nodes.read().values().filter(|n| n.scale_down_disabled).map(|n| n.model.name.clone()).collect();
    let mut since: HashMap<String, jiff::Timestamp> =
        ctx.cluster.nodes.read().values().filter_map(|n| n.unneeded_since.map(|t| (n.model.name.clone(), t))).collect();
    if ctx.config.dry_run {
        since.extend(memory.dry_since.iter().map(|(n, t)| (n.clone(), *t)));
    }

    // Registered nodes only; every group's budget lifted (applied per removal below), so the plan names
    // every node that could go with the others.
    let nodes: Vec<autoscaler_decision::Node> =
        snap.nodes.iter().filter(|n| !snap.in_flight.contains(&n.name)).cloned().collect();
    let mut relaxed = snap.groups.clone();
    for g in &mut relaxed {
        g.scale_down.max_disruptions = usize::MAX;
    }
    let input = Snapshot { nodes: nodes.clone(), groups: relaxed, pdbs: snap.pdbs.clone(), ..Snapshot::default() };
    let plan = match crate::planning::scale_down(Arc::new(input)).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "scale-down plan failed");
            return;
        }
    };

    // Nodes the loop may remove: ours (a live VPSieNode of that name, not a consolidation's replacement
    // still waiting for the nodes it replaces), not annotated scale-down-disabled, and not the node a
    // headroom group would add again.
    let ours = |name: &str| {
        vpsienodes.get(name).is_some_and(|v| {
            v.metadata.deletion_timestamp.is_none() && !crate::consolidation::is_pending_replacement(v, &vpsienodes)
        })
    };
    let mut kept_by_us: Vec<(String, String, &'static str, String)> = Vec::new();
    let mut unneeded_nodes: Vec<(String, String)> = Vec::new();
    for r in &plan.remove {
        if !ours(&r.node) {
            continue;
        }
        if disabled.contains(&r.node) {
            continue;
        }
        if let Some(g) = groups.get(&r.group) {
            let p = &g.spec.scale_up_policy;
            let t = headroom::Thresholds::from_percent(p.cpu_threshold, p.memory_threshold);
            if p.enabled
                && let Some(why) = headroom::needed_after_removing(&r.group, &r.node, t, &nodes)
            {
                kept_by_us.push((r.node.clone(), r.group.clone(), "headroom", why));
                continue;
            }
        }
        unneeded_nodes.push((r.node.clone(), r.group.clone()));
    }
    let unneeded_set: BTreeSet<&str> = unneeded_nodes.iter().map(|(n, _)| n.as_str()).collect();
    let mut seen: Vec<Seen> = unneeded_nodes
        .iter()
        .map(|(node, group)| Seen {
            node: node.clone(),
            group: group.clone(),
            unneeded: true,
            since: since.get(node).copied(),
            retry_at: memory.retry_at.get(node).copied(),
        })
        .collect();
    seen.extend(since.keys().filter(|n| !unneeded_set.contains(n.as_str()) && ours(n)).map(|n| Seen {
        node: n.clone(),
        group: String::new(),
        unneeded: false,
        since: since.get(n).copied(),
        retry_at: None,
    }));

    let (limits, removing_total) = group_limits(ctx, &groups, &vpsienodes, now);
    let slots = ctx.config.max_concurrent_removals.saturating_sub(removing_total);
    let step = unneeded::step(&seen, &limits, slots, now);
    memory.retry_at.retain(|_, at| *at > now);

    let dry = ctx.config.dry_run;
    let node_api: Api<K8sNode> = Api::all(ctx.client.clone());
    if dry {
        memory.dry_since.extend(step.start.iter().map(|n| (n.clone(), now)));
        for n in &step.clear {
            memory.dry_since.remove(n);
            memory.dry_reported.remove(n);
        }
    } else {
        for n in &step.start {
            if let Err(e) = marks::set(&node_api, n, Some(now)).await {
                tracing::warn!(node = %n, error = %e, "unneeded mark not set; next pass retries");
            }
        }
        for n in &step.clear {
            if let Err(e) = marks::set(&node_api, n, None).await {
                tracing::warn!(node = %n, error = %e, "unneeded mark not cleared; next pass retries");
            }
        }
    }
    for node in &step.remove {
        if dry && !memory.dry_reported.insert(node.clone()) {
            continue;
        }
        let Some(r) = plan.remove.iter().find(|r| &r.node == node) else { continue };
        remove(ctx, memory, r, since.get(node).copied(), id, now).await;
    }

    // Consolidation, while scale-down removes nothing: on our nodes (others take pods, never go).
    if step.remove.is_empty() {
        let candidates: Vec<autoscaler_decision::Node> = nodes
            .iter()
            .cloned()
            .map(|mut n| {
                let owned = vpsienodes.get(&n.name).is_some_and(|v| v.metadata.deletion_timestamp.is_none());
                if !owned || disabled.contains(&n.name) {
                    n.group = None;
                }
                n
            })
            .collect();
        let models: BTreeMap<String, autoscaler_decision::groups::NodeGroup> =
            snap.groups.iter().map(|g| (g.name.clone(), g.clone())).collect();
        let removing: BTreeMap<String, usize> = limits.iter().map(|(g, l)| (g.clone(), l.removing)).collect();
        let view = crate::consolidation::View {
            nodes: &candidates,
            models: &models,
            groups: &groups,
            vpsienodes: &vpsienodes,
            pdbs: &snap.pdbs,
            removing: &removing,
            id,
            now,
        };
        memory.consolidator.pass(ctx, &view).await;
    }

    // Blocked nodes: the core's protections on nodes under the thresholds, and our own waits.
    let mut blocked: Vec<(String, String, String, String)> = plan
        .kept
        .iter()
        .filter(|k| BLOCKING.contains(&k.code.as_str()) && ours(&k.node))
        .filter_map(|k| {
            let group = nodes.iter().find(|n| n.name == k.node).and_then(|n| n.group.clone())?;
            Some((k.node.clone(), group, k.code.clone(), k.message.clone()))
        })
        .collect();
    blocked.extend(kept_by_us.into_iter().map(|(n, g, c, m)| (n, g, c.to_owned(), m)));
    blocked
        .extend(step.waiting.iter().map(|w| (w.node.clone(), w.group.clone(), w.code.to_owned(), w.message.clone())));
    let blocked_nodes: BTreeSet<String> = blocked.iter().map(|b| b.0.clone()).collect();
    memory.told.retain(|n, _| blocked_nodes.contains(n));
    for (node, group, code, message) in blocked {
        if memory.told.get(&node) == Some(&message) {
            continue;
        }
        memory.told.insert(node.clone(), message.clone());
        metrics::counter!(SCALE_DOWN_BLOCKED, "nodegroup" => group.clone(), "reason" => code.clone()).increment(1);
        if matches!(code.as_str(), "pdb" | "do_not_disrupt" | "not_safe_to_evict") {
            metrics::counter!(SAFETY_CHECK_FAILURES, "check_type" => code.clone(), "nodegroup" => group.clone())
                .increment(1);
        }
        tracing::info!(node = %node, nodegroup = %group, reason = %code, "scale-down blocked: {message}");
        let note = format!("{message} (decision {id})");
        ctx.events.publish(&reference("v1", "Node", "", &node), false, "ScaleDownBlocked", "ScaleDown", &note).await;
    }
}

/// Each group's limits for [`unneeded::step`], and how many nodes are being removed in all.
fn group_limits(
    ctx: &Context,
    groups: &BTreeMap<String, NodeGroup>,
    vpsienodes: &HashMap<String, VPSieNode>,
    now: jiff::Timestamp,
) -> (BTreeMap<String, GroupLimits>, usize) {
    let mut out = BTreeMap::new();
    let mut removing_total = 0;
    for (name, g) in groups {
        let crate::membership::Counts { live, removing } =
            crate::membership::counts(vpsienodes.values().filter(|v| &v.spec.node_group_name == name));
        removing_total += removing;
        let spec = &g.spec;
        let last_up =
            [ctx.notes.get(name).scaled_up, g.status.as_ref().and_then(|s| s.last_scale_up_time.as_ref()).map(|t| t.0)]
                .into_iter()
                .flatten()
                .max();
        let cooldown = jiff::SignedDuration::from_secs(i64::from(spec.cooldown_seconds));
        out.insert(
            name.clone(),
            GroupLimits {
                window: jiff::SignedDuration::from_secs(i64::from(spec.scale_down_policy.stabilization_window_seconds)),
                cooldown_until: last_up.and_then(|t| t.checked_add(cooldown).ok()).filter(|u| *u > now),
                budget: snapshot::max_disruptions(g, live, now),
                removing,
                live,
                min: usize::try_from(spec.min_nodes).unwrap_or(0),
            },
        );
    }
    (out, removing_total)
}

/// Removes one node: its VPSieNode is deleted (the finalizer drains the node and deletes the VM).
async fn remove(
    ctx: &Context,
    memory: &mut Memory,
    r: &autoscaler_decision::scale_down::Removal,
    since: Option<jiff::Timestamp>,
    id: &str,
    now: jiff::Timestamp,
) {
    let unneeded_for = since.map_or(0, |s| now.duration_since(s).as_secs());
    let why = format!(
        "unneeded for {unneeded_for}s: requests use {:.0}% CPU and {:.0}% memory; its {} pod(s) fit elsewhere; saves ${:.2}/month",
        r.utilization.cpu * 100.0,
        r.utilization.memory * 100.0,
        r.moves.len(),
        r.monthly_saving
    );
    ctx.audit_decision(Action::ScaleDown, format!("VPSieNode/{}", r.node), &why, Some(id));
    if ctx.config.dry_run {
        tracing::info!(node = %r.node, nodegroup = %r.group, "dry run: would remove the node: {why}");
        ctx.notes.decided(&r.group, format!("would remove {} (dry run): {why}", r.node), id, now);
        return;
    }
    let api: Api<VPSieNode> = Api::all(ctx.client.clone());
    match api.delete(&r.node, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return,
        Err(e) => {
            tracing::warn!(node = %r.node, error = %e, "VPSieNode not deleted; retrying after the delay");
            let delay = jiff::SignedDuration::try_from(ctx.config.scale_down_retry_delay).unwrap_or_default();
            memory.retry_at.insert(r.node.clone(), now.checked_add(delay).unwrap_or(now));
            return;
        }
    }
    metrics::counter!(SCALING_DECISIONS, "decision" => "scale_down").increment(1);
    tracing::info!(node = %r.node, nodegroup = %r.group, "scale-down: removing the node: {why}");
    ctx.notes.decided(&r.group, format!("removing {}: {why}", r.node), id, now);
    ctx.notes.update(&r.group, |n| n.scaled_down = Some(now));
    let note = format!("removing node {}: {why} (decision {id})", r.node);
    ctx.events.publish(&reference("v1", "Node", "", &r.node), false, "ScaleDown", "ScaleDown", &note).await;
}
