//! A scale-up decision carried out: the planned VPSieNodes created in one step (their finalizer and the
//! node lifecycle do the rest), then what it says about itself: metrics, audit lines, each group's
//! `lastDecision`, and Events on the pods.

use std::collections::{BTreeMap, HashMap};

use autoscaler_api::constants::{ANNOTATION_CREATED_FOR, ANNOTATION_DECISION};
use autoscaler_api::{NodeGroup, VPSieNode};
use autoscaler_decision::ScaleUpPlan;
use futures::StreamExt as _;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use tokio::time::Instant;

use super::explain;
use crate::audit::Action;
use crate::context::Context;
use crate::decisions::Notes;
use crate::events::reference;
use crate::telemetry::metrics::{PENDING_TO_CREATE, SCALING_DECISIONS};

/// How a `TriggeredScaleUp` note starts.
const TRIGGERED: &str = "pod triggered scale-up";
/// VPSieNode creates in flight at once (the API server takes them in milliseconds each).
const PARALLEL_CREATES: usize = 8;

/// A node the decision adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNode {
    /// Its group.
    pub group: String,
    /// Its offering.
    pub offering: String,
    /// The pending pods it is for (`namespace/name`); none for a headroom node.
    pub pods: Vec<String>,
    /// Why it is added: `scale-up` or `headroom` (its `created-for` annotation).
    pub created_for: &'static str,
}

/// A VPSieNode the decision created (or, in `--dry-run`, would have).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// VPSieNode name (empty in dry-run).
    pub name: String,
    /// What it was for.
    pub node: NewNode,
}

/// One decision's context.
pub struct Apply<'a> {
    /// Clients and settings.
    pub ctx: &'a Context,
    /// Where group notes go.
    pub notes: &'a Notes,
    /// The NodeGroups by name.
    pub groups: &'a BTreeMap<String, NodeGroup>,
    /// The correlation id.
    pub id: &'a str,
    /// The decision's time.
    pub now: jiff::Timestamp,
}

impl Apply<'_> {
    /// Creates the VPSieNodes of `nodes`; returns those created. `first_seen` says when each pending pod
    /// was first seen (the latency histogram).
    pub async fn create(&self, nodes: &[NewNode], first_seen: &HashMap<String, Instant>) -> Vec<Created> {
        if nodes.is_empty() {
            metrics::counter!(SCALING_DECISIONS, "decision" => "none").increment(1);
            return Vec::new();
        }
        let dry = self.ctx.config.dry_run;
        // Each VPSieNode is built (its name chosen) and audited before it is created: the audit line is
        // the decision, so a crash right after a create still leaves the line that explains it.
        let mut planned: Vec<(NewNode, Option<VPSieNode>)> = Vec::new();
        for n in nodes {
            let Some(group) = self.groups.get(&n.group) else { continue };
            let what = if n.pods.is_empty() {
                "headroom ahead of demand".to_owned()
            } else {
                format!("{} pending pod(s)", n.pods.len())
            };
            let why = format!("add {} to {} for {what}", self.ctx.catalog.name_of(&n.offering), n.group);
            if dry {
                self.ctx.audit_decision(Action::ScaleUp, format!("NodeGroup/{}", n.group), &why, Some(self.id));
                tracing::info!(nodegroup = %n.group, offering = %n.offering, "dry run: scale-up would {why}");
                planned.push((n.clone(), None));
                continue;
            }
            let mut vn = match crate::nodegroup::new_member(self.ctx, group, &n.offering) {
                Ok(vn) => vn,
                Err(e) => {
                    tracing::error!(nodegroup = %n.group, error = %e, "VPSieNode not built");
                    continue;
                }
            };
            vn.annotations_mut().insert(ANNOTATION_DECISION.to_owned(), self.id.to_owned());
            vn.annotations_mut().insert(ANNOTATION_CREATED_FOR.to_owned(), n.created_for.to_owned());
            self.ctx.audit_decision(Action::ScaleUp, format!("VPSieNode/{}", vn.name_any()), &why, Some(self.id));
            tracing::info!(nodegroup = %n.group, vpsienode = %vn.name_any(), offering = %n.offering, pods = n.pods.len(), "scale-up: {why}");
            planned.push((n.clone(), Some(vn)));
        }
        let api: Api<VPSieNode> = Api::all(self.ctx.client.clone());
        let attempts: Vec<_> = planned
            .into_iter()
            .map(|(n, vn)| (n, vn, api.clone()))
            .map(|(n, vn, api)| async move {
                let Some(vn) = vn else { return Some(Created { name: String::new(), node: n }) };
                match api.create(&PostParams::default(), &vn).await {
                    Ok(done) => Some(Created { name: done.name_any(), node: n }),
                    Err(e) => {
                        tracing::warn!(vpsienode = %vn.name_any(), error = %e, "VPSieNode not created; the next decision retries");
                        None
                    }
                }
            })
            .collect();
        let created: Vec<Created> = futures::stream::iter(attempts)
            .buffer_unordered(PARALLEL_CREATES)
            .filter_map(|c| async { c })
            .collect()
            .await;
        for c in created.iter().filter(|c| !c.name.is_empty()) {
            for pod in &c.node.pods {
                if let Some(seen) = first_seen.get(pod) {
                    metrics::histogram!(PENDING_TO_CREATE).record(seen.elapsed().as_secs_f64());
                }
            }
        }
        if !created.is_empty() {
            metrics::counter!(SCALING_DECISIONS, "decision" => "scale_up").increment(1);
        }
        // One sentence per group: "added 3 x sc-4cpu-8gb for 11 pending pods".
        let mut per_group: BTreeMap<&str, (BTreeMap<&str, usize>, usize)> = BTreeMap::new();
        for c in &created {
            let e = per_group.entry(c.node.group.as_str()).or_default();
            *e.0.entry(c.node.offering.as_str()).or_default() += 1;
            e.1 += c.node.pods.len();
        }
        for (group, (offerings, pods)) in per_group {
            let added: Vec<String> =
                offerings.iter().map(|(o, n)| format!("{n} x {}", self.ctx.catalog.name_of(o))).collect();
            let verb = if dry { "would add (dry run)" } else { "added" };
            let summary = if pods == 0 {
                format!("{verb} {} as headroom", added.join(", "))
            } else {
                format!("{verb} {} for {pods} pending pod(s)", added.join(", "))
            };
            self.notes.decided(group, summary, self.id, self.now);
            if !dry {
                self.notes.update(group, |n| n.scaled_up = Some(self.now));
            }
        }
        created
    }

    /// Group notes for groups that could not place pods, and Events on the pods: `TriggeredScaleUp` for
    /// pods on a node created now, `NotTriggerScaleUp` for pods left pending; each pod is told again only
    /// when what it is told changes (`told`).
    pub async fn report(
        &self,
        plan: &ScaleUpPlan,
        created: &[Created],
        blocked: &BTreeMap<String, String>,
        told: &mut HashMap<String, String>,
    ) {
        let grew: Vec<&str> = created.iter().map(|c| c.node.group.as_str()).collect();
        for (group, summary) in explain::group_refusals(&plan.unplaced, blocked) {
            if !grew.contains(&group.as_str()) && self.groups.contains_key(&group) {
                self.notes.decided(&group, summary, self.id, self.now);
            }
        }
        let mut events: Vec<(String, &'static str, bool, String)> = Vec::new();
        for c in created {
            let vn = if c.name.is_empty() {
                "a new VPSieNode (dry run)".to_owned()
            } else {
                format!("VPSieNode {}", c.name)
            };
            let offering = self.ctx.catalog.name_of(&c.node.offering);
            let note = format!("{TRIGGERED}: NodeGroup {} adds {vn} ({offering})", c.node.group);
            for pod in &c.node.pods {
                events.push((pod.clone(), "TriggeredScaleUp", false, note.clone()));
            }
        }
        for u in &plan.unplaced {
            events.push((u.pod.clone(), "NotTriggerScaleUp", false, explain::pending_note(u, blocked)));
        }
        // A pod is told again only when what it is told changes, and a pod told it triggered a scale-up is
        // not told again while it waits: a later decision may place it on another in-flight node (the plan
        // fills in-flight capacity with whichever pending pods fit), which is the same scale-up to the pod.
        events.retain(|(pod, reason, _, note)| match told.get(pod) {
            Some(before) => before != note && !(*reason == "TriggeredScaleUp" && before.starts_with(TRIGGERED)),
            None => true,
        });
        for (pod, _, _, note) in &events {
            told.insert(pod.clone(), note.clone());
        }
        if events.is_empty() {
            return;
        }
        // Published off the decision path: a thousand Events must not delay the next decision.
        let (recorder, id) = (self.ctx.events.clone(), self.id.to_owned());
        tokio::spawn(async move {
            for (pod, reason, warning, note) in events {
                let Some((ns, name)) = pod.split_once('/') else { continue };
                let regarding = reference("v1", "Pod", ns, name);
                recorder.publish(&regarding, warning, reason, "ScaleUp", &format!("{note} (decision {id})")).await;
            }
        });
    }
}
