//! Safe node drain for the autoscaler.
//!
//! 1. Choose pods: leave mirror, DaemonSet and terminal pods; refuse with a typed [`BlockReason`] when a
//!    pod is do-not-disrupt / safe-to-evict=false, has no controller, or uses local storage, unless the
//!    [`DrainPolicy`] allows it. A refused node is never cordoned (unless the policy keeps a leaving node
//!    cordoned: then it is cordoned first). [`DrainPolicy::involuntary`] allows all of them.
//! 2. Cordon and add the `autoscaler.vpsie.com/to-be-deleted:NoSchedule` taint, by patches carrying the
//!    resourceVersion they were computed from (never a blind read-modify-write); choose again.
//! 3. Evict through the Eviction API (policy/v1) with bounded parallelism, non-critical pods first; a 429
//!    from a PodDisruptionBudget is retried with backoff until the drain deadline and never counts as
//!    success; each pod's own grace period applies.
//! 4. Wait until the evicted pods are gone by UID (one list of the node's pods per interval).
//! 5. On any failure, remove the taint and uncordon from a fresh read (a leaving node, under
//!    `keep_cordoned`, stays cordoned and tainted), and return a [`DrainFailure`]
//!    naming the pod and budget. A drain future dropped after the cordon rolls the node back;
//!    [`Drainer::rollback`] undoes what a crashed drain left.
//!
//! Success is a [`DrainedNode`], which nothing else can construct.
#![warn(missing_docs)]

mod classify;
mod client;
mod drain;
mod evict;
pub mod metrics;
mod node;
mod outcome;
mod policy;

pub use classify::{BlockReason, Disposition, SkipReason, classify};
pub use client::DrainClient;
pub use drain::Drainer;
pub use outcome::{DrainFailure, DrainFailureReason, DrainedNode};
pub use policy::DrainPolicy;
