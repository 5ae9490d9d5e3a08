//! Every phase against the observations that matter, with a fixed clock.
#![allow(clippy::unwrap_used)]

use autoscaler_api::VPSieNodePhase as P;
use jiff::{SignedDuration, Timestamp};

use super::phase::{
    DrainState, GONE_GRACE, GONE_GRACE_DISTRUSTED, Missing, NodeView, Observed, Recorded, RemovalPolicy, Step,
    Timeouts, next,
};
use crate::provision::{Instance, Machine};

const T0: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(T0 + secs).unwrap()
}

fn timeouts() -> Timeouts {
    Timeouts { provisioning: SignedDuration::from_secs(60), registration: SignedDuration::from_secs(90) }
}

fn active(ready: bool) -> Machine {
    Machine::Active(Instance { id: 1, identifier: "vm-1".into(), ready, ..Instance::default() })
}

fn node(ready: bool, missing: bool) -> NodeView {
    NodeView { name: "n1".into(), ready, missing_labels_or_taints: missing, workload_pods: Some(0) }
}

/// A node with `pods` workload pods bound.
fn node_with_pods(ready: bool, pods: usize) -> NodeView {
    NodeView { workload_pods: Some(pods), ..node(ready, false) }
}

struct Case {
    recorded: Recorded,
    machine: Machine,
    node: Option<NodeView>,
    deleting: bool,
    drain: DrainState,
    missing: Option<Missing>,
    removal: RemovalPolicy,
    now: i64,
}

impl Case {
    fn new(phase: P, machine: Machine) -> Self {
        let seen = matches!(phase, P::Provisioned | P::Joining | P::Ready | P::Terminating | P::Deleting);
        let recorded = Recorded {
            phase,
            created_at: (phase != P::Pending).then(|| at(0)),
            provisioned_at: seen.then(|| at(10)),
            machine_seen: seen,
        };
        Self {
            recorded,
            machine,
            node: None,
            deleting: false,
            drain: DrainState::NotStarted,
            missing: None,
            removal: RemovalPolicy::Voluntary,
            now: 20,
        }
    }
    fn node(mut self, n: NodeView) -> Self {
        self.node = Some(n);
        self
    }
    fn deleting(mut self) -> Self {
        self.deleting = true;
        self
    }
    /// Deleting under the involuntary policy, with its deadline at `deadline`.
    fn involuntary(mut self, deadline: i64) -> Self {
        self.deleting = true;
        self.removal = RemovalPolicy::Involuntary { deadline: at(deadline) };
        self
    }
    fn drain(mut self, d: DrainState) -> Self {
        self.drain = d;
        self
    }
    /// Missing from the listings since `since`; `confirmed` when a lookup found no VM.
    fn missing(mut self, since: i64, confirmed: bool) -> Self {
        self.missing = Some(Missing { since: at(since), confirmed, listing_distrusted: false });
        self
    }
    /// As [`Case::missing`], while listings are distrusted.
    fn missing_distrusted(mut self, since: i64, confirmed: bool) -> Self {
        self.missing = Some(Missing { since: at(since), confirmed, listing_distrusted: true });
        self
    }
    fn at(mut self, secs: i64) -> Self {
        self.now = secs;
        self
    }
    fn step(&self) -> Step {
        self.step_with(timeouts())
    }
    fn step_with(&self, timeouts: Timeouts) -> Step {
        next(&Observed {
            recorded: &self.recorded,
            machine: &self.machine,
            node: self.node.as_ref(),
            deleting: self.deleting,
            drain: &self.drain,
            missing: self.missing,
            removal: self.removal,
            timeouts,
            now: at(self.now),
        })
    }
}

fn is_wait(s: &Step) -> bool {
    matches!(s, Step::Wait { .. })
}

fn is_fail(s: &Step, containing: &str) -> bool {
    matches!(s, Step::Fail(r) if r.contains(containing))
}

#[test]
fn a_create_is_sent_once_and_a_vm_that_does_not_show_fails_at_the_timeout() {
    assert_eq!(Case::new(P::Pending, Machine::NotListed).step(), Step::Create);
    // Intent written: never a second create, whatever the listing says.
    assert!(is_wait(&Case::new(P::Provisioning, Machine::NotListed).step()));
    assert!(is_wait(&Case::new(P::Provisioning, Machine::Pending).step()));
    assert!(is_fail(&Case::new(P::Provisioning, Machine::NotListed).at(61).step(), "did not appear"));
    assert!(is_fail(&Case::new(P::Provisioning, Machine::Pending).at(61).step(), "did not become active"));
    assert!(is_fail(&Case::new(P::Provisioning, active(false)).at(61).step(), "not active with an IP"));
    assert!(is_wait(&Case::new(P::Provisioning, active(false)).step()));
}

/// A create recorded but never listed (the process stopped between recording and sending it) is given up
/// after the listing grace, not held for a long provisioning timeout (found by `cargo xtask chaos` R3: the
/// leader killed at that moment left its node waiting 15 minutes).
#[test]
fn a_create_never_listed_is_given_up_after_the_listing_grace() {
    let long = Timeouts { provisioning: SignedDuration::from_secs(900), ..timeouts() };
    let case = |secs| Case::new(P::Provisioning, Machine::NotListed).at(secs).step_with(long);
    assert!(is_wait(&case(59)), "VPSie may list a create a little late");
    assert!(is_fail(&case(61), "never listed the requested VM within 60s"));
    let pending = Case::new(P::Provisioning, Machine::Pending).at(300);
    assert!(is_wait(&pending.step_with(long)), "a listed VM has its full timeout");
    // Its deletion then waits out the same grace, not the provisioning timeout.
    let deleting = |secs| Case::new(P::Failed, Machine::NotListed).deleting().at(secs).step_with(long);
    assert!(is_wait(&deleting(30)));
    assert_eq!(deleting(61), Step::Release);
}

#[test]
fn a_vm_listed_before_any_intent_is_adopted_not_created_again() {
    assert_eq!(Case::new(P::Pending, Machine::Pending).step(), Step::Advance(P::Provisioning));
    assert_eq!(Case::new(P::Pending, active(false)).step(), Step::Advance(P::Provisioning));
    assert_eq!(Case::new(P::Pending, active(true)).step(), Step::Advance(P::Provisioned));
}

#[test]
fn an_active_vm_goes_through_joining_to_ready_within_the_registration_timeout() {
    assert_eq!(Case::new(P::Provisioning, active(true)).step(), Step::Advance(P::Provisioned));
    assert_eq!(Case::new(P::Provisioned, active(true)).step(), Step::Advance(P::Joining));
    assert_eq!(Case::new(P::Provisioned, active(true)).node(node(false, false)).step(), Step::Advance(P::Joining));
    assert_eq!(Case::new(P::Provisioned, active(true)).node(node(true, false)).step(), Step::Advance(P::Ready));
    assert!(is_wait(&Case::new(P::Joining, active(true)).step()));
    assert_eq!(Case::new(P::Joining, active(true)).node(node(true, false)).step(), Step::Advance(P::Ready));
    // provisioned at 10 s, registration timeout 90 s.
    assert!(is_fail(&Case::new(P::Joining, active(true)).at(101).step(), "did not register"));
    assert!(is_fail(
        &Case::new(P::Joining, active(true)).node(node(false, false)).at(101).step(),
        "did not become Ready"
    ));
    assert!(is_wait(&Case::new(P::Joining, active(true)).at(100).step()));
}

#[test]
fn missing_labels_are_put_back_and_a_ready_node_stays_ready() {
    // Labels never hold the phase back: Ready first, then the labels.
    assert_eq!(Case::new(P::Joining, active(true)).node(node(true, true)).step(), Step::Advance(P::Ready));
    assert_eq!(Case::new(P::Ready, active(true)).node(node(true, true)).step(), Step::LabelNode);
    assert_eq!(Case::new(P::Joining, active(true)).node(node(false, true)).step(), Step::LabelNode);
    // Nor a timeout off: a node that never becomes Ready fails, labelled or not.
    assert!(is_fail(
        &Case::new(P::Joining, active(true)).node(node(false, true)).at(101).step(),
        "did not become Ready"
    ));
    assert_eq!(Case::new(P::Ready, active(true)).node(node(false, true)).at(10_000).step(), Step::LabelNode);
    assert!(is_wait(&Case::new(P::Ready, active(true)).node(node(true, false)).at(10_000).step()));
    assert!(
        is_wait(&Case::new(P::Ready, active(true)).node(node(false, false)).at(10_000).step()),
        "health is not the lifecycle's"
    );
    assert!(is_fail(&Case::new(P::Ready, active(true)).step(), "Node of this VM was deleted"));
}

/// One listing that lacks a VM seen before destroys nothing (a truncated or empty answer from VPSie would
/// fail every serving node): the VM is gone only once a lookup by its identifier finds none and it has
/// been missing for the grace period.
#[test]
fn a_seen_vm_missing_from_a_listing_is_gone_only_after_a_lookup_and_the_grace_confirm_it() {
    let ready = || Case::new(P::Ready, Machine::NotListed).node(node(false, false));
    assert!(is_wait(&ready().step()), "one listing, no lookup yet");
    assert!(is_wait(&ready().missing(0, false).at(10_000).step()), "the lookup failed or was not made: never gone");
    let grace = GONE_GRACE.as_secs();
    let confirming = ready().missing(100, true).at(100 + grace - 1).step();
    assert!(matches!(&confirming, Step::Wait { why, .. } if why.contains("confirming")), "{confirming:?}");
    assert!(is_fail(&ready().missing(100, true).at(100 + grace).step(), "VM is gone"));
    // A Ready Node is a running kubelet: never gone, whatever VPSie answers.
    let serving = Case::new(P::Ready, Machine::NotListed).node(node(true, false)).missing(0, true).at(10_000);
    assert!(is_wait(&serving.step()));
    // While listings are distrusted, a VM really gone still fails, after the longer grace.
    let distrusted = GONE_GRACE_DISTRUSTED.as_secs();
    assert!(is_wait(&ready().missing_distrusted(100, true).at(100 + distrusted - 1).step()));
    assert!(is_fail(&ready().missing_distrusted(100, true).at(100 + distrusted).step(), "VM is gone"));
    for phase in [P::Provisioned, P::Joining] {
        assert!(is_wait(&Case::new(phase, Machine::NotListed).at(25).step()), "{phase:?}");
    }
}

/// A VM restarted from the VPSie panel, stopped, or under host maintenance is listed but not running.
/// After `Provisioned` that is degraded, never a provisioning timeout: before, every node older than its
/// provisioning timeout failed (and was deleted undrained) when a listing caught it rebooting.
#[test]
fn a_provisioned_vm_that_is_not_running_is_degraded_never_a_provisioning_timeout() {
    let old = 10_000; // far past the 60 s provisioning timeout
    for n in [node(true, false), node(false, false)] {
        let step = Case::new(P::Ready, active(false)).node(n.clone()).at(old).step();
        assert!(is_wait(&step), "{n:?}: {step:?}");
    }
    // Joining: the registration timeout (from provisioning) still applies to a node that never became Ready.
    assert!(is_wait(&Case::new(P::Joining, active(false)).at(50).step()));
    assert!(is_fail(&Case::new(P::Joining, active(false)).at(101).step(), "registration timeout"));
    assert_eq!(Case::new(P::Joining, active(false)).node(node(true, false)).step(), Step::Advance(P::Ready));
    // Before Provisioned the provisioning timeout holds as before.
    assert!(is_fail(&Case::new(P::Provisioning, active(false)).at(61).step(), "provisioning timeout"));
}

#[test]
fn a_failed_node_loses_its_node_then_its_vm_but_a_pending_vm_is_waited_for() {
    let failed = |m: Machine| Case::new(P::Failed, m);
    assert_eq!(failed(active(true)).node(node(false, false)).step(), Step::DeleteNode);
    // A failed node whose Node may serve is never deleted with its pods: it waits for the VPSieNode's
    // deletion, which drains it (involuntary policy).
    for n in [node_with_pods(false, 2), node_with_pods(true, 0), NodeView { workload_pods: None, ..node(false, false) }]
    {
        assert!(is_wait(&failed(active(true)).node(n.clone()).step()), "{n:?}");
        assert_eq!(failed(active(true)).node(n.clone()).involuntary(600).step(), Step::Drain, "{n:?}");
    }
    assert_eq!(failed(active(false)).step(), Step::DeleteMachine);
    assert!(is_wait(&failed(Machine::Pending).step()));
    assert!(is_wait(&failed(Machine::NotListed).step()));
}

#[test]
fn deletion_drains_a_node_that_served_then_deletes_node_and_vm_and_only_then_releases() {
    let ready = || Case::new(P::Ready, active(true)).node(node(true, false)).deleting();
    assert_eq!(ready().step(), Step::Drain);
    assert!(is_wait(&ready().drain(DrainState::Running).step()));
    let blocked = DrainState::Failed { reason: "PodDisruptionBudget shop/cart-pdb".into(), retry_at: at(30) };
    let waiting = ready().drain(blocked.clone()).step();
    assert!(matches!(&waiting, Step::Wait { why, .. } if why.contains("cart-pdb")), "{waiting:?}");
    assert_eq!(ready().drain(blocked).at(30).step(), Step::Drain, "retried after the backoff");
    assert_eq!(ready().drain(DrainState::Done).step(), Step::DeleteNode);
    // A node that never served is not drained.
    assert_eq!(Case::new(P::Joining, active(true)).node(node(false, false)).deleting().step(), Step::DeleteNode);
    // Whether it served is read from the Node, not guessed from the phase: a Joining or Provisioned node
    // that is Ready, or has workload pods bound, is drained (before, it was deleted with its pods).
    for phase in [P::Provisioned, P::Joining] {
        // Pods not counted: the safe side, drained.
        let uncounted = NodeView { workload_pods: None, ..node(false, false) };
        for n in [node_with_pods(true, 0), node_with_pods(false, 3), node_with_pods(true, 3), uncounted] {
            assert_eq!(
                Case::new(phase, active(true)).node(n.clone()).deleting().step(),
                Step::Drain,
                "{phase:?} {n:?}"
            );
        }
    }
    assert_eq!(Case::new(P::Deleting, active(true)).deleting().step(), Step::DeleteMachine);
    assert!(is_wait(&Case::new(P::Deleting, Machine::Pending).deleting().step()), "a pending VM cannot be deleted yet");
    let gone = || Case::new(P::Deleting, Machine::NotListed).deleting();
    assert!(is_wait(&gone().step()), "seen, not listed: a lookup must confirm before the finalizer goes");
    assert!(is_wait(&gone().missing(0, false).step()), "the lookup failed");
    assert_eq!(gone().missing(20, true).step(), Step::Release, "seen, now confirmed gone");
}

#[test]
fn the_finalizer_waits_while_a_requested_vm_may_still_be_listed_late() {
    let requested = || Case::new(P::Provisioning, Machine::NotListed).deleting();
    assert!(is_wait(&requested().at(30).step()));
    assert_eq!(requested().at(61).step(), Step::Release, "past the provisioning timeout");
    assert_eq!(Case::new(P::Pending, Machine::NotListed).deleting().step(), Step::Release, "never requested");
}

#[test]
fn an_involuntary_removal_drains_until_its_deadline_then_deletes_the_node_with_what_is_left() {
    let serving = || Case::new(P::Ready, active(true)).node(node_with_pods(true, 3)).involuntary(100);
    assert_eq!(serving().step(), Step::Drain);
    assert!(is_wait(&serving().drain(DrainState::Running).at(99).step()));
    // A blocked drain retries no later than the deadline.
    let blocked = DrainState::Failed { reason: "PodDisruptionBudget shop/web".into(), retry_at: at(500) };
    match serving().drain(blocked.clone()).at(90).step() {
        Step::Wait { after, .. } => assert_eq!(after.as_secs(), 10, "the retry is capped at the deadline"),
        other => panic!("expected a wait, got {other:?}"),
    }
    // At the deadline: the Node goes with what is left, running drain or blocked one alike.
    for drain in [DrainState::NotStarted, DrainState::Running, blocked] {
        let step = serving().drain(drain.clone()).at(100).step();
        assert!(matches!(&step, Step::DeleteNodeUndrained(why) if why.contains("deadline")), "{drain:?}: {step:?}");
    }
    assert_eq!(serving().drain(DrainState::Done).at(100).step(), Step::DeleteNode, "drained in time");
    // A voluntary removal has no deadline: a blocked drain is retried however long it takes.
    let voluntary = DrainState::Failed { reason: "budget".into(), retry_at: at(10_000) };
    let late = Case::new(P::Ready, active(true)).node(node_with_pods(true, 3)).deleting().drain(voluntary).at(9_000);
    assert!(is_wait(&late.step()));
}
