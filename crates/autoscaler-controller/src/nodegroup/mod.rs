//! The NodeGroup controller: keeps each group between `minNodes` and `maxNodes` VPSieNodes, replaces
//! failed ones (backing their offering off), removes every node of a deleted group (finalizer), and
//! writes the group's status by server-side apply. It changes capacity only by creating and deleting
//! VPSieNodes; their finalizer owns drain and VM deletion. Only the leader acts, never in `--dry-run`.

pub mod plan;
pub mod repair;
pub mod status;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use autoscaler_api::constants::{
    ANNOTATION_REMOVAL, ANNOTATION_REPAIRS, FINALIZER_NODEGROUP, LABEL_MANAGED, LABEL_NODEGROUP, REMOVAL_INVOLUNTARY,
};
use autoscaler_api::nodegroup::OfferingBackoff;
use autoscaler_api::nodegroup::ProvisioningMode;
use autoscaler_api::{NodeGroup, NodeGroupStatus, VPSieNode, VPSieNodePhase, VPSieNodeSpec};
use futures::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use tokio::task::JoinHandle;

use crate::cluster::snapshot::{group_model, preferred_offering};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::lifecycle::status::{FailureKind, set_finalizer};
use crate::membership::{counts, is_live, is_removing, removal_slots};
use crate::provision::user_data::{UserDataError, render};
use crate::telemetry::metrics::RECONCILE_ERRORS;
use plan::{Member, managed_offering, offering_for_min, over_max};

/// The longest a pass waits when nothing changes.
const IDLE: Duration = Duration::from_secs(10);
/// How long a VPSieNode this process created or deleted counts as such before the cache shows it.
const CACHE_LAG: Duration = Duration::from_secs(30);
/// Groups reconciled at once in a pass. Groups share nothing a reconcile writes (each has its own members,
/// status and notes), and a pass after many groups changed together is dominated by one status write per
/// group: one at a time, the hundredth of 100 changed groups waited for 99 writes (`cargo xtask bench`, P5).
const GROUPS_AT_ONCE: usize = 16;

/// Writes this process made that the caches may not show yet.
#[derive(Debug, Default)]
struct Memory {
    /// Status last written per group uid.
    written: HashMap<String, NodeGroupStatus>,
    /// VPSieNodes created (name -> group), with when.
    created: HashMap<String, (String, tokio::time::Instant)>,
    /// VPSieNodes whose deletion was requested, with when.
    deleted: HashMap<String, tokio::time::Instant>,
}

#[derive(Debug, Default, Clone)]
struct Shared {
    memory: Arc<Mutex<Memory>>,
    /// Whether the last pass could act.
    acting: Arc<std::sync::atomic::AtomicBool>,
}

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(&mut self.memory.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Names of the VPSieNodes whose deletion this process requested (the cache may not show it yet).
    fn deleted(&self) -> HashSet<String> {
        self.with(|m| m.deleted.keys().cloned().collect())
    }

    /// The group's size as this process knows it: its live members less those it deleted, plus those it
    /// created that the cache lacks. One count for minNodes, maxNodes and repair's room.
    fn size<'a>(&self, group: &str, members: &'a [VPSieNode]) -> (Vec<&'a VPSieNode>, usize) {
        let deleted = self.deleted();
        let live: Vec<&VPSieNode> = members.iter().filter(|v| is_live(v) && !deleted.contains(&v.name_any())).collect();
        let unseen = self.with(|m| m.created.values().filter(|(g, _)| g == group).count());
        let count = live.len() + unseen;
        (live, count)
    }

    /// On becoming able to act again, the statuses remembered from before are dropped: another replica
    /// may have written newer ones, which the cache has.
    fn acting(&self, may: bool) {
        if may && !self.acting.swap(may, std::sync::atomic::Ordering::AcqRel) {
            self.with(|m| m.written.clear());
        }
        self.acting.store(may, std::sync::atomic::Ordering::Release);
    }
}

/// Starts the controller.
pub fn spawn(ctx: Context) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shared = Shared::default();
        // The caches, the scaling loops' notes, a catalog change (minNodes waits for the first) and the
        // clock wake this controller.
        let (notes, catalog) = (ctx.notes.clone(), ctx.catalog.clone());
        ctx.cluster
            .on_change(&[notes.waker(), catalog.changed()], || async {
                let may = ctx.may_act() && !ctx.shutdown.is_stopping();
                shared.acting(may);
                if may {
                    pass(&ctx, &shared).await;
                }
                IDLE
            })
            .await;
    })
}

async fn pass(ctx: &Context, shared: &Shared) {
    let Some(_work) = ctx.shutdown.start_work() else { return };
    let groups: Vec<NodeGroup> = ctx.cluster.nodegroups.read().values().map(|e| e.group.clone()).collect();
    let vpsienodes: Vec<VPSieNode> = ctx.cluster.vpsienodes.read().values().map(|v| (**v).clone()).collect();
    // Forget writes the cache now shows, or that are old enough that it must.
    shared.with(|m| {
        let seen: HashSet<String> = vpsienodes.iter().map(ResourceExt::name_any).collect();
        m.created.retain(|name, (_, at)| !seen.contains(name) && at.elapsed() < CACHE_LAG);
        m.deleted.retain(|name, at| seen.contains(name) && at.elapsed() < CACHE_LAG);
    });
    // Read once per pass for every group: Ready Node names, since when the others are not, and offering
    // prices.
    let (ready_nodes, not_ready_since) = {
        let nodes = ctx.cluster.nodes.read();
        let ready = nodes.values().filter(|n| n.model.ready).map(|n| n.model.name.clone()).collect();
        let since: HashMap<String, jiff::Timestamp> =
            nodes.values().filter_map(|n| n.not_ready_since.map(|t| (n.model.name.clone(), t))).collect();
        (ready, since)
    };
    // Repair's cluster-wide guard: the share of every group's Ready-phase members whose Node is NotReady.
    let members_with_nodes: Vec<&str> = vpsienodes
        .iter()
        .filter(|v| is_live(v) && v.status.as_ref().is_some_and(|s| s.phase == VPSieNodePhase::Ready))
        .filter_map(|v| v.status.as_ref().and_then(|s| s.node_name.as_deref()))
        .collect();
    let unhealthy = members_with_nodes.iter().filter(|n| not_ready_since.contains_key(**n)).count();
    let seen = Seen {
        repair_off: repair::cluster_blocked(unhealthy, members_with_nodes.len()),
        ready_nodes,
        not_ready_since,
        prices: ctx.catalog.offers().into_iter().map(|o| (o.identifier, o.monthly_price)).collect(),
    };
    let (vpsienodes, seen) = (&vpsienodes, &seen);
    futures::stream::iter(&groups)
        .for_each_concurrent(GROUPS_AT_ONCE, |group| async move {
            if let Err(e) = reconcile(ctx, shared, group, vpsienodes, seen).await {
                metrics::counter!(RECONCILE_ERRORS, "controller" => "nodegroup", "error" => e.metric_label())
                    .increment(1);
                tracing::warn!(nodegroup = %group.name_any(), error = %e, "NodeGroup reconcile failed; retrying");
            }
        })
        .await;
}

/// What every group's status reads of the cluster, gathered once per pass.
struct Seen {
    /// Names of the Ready Nodes.
    ready_nodes: HashSet<String>,
    /// Since when each Node that is not Ready has not been.
    not_ready_since: HashMap<String, jiff::Timestamp>,
    /// Why repair is off in every group this pass, if it is.
    repair_off: Option<String>,
    /// Monthly price by offering identifier.
    prices: HashMap<String, f64>,
}

async fn reconcile(ctx: &Context, shared: &Shared, group: &NodeGroup, all: &[VPSieNode], seen: &Seen) -> Result<()> {
    let name = group.name_any();
    let groups: Api<NodeGroup> = Api::all(ctx.client.clone());
    let vns: Api<VPSieNode> = Api::all(ctx.client.clone());
    let members: Vec<VPSieNode> = all.iter().filter(|v| v.spec.node_group_name == name).cloned().collect();
    let has_finalizer = group.finalizers().iter().any(|f| f == FINALIZER_NODEGROUP);

    let removing_total = all.iter().filter(|v| is_removing(v)).count();
    if let Some(deleted_at) = group.metadata.deletion_timestamp.as_ref() {
        if !has_finalizer {
            return Ok(());
        }
        // Under the group's disruption budget and the removal cap, emptiest first; once the group's
        // terminationGracePeriodSeconds has passed since its deletion, every remaining member's removal
        // starts at once (each still drained, PDBs respected, until its own deadline), so a budget of 0 or
        // a used-up cap cannot hold a deleted group for good.
        let grace = jiff::SignedDuration::from_secs(i64::from(group.spec.termination_grace_period_seconds.max(0)));
        let deadline_passed = jiff::Timestamp::now() >= deleted_at.0 + grace;
        let staying: Vec<&VPSieNode> = members.iter().filter(|v| !is_removing(v)).collect();
        let slots = if deadline_passed {
            staying.len()
        } else {
            let c = counts(&members);
            removal_slots(group, c, removing_total, ctx.config.max_concurrent_removals, jiff::Timestamp::now())
        };
        let workload_pods = ctx.cluster.workload_pods_by_node();
        let ranked: Vec<Member> = staying.iter().map(|v| member(&workload_pods, v)).collect();
        for victim in over_max(&ranked, slots) {
            if let Some(v) = staying.iter().find(|v| v.name_any() == victim) {
                delete_member(ctx, shared, &vns, group, v, "its NodeGroup is being deleted").await?;
            }
        }
        if members.is_empty() && shared.with(|m| !m.created.values().any(|(g, _)| g == &name)) {
            set_finalizer(&groups, group, FINALIZER_NODEGROUP, false).await?;
            tracing::info!(nodegroup = %name, "every node removed; NodeGroup finalizer released");
        }
        return Ok(());
    }
    if !has_finalizer {
        set_finalizer(&groups, group, FINALIZER_NODEGROUP, true).await?;
    }

    let now = jiff::Timestamp::now();
    // A runaway pause a previous process began is taken up again, so this status keeps it.
    if ctx.notes.get(&name).paused.is_none()
        && let Some(p) = crate::scale_up::runaway::pause_from_status(group, ctx.config.runaway.backoff, now)
    {
        ctx.notes.update(&name, |n| n.paused = Some(p));
    }
    let uid = group.uid().unwrap_or_default();
    let previous =
        shared.with(|m| m.written.get(&uid).cloned()).unwrap_or_else(|| group.status.clone().unwrap_or_default());

    // Failed nodes: back their offering off and replace them.
    let mut new_backoff = Vec::new();
    for v in members.iter().filter(|v| v.metadata.deletion_timestamp.is_none()) {
        let Some(st) = v.status.as_ref().filter(|s| s.phase == VPSieNodePhase::Failed) else { continue };
        let reason = st.last_error.clone().unwrap_or_else(|| "failed".into());
        // A configuration failure is no offering's fault: nothing is backed off.
        let configuration = st.conditions.iter().any(|c| c.reason == FailureKind::Configuration.reason());
        new_backoff.extend((!configuration).then(|| OfferingBackoff {
            offering_id: v.spec.offering_id.clone(),
            until: Time(now + plan::BACKOFF),
            reason: reason.clone(),
        }));
        delete_member(ctx, shared, &vns, group, v, &format!("it failed: {reason}")).await?;
    }

    // Broken nodes: replaced first when the group has room, then removed (involuntary). A failure here is
    // said and retried next pass; it does not hold the group's minNodes, maxNodes or status back.
    let repair_blocked = match repair_broken(ctx, shared, &vns, group, &members, seen, now).await {
        Ok(blocked) => blocked,
        Err(e) => {
            tracing::warn!(nodegroup = %name, error = %e, "node repair failed; retrying next pass");
            None
        }
    };

    // Size: VPSieNodes that count, including those this process created that the cache lacks.
    let deleted = shared.deleted();
    let (live, count) = shared.size(&name, &members);
    let min = usize::try_from(group.spec.min_nodes).unwrap_or(0);
    let max = usize::try_from(group.spec.max_nodes).unwrap_or(0);
    let mut problem = None;
    let (mut scaled_up, mut scaled_down) = (false, false);
    if count < min {
        let mut with_backoff = group.clone();
        with_backoff.status = Some(NodeGroupStatus {
            offering_backoff: merged_backoff(&previous, &new_backoff, now),
            ..previous.clone()
        });
        match choose_offering(ctx, &with_backoff, now) {
            Ok(offering) => {
                for _ in count..min {
                    let vn = new_member(ctx, group, &offering)?;
                    // A template or join Secret that cannot work stops the group here, with one clear
                    // condition, instead of failing one VPSieNode after another.
                    if vn.spec.provisioning_mode == ProvisioningMode::Vm {
                        match render(ctx, Some(group), &vn.spec).await {
                            Ok(_) => {}
                            Err(UserDataError::Configuration(p)) => {
                                problem = Some(p);
                                break;
                            }
                            Err(UserDataError::Api(e)) => return Err(e.into()),
                        }
                    }
                    let why = format!("to reach minNodes {min}");
                    create_member(ctx, shared, &vns, group, vn, &why).await?;
                    scaled_up = true;
                }
            }
            Err(p) => problem = Some(p),
        }
    } else if count > max {
        // Under the group's disruption budget and the removal cap: the rest goes in later passes.
        let slots = removal_slots(group, counts(&members), removing_total, ctx.config.max_concurrent_removals, now);
        let workload_pods = ctx.cluster.workload_pods_by_node();
        let members_ranked: Vec<Member> = live.iter().map(|v| member(&workload_pods, v)).collect();
        for victim in over_max(&members_ranked, (count - max).min(slots)) {
            if let Some(v) = live.iter().find(|v| v.name_any() == victim) {
                delete_member(ctx, shared, &vns, group, v, &format!("the group is above maxNodes {max}")).await?;
                scaled_down = true;
            }
        }
    }

    // An involuntary mark whose delete never happened (it failed, or the process stopped in between) is
    // taken back: a later voluntary removal of that member (scale-down, by hand) must stay voluntary.
    let deleted_now = shared.deleted();
    for v in members.iter().filter(|v| !is_removing(v) && !deleted_now.contains(&v.name_any())) {
        if v.annotations().contains_key(ANNOTATION_REMOVAL) {
            let patch = serde_json::json!({ "metadata": { "annotations": { ANNOTATION_REMOVAL: null } } });
            match vns.patch(&v.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    tracing::info!(vpsienode = %v.name_any(), "took back an involuntary-removal mark left by a delete that did not happen")
                }
                Err(e) => {
                    tracing::warn!(vpsienode = %v.name_any(), error = %e, "taking back an involuntary-removal mark failed; retrying next pass")
                }
            }
        }
    }

    let fresh: Vec<VPSieNode> = members.into_iter().filter(|v| !deleted.contains(&v.name_any())).collect();
    let observed = status::Observed {
        group,
        previous: &previous,
        members: &fresh,
        ready_nodes: &seen.ready_nodes,
        prices: &seen.prices,
        new_backoff: &new_backoff,
        scaled_up,
        scaled_down,
        problem: problem.as_deref(),
        repair_blocked: repair_blocked.as_deref(),
        note: &ctx.notes.get(&name),
        now,
    };
    let next = status::compute(&observed);
    if next != previous || group.status.as_ref() != Some(&next) {
        status::write(&groups, group, &next).await?;
        shared.with(|m| m.written.insert(uid, next));
    }
    if let Some(p) = problem {
        ctx.events.publish(&group.object_ref(&()), true, "ScaleUpBlocked", "Reconcile", &p).await;
    }
    if let Some(why) = repair_blocked {
        ctx.events.publish(&group.object_ref(&()), true, "RepairBlocked", "Repair", &why).await;
    }
    Ok(())
}

/// Repairs the group's broken members (see [`repair`]): for each, a replacement VPSieNode on the same
/// offering first when the group is below `maxNodes`, then the broken one is deleted (involuntary removal).
/// Returns why repair is blocked, if it is.
async fn repair_broken(
    ctx: &Context,
    shared: &Shared,
    vns: &Api<VPSieNode>,
    group: &NodeGroup,
    members: &[VPSieNode],
    seen: &Seen,
    now: jiff::Timestamp,
) -> Result<Option<String>> {
    let deleted = shared.deleted();
    let counted: Vec<&VPSieNode> = members.iter().filter(|v| is_live(v) || is_removing(v)).collect();
    let health: Vec<repair::Health> = counted
        .iter()
        .map(|v| {
            let status = v.status.as_ref();
            let node = status.and_then(|s| s.node_name.as_ref());
            repair::Health {
                name: v.name_any(),
                phase: status.map(|s| s.phase).unwrap_or_default(),
                not_ready_since: node.and_then(|n| seen.not_ready_since.get(n)).copied(),
                removing: is_removing(v) || deleted.contains(&v.name_any()),
            }
        })
        .collect();
    let period = jiff::SignedDuration::from_secs(i64::from(group.spec.repair_after_seconds.max(0)));
    let victims = match repair::plan(&health, period, now) {
        repair::Repair::Nothing => return Ok(None),
        repair::Repair::Replace(_) if seen.repair_off.is_some() => {
            tracing::debug!(nodegroup = %group.name_any(), why = ?seen.repair_off, "repair off everywhere");
            return Ok(seen.repair_off.clone());
        }
        repair::Repair::Blocked { unhealthy, allowed, members } => {
            let why = format!(
                "{unhealthy} of {members} nodes are NotReady and at least one for more than {}s; repair replaces at \
                 most {allowed} at once ({}%): no node is removed while this many are NotReady",
                period.as_secs(),
                repair::REPAIR_SHARE_PERCENT
            );
            // Said by the condition and a (folded) Event; a warning on every pass would flood the log.
            tracing::debug!(nodegroup = %group.name_any(), unhealthy, allowed, "{why}");
            return Ok(Some(why));
        }
        repair::Repair::Replace(victims) => victims,
    };
    let max = usize::try_from(group.spec.max_nodes).unwrap_or(0);
    let (_, mut size) = shared.size(&group.name_any(), members);
    for victim in victims {
        let Some(broken) = counted.iter().find(|v| v.name_any() == victim) else { continue };
        // One replacement per broken node, whatever happened since it was created (a failed delete, a
        // restart): it names the node it repairs.
        let replaced = members.iter().any(|v| v.annotations().get(ANNOTATION_REPAIRS) == Some(&victim));
        if size < max && !replaced {
            let mut replacement = new_member(ctx, group, &broken.spec.offering_id)?;
            replacement.annotations_mut().insert(ANNOTATION_REPAIRS.to_owned(), victim.clone());
            let note = format!("replaces VPSieNode {victim}, whose Node is NotReady (repair)");
            create_member(ctx, shared, vns, group, replacement, &note).await?;
            size += 1;
        }
        let why = format!("repair: its Node has been NotReady for more than {}s", period.as_secs());
        delete_member(ctx, shared, vns, group, broken, &why).await?;
        size -= 1;
    }
    Ok(None)
}

fn merged_backoff(previous: &NodeGroupStatus, new: &[OfferingBackoff], now: jiff::Timestamp) -> Vec<OfferingBackoff> {
    let mut out: Vec<OfferingBackoff> = previous.offering_backoff.iter().filter(|b| b.until.0 > now).cloned().collect();
    out.extend(new.iter().cloned());
    out
}

/// The offering of a node added to reach `minNodes`, through the decision core's group template.
fn choose_offering(ctx: &Context, group: &NodeGroup, now: jiff::Timestamp) -> std::result::Result<String, String> {
    if group.spec.provisioning.as_ref().map(|p| p.mode) == Some(ProvisioningMode::ManagedCluster) {
        return managed_offering(group).ok_or_else(|| "spec.offeringIDs must name the managed Kubernetes size".into());
    }
    let catalog = ctx.catalog.offers();
    if catalog.is_empty() {
        return Err("the VPSie offering catalog is not loaded yet".into());
    }
    let model = group_model(group, &catalog, &[], 0, now)?;
    let preferred = preferred_offering(group, &catalog);
    offering_for_min(&model, preferred.as_deref())
        .ok_or_else(|| "every offering of the group is backed off after failures".into())
}

fn member(workload_pods: &HashMap<Arc<str>, usize>, v: &VPSieNode) -> Member {
    let phase = v.status.as_ref().map(|s| s.phase).unwrap_or_default();
    let node = v.status.as_ref().and_then(|s| s.node_name.as_deref());
    let workload_pods = node.and_then(|n| workload_pods.get(n)).copied().unwrap_or(0);
    Member { name: v.name_any(), phase, workload_pods }
}

/// A fresh host name `<group>-<5 random>` (63 characters at most).
fn new_name(group: &str) -> Result<String> {
    use ring::rand::SecureRandom as _;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = [0u8; 5];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Task("no randomness for a node name".into()))?;
    let suffix: String = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    let base: String = group.chars().take(57).collect::<String>().trim_end_matches('-').to_owned();
    Ok(format!("{base}-{suffix}"))
}

/// A new VPSieNode of `group` on `offering`, not yet created.
pub(crate) fn new_member(ctx: &Context, group: &NodeGroup, offering: &str) -> Result<VPSieNode> {
    let name = new_name(&group.name_any())?;
    let spec = &group.spec;
    let owner = OwnerReference {
        api_version: "autoscaler.vpsie.com/v1alpha1".into(),
        kind: "NodeGroup".into(),
        name: group.name_any(),
        uid: group.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    let vn = VPSieNode {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(
                [(LABEL_NODEGROUP.to_owned(), group.name_any()), (LABEL_MANAGED.to_owned(), "true".to_owned())].into(),
            ),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: VPSieNodeSpec {
            node_group_name: group.name_any(),
            offering_id: offering.to_owned(),
            datacenter_id: spec.datacenter_id.clone(),
            os_image_id: spec.os_image_id.clone(),
            hostname: name.clone(),
            provisioning_mode: spec.provisioning.as_ref().map(|p| p.mode).unwrap_or_default(),
            ssh_key_ids: if spec.ssh_key_ids.is_empty() {
                ctx.config.default_ssh_key_ids.clone()
            } else {
                spec.ssh_key_ids.clone()
            },
            tags: spec.tags.clone(),
        },
        status: None,
    };
    Ok(vn)
}

/// Creates `vn`; `why` ends the Event's note ("added VPSieNode x (offering) <why>").
async fn create_member(
    ctx: &Context,
    shared: &Shared,
    api: &Api<VPSieNode>,
    group: &NodeGroup,
    vn: VPSieNode,
    why: &str,
) -> Result<()> {
    let name = vn.name_any();
    let offering = vn.spec.offering_id.clone();
    api.create(&PostParams::default(), &vn).await?;
    shared.with(|m| m.created.insert(name.clone(), (group.name_any(), tokio::time::Instant::now())));
    let note = format!("added VPSieNode {name} ({}) {why}", ctx.catalog.name_of(&offering));
    tracing::info!(nodegroup = %group.name_any(), vpsienode = %name, offering, why, "VPSieNode created");
    ctx.events.publish(&group.object_ref(&()), false, "ScaledUp", "Reconcile", &note).await;
    Ok(())
}

async fn delete_member(
    ctx: &Context,
    shared: &Shared,
    api: &Api<VPSieNode>,
    group: &NodeGroup,
    v: &VPSieNode,
    why: &str,
) -> Result<()> {
    let name = v.name_any();
    if shared.with(|m| m.deleted.contains_key(&name)) {
        return Ok(());
    }
    // Every removal this controller makes must happen (failed node, above maxNodes, group deleted): the
    // lifecycle drains it with the involuntary policy. Said before the delete, so the lifecycle never sees
    // the deletion without it; a mark whose delete did not happen is taken back by a later pass.
    if v.annotations().get(ANNOTATION_REMOVAL).is_none_or(|r| r != REMOVAL_INVOLUNTARY) {
        let patch = serde_json::json!({ "metadata": { "annotations": { ANNOTATION_REMOVAL: REMOVAL_INVOLUNTARY } } });
        match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    shared.with(|m| m.deleted.insert(name.clone(), tokio::time::Instant::now()));
    tracing::info!(nodegroup = %group.name_any(), vpsienode = %name, why, "VPSieNode deleted");
    ctx.events
        .publish(&group.object_ref(&()), false, "ScaledDown", "Reconcile", &format!("removing VPSieNode {name}: {why}"))
        .await;
    Ok(())
}
