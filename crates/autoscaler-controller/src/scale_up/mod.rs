//! Scale-up: pods the scheduler marks `PodScheduled=False/Unschedulable` (read from the pod cache, not
//! from Events, which are lossy and late) are batched ([`batch`]), planned by the decision core against
//! existing and in-flight capacity, and the planned VPSieNodes are created in one step. Pods get a
//! `TriggeredScaleUp` or `NotTriggerScaleUp` Event ([`explain`]), groups a `lastDecision`, and groups that
//! run away ([`runaway`]) stop launching. Headroom ([`headroom`]) adds a node ahead of demand. Only the
//! leader decides; `--dry-run` decides and reports without creating anything.

pub mod apply;
pub mod batch;
pub mod explain;
pub mod headroom;
pub mod runaway;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use autoscaler_api::NodeGroup;
use autoscaler_api::constants::ANNOTATION_CREATED_FOR;
use autoscaler_api::nodegroup::ProvisioningMode;
use autoscaler_decision::ScaleUpPlan;
use kube::ResourceExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::cluster::snapshot::{self, Snapshot};
use crate::context::Context;
use crate::decisions::{Notes, correlation_id};
use crate::provision::user_data::{UserDataError, render};
use apply::{Apply, NewNode};
use batch::Batch;

/// A decision runs at least this often while anything is pending or a group may want headroom (retries
/// after a backoff, a failure or a pause).
const PERIOD: Duration = Duration::from_secs(10);
/// How long a decision waits for the VPSieNodes the last one created to show in the cache (so it counts
/// them as in-flight capacity and never plans them twice).
const CACHE_WAIT: Duration = Duration::from_secs(5);
/// The pause after a wake-up that folds a burst of cache changes into one look at the pending pods.
const SETTLE: Duration = Duration::from_millis(20);
pub use runaway::RUNAWAY_REASON;

/// Starts the loop.
pub fn spawn(ctx: Context) -> JoinHandle<()> {
    tokio::spawn(async move { ScaleUp::new(ctx).run().await })
}

/// The loop's memory.
struct ScaleUp {
    ctx: Context,
    notes: Notes,
    batch: Batch,
    /// Pending pods (`namespace/name`) and when this replica first saw each pending.
    first_seen: HashMap<String, Instant>,
    /// The pending set at the last look, to tell new pods from old.
    observed: BTreeSet<String>,
    /// The pending set the last decision covered.
    decided: BTreeSet<String>,
    last_decision: Option<Instant>,
    /// What each pod was last told (Events are published only when it changes).
    told: HashMap<String, String>,
    /// VPSieNodes created and not yet seen in the cache.
    unseen: HashMap<String, Instant>,
    /// Launches of ours seen failed or unusable, by VPSieNode name: (group, created). Such VPSieNodes are
    /// deleted soon (a failed one by the NodeGroup controller, an empty one by scale-down); the guard still
    /// counts them for its window.
    unusable: HashMap<String, (String, jiff::Timestamp)>,
    /// The registered Nodes at the last look: a new one may change what the pending pods need.
    nodes: BTreeSet<String>,
    /// When each group last got a headroom node.
    headroom_at: HashMap<String, Instant>,
    /// What the last `--dry-run` decision would have added: nothing is created, so the next decision
    /// plans the same again; it is reported once.
    last_dry_run: Vec<NewNode>,
}

impl ScaleUp {
    fn new(ctx: Context) -> Self {
        Self {
            notes: ctx.notes.clone(),
            ctx,
            batch: Batch::default(),
            first_seen: HashMap::new(),
            observed: BTreeSet::new(),
            decided: BTreeSet::new(),
            last_decision: None,
            told: HashMap::new(),
            unseen: HashMap::new(),
            unusable: HashMap::new(),
            nodes: BTreeSet::new(),
            headroom_at: HashMap::new(),
            last_dry_run: Vec::new(),
        }
    }

    async fn run(mut self) {
        let ctx = self.ctx.clone();
        let window = ctx.config.scale_up_window;
        loop {
            let cluster = &ctx.cluster;
            let (pods, vns, groups, nodes) = (
                cluster.pods.notified(),
                cluster.vpsienodes.notified(),
                cluster.nodegroups.notified(),
                cluster.nodes.notified(),
            );
            let catalog = ctx.catalog.changed().notified();
            tokio::pin!(pods, vns, groups, nodes, catalog);
            catalog.as_mut().enable();
            pods.as_mut().enable();
            vns.as_mut().enable();
            groups.as_mut().enable();
            nodes.as_mut().enable();

            let now = Instant::now();
            self.look(now);
            let periodic = self.last_decision.is_none_or(|t| now.duration_since(t) >= PERIOD);
            let leading = ctx.leadership.is_leader() && !ctx.shutdown.is_stopping();
            let in_cache = self.unseen.values().all(|at| now.duration_since(*at) >= CACHE_WAIT);
            if leading && in_cache && (self.batch.is_due(window, now) || periodic) {
                self.decide().await;
                self.batch.close();
                self.decided = self.observed.clone();
                self.last_decision = Some(now);
                continue;
            }
            let next = self.batch.due_at(window).unwrap_or(now + PERIOD).max(now + Duration::from_millis(5));
            let next = if in_cache { next } else { next.min(now + Duration::from_millis(50)) };
            tokio::select! {
                () = &mut pods => {}
                () = &mut vns => {}
                () = &mut groups => {}
                () = &mut nodes => {}
                // Pods that waited for the catalog (none loaded, or not yet a group's datacenter) are
                // decided again at once.
                () = &mut catalog => if !self.observed.is_empty() { self.batch.saw(Instant::now()) },
                () = tokio::time::sleep_until(next) => {}
            }
            // Pods change all the time in a busy cluster: a burst of changes is one look.
            tokio::time::sleep(SETTLE).await;
        }
    }

    /// Reads the pending pods; new ones open or extend the batch.
    fn look(&mut self, now: Instant) {
        let pending: BTreeSet<String> = self
            .ctx
            .cluster
            .pods
            .read()
            .values()
            .filter(|p| p.node_name.is_none() && p.unschedulable_since.is_some() && !p.terminating)
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect();
        self.first_seen.retain(|k, _| pending.contains(k));
        self.told.retain(|k, _| pending.contains(k));
        for p in &pending {
            self.first_seen.entry(p.clone()).or_insert(now);
        }
        let nodes: BTreeSet<String> = self.ctx.cluster.nodes.read().keys().map(|k| k.to_string()).collect();
        let new_pods = pending != self.observed && pending.iter().any(|p| !self.decided.contains(p));
        if new_pods || (nodes != self.nodes && !pending.is_empty()) {
            self.batch.saw(now);
        }
        self.observed = pending;
        self.nodes = nodes;
        let cached: BTreeSet<String> = self.ctx.cluster.vpsienodes.read().keys().map(|k| k.to_string()).collect();
        self.unseen.retain(|name, _| !cached.contains(name.as_str()));
    }

    async fn decide(&mut self) {
        let Some(_work) = self.ctx.shutdown.start_work() else { return };
        let id = correlation_id();
        let span = tracing::info_span!("scale_up", decision = %id);
        self.decide_in(&id).instrument(span).await;
    }

    async fn decide_in(&mut self, id: &str) {
        let ctx = self.ctx.clone();
        let catalog = ctx.catalog.offers();
        if catalog.is_empty() {
            tracing::debug!("no scale-up decision: the VPSie catalog is not loaded yet");
            return;
        }
        let now = jiff::Timestamp::now();
        let mut snap = snapshot::build(&ctx.cluster, &catalog, now);
        let groups: BTreeMap<String, NodeGroup> =
            ctx.cluster.nodegroups.read().values().map(|e| (e.group.name_any(), e.group.clone())).collect();
        self.forget_old(&groups);
        let mut blocked = self.blocked(&groups, now);
        let mut plan = ScaleUpPlan::default();
        // Plan; a group the plan wants to grow that cannot (runaway, broken template) is blocked and the
        // plan is made again without it. Each round blocks at least one group, so this ends.
        for _ in 0..=groups.len() {
            block(&mut snap, &blocked);
            plan = match crate::planning::scale_up(Arc::new(snap.clone()), ctx.config.expander).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "scale-up plan failed");
                    return;
                }
            };
            let growing: BTreeSet<String> = plan.new_nodes.iter().map(|n| n.group.clone()).collect();
            let mut more = false;
            for g in growing {
                let Some(group) = groups.get(&g) else { continue };
                if let Some(why) = self.check_group(group, &snap, now).await {
                    blocked.insert(g, why);
                    more = true;
                }
            }
            if !more {
                break;
            }
        }
        if !snap.pending.is_empty() {
            tracing::info!(
                pending = snap.pending.len(),
                on_existing_or_in_flight = plan.on_existing.len(),
                new_nodes = plan.new_nodes.len(),
                left_pending = plan.unplaced.len(),
                blocked = ?blocked.keys().collect::<Vec<_>>(),
                "scale-up decision"
            );
        }
        let mut new_nodes: Vec<NewNode> = plan
            .new_nodes
            .iter()
            .map(|n| NewNode {
                group: n.group.clone(),
                offering: n.offering.clone(),
                pods: n.pods.clone(),
                created_for: "scale-up",
            })
            .collect();
        new_nodes.extend(self.headroom(&snap, &groups, &blocked, &plan, now));
        if ctx.config.dry_run {
            if new_nodes == self.last_dry_run {
                new_nodes.clear();
            } else {
                self.last_dry_run = new_nodes.clone();
            }
        }
        let apply = Apply { ctx: &ctx, notes: &self.notes, groups: &groups, id, now };
        let created = apply.create(&new_nodes, &self.first_seen).await;
        for name in &created {
            self.unseen.insert(name.name.clone(), Instant::now());
        }
        for n in &new_nodes {
            if n.created_for == "headroom" {
                self.headroom_at.insert(n.group.clone(), Instant::now());
            }
        }
        apply.report(&plan, &created, &blocked, &mut self.told).await;
    }

    /// Forgets unusable launches older than the guard's window or of groups that are gone.
    fn forget_old(&mut self, groups: &BTreeMap<String, NodeGroup>) {
        let window = jiff::SignedDuration::try_from(self.ctx.config.runaway.window).unwrap_or_default();
        let now = jiff::Timestamp::now();
        self.unusable.retain(|_, (g, at)| groups.contains_key(g) && now.duration_since(*at) < window);
    }

    /// Groups that may not grow now, with why: scale-up disabled, or paused by the runaway guard (in this
    /// replica's notes or, after a restart, in the group's condition).
    fn blocked(&self, groups: &BTreeMap<String, NodeGroup>, now: jiff::Timestamp) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, g) in groups {
            if !g.spec.scale_up_policy.enabled {
                out.insert(name.clone(), "spec.scaleUpPolicy.enabled is false".to_owned());
                continue;
            }
            let paused = self
                .notes
                .get(name)
                .paused
                .or_else(|| runaway::pause_from_status(g, self.ctx.config.runaway.backoff, now));
            if let Some(p) = paused.filter(|p| p.until > now) {
                out.insert(name.clone(), format!("{} (until {})", p.reason, p.until));
            }
        }
        out
    }

    /// Whether `group` may grow now: the runaway guard, then whether its nodes' user data can be rendered.
    async fn check_group(&mut self, group: &NodeGroup, snap: &Snapshot, now: jiff::Timestamp) -> Option<String> {
        let name = group.name_any();
        let guard = self.ctx.config.runaway;
        let mut launches = self.launches(group, snap);
        for l in launches.iter().filter(|l| l.unusable(now)) {
            self.unusable.insert(l.name.clone(), (name.clone(), l.created));
        }
        let live: BTreeSet<String> = launches.iter().map(|l| l.name.clone()).collect();
        launches.extend(self.unusable.iter().filter(|(n, (g, _))| *g == name && !live.contains(*n)).map(
            |(n, (_, created))| runaway::Launch {
                name: n.clone(),
                created: *created,
                registered: None,
                foreign_taint: false,
                runs_workload: false,
                failed: true,
            },
        ));
        if let Some(why) = runaway::trips(&guard, &launches, now) {
            let until =
                now.checked_add(jiff::SignedDuration::try_from(guard.backoff).unwrap_or_default()).unwrap_or(now);
            self.notes.update(&name, |n| n.paused = Some(crate::decisions::Pause { until, reason: why.clone() }));
            tracing::warn!(nodegroup = %name, why, "runaway guard: launches paused");
            metrics::counter!(crate::telemetry::metrics::SAFETY_CHECK_FAILURES, "check_type" => "runaway_guard", "nodegroup" => name.clone()).increment(1);
            let regarding = kube::Resource::object_ref(group, &());
            self.ctx.events.publish(&regarding, true, "LaunchesPaused", "ScaleUp", &why).await;
            return Some(why);
        }
        if group.spec.provisioning.as_ref().map(|p| p.mode) != Some(ProvisioningMode::ManagedCluster) {
            let probe = crate::nodegroup::new_member(&self.ctx, group, "probe").ok()?;
            match render(&self.ctx, Some(group), &probe.spec).await {
                Ok(_) => {}
                Err(UserDataError::Configuration(p)) => return Some(p),
                Err(UserDataError::Api(e)) => return Some(format!("its user data could not be read: {e}")),
            }
        }
        None
    }

    /// The group's launches for the runaway guard: VPSieNodes a scaling loop created, with whether they
    /// failed, whether their Node registered, carries a taint nobody declared and runs workload pods.
    fn launches(&self, group: &NodeGroup, snap: &Snapshot) -> Vec<runaway::Launch> {
        let group_taints: &[String] = &declared_taints(group);
        let group = group.name_any();
        let group = group.as_str();
        let nodes: HashMap<&str, &autoscaler_decision::Node> =
            snap.nodes.iter().filter(|n| !snap.in_flight.contains(&n.name)).map(|n| (n.name.as_str(), n)).collect();
        let registered: BTreeSet<String> = self.ctx.cluster.nodes.read().keys().map(|k| k.to_string()).collect();
        self.ctx
            .cluster
            .vpsienodes
            .read()
            .values()
            .filter(|v| v.spec.node_group_name == group && launched_by_us(v))
            .map(|v| {
                let name = v.name_any();
                let node = nodes.get(name.as_str());
                runaway::Launch {
                    registered: registered
                        .contains(&name)
                        .then(|| node.and_then(|n| jiff::Timestamp::from_second(n.created_at).ok()))
                        .flatten(),
                    foreign_taint: node.is_some_and(|n| foreign_taint(n, group_taints)),
                    runs_workload: node.is_some_and(|n| n.pods.iter().any(autoscaler_decision::Pod::needs_eviction)),
                    failed: v.status.as_ref().is_some_and(|s| s.phase == autoscaler_api::VPSieNodePhase::Failed),
                    created: v.metadata.creation_timestamp.as_ref().map_or_else(jiff::Timestamp::now, |t| t.0),
                    name,
                }
            })
            .collect()
    }

    /// One headroom node per group whose requested CPU or memory passes its `scaleUpPolicy` thresholds,
    /// at most once per stabilization window, when this decision adds nothing to it anyway.
    fn headroom(
        &self,
        snap: &Snapshot,
        groups: &BTreeMap<String, NodeGroup>,
        blocked: &BTreeMap<String, String>,
        plan: &ScaleUpPlan,
        now: jiff::Timestamp,
    ) -> Vec<NewNode> {
        let mut out = Vec::new();
        for model in &snap.groups {
            let Some(g) = groups.get(&model.name) else { continue };
            let policy = &g.spec.scale_up_policy;
            if blocked.contains_key(&model.name) || plan.new_nodes.iter().any(|n| n.group == model.name) {
                continue;
            }
            let window = Duration::from_secs(u64::try_from(policy.stabilization_window_seconds).unwrap_or(0));
            if self.headroom_at.get(&model.name).is_some_and(|at| at.elapsed() < window) {
                continue;
            }
            // After a restart, the group's newest headroom VPSieNode stands in for this replica's memory.
            let last = self
                .ctx
                .cluster
                .vpsienodes
                .read()
                .values()
                .filter(|v| v.spec.node_group_name == model.name)
                .filter(|v| v.annotations().get(ANNOTATION_CREATED_FOR).is_some_and(|c| c == "headroom"))
                .filter_map(|v| v.metadata.creation_timestamp.as_ref().map(|t| t.0))
                .max();
            if last.is_some_and(|t| now.duration_since(t).unsigned_abs() < window) {
                continue;
            }
            let t = headroom::Thresholds::from_percent(policy.cpu_threshold, policy.memory_threshold);
            let Some(why) = headroom::wanted(&model.name, t, &snap.nodes) else { continue };
            let preferred = g.spec.preferred_instance_type.as_deref();
            let Some(offering) = crate::nodegroup::plan::offering_for_min(model, preferred) else { continue };
            // Room by the group's usage, which counts every member (a NotReady node too): before, headroom
            // counted Ready nodes only and added a node to a group at maxNodes with a dead one, which the
            // NodeGroup controller then deleted, a VM each window.
            let usage = model.usage(&snap.nodes);
            if usage.nodes >= model.max_nodes {
                continue;
            }
            if let Some(o) = model.offerings.iter().find(|o| o.id == offering)
                && let Some(limit) = model.limit_exceeded(&usage, o)
            {
                tracing::debug!(nodegroup = %model.name, limit, "headroom node wanted but the group's limits forbid it");
                continue;
            }
            tracing::info!(nodegroup = %model.name, why, "headroom node wanted");
            out.push(NewNode { group: model.name.clone(), offering, pods: Vec::new(), created_for: "headroom" });
        }
        out
    }
}

/// Taint keys a node of `group` may carry by design: its taints, its startup taints, and those the
/// autoscaler and Kubernetes put on starting or leaving nodes.
fn declared_taints(group: &NodeGroup) -> Vec<String> {
    let spec = &group.spec;
    spec.taints
        .iter()
        .chain(&spec.startup_taints)
        .map(|t| t.key.clone())
        .chain(snapshot::STARTING_TAINTS.iter().map(|k| (*k).to_owned()))
        .chain(
            [
                autoscaler_api::constants::TAINT_TO_BE_DELETED,
                autoscaler_api::constants::TAINT_DELETION_CANDIDATE,
                "node.kubernetes.io/unschedulable",
            ]
            .map(str::to_owned),
        )
        .collect()
}

/// Whether `node` carries a scheduling taint outside `declared`.
fn foreign_taint(node: &autoscaler_decision::Node, declared: &[String]) -> bool {
    use autoscaler_decision::selectors::TaintEffect;
    node.taints.iter().any(|t| t.effect != TaintEffect::PreferNoSchedule && !declared.contains(&t.key))
}

/// Whether a scaling loop launched this VPSieNode (not the NodeGroup controller reaching minNodes).
fn launched_by_us(v: &autoscaler_api::VPSieNode) -> bool {
    v.annotations().get(ANNOTATION_CREATED_FOR).is_some_and(|c| c == "scale-up" || c == "headroom")
}

/// Takes every offering of a blocked group out of the plan (as if backed off); the refusal each pod gets
/// is rewritten with the real reason by [`explain`].
fn block(snap: &mut Snapshot, blocked: &BTreeMap<String, String>) {
    for g in snap.groups.iter_mut().filter(|g| blocked.contains_key(&g.name)) {
        g.backoff = g.offerings.iter().map(|o| o.id.clone()).collect();
    }
}
