//! Consolidation (`spec.disruption.consolidation`): moving work off nodes onto fewer or cheaper ones with
//! the decision core's `consolidate`. One command at a time, in steps the scale-down loop drives:
//!
//! 1. **Proposed**: a plan saves at least `minMonthlySavings` and moves no workload that consolidation
//!    moved within the churn period ([`churn`]).
//! 2. **Validated**: after `--consolidation-validation-seconds` the same plan must come out of fresh state
//!    (Karpenter waits 15 s for the same reason), else the command is dropped.
//! 3. **Replacement Ready**: when the plan adds a cheaper node, its VPSieNode is created
//!    (`created-for: consolidation`, `replaces: <nodes>`) and nothing is evicted until it is Ready; then
//!    the plan is checked once more against the cluster with the replacement in it.
//! 4. **Removed**: the replaced nodes' VPSieNodes are deleted; their finalizer drains them through the
//!    Eviction API (PodDisruptionBudgets hold) and deletes the VMs.
//!
//! The command lives in memory; after a restart an existing replacement (its `replaces` annotation) is
//! adopted, so a crash between creating it and removing the old nodes neither leaks it nor starts over.

pub mod churn;

use std::collections::{BTreeMap, HashMap};

use autoscaler_api::constants::{ANNOTATION_CREATED_FOR, ANNOTATION_DECISION, ANNOTATION_REPLACES};
use autoscaler_api::nodegroup::ConsolidationPolicy;
use autoscaler_api::{NodeGroup, VPSieNode, VPSieNodePhase};
use autoscaler_decision::groups::NodeGroup as GroupModel;
use autoscaler_decision::{ConsolidationInput, ConsolidationPlan, Node, Pdb, consolidate};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

use crate::audit::Action;
use crate::context::Context;
use crate::events::reference;
use crate::telemetry::metrics::{COST_SAVINGS, SCALING_DECISIONS};

/// Where a command stands.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    /// Waiting out the validation delay since `at`.
    Proposed { at: jiff::Timestamp },
    /// The replacement VPSieNode `name` was created at `at`; waiting for it to be Ready.
    Replacing { name: String, at: jiff::Timestamp },
}

/// One consolidation in progress.
#[derive(Debug, Clone, PartialEq)]
struct Command {
    id: String,
    group: String,
    plan: ConsolidationPlan,
    stage: Stage,
}

/// What one pass sees (built by the scale-down loop from its snapshot).
pub struct View<'a> {
    /// Registered nodes with their pods; nodes consolidation may not touch have `group: None`.
    pub nodes: &'a [Node],
    /// Group templates by name.
    pub models: &'a BTreeMap<String, GroupModel>,
    /// NodeGroups by name.
    pub groups: &'a BTreeMap<String, NodeGroup>,
    /// VPSieNodes by name.
    pub vpsienodes: &'a HashMap<String, VPSieNode>,
    /// PodDisruptionBudgets.
    pub pdbs: &'a [Pdb],
    /// Nodes being removed now, per group.
    pub removing: &'a BTreeMap<String, usize>,
    /// The decision's correlation id.
    pub id: &'a str,
    /// Now.
    pub now: jiff::Timestamp,
}

/// The consolidation state between passes.
#[derive(Debug, Default)]
pub struct Consolidator {
    command: Option<Command>,
    churn: churn::Moved,
}

impl Consolidator {
    /// Advances the command in progress, or proposes one. Returns whether it removed nodes this pass.
    pub async fn pass(&mut self, ctx: &Context, v: &View<'_>) -> bool {
        if self.command.is_none() {
            self.command = adopt(v).or_else(|| self.propose(ctx, v));
            return false;
        }
        let Some(cmd) = self.command.clone() else { return false };
        let fresh = plan_for(v, &cmd.group);
        match &cmd.stage {
            Stage::Proposed { at } => {
                let delay =
                    jiff::SignedDuration::try_from(ctx.config.consolidation_validation_delay).unwrap_or_default();
                if v.now.duration_since(*at) < delay {
                    return false;
                }
                let same = fresh.as_ref().is_some_and(|f| {
                    f.remove == cmd.plan.remove
                        && f.replacement.as_ref().map(|r| &r.offering)
                            == cmd.plan.replacement.as_ref().map(|r| &r.offering)
                });
                if !same {
                    tracing::info!(decision = %cmd.id, nodegroup = %cmd.group, "consolidation dropped: fresh state plans otherwise");
                    self.command = None;
                    return false;
                }
                match &cmd.plan.replacement {
                    // A dry run reports the whole command at once: nothing is created, so nothing would be Ready.
                    Some(_) if ctx.config.dry_run => self.finish(ctx, v, &cmd).await,
                    Some(r) => match create_replacement(ctx, v, &cmd, &r.offering).await {
                        Some(name) => {
                            if let Some(c) = self.command.as_mut() {
                                c.stage = Stage::Replacing { name, at: v.now };
                            }
                            false
                        }
                        None => {
                            self.command = None;
                            false
                        }
                    },
                    None => self.finish(ctx, v, &cmd).await,
                }
            }
            Stage::Replacing { name, at } => {
                let replacement = v.vpsienodes.get(name);
                let ready = replacement
                    .is_some_and(|r| r.status.as_ref().is_some_and(|s| s.phase == VPSieNodePhase::Ready))
                    && v.nodes.iter().any(|n| &n.name == name && n.ready);
                let group = v.groups.get(&cmd.group);
                let budget = group.map_or(1800, |g| {
                    i64::from(g.spec.provisioning_timeout_seconds) + i64::from(g.spec.registration_timeout_seconds)
                });
                let gone = replacement.is_none_or(|r| {
                    r.metadata.deletion_timestamp.is_some()
                        || r.status.as_ref().is_some_and(|s| s.phase == VPSieNodePhase::Failed)
                });
                if gone || v.now.duration_since(*at).as_secs() > budget {
                    tracing::warn!(decision = %cmd.id, replacement = %name, "consolidation abandoned: the replacement never became Ready");
                    self.command = None;
                    return false;
                }
                if !ready {
                    return false;
                }
                // With the replacement in the cluster, the replaced nodes must now go without a new node.
                let holds = fresh
                    .as_ref()
                    .is_some_and(|f| f.replacement.is_none() && cmd.plan.remove.iter().all(|n| f.remove.contains(n)));
                if !holds {
                    tracing::info!(decision = %cmd.id, "consolidation dropped: with the replacement Ready the plan no longer holds");
                    self.command = None;
                    return false;
                }
                self.finish(ctx, v, &cmd).await
            }
        }
    }

    /// A new command for the first group (by name) whose plan saves enough and moves no recently moved
    /// workload.
    fn propose(&mut self, ctx: &Context, v: &View<'_>) -> Option<Command> {
        if v.removing.values().any(|n| *n > 0) {
            return None;
        }
        let period = jiff::SignedDuration::try_from(ctx.config.consolidation_churn_guard).unwrap_or_default();
        self.churn.forget_before(v.now.checked_sub(period).unwrap_or(v.now));
        for name in v.groups.keys() {
            let Some(plan) = plan_for(v, name) else { continue };
            let workloads = churn::workloads_moved(&plan, v.nodes);
            if let Some(w) = workloads.iter().find(|w| self.churn.contains(w)) {
                tracing::info!(nodegroup = %name, workload = %w, "consolidation skipped: it would move a workload moved within the churn period");
                continue;
            }
            tracing::info!(decision = %v.id, nodegroup = %name, remove = ?plan.remove, replacement = ?plan.replacement.as_ref().map(|r| &r.offering), saving = plan.monthly_saving, "consolidation proposed; validating");
            return Some(Command {
                id: v.id.to_owned(),
                group: name.clone(),
                plan,
                stage: Stage::Proposed { at: v.now },
            });
        }
        None
    }

    /// Deletes the replaced nodes' VPSieNodes and reports the saving.
    async fn finish(&mut self, ctx: &Context, v: &View<'_>, cmd: &Command) -> bool {
        self.command = None;
        let summary = summary(&cmd.plan, &ctx.catalog);
        ctx.audit_decision(Action::Consolidate, format!("NodeGroup/{}", cmd.group), &summary, Some(&cmd.id));
        if ctx.config.dry_run {
            ctx.notes.decided(&cmd.group, format!("would consolidate (dry run): {summary}"), &cmd.id, v.now);
            return false;
        }
        let api: Api<VPSieNode> = Api::all(ctx.client.clone());
        for node in &cmd.plan.remove {
            match api.delete(node, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(node = %node, error = %e, "consolidation: VPSieNode not deleted; the scale-down loop or the next consolidation retries");
                    continue;
                }
            }
            let note = format!("removing node {node}: consolidation ({summary}) (decision {})", cmd.id);
            ctx.events.publish(&reference("v1", "Node", "", node), false, "ScaleDown", "Consolidate", &note).await;
        }
        self.churn.record(churn::workloads_moved(&cmd.plan, v.nodes), v.now);
        metrics::counter!(SCALING_DECISIONS, "decision" => "consolidate").increment(1);
        metrics::gauge!(COST_SAVINGS, "nodegroup" => cmd.group.clone()).set(cmd.plan.monthly_saving);
        ctx.notes.decided(&cmd.group, format!("consolidating: {summary}"), &cmd.id, v.now);
        ctx.notes.update(&cmd.group, |n| {
            n.savings = Some(cmd.plan.monthly_saving);
            n.scaled_down = Some(v.now);
        });
        if let Some(g) = v.groups.get(&cmd.group) {
            let regarding = kube::Resource::object_ref(g, &());
            ctx.events
                .publish(&regarding, false, "Consolidated", "Consolidate", &format!("{summary} (decision {})", cmd.id))
                .await;
        }
        tracing::info!(decision = %cmd.id, nodegroup = %cmd.group, "consolidation: {summary}");
        true
    }
}

/// "remove web-a, web-b (2 x $29.00) for one sc-2cpu-4gb; saves $43.00/month".
fn summary(plan: &ConsolidationPlan, catalog: &crate::catalog::Catalog) -> String {
    let added =
        plan.replacement.as_ref().map_or(String::new(), |r| format!(" for one {}", catalog.name_of(&r.offering)));
    format!("remove {}{added}; saves ${:.2}/month", plan.remove.join(", "), plan.monthly_saving)
}

/// The consolidation plan for group `name`, if its settings ask for one and it saves enough. Only the
/// group's own nodes may go; pods may move to any node.
fn plan_for(v: &View<'_>, name: &str) -> Option<ConsolidationPlan> {
    let settings = v.groups.get(name)?.spec.disruption.as_ref()?.consolidation.as_ref()?;
    if !settings.enabled {
        return None;
    }
    let model = v.models.get(name)?;
    let outcome = consolidate(ConsolidationInput {
        nodes: v.nodes,
        groups: std::slice::from_ref(model),
        pdbs: v.pdbs,
        min_monthly_savings: settings.min_monthly_savings,
        only_empty: settings.policy == ConsolidationPolicy::WhenEmpty,
    });
    outcome.plan
}

/// Whether `vn` is a consolidation's replacement whose replaced nodes still run: scale-down leaves it
/// alone (it is empty until they drain).
pub fn is_pending_replacement(vn: &VPSieNode, vpsienodes: &HashMap<String, VPSieNode>) -> bool {
    vn.annotations().get(ANNOTATION_CREATED_FOR).is_some_and(|c| c == "consolidation")
        && vn.annotations().get(ANNOTATION_REPLACES).is_some_and(|r| {
            r.split(',').any(|old| vpsienodes.get(old).is_some_and(|o| o.metadata.deletion_timestamp.is_none()))
        })
}

/// A replacement of an earlier run of this process (its `replaces` annotation), taken up again.
fn adopt(v: &View<'_>) -> Option<Command> {
    let (name, vn) = v
        .vpsienodes
        .iter()
        .find(|(_, vn)| vn.metadata.deletion_timestamp.is_none() && is_pending_replacement(vn, v.vpsienodes))?;
    let remove: Vec<String> = vn.annotations().get(ANNOTATION_REPLACES)?.split(',').map(str::to_owned).collect();
    let remove: Vec<String> = remove.into_iter().filter(|o| v.vpsienodes.contains_key(o)).collect();
    let at = vn.metadata.creation_timestamp.as_ref().map_or(v.now, |t| t.0);
    let id = vn.annotations().get(ANNOTATION_DECISION).cloned().unwrap_or_else(|| v.id.to_owned());
    tracing::info!(decision = %id, replacement = %name, replaces = ?remove, "consolidation resumed after a restart");
    // The saving: what the replaced nodes cost minus the replacement, at the group's offering prices.
    let price = |offering: Option<&str>| {
        v.models
            .get(&vn.spec.node_group_name)
            .and_then(|m| m.offerings.iter().find(|o| Some(o.id.as_str()) == offering))
            .map_or(0.0, |o| o.monthly_price)
    };
    let removed: f64 = v.nodes.iter().filter(|n| remove.contains(&n.name)).map(|n| price(n.offering.as_deref())).sum();
    let monthly_saving = removed - price(Some(vn.spec.offering_id.as_str()));
    let plan = ConsolidationPlan { remove, replacement: None, moves: Vec::new(), monthly_saving };
    Some(Command {
        id,
        group: vn.spec.node_group_name.clone(),
        plan,
        stage: Stage::Replacing { name: name.clone(), at },
    })
}

/// Creates the replacement VPSieNode; its name, or `None` when it could not be created.
async fn create_replacement(ctx: &Context, v: &View<'_>, cmd: &Command, offering: &str) -> Option<String> {
    let group = v.groups.get(&cmd.group)?;
    let mut vn = crate::nodegroup::new_member(ctx, group, offering).ok()?;
    let annotations = vn.annotations_mut();
    annotations.insert(ANNOTATION_DECISION.to_owned(), cmd.id.clone());
    annotations.insert(ANNOTATION_CREATED_FOR.to_owned(), "consolidation".to_owned());
    annotations.insert(ANNOTATION_REPLACES.to_owned(), cmd.plan.remove.join(","));
    let api: Api<VPSieNode> = Api::all(ctx.client.clone());
    match api.create(&PostParams::default(), &vn).await {
        Ok(created) => {
            let name = created.name_any();
            tracing::info!(decision = %cmd.id, replacement = %name, offering, "consolidation: replacement created; nothing is evicted until it is Ready");
            ctx.audit_decision(
                Action::ScaleUp,
                format!("VPSieNode/{name}"),
                &format!("replacement for {}", cmd.plan.remove.join(", ")),
                Some(&cmd.id),
            );
            Some(name)
        }
        Err(e) => {
            tracing::warn!(decision = %cmd.id, error = %e, "consolidation: replacement not created");
            None
        }
    }
}
