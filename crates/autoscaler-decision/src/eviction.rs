//! One set of eviction rules, for the scale-down plan and for the drain that carries it out: which pods go
//! away with their node, which are evicted, and which forbid removing the node. The drain
//! (`autoscaler-drain`) classifies Kubernetes pods with [`eviction`] too, so a plan never counts on an
//! eviction the drain would refuse, nor the other way round.

use std::collections::BTreeMap;

use crate::model::Pod;

/// Pod annotation: never disrupt this pod (the autoscaler's own name for it).
pub const ANNOTATION_DO_NOT_DISRUPT: &str = "autoscaler.vpsie.com/do-not-disrupt";
/// Pod annotation also honoured: Karpenter's do-not-disrupt.
pub const ANNOTATION_KARPENTER_DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
/// Pod annotation of the Cluster Autoscaler: `"false"` forbids eviction, `"true"` is the owner's consent
/// despite local storage or no controller.
pub const ANNOTATION_SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
/// The annotation the kubelet puts on the mirror pod of a static pod.
pub const ANNOTATION_MIRROR: &str = "kubernetes.io/config.mirror";
/// The namespace whose pods need a PodDisruptionBudget to be evicted (the Cluster Autoscaler's rule:
/// system pods without a budget say nothing about how many may be down).
pub const SYSTEM_NAMESPACE: &str = "kube-system";

/// Whether the annotations mark the pod do-not-disrupt (either spelling, value `true` in any case).
pub fn do_not_disrupt(annotations: &BTreeMap<String, String>) -> bool {
    [ANNOTATION_DO_NOT_DISRUPT, ANNOTATION_KARPENTER_DO_NOT_DISRUPT]
        .iter()
        .any(|k| annotations.get(*k).is_some_and(|v| v.eq_ignore_ascii_case("true")))
}

/// The safe-to-evict annotation: `Some(true)`, `Some(false)` (any case), or `None` (absent or another value).
pub fn safe_to_evict(annotations: &BTreeMap<String, String>) -> Option<bool> {
    match annotations.get(ANNOTATION_SAFE_TO_EVICT).map(|v| v.to_ascii_lowercase()).as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    }
}

/// Why a pod is neither evicted nor in the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Runs on every node by its DaemonSet, or is the mirror of a static pod: it goes with the node.
    NodeBound,
    /// Succeeded or Failed: nothing runs.
    Finished,
}

/// Why a pod forbids removing its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReason {
    /// Annotated do-not-disrupt.
    DoNotDisrupt,
    /// Annotated safe-to-evict=false.
    SafeToEvictFalse,
    /// No controller would recreate it.
    NoController,
    /// It keeps data in emptyDir or hostPath volumes that eviction would lose.
    LocalStorage,
    /// A kube-system pod that no PodDisruptionBudget covers.
    SystemPodWithoutBudget,
}

impl BlockReason {
    /// A short stable label (metrics, the plan's reason code).
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::DoNotDisrupt => "do_not_disrupt",
            BlockReason::SafeToEvictFalse => "not_safe_to_evict",
            BlockReason::NoController => "no_controller",
            BlockReason::LocalStorage => "local_storage",
            BlockReason::SystemPodWithoutBudget => "kube_system_without_pdb",
        }
    }
}

impl std::fmt::Display for BlockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlockReason::DoNotDisrupt => "it is annotated do-not-disrupt",
            BlockReason::SafeToEvictFalse => "it is annotated safe-to-evict=false",
            BlockReason::NoController => "no controller would recreate it",
            BlockReason::LocalStorage => "it uses local storage (emptyDir or hostPath)",
            BlockReason::SystemPodWithoutBudget => "it is a kube-system pod with no PodDisruptionBudget",
        })
    }
}

/// What may be overridden (a forced drain, a group that allows local storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvictionPolicy {
    /// Evict do-not-disrupt and safe-to-evict=false pods.
    pub allow_do_not_disrupt: bool,
    /// Evict pods no controller would recreate.
    pub allow_controllerless: bool,
    /// Evict pods with emptyDir or hostPath volumes.
    pub allow_local_storage: bool,
    /// Evict kube-system pods no PodDisruptionBudget covers.
    pub allow_system_pods_without_budget: bool,
}

/// What removing the pod's node means for the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// Nothing to do.
    Skip(SkipReason),
    /// It must be evicted (through the Eviction API, respecting its budgets).
    Evict,
    /// Its node may not be removed.
    Block(BlockReason),
}

/// The rule. `covered_by_budget`: some PodDisruptionBudget of its namespace selects it.
pub fn eviction(pod: &Pod, covered_by_budget: bool, policy: &EvictionPolicy) -> Eviction {
    if pod.is_node_bound() {
        return Eviction::Skip(SkipReason::NodeBound);
    }
    if pod.finished {
        return Eviction::Skip(SkipReason::Finished);
    }
    if !policy.allow_do_not_disrupt {
        if pod.do_not_disrupt {
            return Eviction::Block(BlockReason::DoNotDisrupt);
        }
        if pod.safe_to_evict == Some(false) {
            return Eviction::Block(BlockReason::SafeToEvictFalse);
        }
    }
    // safe-to-evict=true is the owner's explicit consent, as in the Cluster Autoscaler.
    let consented = pod.safe_to_evict == Some(true);
    if !consented && !policy.allow_controllerless && pod.owner_kind.is_none() {
        return Eviction::Block(BlockReason::NoController);
    }
    if !consented && !policy.allow_local_storage && pod.local_storage {
        return Eviction::Block(BlockReason::LocalStorage);
    }
    if pod.namespace == SYSTEM_NAMESPACE && !covered_by_budget && !policy.allow_system_pods_without_budget {
        return Eviction::Block(BlockReason::SystemPodWithoutBudget);
    }
    Eviction::Evict
}
