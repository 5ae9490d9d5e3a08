//! The VPSieNode controller: each VPSieNode from create request to a Ready Node, and back to nothing.
//!
//! It runs in passes: on any change to VPSieNodes or Nodes, after a drain ends, or when the earliest
//! requeue is due. A pass lists VPSie once ([`crate::provision::Pass`]) and steps every VPSieNode
//! through [`phase::next`], a pure function; [`reconcile`] carries the step out. Only the leader runs
//! passes, and never in `--dry-run`.

pub mod listing;
pub mod matching;
pub mod phase;
#[cfg(test)]
mod phase_tests;
pub mod reconcile;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use autoscaler_api::nodegroup::ProvisioningMode;
use autoscaler_api::{VPSieNode, VPSieNodePhase, VPSieNodeStatus};
use kube::ResourceExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::context::Context;
use crate::provision::Pass;
use crate::telemetry::metrics::RECONCILE_ERRORS;
use phase::DrainState;

/// The longest a pass waits when nothing asks for an earlier one.
const IDLE: Duration = Duration::from_secs(10);
/// How long a VPSie listing serves passes while every VPSieNode is Ready and none is going away. Passes
/// run on every Node change (heartbeats included); listing each time would spend the VPSie request budget
/// that the next scale-up's creates need.
const STEADY_LISTING: Duration = Duration::from_secs(30);
/// How long a listing serves passes while nodes are being created (a scale-up changes VPSieNodes and Nodes
/// many times a second). A listing never shows a VM this process asked for and the API has not listed yet,
/// but the listing carries this process's own create requests forward, so nothing is asked for twice; a
/// VM becoming active is seen up to this much later. Deletions and failures always list afresh: a
/// finalizer is released only on a listing made after the delete.
const GROWING_LISTING: Duration = Duration::from_secs(2);
/// How long a listing serves passes while a VM seen before is missing from listings.
const MISSING_LISTING: Duration = Duration::from_secs(5);

/// What the controller remembers between passes (lost on restart, rebuilt from status and listings).
#[derive(Debug, Default)]
pub struct Memory {
    /// The status this process last wrote per VPSieNode uid. The cache may lag behind a write for a few
    /// milliseconds; a pass reading the old status could send a second create, so the written status wins
    /// (this controller is the status's only writer).
    written: HashMap<String, VPSieNodeStatus>,
    /// VPSieNodes (uid) this process sent a create for: never twice.
    requested: std::collections::HashSet<String>,
    /// Drains by VPSieNode uid.
    drains: HashMap<String, DrainState>,
    /// Failed drains in a row by VPSieNode uid (sets the retry delay).
    drain_failures: HashMap<String, u32>,
    /// The last VPSie listing, with when it was made.
    listing: Option<(tokio::time::Instant, vpsie_client::Fleet)>,
    /// VMs seen before that listings lack, by VPSieNode uid.
    missing: HashMap<String, MissingVm>,
    /// When a distrusted listing was last reported by Event.
    distrust_reported: Option<tokio::time::Instant>,
}

/// A VM seen before that listings lack: since when, and the last direct lookup.
#[derive(Debug, Clone)]
struct MissingVm {
    since: jiff::Timestamp,
    /// When it was last looked up, and what that lookup said.
    looked_up: Option<(tokio::time::Instant, Looked)>,
    /// Since when lookups have failed without an answer (cleared by any answer).
    failing_since: Option<jiff::Timestamp>,
}

/// What the last lookup of a missing VM said.
#[derive(Debug, Clone)]
enum Looked {
    /// The VM exists: the listing is incomplete.
    Found(crate::provision::Instance),
    /// No such VM.
    NotFound,
    /// The lookup failed (no answer about the VM).
    Failed,
}

/// Shared between passes and drain tasks.
#[derive(Debug, Default, Clone)]
pub struct Shared {
    memory: Arc<Mutex<Memory>>,
    wake: Arc<Notify>,
    /// Whether the last pass could act (leader, not dry-run).
    acting: Arc<std::sync::atomic::AtomicBool>,
}

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(&mut self.memory.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The freshest status of `vn`: the one this process wrote last, else the cached one.
    pub fn status_of(&self, vn: &VPSieNode) -> VPSieNodeStatus {
        let uid = vn.uid().unwrap_or_default();
        self.with(|m| m.written.get(&uid).cloned()).unwrap_or_else(|| vn.status.clone().unwrap_or_default())
    }

    fn remember(&self, vn: &VPSieNode, status: &VPSieNodeStatus) {
        let uid = vn.uid().unwrap_or_default();
        self.with(|m| m.written.insert(uid, status.clone()));
    }

    fn drain_state(&self, vn: &VPSieNode) -> DrainState {
        let uid = vn.uid().unwrap_or_default();
        self.with(|m| m.drains.get(&uid).cloned()).unwrap_or_default()
    }

    fn set_drain(&self, uid: &str, state: DrainState) {
        self.with(|m| m.drains.insert(uid.to_owned(), state));
        self.wake.notify_one();
    }

    /// Records whether this pass may act. On becoming able to act again (leadership regained) the statuses
    /// remembered from before are dropped: another replica may have written newer ones meanwhile, and the
    /// cache has them. Drains of this process keep their state: they are still this process's tasks.
    fn acting(&self, may: bool) {
        let before = self.acting.swap(may, std::sync::atomic::Ordering::AcqRel);
        if may && !before {
            self.with(|m| {
                m.written.clear();
                m.requested.clear();
                // Since-when memories are from before; another replica acted meanwhile.
                m.missing.clear();
            });
        }
    }

    /// Forgets VPSieNodes that no longer exist.
    fn retain(&self, live: &std::collections::HashSet<String>) {
        self.with(|m| {
            m.written.retain(|k, _| live.contains(k));
            m.requested.retain(|k| live.contains(k));
            m.drains.retain(|k, _| live.contains(k));
            m.drain_failures.retain(|k, _| live.contains(k));
            m.missing.retain(|k, _| live.contains(k));
        });
    }
}

/// Starts the controller.
pub fn spawn(ctx: Context) -> JoinHandle<()> {
    tokio::spawn(run(ctx, Shared::default()))
}

async fn run(ctx: Context, shared: Shared) {
    let wake = shared.wake.clone();
    ctx.cluster
        .on_change(&[&wake], || async {
            let may = ctx.may_act() && !ctx.shutdown.is_stopping();
            shared.acting(may);
            if may { pass(&ctx, &shared).await.min(IDLE) } else { IDLE }
        })
        .await;
}

/// One pass over every VPSieNode; returns when the next is due at the latest.
pub async fn pass(ctx: &Context, shared: &Shared) -> Duration {
    let Some(client) = ctx.vpsie.client() else {
        tracing::debug!("no VPSie credentials: lifecycle pass skipped");
        return IDLE;
    };
    let Some(_work) = ctx.shutdown.start_work() else { return IDLE };
    let mut all: Vec<VPSieNode> = ctx.cluster.vpsienodes.read().values().map(|v| (**v).clone()).collect();
    // Oldest request first: managed additions then claim nodes in request order, the same on every pass.
    all.sort_by_cached_key(|v| (shared.status_of(v).created_at.map(|t| t.0), v.name_any()));
    shared.retain(&all.iter().filter_map(|v| v.uid()).collect());
    // A recent listing serves while nothing is going away: long when every VPSieNode is Ready, briefly
    // while nodes are being created.
    let going = all
        .iter()
        .any(|v| v.metadata.deletion_timestamp.is_some() || shared.status_of(v).phase == VPSieNodePhase::Failed);
    let steady = all.iter().all(|v| shared.status_of(v).phase == VPSieNodePhase::Ready);
    let fresh_for = if listing::any_missing(shared, &all) {
        // A VM is missing: confirm with fresh listings, but not on every Node event.
        MISSING_LISTING
    } else if steady {
        STEADY_LISTING
    } else {
        GROWING_LISTING
    };
    let recent =
        shared.with(|m| m.listing.as_ref().filter(|(at, _)| at.elapsed() < fresh_for).map(|(at, f)| (*at, f.clone())));
    let mut pass = Pass::new(client);
    let reused = match recent {
        Some((at, fleet)) if !going => {
            pass = pass.with_fleet(fleet);
            Some(at)
        }
        _ => None,
    };
    pass.claimed = all
        .iter()
        .filter(|v| v.spec.provisioning_mode == ProvisioningMode::ManagedCluster)
        .filter_map(|v| shared.status_of(v).vps_id)
        .collect();
    // Judge the listing by the VMs it lacks before anything acts on it. A listing that fails is said once
    // (not once per VPSieNode), and the plain-VM nodes wait for the next pass.
    let known = listing::known(&all, shared);
    if !known.is_empty() {
        match pass.fleet().await {
            Ok(fleet) => {
                if let Some(distrust) = listing::judge(&known, |h| fleet.find(h).is_some()) {
                    listing::report(ctx, shared, &distrust).await;
                    pass.listing_distrusted = true;
                }
            }
            Err(e) => {
                metrics::counter!(RECONCILE_ERRORS, "controller" => "vpsienode", "error" => e.metric_label())
                    .increment(1);
                tracing::warn!(error = %e, "listing VPSie VMs failed; VM nodes wait for the next pass");
                pass.listing_failed = true;
            }
        }
    }
    // Workload pods are counted only for the drain decision of a VPSieNode being deleted.
    let index = matching::Index::build(&ctx.cluster, all.iter().any(|v| v.metadata.deletion_timestamp.is_some()));
    let mut next = IDLE;
    for vn in &all {
        let after = reconcile::reconcile(ctx, shared, &mut pass, &index, vn).await;
        next = next.min(after);
    }
    // A distrusted listing serves no later pass.
    if let Some(fleet) = pass.listed().filter(|_| !pass.listing_distrusted) {
        let at = reused.unwrap_or_else(tokio::time::Instant::now);
        shared.with(|m| m.listing = Some((at, fleet.clone())));
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_api::{VPSieNodePhase, VPSieNodeSpec};

    #[test]
    fn written_statuses_win_over_the_cache_until_leadership_is_regained() {
        let mut vn = VPSieNode::new(
            "g-abcde",
            VPSieNodeSpec {
                node_group_name: "g".into(),
                offering_id: "o".into(),
                datacenter_id: "dc".into(),
                os_image_id: "os".into(),
                hostname: "g-abcde".into(),
                provisioning_mode: ProvisioningMode::Vm,
                ssh_key_ids: vec![],
                tags: vec![],
            },
        );
        vn.metadata.uid = Some("uid-1".into());
        let shared = Shared::default();
        shared.acting(true);
        let written = VPSieNodeStatus { phase: VPSieNodePhase::Provisioning, ..VPSieNodeStatus::default() };
        shared.remember(&vn, &written);
        assert_eq!(shared.status_of(&vn).phase, VPSieNodePhase::Provisioning, "the cache (no status) lags");
        shared.acting(true);
        assert_eq!(shared.status_of(&vn).phase, VPSieNodePhase::Provisioning, "still leading: kept");
        shared.acting(false);
        shared.acting(true);
        assert_eq!(shared.status_of(&vn).phase, VPSieNodePhase::Pending, "leadership regained: the cache wins");
    }
}
