//! Carries out the step [`super::phase::next`] chose for one VPSieNode, then writes its status.

use std::time::Duration;

use autoscaler_api::constants::{ANNOTATION_REMOVAL, FINALIZER_VPSIENODE, REMOVAL_INVOLUNTARY};
use autoscaler_api::nodegroup::ProvisioningMode;
use autoscaler_api::{NodeGroup, VPSieNode, VPSieNodePhase, VPSieNodeStatus};
use autoscaler_drain::{DrainPolicy, Drainer};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use vpsie_client::Secret;

use super::matching::{Index, find_node, node_labels, node_taints, view, with_group_taints};
use super::phase::{DrainState, Missing, NodeView, Observed, Recorded, RemovalPolicy, Step, Timeouts, next};
use super::status::{FailureKind, advanced, failed, set_finalizer, write};
use super::{Looked, MissingVm, Shared};
use crate::audit::Action;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::provision::managed::ManagedBackend;
use crate::provision::user_data;
use crate::provision::vm::VmBackend;
use crate::provision::{Instance, Lookup, Machine, Pass, Provisioner, Removal};
use crate::telemetry::metrics::{PROVISIONING_DURATION, RECONCILE_ERRORS};

/// How long after an error the VPSieNode is looked at again.
pub(super) const AFTER_ERROR: Duration = Duration::from_secs(5);
/// When a Node just labelled is looked at again.
const LABEL_AGAIN: Duration = Duration::from_secs(2);
/// How often a VM that listings lack is looked up directly.
const LOOKUP_EVERY: Duration = Duration::from_secs(5);
/// The same while listings are distrusted (then many VMs may be missing at once).
const LOOKUP_EVERY_DISTRUSTED: Duration = Duration::from_secs(30);
/// Retry delays of a blocked drain: doubled per failure up to the cap.
const DRAIN_RETRY_FIRST: Duration = Duration::from_secs(10);
const DRAIN_RETRY_CAP: Duration = Duration::from_secs(300);
/// Timeouts of a VPSieNode whose NodeGroup is gone (the CRD's defaults).
const DEFAULT_TIMEOUT: SignedDuration = SignedDuration::from_secs(900);
/// The involuntary removal deadline of a VPSieNode whose NodeGroup is gone (the CRD's default).
const DEFAULT_TERMINATION_GRACE: SignedDuration = SignedDuration::from_secs(600);
/// The shortest drain attempt of an involuntary removal near its deadline.
const SHORTEST_DRAIN: Duration = Duration::from_secs(5);

/// Reconciles one VPSieNode; returns when it wants to be looked at again at the latest.
pub async fn reconcile(ctx: &Context, shared: &Shared, pass: &mut Pass, index: &Index, vn: &VPSieNode) -> Duration {
    match reconcile_inner(ctx, shared, pass, index, vn).await {
        Ok(after) => after,
        Err(e) => {
            metrics::counter!(RECONCILE_ERRORS, "controller" => "vpsienode", "error" => e.metric_label()).increment(1);
            tracing::warn!(vpsienode = %vn.name_any(), error = %e, "VPSieNode reconcile failed; retrying");
            AFTER_ERROR
        }
    }
}

/// The backend of a VPSieNode's group.
enum Backend {
    Vm(VmBackend),
    Managed(ManagedBackend),
}

impl Backend {
    fn of(ctx: &Context, vn: &VPSieNode, group: Option<&NodeGroup>) -> Result<Self> {
        let spec = group.map(|g| &g.spec);
        match vn.spec.provisioning_mode {
            ProvisioningMode::Vm => Ok(Backend::Vm(VmBackend {
                cluster_id: ctx.config.cluster_id.clone(),
                delete_password: ctx.vpsie.delete_password(),
                project: spec.and_then(|s| s.project.clone()),
                notes: spec.and_then(|s| s.notes.clone()),
            })),
            ProvisioningMode::ManagedCluster => {
                let cluster = spec
                    .and_then(|s| s.provisioning.as_ref())
                    .and_then(|p| p.managed_cluster.as_ref())
                    .map(|m| m.cluster_identifier.clone())
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "VPSieNode {}: NodeGroup {} with spec.provisioning.managedCluster is needed to find its node",
                            vn.name_any(),
                            vn.spec.node_group_name
                        ))
                    })?;
                Ok(Backend::Managed(ManagedBackend { cluster }))
            }
        }
    }

    async fn find(&self, pass: &mut Pass, vn: &VPSieNode) -> Result<Machine> {
        match self {
            Backend::Vm(b) => b.find(pass, vn).await,
            Backend::Managed(b) => b.find(pass, vn).await,
        }
    }

    async fn create(&self, pass: &mut Pass, vn: &VPSieNode, user_data: Option<Secret>) -> Result<()> {
        match self {
            Backend::Vm(b) => b.create(pass, vn, user_data).await,
            Backend::Managed(b) => b.create(pass, vn, user_data).await,
        }
    }

    async fn delete(&self, pass: &mut Pass, vn: &VPSieNode) -> Result<Removal> {
        match self {
            Backend::Vm(b) => b.delete(pass, vn).await,
            Backend::Managed(b) => b.delete(pass, vn).await,
        }
    }

    async fn look_up(&self, pass: &mut Pass, vn: &VPSieNode, identifier: &str) -> Result<Lookup> {
        match self {
            Backend::Vm(b) => b.look_up(pass, vn, identifier).await,
            Backend::Managed(b) => b.look_up(pass, vn, identifier).await,
        }
    }
}

/// A machine seen before (its identifier recorded) that this pass's listing lacks is not believed gone on
/// the listing's word: it is looked up directly (at most every [`LOOKUP_EVERY`], or
/// [`LOOKUP_EVERY_DISTRUSTED`] while listings are distrusted), and how long it has been missing is
/// remembered. A lookup that finds it replaces the listing's answer; lookups that keep failing are said
/// in an Event once they have failed for [`super::phase::GONE_GRACE`].
#[allow(clippy::too_many_arguments)]
async fn confirm_absence(
    ctx: &Context,
    shared: &Shared,
    pass: &mut Pass,
    backend: &Backend,
    vn: &VPSieNode,
    status: &VPSieNodeStatus,
    machine: Machine,
    now: Timestamp,
) -> (Machine, Option<Missing>) {
    let uid = vn.uid().unwrap_or_default();
    let (Machine::NotListed, Some(identifier)) = (&machine, status.vm_identifier.as_deref()) else {
        shared.with(|m| m.missing.remove(&uid));
        return (machine, None);
    };
    let memo = shared.with(|m| {
        m.missing.entry(uid.clone()).or_insert(MissingVm { since: now, looked_up: None, failing_since: None }).clone()
    });
    let distrusted = pass.listing_distrusted;
    let every = if distrusted { LOOKUP_EVERY_DISTRUSTED } else { LOOKUP_EVERY };
    let looked = match memo.looked_up.filter(|(at, _)| at.elapsed() < every) {
        Some((_, recent)) => recent,
        None => {
            let looked = match backend.look_up(pass, vn, identifier).await {
                Ok(Lookup::Found(instance)) => Looked::Found(instance),
                Ok(Lookup::NotFound) => Looked::NotFound,
                Err(e) => {
                    tracing::warn!(vpsienode = %vn.name_any(), vm = identifier, error = %e, "looking up a VM VPSie does not list failed");
                    Looked::Failed
                }
            };
            let failing_since = matches!(looked, Looked::Failed).then(|| memo.failing_since.unwrap_or(now));
            shared.with(|m| {
                if let Some(e) = m.missing.get_mut(&uid) {
                    e.looked_up = Some((tokio::time::Instant::now(), looked.clone()));
                    e.failing_since = failing_since;
                }
            });
            if let Some(since) = failing_since.filter(|t| now.duration_since(*t) >= super::phase::GONE_GRACE) {
                let note = format!(
                    "VPSie does not list VM {identifier} of this node, and looking it up has failed since {since}; \
                     the node is neither failed nor released until VPSie answers"
                );
                ctx.events.publish(&vn.object_ref(&()), true, "VmLookupFailing", "Lifecycle", &note).await;
            }
            looked
        }
    };
    let missing = |confirmed| Some(Missing { since: memo.since, confirmed, listing_distrusted: distrusted });
    match looked {
        Looked::Found(instance) => {
            tracing::debug!(vpsienode = %vn.name_any(), vm = identifier, "VPSie's list lacks the VM, but a lookup finds it");
            (Machine::Active(instance), None)
        }
        Looked::NotFound => (machine, missing(true)),
        Looked::Failed => (machine, missing(false)),
    }
}

fn timeouts(group: Option<&NodeGroup>) -> Timeouts {
    let secs = |s: i32| SignedDuration::from_secs(i64::from(s));
    group.map_or(Timeouts { provisioning: DEFAULT_TIMEOUT, registration: DEFAULT_TIMEOUT }, |g| Timeouts {
        provisioning: secs(g.spec.provisioning_timeout_seconds),
        registration: secs(g.spec.registration_timeout_seconds),
    })
}

/// The removal policy of a VPSieNode being deleted: involuntary when whoever deleted it said so (the
/// NodeGroup controller: failed node, `maxNodes` lowered, repair, group deleted) or when its NodeGroup is
/// gone or being deleted; voluntary otherwise. The deadline runs from the moment the removal became
/// involuntary: the VPSieNode's deletion, or its group's deletion when that came later (a voluntary removal
/// stuck on a budget before its group was deleted gets the whole grace period to drain, not none). Each
/// member has a deadline of its own, so members whose removal a group's budget delayed are still drained.
fn removal_policy(vn: &VPSieNode, group: Option<&NodeGroup>) -> RemovalPolicy {
    let Some(deleted) = vn.metadata.deletion_timestamp.as_ref() else { return RemovalPolicy::Voluntary };
    let said = vn.annotations().get(ANNOTATION_REMOVAL).is_some_and(|v| v == REMOVAL_INVOLUNTARY);
    let group_deleted = group.and_then(|g| g.metadata.deletion_timestamp.as_ref()).map(|t| t.0);
    if !said && group.is_some() && group_deleted.is_none() {
        return RemovalPolicy::Voluntary;
    }
    let grace = group.map_or(DEFAULT_TERMINATION_GRACE, |g| {
        SignedDuration::from_secs(i64::from(g.spec.termination_grace_period_seconds.max(0)))
    });
    let since = match group_deleted {
        Some(g) if !said => g.max(deleted.0),
        _ => deleted.0,
    };
    RemovalPolicy::Involuntary { deadline: since + grace }
}

async fn reconcile_inner(
    ctx: &Context,
    shared: &Shared,
    pass: &mut Pass,
    index: &Index,
    vn: &VPSieNode,
) -> Result<Duration> {
    let api: Api<VPSieNode> = Api::all(ctx.client.clone());
    let deleting = vn.metadata.deletion_timestamp.is_some();
    let has_finalizer = vn.finalizers().iter().any(|f| f == FINALIZER_VPSIENODE);
    if !has_finalizer {
        if deleting {
            return Ok(super::IDLE);
        }
        set_finalizer(&api, vn, FINALIZER_VPSIENODE, true).await?;
    }
    let group = ctx.cluster.nodegroups.read().get(vn.spec.node_group_name.as_str()).map(|e| e.group.clone());
    let status = shared.status_of(vn);
    let backend = Backend::of(ctx, vn, group.as_ref())?;
    if pass.listing_failed && matches!(backend, Backend::Vm(_)) {
        return Ok(AFTER_ERROR);
    }
    let now = Timestamp::now();
    let machine = backend.find(pass, vn).await?;
    let (machine, missing) = confirm_absence(ctx, shared, pass, &backend, vn, &status, machine, now).await;
    let labels = node_labels(group.as_ref(), &vn.spec.node_group_name, &vn.spec);
    let taints = node_taints(group.as_ref());
    let node: Option<NodeView> = {
        let nodes = ctx.cluster.nodes.read();
        find_node(&nodes, &index.nodes_by_provider, vn, &machine)
            .map(|n| view(n, &labels, &taints, index.workload_pods_on(&n.model.name)))
    };
    let recorded = Recorded {
        phase: status.phase,
        created_at: status.created_at.as_ref().map(|t| t.0),
        provisioned_at: status.provisioned_at.as_ref().map(|t| t.0),
        machine_seen: status.vm_identifier.is_some(),
    };
    let drain = shared.drain_state(vn);
    let observed = Observed {
        recorded: &recorded,
        machine: &machine,
        missing,
        node: node.as_ref(),
        deleting,
        drain: &drain,
        removal: removal_policy(vn, group.as_ref()),
        timeouts: timeouts(group.as_ref()),
        now,
    };
    let step = next(&observed);
    tracing::debug!(vpsienode = %vn.name_any(), phase = ?status.phase, ?step, "lifecycle step");
    let instance = match &machine {
        Machine::Active(i) => Some(i),
        Machine::Pending | Machine::NotListed => None,
    };
    let act = Act { ctx, shared, api: &api, vn, status: &status, now };
    match step {
        Step::Wait { after, .. } => Ok(after),
        Step::Create => act.create(pass, &backend, group.as_ref()).await,
        Step::Advance(phase) => act.advance(phase, instance, node.as_ref()).await,
        Step::LabelNode => {
            if let Some(n) = &node {
                label_node(ctx, &n.name, &labels, group.as_ref()).await?;
            }
            // Not at once: the cache shows the patched Node a moment later, and a pass that reads it
            // before then would patch again (a GET+PATCH loop per node).
            Ok(LABEL_AGAIN)
        }
        Step::Fail(reason) => act.fail(&reason, FailureKind::Machine).await,
        Step::Drain => act.drain(node.as_ref(), observed.removal).await,
        Step::DeleteNode => act.delete_node(node.as_ref()).await,
        Step::DeleteNodeUndrained(why) => {
            if let Some(n) = &node {
                tracing::warn!(vpsienode = %vn.name_any(), node = %n.name, "{why}");
                let node_ref = crate::events::reference("v1", "Node", "", &n.name);
                ctx.events.publish(&vn.object_ref(&()), true, "RemovalDeadline", "DeleteNode", &why).await;
                ctx.events.publish(&node_ref, true, "RemovalDeadline", "DeleteNode", &why).await;
            }
            act.delete_node(node.as_ref()).await
        }
        Step::DeleteMachine => act.delete_machine(pass, &backend, deleting).await,
        Step::Release => {
            set_finalizer(&api, vn, FINALIZER_VPSIENODE, false).await?;
            tracing::info!(vpsienode = %vn.name_any(), "VM and Node gone; finalizer removed");
            Ok(super::IDLE)
        }
    }
}

/// Adds the group's missing labels and taints to a Node we matched, from a fresh read.
async fn label_node(
    ctx: &Context,
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
    group: Option<&NodeGroup>,
) -> Result<()> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let node = nodes.get(name).await?;
    let existing = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let taints = with_group_taints(&existing, group.map(|g| g.spec.taints.as_slice()).unwrap_or_default());
    let patch = serde_json::json!({
        "metadata": { "labels": labels, "resourceVersion": node.resource_version() },
        "spec": { "taints": taints },
    });
    nodes.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    tracing::info!(node = name, "put the NodeGroup's missing labels and taints on the Node");
    Ok(())
}

/// One step's I/O for one VPSieNode.
struct Act<'a> {
    ctx: &'a Context,
    shared: &'a Shared,
    api: &'a Api<VPSieNode>,
    vn: &'a VPSieNode,
    status: &'a VPSieNodeStatus,
    now: Timestamp,
}

impl Act<'_> {
    async fn save(&self, status: &VPSieNodeStatus) -> Result<()> {
        write(self.api, self.vn, status).await?;
        self.shared.remember(self.vn, status);
        Ok(())
    }

    async fn event(&self, warning: bool, reason: &str, note: &str) {
        let regarding = self.vn.object_ref(&());
        self.ctx.events.publish(&regarding, warning, reason, "Lifecycle", note).await;
    }

    async fn create(&self, pass: &mut Pass, backend: &Backend, group: Option<&NodeGroup>) -> Result<Duration> {
        let uid = self.vn.uid().unwrap_or_default();
        if self.shared.with(|m| m.requested.contains(&uid)) {
            return Ok(Duration::from_secs(2));
        }
        let user_data = match self.vn.spec.provisioning_mode {
            ProvisioningMode::Vm => match user_data::render(self.ctx, group, &self.vn.spec).await {
                Ok(data) => Some(data),
                Err(user_data::UserDataError::Configuration(problem)) => {
                    return self.fail(&problem, FailureKind::Configuration).await;
                }
                Err(user_data::UserDataError::Api(e)) => return Err(e.into()),
            },
            ProvisioningMode::ManagedCluster => None,
        };
        // The intent first: a crash after the request can then never lead to a second one.
        let mut intent = advanced(self.status, VPSieNodePhase::Provisioning, None, None, self.now);
        intent.created_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(self.now));
        intent.attempts += 1;
        self.save(&intent).await?;
        crate::failpoint::hit("create:after-intent");
        self.shared.with(|m| m.requested.insert(uid.clone()));
        match backend.create(pass, self.vn, user_data).await {
            Ok(()) => {
                crate::failpoint::hit("create:after-request");
                let note = format!(
                    "requested VM {} ({}) in {}",
                    self.vn.spec.hostname, self.vn.spec.offering_id, self.vn.spec.datacenter_id
                );
                self.event(false, "Launched", &note).await;
                Ok(Duration::from_secs(1))
            }
            Err(Error::Vpsie(e)) if not_sent(&e) => {
                // Nothing reached VPSie: take the intent back so the next pass may send it.
                tracing::warn!(vpsienode = %self.vn.name_any(), error = %e, "VM create not sent; retrying");
                self.save(self.status).await?;
                self.shared.with(|m| m.requested.remove(&uid));
                Ok(AFTER_ERROR)
            }
            Err(Error::Vpsie(e)) if refused(&e) => {
                self.fail(&format!("VPSie refused the create: {e}"), FailureKind::Machine).await
            }
            Err(Error::Config(problem)) => self.fail(&problem, FailureKind::Configuration).await,
            // Ambiguous (timeout, 5xx, unreadable answer): the VM may exist; the listing will tell.
            Err(e) => {
                tracing::warn!(vpsienode = %self.vn.name_any(), error = %e, "VM create answer unclear; waiting for the listing");
                Ok(Duration::from_secs(2))
            }
        }
    }

    async fn advance(
        &self,
        phase: VPSieNodePhase,
        machine: Option<&Instance>,
        node: Option<&NodeView>,
    ) -> Result<Duration> {
        let next = advanced(self.status, phase, machine, node.map(|n| n.name.as_str()), self.now);
        crate::failpoint::hit(&format!("advance:{phase:?}"));
        self.save(&next).await?;
        tracing::info!(vpsienode = %self.vn.name_any(), from = ?self.status.phase, to = ?phase, "VPSieNode phase");
        match phase {
            VPSieNodePhase::Provisioned => self.event(false, "Provisioned", "the VM is active").await,
            VPSieNodePhase::Ready => {
                let secs = self.vn.creation_timestamp().map(|t| self.now.duration_since(t.0).as_secs_f64());
                if let Some(secs) = secs {
                    metrics::histogram!(PROVISIONING_DURATION, "nodegroup" => self.vn.spec.node_group_name.clone())
                        .record(secs);
                }
                let name = node.map(|n| n.name.as_str()).unwrap_or_default();
                self.event(false, "NodeReady", &format!("Node {name} is Ready")).await;
            }
            _ => {}
        }
        Ok(Duration::ZERO)
    }

    async fn fail(&self, reason: &str, kind: FailureKind) -> Result<Duration> {
        let next = failed(self.status, reason, kind, self.now);
        self.save(&next).await?;
        tracing::warn!(vpsienode = %self.vn.name_any(), reason, "VPSieNode failed");
        self.event(true, "ProvisioningFailed", reason).await;
        let group = self
            .ctx
            .cluster
            .nodegroups
            .read()
            .get(self.vn.spec.node_group_name.as_str())
            .map(|e| e.group.object_ref(&()));
        if let Some(group) = group {
            let note = format!("VPSieNode {}: {reason}", self.vn.name_any());
            self.ctx.events.publish(&group, true, "ProvisioningFailed", "Lifecycle", &note).await;
        }
        Ok(Duration::ZERO)
    }

    async fn drain(&self, node: Option<&NodeView>, removal: RemovalPolicy) -> Result<Duration> {
        let Some(node) = node else { return Ok(Duration::ZERO) };
        let uid = self.vn.uid().unwrap_or_default();
        let failures = match self.shared.drain_state(self.vn) {
            DrainState::Failed { .. } => self.shared.with(|m| m.drain_failures.get(&uid).copied().unwrap_or(0)),
            _ => 0,
        };
        if self.status.phase != VPSieNodePhase::Terminating {
            self.save(&advanced(self.status, VPSieNodePhase::Terminating, None, None, self.now)).await?;
        }
        crate::failpoint::hit("drain:started");
        self.shared.set_drain(&uid, DrainState::Running);
        let group = &self.vn.spec.node_group_name;
        let policy = match removal {
            // The node is leaving either way: it stays cordoned between attempts.
            RemovalPolicy::Voluntary => DrainPolicy {
                nodegroup: group.clone(),
                timeout: self.ctx.config.drain_timeout,
                keep_cordoned: true,
                ..DrainPolicy::default()
            },
            // An attempt ends by the deadline at the latest; the lifecycle then deletes the Node.
            RemovalPolicy::Involuntary { deadline } => {
                // Zero once past (the phase then deletes the Node instead; `unsigned_abs` alone would
                // turn a passed deadline into a long attempt).
                let left = if self.now >= deadline {
                    Duration::ZERO
                } else {
                    self.now.duration_until(deadline).unsigned_abs()
                };
                DrainPolicy::involuntary(group, self.ctx.config.drain_timeout.min(left).max(SHORTEST_DRAIN))
            }
        };
        let drainer = Drainer::new(self.ctx.drain_client.clone(), policy);
        let (shared, events, name) = (self.shared.clone(), self.ctx.events.clone(), node.name.clone());
        let (regarding, node_ref) = (self.vn.object_ref(&()), crate::events::reference("v1", "Node", "", &node.name));
        tokio::spawn(async move {
            match drainer.drain(&name).await {
                Ok(done) => {
                    tracing::info!(node = %name, evicted = done.evicted(), "drained");
                    shared.set_drain(&uid, DrainState::Done);
                }
                Err(failure) => {
                    let wait = DRAIN_RETRY_FIRST.saturating_mul(1 << failures.min(5)).min(DRAIN_RETRY_CAP);
                    let note = format!(
                        "{}; the Node stays cordoned and the VM kept; retry in {}s",
                        failure.reason,
                        wait.as_secs()
                    );
                    tracing::warn!(node = %name, reason = %failure.reason, "drain failed");
                    events.publish(&regarding, true, "DrainBlocked", "Drain", &note).await;
                    events.publish(&node_ref, true, "DrainBlocked", "Drain", &note).await;
                    let retry_at =
                        Timestamp::now() + SignedDuration::try_from(wait).unwrap_or(SignedDuration::from_secs(10));
                    shared.with(|m| *m.drain_failures.entry(uid.clone()).or_insert(0) += 1);
                    shared.set_drain(&uid, DrainState::Failed { reason: failure.reason.to_string(), retry_at });
                }
            }
        });
        Ok(Duration::from_secs(2))
    }

    async fn delete_node(&self, node: Option<&NodeView>) -> Result<Duration> {
        let Some(node) = node else { return Ok(Duration::ZERO) };
        if self.vn.metadata.deletion_timestamp.is_some() && self.status.phase != VPSieNodePhase::Deleting {
            self.save(&advanced(self.status, VPSieNodePhase::Deleting, None, None, self.now)).await?;
        }
        let nodes: Api<Node> = Api::all(self.ctx.client.clone());
        match nodes.delete(&node.name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(node = %node.name, "Node deleted");
                let why = format!("VPSieNode {} is removed", self.vn.name_any());
                self.ctx.audit_action(Action::NodeTermination, format!("Node/{}", node.name), &why);
                crate::failpoint::hit("delete:after-node");
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Duration::from_secs(1))
    }

    async fn delete_machine(&self, pass: &mut Pass, backend: &Backend, deleting: bool) -> Result<Duration> {
        if deleting && self.status.phase != VPSieNodePhase::Deleting {
            self.save(&advanced(self.status, VPSieNodePhase::Deleting, None, None, self.now)).await?;
        }
        let removal = match backend.delete(pass, self.vn).await {
            Ok(r) => r,
            Err(e) => {
                // Say why in an Event too: a wrong delete password or a refused delete never fixes itself.
                self.event(true, "VmDeleteFailed", &format!("deleting VM {} failed: {e}", self.vn.spec.hostname)).await;
                return Err(e);
            }
        };
        match removal {
            Removal::Deleted => {
                crate::failpoint::hit("delete:after-vm");
                let why = format!("VPSieNode {} is removed", self.vn.name_any());
                self.ctx.audit_action(Action::VmDelete, format!("VM/{}", self.vn.spec.hostname), &why);
                self.event(false, "VmDeleted", &format!("deleted VM {}", self.vn.spec.hostname)).await;
                Ok(Duration::from_secs(1))
            }
            Removal::StillPending => Ok(Duration::from_secs(2)),
            // The next pass confirms it gone (a lookup) before the finalizer goes; not at once.
            Removal::NotListed => Ok(Duration::from_secs(2)),
        }
    }
}

/// Nothing reached VPSie: safe to send again.
fn not_sent(e: &vpsie_client::Error) -> bool {
    e.was_not_processed()
}

/// VPSie answered no: retrying the same create would get the same answer.
fn refused(e: &vpsie_client::Error) -> bool {
    matches!(
        e,
        vpsie_client::Error::Api { .. } | vpsie_client::Error::QuotaExceeded { .. } | vpsie_client::Error::Config(_)
    )
}
