//! What a drain may do and how long it may take.

use std::time::Duration;

/// Drain settings.
#[derive(Debug, Clone)]
pub struct DrainPolicy {
    /// Evict pods whose data lives in emptyDir or hostPath volumes.
    pub allow_local_storage: bool,
    /// Evict pods no controller would recreate.
    pub allow_controllerless: bool,
    /// Evict pods annotated do-not-disrupt or safe-to-evict=false (a forced drain).
    pub allow_do_not_disrupt: bool,
    /// Evict kube-system pods that no PodDisruptionBudget covers.
    pub allow_system_pods_without_budget: bool,
    /// The whole drain, evictions and waiting for pods to go, must finish within this.
    pub timeout: Duration,
    /// Evictions in flight at once.
    pub parallelism: usize,
    /// First wait after an eviction refused by a PodDisruptionBudget (429); doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest wait between eviction attempts.
    pub max_backoff: Duration,
    /// The node is leaving whatever the drain's outcome (its VPSieNode is being deleted): it is cordoned
    /// before anything else, and a failed or cancelled drain leaves it cordoned and tainted (a retry resumes
    /// it) instead of putting it back in service, where it would take new pods between retries.
    pub keep_cordoned: bool,
    /// A pod that is not Ready and whose eviction a PodDisruptionBudget refuses is deleted instead: it
    /// serves nothing, so no budget loses a healthy pod. (A budget that is already short of healthy pods
    /// refuses every eviction, unhealthy pods' too, which would hold a dead node's pods for good.)
    pub delete_unready_pods: bool,
    /// On a node whose kubelet stopped reporting (Ready `Unknown`), an evicted pod counts as gone once its
    /// deletion began: nothing there will ever confirm it, and the pod goes with the Node object.
    pub unreachable_is_gone: bool,
    /// The NodeGroup of the node, for metric labels.
    pub nodegroup: String,
}

impl Default for DrainPolicy {
    fn default() -> Self {
        Self {
            allow_local_storage: false,
            allow_controllerless: false,
            allow_do_not_disrupt: false,
            allow_system_pods_without_budget: false,
            timeout: Duration::from_secs(600),
            parallelism: 5,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            keep_cordoned: false,
            delete_unready_pods: false,
            unreachable_is_gone: false,
            nodegroup: String::new(),
        }
    }
}

impl DrainPolicy {
    /// The policy of a removal that must happen (involuntary): every pod that is not node-bound or finished
    /// is evicted (local storage, no controller, kube-system without a budget, do-not-disrupt), through the
    /// Eviction API so PodDisruptionBudgets still hold for every Ready pod; a pod that is not Ready is deleted
    /// when its budget refuses, and the pods of an unreachable node are not waited for once deleted; the node
    /// stays cordoned between attempts. The caller bounds it with `timeout` and gives up at its own deadline.
    pub fn involuntary(nodegroup: &str, timeout: Duration) -> Self {
        Self {
            allow_local_storage: true,
            allow_controllerless: true,
            allow_do_not_disrupt: true,
            allow_system_pods_without_budget: true,
            keep_cordoned: true,
            delete_unready_pods: true,
            unreachable_is_gone: true,
            timeout,
            nodegroup: nodegroup.to_owned(),
            ..Self::default()
        }
    }

    /// The decision core's overrides this policy sets.
    pub fn eviction_policy(&self) -> autoscaler_decision::eviction::EvictionPolicy {
        autoscaler_decision::eviction::EvictionPolicy {
            allow_do_not_disrupt: self.allow_do_not_disrupt,
            allow_controllerless: self.allow_controllerless,
            allow_local_storage: self.allow_local_storage,
            allow_system_pods_without_budget: self.allow_system_pods_without_budget,
        }
    }
}
