//! Gauges computed from the caches every few seconds: per-NodeGroup sizes and cost, VPSieNodes by phase,
//! unschedulable pods. Every replica publishes them (they describe the cluster, not this replica's acts).

use std::collections::BTreeMap;
use std::time::Duration;

use autoscaler_api::VPSieNodePhase;
use kube::ResourceExt;
use tokio::task::JoinHandle;

use super::metrics::*;
use crate::catalog::Catalog;
use crate::cluster::Cluster;
use crate::health::Health;

/// Per-group figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupFigures {
    /// spec.minNodes.
    pub min: i32,
    /// spec.maxNodes.
    pub max: i32,
    /// status.desiredNodes.
    pub desired: i32,
    /// VPSieNodes of the group.
    pub current: usize,
    /// Ready Nodes labelled with the group.
    pub ready: usize,
    /// Monthly price of the group's VPSieNodes (their status price, else the catalog's).
    pub monthly_cost: f64,
}

/// Everything the state gauges show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// By NodeGroup name.
    pub groups: BTreeMap<String, GroupFigures>,
    /// VPSieNodes by phase name.
    pub phases: BTreeMap<&'static str, usize>,
    /// Unschedulable pods.
    pub unschedulable: usize,
}

fn phase_name(p: VPSieNodePhase) -> &'static str {
    match p {
        VPSieNodePhase::Pending => "Pending",
        VPSieNodePhase::Provisioning => "Provisioning",
        VPSieNodePhase::Provisioned => "Provisioned",
        VPSieNodePhase::Joining => "Joining",
        VPSieNodePhase::Ready => "Ready",
        VPSieNodePhase::Terminating => "Terminating",
        VPSieNodePhase::Deleting => "Deleting",
        VPSieNodePhase::Failed => "Failed",
    }
}

const PHASES: [VPSieNodePhase; 8] = [
    VPSieNodePhase::Pending,
    VPSieNodePhase::Provisioning,
    VPSieNodePhase::Provisioned,
    VPSieNodePhase::Joining,
    VPSieNodePhase::Ready,
    VPSieNodePhase::Terminating,
    VPSieNodePhase::Deleting,
    VPSieNodePhase::Failed,
];

/// Computes the figures from the caches.
pub fn figures(cluster: &Cluster, catalog: &Catalog) -> Figures {
    let mut f = Figures::default();
    for p in PHASES {
        f.phases.insert(phase_name(p), 0);
    }
    for entry in cluster.nodegroups.read().values() {
        let g = &entry.group;
        f.groups.insert(
            g.name_any(),
            GroupFigures {
                min: g.spec.min_nodes,
                max: g.spec.max_nodes,
                desired: g.status.as_ref().map_or(0, |s| s.desired_nodes),
                ..GroupFigures::default()
            },
        );
    }
    let prices: BTreeMap<String, f64> = catalog.offers().into_iter().map(|o| (o.identifier, o.monthly_price)).collect();
    for v in cluster.vpsienodes.read().values() {
        let phase = v.status.as_ref().map(|s| s.phase).unwrap_or_default();
        *f.phases.entry(phase_name(phase)).or_default() += 1;
        if let Some(g) = f.groups.get_mut(&v.spec.node_group_name) {
            g.current += 1;
            let price =
                v.status.as_ref().and_then(|s| s.monthly_price).or_else(|| prices.get(&v.spec.offering_id).copied());
            g.monthly_cost += price.unwrap_or(0.0);
        }
    }
    for n in cluster.nodes.read().values() {
        if let Some(g) = n.model.group.as_ref().and_then(|g| f.groups.get_mut(g))
            && n.model.ready
        {
            g.ready += 1;
        }
    }
    f.unschedulable =
        cluster.pods.read().values().filter(|p| p.unschedulable_since.is_some() && p.node_name.is_none()).count();
    f
}

/// Sets the gauges; groups that disappeared since `previous` are zeroed.
pub fn publish(f: &Figures, previous: &Figures) {
    for gone in previous.groups.keys().filter(|g| !f.groups.contains_key(*g)) {
        for name in [
            NODEGROUP_MIN,
            NODEGROUP_MAX,
            NODEGROUP_DESIRED,
            NODEGROUP_CURRENT,
            NODEGROUP_READY,
            NODEGROUP_MONTHLY_COST,
        ] {
            metrics::gauge!(name, "nodegroup" => gone.clone()).set(0.0);
        }
    }
    for (name, g) in &f.groups {
        let l = || [("nodegroup", name.clone())];
        metrics::gauge!(NODEGROUP_MIN, &l()).set(f64::from(g.min));
        metrics::gauge!(NODEGROUP_MAX, &l()).set(f64::from(g.max));
        metrics::gauge!(NODEGROUP_DESIRED, &l()).set(f64::from(g.desired));
        metrics::gauge!(NODEGROUP_CURRENT, &l()).set(g.current as f64);
        metrics::gauge!(NODEGROUP_READY, &l()).set(g.ready as f64);
        metrics::gauge!(NODEGROUP_MONTHLY_COST, &l()).set(g.monthly_cost);
    }
    for (phase, n) in &f.phases {
        metrics::gauge!(VPSIENODES, "phase" => *phase).set(*n as f64);
    }
    metrics::gauge!(UNSCHEDULABLE_PODS).set(f.unschedulable as f64);
}

/// Publishes the figures every `every`.
pub fn spawn(cluster: Cluster, catalog: Catalog, health: Health, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut previous = Figures::default();
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            health.beat("state-metrics", every * 6);
            if !cluster.synced() {
                continue;
            }
            let f = figures(&cluster, &catalog);
            publish(&f, &previous);
            previous = f;
        }
    })
}
