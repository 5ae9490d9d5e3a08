//! A NodeGroup's status from its VPSieNodes and Nodes, written by server-side apply.

use std::collections::{HashMap, HashSet};

use autoscaler_api::nodegroup::{ConditionType, NodeSummary, OfferingBackoff};
use autoscaler_api::{NodeGroup, NodeGroupStatus, VPSieNode, VPSieNodePhase};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, ResourceExt};

use crate::decisions::GroupNote;
use crate::error::Result;
use crate::lifecycle::status::set_condition;

/// What the status is computed from.
#[derive(Debug)]
pub struct Observed<'a> {
    /// The group.
    pub group: &'a NodeGroup,
    /// The status this controller wrote last (fresher than the cache).
    pub previous: &'a NodeGroupStatus,
    /// The group's VPSieNodes, live ones and those going.
    pub members: &'a [VPSieNode],
    /// Names of the Nodes that are Ready.
    pub ready_nodes: &'a HashSet<String>,
    /// Monthly price by offering identifier.
    pub prices: &'a HashMap<String, f64>,
    /// New backoff entries from failures seen this pass.
    pub new_backoff: &'a [OfferingBackoff],
    /// Nodes were created this pass.
    pub scaled_up: bool,
    /// Nodes were deleted this pass.
    pub scaled_down: bool,
    /// Why the group cannot be reconciled, if it cannot.
    pub problem: Option<&'a str>,
    /// Why broken nodes are not repaired, if they are not.
    pub repair_blocked: Option<&'a str>,
    /// What the scaling loops noted about the group.
    pub note: &'a GroupNote,
    /// Now.
    pub now: jiff::Timestamp,
}

/// The group's new status.
pub fn compute(o: &Observed<'_>) -> NodeGroupStatus {
    let t = Time(o.now);
    let spec = &o.group.spec;
    let mut s = o.previous.clone();
    let live: Vec<&VPSieNode> = o.members.iter().filter(|v| crate::membership::is_live(v)).collect();
    let current = i32::try_from(live.len()).unwrap_or(i32::MAX);
    s.current_nodes = current;
    s.desired_nodes = current.clamp(spec.min_nodes, spec.max_nodes.max(spec.min_nodes));
    s.ready_nodes = i32::try_from(
        live.iter()
            .filter(|v| v.status.as_ref().is_some_and(|st| st.phase == VPSieNodePhase::Ready))
            .filter(|v| {
                v.status.as_ref().and_then(|st| st.node_name.as_ref()).is_some_and(|n| o.ready_nodes.contains(n))
            })
            .count(),
    )
    .unwrap_or(i32::MAX);
    let mut nodes: Vec<NodeSummary> = o
        .members
        .iter()
        .map(|v| {
            let st = v.status.clone().unwrap_or_default();
            NodeSummary {
                name: v.name_any(),
                vps_id: st.vps_id,
                offering_id: v.spec.offering_id.clone(),
                phase: st.phase,
                ip: st.ip_address,
            }
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    s.nodes = nodes;
    let cost: f64 = live.iter().filter_map(|v| o.prices.get(&v.spec.offering_id)).sum();
    s.monthly_cost = Some((cost * 100.0).round() / 100.0 + 0.0);
    let mut backoff: Vec<OfferingBackoff> = s.offering_backoff.iter().filter(|b| b.until.0 > o.now).cloned().collect();
    for b in o.new_backoff {
        backoff.retain(|have| have.offering_id != b.offering_id);
        backoff.push(b.clone());
    }
    s.offering_backoff = backoff;
    s.observed_generation = o.group.metadata.generation;
    if o.scaled_up {
        s.last_scale_up_time = Some(t.clone());
    }
    if o.scaled_down {
        s.last_scale_down_time = Some(t.clone());
    }
    // The loops' notes, where newer than what the status holds.
    let newer = |have: &Option<Time>, noted: Option<jiff::Timestamp>| match (have, noted) {
        (Some(h), Some(n)) if h.0 >= n => None,
        (_, n) => n.map(Time),
    };
    if let Some(up) = newer(&s.last_scale_up_time, o.note.scaled_up) {
        s.last_scale_up_time = Some(up);
    }
    if let Some(down) = newer(&s.last_scale_down_time, o.note.scaled_down) {
        s.last_scale_down_time = Some(down);
    }
    if let Some(d) = &o.note.last_decision
        && s.last_decision.as_ref().is_none_or(|have| have.time.0 <= d.time.0)
    {
        s.last_decision = Some(d.clone());
    }
    if let Some(saving) = o.note.savings {
        s.estimated_monthly_savings = Some((saving * 100.0).round() / 100.0);
    }
    let scaling = o.scaled_up || o.scaled_down;

    let c = &mut s.conditions;
    let paused = o.note.paused.as_ref().filter(|p| p.until > o.now);
    match (paused, o.problem) {
        (Some(p), _) => set_condition(
            c,
            ConditionType::ScaleUpBlocked.as_str(),
            true,
            crate::scale_up::RUNAWAY_REASON,
            &format!("{} (until {})", p.reason, p.until),
            &t,
        ),
        (None, Some(p)) => set_condition(c, ConditionType::ScaleUpBlocked.as_str(), true, "ReconcileFailed", p, &t),
        (None, None) => set_condition(c, ConditionType::ScaleUpBlocked.as_str(), false, "ScaleUpAllowed", "", &t),
    }
    match o.problem {
        Some(p) => set_condition(c, ConditionType::Error.as_str(), true, "ReconcileFailed", p, &t),
        None => set_condition(c, ConditionType::Error.as_str(), false, "Reconciled", "", &t),
    }
    let all_ready = s.ready_nodes == current && current >= spec.min_nodes;
    let ready_msg = format!("{} of {} nodes Ready (minNodes {})", s.ready_nodes, current, spec.min_nodes);
    set_condition(
        c,
        ConditionType::Ready.as_str(),
        all_ready && o.problem.is_none(),
        if all_ready { "NodesReady" } else { "NodesNotReady" },
        &ready_msg,
        &t,
    );
    set_condition(
        c,
        ConditionType::Scaling.as_str(),
        scaling || s.ready_nodes != current,
        if scaling { "Scaling" } else { "Stable" },
        "",
        &t,
    );
    set_condition(
        c,
        ConditionType::AtMinCapacity.as_str(),
        current <= spec.min_nodes,
        "MinNodes",
        &format!("minNodes {}", spec.min_nodes),
        &t,
    );
    match o.repair_blocked {
        Some(why) => set_condition(c, ConditionType::RepairBlocked.as_str(), true, "TooManyBroken", why, &t),
        None => set_condition(c, ConditionType::RepairBlocked.as_str(), false, "RepairAllowed", "", &t),
    }
    set_condition(
        c,
        ConditionType::AtMaxCapacity.as_str(),
        current >= spec.max_nodes,
        "MaxNodes",
        &format!("maxNodes {}", spec.max_nodes),
        &t,
    );
    s
}

/// Writes the whole status by server-side apply (this controller is its only writer).
pub async fn write(api: &Api<NodeGroup>, group: &NodeGroup, status: &NodeGroupStatus) -> Result<()> {
    crate::lifecycle::status::apply_status(api, group, status).await
}
