//! What the demo shows while it waits: pods, VPSieNodes by phase, Ready Nodes, monthly cost and the
//! operator's latest decision, read from the API server (admin client) a few times a second. On a terminal
//! the status line is redrawn in place; in a log a line is printed when something changed (at most one a
//! second). Decisions are always printed as lines of their own.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::bail;
use autoscaler_api::{NodeGroup, VPSieNode, constants::LABEL_NODEGROUP};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;

use crate::progress::{self, seconds};
use crate::stack::{OperatorProcess, Stack};

/// One look at the cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Observation {
    /// Workload pods not yet bound to a node.
    pub(crate) pending_pods: usize,
    /// Workload pods Running.
    pub(crate) running_pods: usize,
    /// The group's VPSieNodes by phase (`Ready`, `Provisioning`, `Deleting`, ...).
    pub(crate) phases: BTreeMap<String, usize>,
    /// The group's VPSieNodes, whatever their phase.
    pub(crate) vpsienodes: usize,
    /// The group's Nodes that are Ready.
    pub(crate) nodes_ready: usize,
    /// The group's Nodes, Ready or not.
    pub(crate) nodes: usize,
    /// The NodeGroup's `status.monthlyCost`.
    pub(crate) monthly_cost: Option<f64>,
    /// The NodeGroup's `status.lastDecision.summary`.
    pub(crate) decision: Option<String>,
}

impl Observation {
    /// The status line: everything but the decision.
    pub(crate) fn line(&self) -> String {
        let phases: Vec<String> = self.phases.iter().map(|(p, n)| format!("{n} {p}")).collect();
        let phases = if phases.is_empty() { "none".to_owned() } else { phases.join(", ") };
        let cost = self.monthly_cost.map_or_else(|| "-".to_owned(), |c| format!("${c:.2}/month"));
        format!(
            "pods {} pending, {} running | VPSieNodes {phases} | Nodes Ready {}/{} | {cost}",
            self.pending_pods, self.running_pods, self.nodes_ready, self.nodes
        )
    }
}

/// Reads observations of one NodeGroup and one workload namespace and shows them.
pub(crate) struct View {
    nodes: Api<Node>,
    pods: Api<Pod>,
    vpsienodes: Api<VPSieNode>,
    groups: Api<NodeGroup>,
    group: String,
    started: Instant,
    shown: String,
    shown_at: Option<Instant>,
    decision: Option<String>,
}

impl View {
    /// A view of `group` and the pods of `namespace`; times are shown from `started`.
    pub(crate) fn new(stack: &Stack, group: &str, namespace: &str, started: Instant) -> Self {
        View {
            nodes: Api::all(stack.admin.clone()),
            pods: Api::namespaced(stack.admin.clone(), namespace),
            vpsienodes: Api::all(stack.admin.clone()),
            groups: Api::all(stack.admin.clone()),
            group: group.to_owned(),
            started,
            shown: String::new(),
            shown_at: None,
            decision: None,
        }
    }

    /// Reads the cluster once.
    pub(crate) async fn observe(&self) -> anyhow::Result<Observation> {
        let mut o = Observation::default();
        for p in self.pods.list(&ListParams::default()).await? {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default();
            let bound = p.spec.as_ref().is_some_and(|s| s.node_name.is_some());
            if phase == "Running" {
                o.running_pods += 1;
            } else if !bound && p.metadata.deletion_timestamp.is_none() {
                o.pending_pods += 1;
            }
        }
        for v in self.vpsienodes.list(&ListParams::default()).await? {
            if v.spec.node_group_name != self.group {
                continue;
            }
            o.vpsienodes += 1;
            let phase = v.status.as_ref().map(|s| format!("{:?}", s.phase)).unwrap_or_else(|| "Pending".into());
            *o.phases.entry(phase).or_default() += 1;
        }
        let selector = ListParams::default().labels(&format!("{LABEL_NODEGROUP}={}", self.group));
        for n in self.nodes.list(&selector).await? {
            o.nodes += 1;
            if testenv::node_ready(&n) {
                o.nodes_ready += 1;
            }
        }
        if let Some(g) = self.groups.get_opt(&self.group).await? {
            let status = g.status.unwrap_or_default();
            o.monthly_cost = status.monthly_cost;
            o.decision = status.last_decision.map(|d| d.summary);
        }
        Ok(o)
    }

    /// Shows an observation: a new decision as its own line, the status line redrawn (terminal) or printed
    /// when it changed (log; at most once a second unless it is the `last` of a wait).
    pub(crate) fn show(&mut self, o: &Observation, last: bool) {
        let at = format!("{:>7}", seconds(self.started.elapsed()));
        if o.decision.is_some() && o.decision != self.decision {
            self.decision.clone_from(&o.decision);
            progress::clear_line();
            println!("  {at}  decision: {}", o.decision.as_deref().unwrap_or_default());
            self.shown.clear();
        }
        let line = o.line();
        if progress::interactive() {
            print!("\r\x1b[2K  {at}  {line}");
            let _ = std::io::stdout().flush();
            self.shown = line;
        } else if line != self.shown && (last || self.shown_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1))) {
            println!("  {at}  {line}");
            self.shown = line;
            self.shown_at = Some(Instant::now());
        }
    }

    /// Ends a redrawn status line so the next output starts on a line of its own (a log keeps the last
    /// line, so an unchanged state is not printed twice).
    pub(crate) fn commit(&mut self) {
        if progress::interactive() && !self.shown.is_empty() {
            println!();
            self.shown.clear();
        }
    }

    /// Observes and shows until `done` holds; fails after `within` (naming `what`) or when the operator
    /// exits.
    pub(crate) async fn until(
        &mut self,
        what: &str,
        within: Duration,
        operator: &mut OperatorProcess,
        done: impl Fn(&Observation) -> bool,
    ) -> anyhow::Result<Observation> {
        let begun = Instant::now();
        loop {
            operator.check_alive()?;
            // A transient API error (the apiserver busy) is shown, not fatal: the next look usually works.
            match self.observe().await {
                Ok(o) => {
                    let finished = done(&o);
                    self.show(&o, finished);
                    if finished {
                        self.commit();
                        return Ok(o);
                    }
                }
                Err(e) => {
                    progress::clear_line();
                    println!("  (reading the cluster: {e})");
                }
            }
            if begun.elapsed() > within {
                self.commit();
                bail!("{what}: not within {}; the operator's log: {}", seconds(within), operator.log.display());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_names_each_phase_and_the_cost() {
        let o = Observation {
            pending_pods: 14,
            running_pods: 6,
            phases: [("Provisioning".to_owned(), 3), ("Ready".to_owned(), 2)].into_iter().collect(),
            vpsienodes: 5,
            nodes_ready: 2,
            nodes: 2,
            monthly_cost: Some(58.0),
            decision: None,
        };
        assert_eq!(
            o.line(),
            "pods 14 pending, 6 running | VPSieNodes 3 Provisioning, 2 Ready | Nodes Ready 2/2 | $58.00/month"
        );
        assert!(Observation::default().line().contains("VPSieNodes none"));
    }
}
