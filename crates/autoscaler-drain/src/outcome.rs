//! What a drain returns. Success is a [`DrainedNode`], which only a completed drain can create; the node
//! lifecycle deletes a node that served pods (and then its VM) only after a drain returned one.

use std::time::Duration;

use crate::classify::BlockReason;

/// Proof that every evictable pod has left the node. The node stays cordoned and tainted.
///
/// There is no public constructor: the only way to get one is [`crate::Drainer::drain`] succeeding.
#[derive(Debug)]
#[must_use = "a DrainedNode is the permission to delete the node's VM"]
pub struct DrainedNode {
    pub(crate) node: String,
    pub(crate) evicted: usize,
    pub(crate) budget_waits: u32,
    pub(crate) duration: Duration,
}

impl DrainedNode {
    /// The node name.
    pub fn node(&self) -> &str {
        &self.node
    }
    /// Pods evicted.
    pub fn evicted(&self) -> usize {
        self.evicted
    }
    /// How many times a PodDisruptionBudget made an eviction wait (429s).
    pub fn budget_waits(&self) -> u32 {
        self.budget_waits
    }
    /// How long the drain took.
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

/// Why a drain failed.
#[derive(Debug, Clone, PartialEq)]
pub enum DrainFailureReason {
    /// A pod may not be evicted under the policy; nothing was evicted.
    Blocked {
        /// `namespace/name`.
        pod: String,
        /// Why.
        reason: BlockReason,
    },
    /// PodDisruptionBudgets refused a pod's eviction until the deadline.
    DisruptionBudget {
        /// `namespace/name`.
        pod: String,
        /// The budgets that select it.
        budgets: Vec<String>,
    },
    /// An eviction kept failing for another reason until the deadline.
    Eviction {
        /// `namespace/name`.
        pod: String,
        /// The last error.
        message: String,
    },
    /// Evicted pods were still terminating at the deadline.
    PodsStillTerminating {
        /// `namespace/name` of each.
        pods: Vec<String>,
    },
    /// The Kubernetes API failed (reading or patching the node, listing pods).
    Api {
        /// The error.
        message: String,
    },
}

impl DrainFailureReason {
    /// A short label for the `result` metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            DrainFailureReason::Blocked { .. } => "blocked",
            DrainFailureReason::DisruptionBudget { .. } => "pdb",
            DrainFailureReason::Eviction { .. } => "eviction_error",
            DrainFailureReason::PodsStillTerminating { .. } => "timeout",
            DrainFailureReason::Api { .. } => "api_error",
        }
    }
}

impl std::fmt::Display for DrainFailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrainFailureReason::Blocked { pod, reason } => write!(f, "pod {pod} blocks the drain: {reason}"),
            DrainFailureReason::DisruptionBudget { pod, budgets } => {
                write!(f, "pod {pod} could not be evicted: blocked by PodDisruptionBudget {}", budgets.join(", "))
            }
            DrainFailureReason::Eviction { pod, message } => write!(f, "evicting pod {pod} failed: {message}"),
            DrainFailureReason::PodsStillTerminating { pods } => {
                write!(f, "{} evicted pod(s) still terminating at the deadline: {}", pods.len(), pods.join(", "))
            }
            DrainFailureReason::Api { message } => write!(f, "Kubernetes API error: {message}"),
        }
    }
}

/// A failed drain. The node was uncordoned and untainted again unless `rollback_error` says otherwise.
#[derive(Debug, Clone, thiserror::Error)]
#[error("draining node {node} failed after evicting {evicted} pod(s): {reason}")]
pub struct DrainFailure {
    /// The node.
    pub node: String,
    /// Why.
    pub reason: DrainFailureReason,
    /// Pods evicted before the failure (they are gone; their controllers recreate them elsewhere).
    pub evicted: usize,
    /// Set when restoring the node failed; it may still be cordoned and tainted.
    pub rollback_error: Option<String>,
}
