//! The VPSieNode state machine as a pure function: what was observed in, the one next step out. No I/O
//! and no clock (the time is an argument), so every phase x observation is a table test; the reconcile
//! only carries the step out and writes status.
//!
//! Crash safety rests on two rules. A create is sent only right after the intent (`status.createdAt`) is
//! written, and never again for the same VPSieNode: a VM that does not show up is waited for until the
//! provisioning timeout, then the VPSieNode fails (a second create could duplicate a VM the API lists
//! late). And the finalizer is released only when the VM is confirmed gone: seen once, now absent from
//! both lists and not found by a direct lookup; or never requested; or absent past the listing grace after
//! its request (the orphan collector removes a VM that surfaces later still).
//!
//! Observations that destroy are confirmed first. A VM seen before that a listing lacks fails its node only
//! after a direct lookup finds none and [`GONE_GRACE`] has passed; a provisioned VM that is not running is
//! degraded, never a provisioning timeout (that timeout applies before `Provisioned` only).

use std::time::Duration;

use autoscaler_api::VPSieNodePhase;
use jiff::{SignedDuration, Timestamp};

use crate::provision::Machine;

/// What the VPSieNode's status already records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recorded {
    /// The phase.
    pub phase: VPSieNodePhase,
    /// When the create intent was written (the create was sent right after, or never).
    pub created_at: Option<Timestamp>,
    /// When the VM became active.
    pub provisioned_at: Option<Timestamp>,
    /// Whether the VM was ever seen created (then "not listed" means gone).
    pub machine_seen: bool,
}

/// The Node matched to the VPSieNode, as the lifecycle reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// Ready condition True.
    pub ready: bool,
    /// Some of the group's labels or taints are missing.
    pub missing_labels_or_taints: bool,
    /// Workload pods (not DaemonSet pods) bound to it; `None` when not counted (no deletion in the pass).
    pub workload_pods: Option<usize>,
}

impl NodeView {
    /// Whether it may run workload pods, from what is observed of it (not from the VPSieNode's phase): it
    /// is Ready, or pods are bound to it (or they were not counted: the safe side). Such a node is drained
    /// before it is deleted.
    pub fn may_serve(&self) -> bool {
        self.ready || self.workload_pods.is_none_or(|n| n > 0)
    }
}

/// Where the drain of the node stands (kept in memory: a restart drains again, which is idempotent).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DrainState {
    /// Not started.
    #[default]
    NotStarted,
    /// Running.
    Running,
    /// Failed; may be retried once `retry_at` has passed.
    Failed {
        /// Why (names the pod or PodDisruptionBudget).
        reason: String,
        /// When a retry may start.
        retry_at: Timestamp,
    },
    /// Every evictable pod is gone.
    Done,
}

/// A VM seen before that this pass's listing lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing {
    /// The first pass of the current run of passes that missed it (in memory: a restart starts the clock
    /// again, which only waits longer).
    pub since: Timestamp,
    /// The last direct lookup of the VM by its identifier answered "not found".
    pub confirmed: bool,
    /// This pass's listing was distrusted (it lacked too many known VMs): a VM is then gone only after
    /// [`GONE_GRACE_DISTRUSTED`].
    pub listing_distrusted: bool,
}

/// How a node being removed is drained: the two removal policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemovalPolicy {
    /// Scale-down, consolidation, a user's delete: the conservative drain (pods with local storage, without
    /// a controller or in kube-system without a budget block it), retried with no deadline; the node stays
    /// cordoned meanwhile.
    #[default]
    Voluntary,
    /// The node must go (its NodeGroup deleted, `maxNodes` lowered, a repair, a failed node): every pod
    /// that is not node-bound is evicted, PodDisruptionBudgets are respected until `deadline`, then the
    /// Node is deleted with what is left on it (pods of an unreachable node are not waited for longer).
    Involuntary {
        /// The removal's start plus the group's `terminationGracePeriodSeconds`.
        deadline: Timestamp,
    },
}

/// The group's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the create request to an active VM.
    pub provisioning: SignedDuration,
    /// From an active VM to a Ready Node.
    pub registration: SignedDuration,
}

/// Everything one decision reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed<'a> {
    /// The status so far.
    pub recorded: &'a Recorded,
    /// The VM (or managed node) as this pass's listing shows it (or a direct lookup, when the listing
    /// lacked a VM seen before and the lookup found it).
    pub machine: &'a Machine,
    /// Set when `machine` is [`Machine::NotListed`] for a VM seen before.
    pub missing: Option<Missing>,
    /// The matched Node.
    pub node: Option<&'a NodeView>,
    /// The VPSieNode is being deleted (its finalizer holds it).
    pub deleting: bool,
    /// The drain of its node.
    pub drain: &'a DrainState,
    /// The removal policy (read while deleting).
    pub removal: RemovalPolicy,
    /// The group's timeouts.
    pub timeouts: Timeouts,
    /// Now.
    pub now: Timestamp,
}

/// The one next thing to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Write the intent (phase Provisioning, `createdAt`), then send the create.
    Create,
    /// Nothing to do until something changes or `after` passes.
    Wait {
        /// What is awaited, for logs and status.
        why: String,
        /// When to look again at the latest.
        after: Duration,
    },
    /// Record a new phase with what was observed.
    Advance(VPSieNodePhase),
    /// Put the group's missing labels and taints on the Node.
    LabelNode,
    /// Give up: phase Failed with this reason.
    Fail(String),
    /// Drain the Node (phase Terminating).
    Drain,
    /// Delete the Node object (phase Deleting).
    DeleteNode,
    /// Delete the Node object with the pods still on it: an involuntary removal reached its deadline.
    DeleteNodeUndrained(String),
    /// Delete the VM (phase Deleting).
    DeleteMachine,
    /// Nothing is left: remove the finalizer.
    Release,
}

const SOON: Duration = Duration::from_secs(2);
const LATER: Duration = Duration::from_secs(10);

fn wait(why: impl Into<String>, after: Duration) -> Step {
    Step::Wait { why: why.into(), after }
}

/// How long a requested VM may stay absent from both VPSie lists (pending and created) before the request
/// counts as lost, and a deleted VPSieNode whose VM was never listed waits for it. VPSie lists a create as
/// pending within seconds; a request recorded but never sent (a crash or a leader change between the two)
/// would otherwise hold its node until the provisioning timeout (15 minutes by default). If the VM does
/// appear later, its VPSieNode is gone by then and the orphan sweep deletes it: the cost is a few minutes of
/// one VM, never a second VM for one node.
pub const LISTING_GRACE: SignedDuration = SignedDuration::from_secs(60);

/// How long a VM seen before must be missing, from every listing and from a direct lookup by its
/// identifier, before it counts as gone. One listing is not enough: a truncated or empty answer from
/// VPSie would otherwise fail (and delete) serving nodes.
pub const GONE_GRACE: SignedDuration = SignedDuration::from_secs(120);
/// The same while listings are distrusted: many VMs missing at once is more likely a broken answer than
/// many deletions, but VMs really deleted (by hand, a lost host) must not be waited for forever.
pub const GONE_GRACE_DISTRUSTED: SignedDuration = SignedDuration::from_secs(600);

fn elapsed(since: Option<Timestamp>, now: Timestamp) -> SignedDuration {
    since.map_or(SignedDuration::ZERO, |t| now.duration_since(t))
}

/// The next step for one VPSieNode.
pub fn next(o: &Observed<'_>) -> Step {
    if o.deleting {
        return next_deleting(o);
    }
    let r = o.recorded;
    if r.phase == VPSieNodePhase::Failed {
        return next_failed(o);
    }
    match o.machine {
        Machine::NotListed => match r.phase {
            VPSieNodePhase::Pending if r.created_at.is_none() => Step::Create,
            _ if r.machine_seen => gone_or_wait(o),
            _ if elapsed(r.created_at, o.now) > o.timeouts.provisioning => Step::Fail(format!(
                "the VM did not appear within the provisioning timeout ({}s) after the create request",
                o.timeouts.provisioning.as_secs()
            )),
            _ if elapsed(r.created_at, o.now) > LISTING_GRACE => Step::Fail(format!(
                "VPSie never listed the requested VM within {}s of the create request: the request was lost \
                 (the operator stopped between recording it and sending it, or VPSie dropped it); a new node \
                 replaces this one",
                LISTING_GRACE.as_secs()
            )),
            _ => wait("waiting for VPSie to list the requested VM", SOON),
        },
        Machine::Pending => {
            if r.created_at.is_none() {
                // Listed before any intent: our status write was lost. Adopt it (no second create).
                Step::Advance(VPSieNodePhase::Provisioning)
            } else if elapsed(r.created_at, o.now) > o.timeouts.provisioning {
                Step::Fail(format!(
                    "the VM did not become active within the provisioning timeout ({}s)",
                    o.timeouts.provisioning.as_secs()
                ))
            } else {
                wait("the VM is being created", SOON)
            }
        }
        Machine::Active(vm) if !vm.ready => match r.phase {
            VPSieNodePhase::Pending if r.created_at.is_none() => Step::Advance(VPSieNodePhase::Provisioning),
            VPSieNodePhase::Pending | VPSieNodePhase::Provisioning => {
                if elapsed(r.created_at, o.now) > o.timeouts.provisioning {
                    Step::Fail(format!(
                        "the VM is not active with an IP within the provisioning timeout ({}s)",
                        o.timeouts.provisioning.as_secs()
                    ))
                } else {
                    wait("the VM is booting", SOON)
                }
            }
            // Once provisioned, a VM that is not running (powered off, rebooting, host maintenance, no
            // IP) is degraded, never a provisioning timeout: its Node says whether it still serves, and
            // the registration timeout still applies to a node that never became Ready.
            _ => next_active(o),
        },
        Machine::Active(_) => next_active(o),
    }
}

fn next_active(o: &Observed<'_>) -> Step {
    let r = o.recorded;
    match r.phase {
        VPSieNodePhase::Pending | VPSieNodePhase::Provisioning => Step::Advance(VPSieNodePhase::Provisioned),
        // Labels and taints never hold the phase back, nor a timeout off: a Node the group's labels cannot
        // be put on still becomes Ready (the kubelet registered it with them; only later changes are
        // missing), and one that never becomes Ready still fails at the registration timeout.
        VPSieNodePhase::Provisioned | VPSieNodePhase::Joining | VPSieNodePhase::Ready => match o.node {
            Some(n) if n.ready && r.phase != VPSieNodePhase::Ready => Step::Advance(VPSieNodePhase::Ready),
            Some(n) if n.missing_labels_or_taints && r.phase == VPSieNodePhase::Ready => Step::LabelNode,
            Some(n) if n.ready => wait("Ready", LATER),
            _ if r.phase == VPSieNodePhase::Ready => {
                if o.node.is_none() {
                    Step::Fail("the Node of this VM was deleted".into())
                } else {
                    // A Ready node that turned NotReady is node health's business, not the lifecycle's.
                    wait("the Node is not Ready", LATER)
                }
            }
            _ if elapsed(r.provisioned_at, o.now) > o.timeouts.registration => Step::Fail(format!(
                "the VM is active but its Node {} within the registration timeout ({}s)",
                if o.node.is_some() { "did not become Ready" } else { "did not register" },
                o.timeouts.registration.as_secs()
            )),
            Some(n) if n.missing_labels_or_taints => Step::LabelNode,
            Some(_) if r.phase == VPSieNodePhase::Provisioned => Step::Advance(VPSieNodePhase::Joining),
            None if r.phase == VPSieNodePhase::Provisioned => Step::Advance(VPSieNodePhase::Joining),
            _ => wait("waiting for the Node to register and become Ready", SOON),
        },
        // Terminating and Deleting without a deletion in progress do not happen (the deletion timestamp
        // never goes away); Failed is handled before.
        VPSieNodePhase::Terminating | VPSieNodePhase::Deleting | VPSieNodePhase::Failed => wait("deleting", LATER),
    }
}

/// A VM seen before is missing from this pass's listing: gone only once a direct lookup found none and it
/// has been missing for [`GONE_GRACE`].
fn gone_or_wait(o: &Observed<'_>) -> Step {
    // A Ready Node is a running kubelet on that machine, whatever VPSie answers.
    if o.node.is_some_and(|n| n.ready) {
        return wait("VPSie does not list the VM, but its Node is Ready: not gone", LATER);
    }
    let Some(m) = o.missing.filter(|m| m.confirmed) else {
        return wait("VPSie's list lacks the VM, but it is not known to be gone; looking again", SOON);
    };
    let grace = if m.listing_distrusted { GONE_GRACE_DISTRUSTED } else { GONE_GRACE };
    let missing_for = o.now.duration_since(m.since);
    if missing_for >= grace {
        Step::Fail(format!(
            "the VM is gone: VPSie has not listed it for {}s and a lookup by its identifier finds no VM",
            missing_for.as_secs()
        ))
    } else {
        let left = o.now.duration_until(m.since + grace).unsigned_abs();
        wait(
            "VPSie no longer lists the VM and a lookup finds none; confirming before it counts as gone",
            left.min(LATER),
        )
    }
}

/// Failed: take the Node and the VM away; the NodeGroup controller records the backoff and deletes the
/// VPSieNode, which replaces it.
fn next_failed(o: &Observed<'_>) -> Step {
    match (o.node, o.machine) {
        // A Node that may run pods is drained (involuntary policy) once the VPSieNode is deleted, never
        // deleted with its pods here.
        (Some(n), _) if n.may_serve() => {
            wait("failed; its Node may run pods: it is drained once the NodeGroup replaces this node", LATER)
        }
        (Some(_), _) => Step::DeleteNode,
        (None, Machine::Active(_)) => Step::DeleteMachine,
        (None, Machine::Pending) => wait("the failed VM is still being created; it is deleted once it is", SOON),
        (None, Machine::NotListed) => wait("failed; waiting for the NodeGroup to replace this node", LATER),
    }
}

fn next_deleting(o: &Observed<'_>) -> Step {
    let r = o.recorded;
    if let Some(node) = o.node {
        if let RemovalPolicy::Involuntary { deadline } = o.removal
            && o.now >= deadline
            && *o.drain != DrainState::Done
        {
            return Step::DeleteNodeUndrained(format!(
                "the involuntary removal reached its deadline (terminationGracePeriodSeconds) with node {} not \
                 drained{}: the Node is deleted with the pods left on it",
                node.name,
                match o.drain {
                    DrainState::Failed { reason, .. } => format!(" ({reason})"),
                    _ => String::new(),
                }
            ));
        }
        // Decided from the observed Node, not guessed from the phase: a Joining node that turned Ready and
        // took pods is drained too. Terminating: a drain already began.
        if node.may_serve() || r.phase == VPSieNodePhase::Terminating {
            match o.drain {
                DrainState::NotStarted => return Step::Drain,
                DrainState::Running => return wait(format!("draining node {}", node.name), SOON),
                DrainState::Failed { reason, retry_at } => {
                    return if o.now >= *retry_at {
                        Step::Drain
                    } else {
                        let mut left = o.now.duration_until(*retry_at).unsigned_abs();
                        if let RemovalPolicy::Involuntary { deadline } = o.removal {
                            left = left.min(o.now.duration_until(deadline).unsigned_abs());
                        }
                        wait(format!("drain blocked: {reason}; retrying"), left)
                    };
                }
                DrainState::Done => {}
            }
        }
        return Step::DeleteNode;
    }
    match o.machine {
        Machine::Active(_) => Step::DeleteMachine,
        Machine::Pending => wait("the VM is still being created: it cannot be deleted before it is", SOON),
        // Seen before and not confirmed gone by a lookup: releasing the finalizer now could leak it.
        Machine::NotListed if r.machine_seen && !o.missing.is_some_and(|m| m.confirmed) => {
            wait("VPSie's list lacks the VM; confirming it is gone before the finalizer goes", SOON)
        }
        Machine::NotListed => {
            let requested_and_unseen = r.created_at.is_some() && !r.machine_seen;
            // Past the listing grace a late VM is the orphan sweep's (our tags, no VPSieNode).
            if requested_and_unseen && elapsed(r.created_at, o.now) <= o.timeouts.provisioning.min(LISTING_GRACE) {
                wait("a VM requested for this node may still be listed late", SOON)
            } else {
                Step::Release
            }
        }
    }
}
