//! The churn guard: a workload consolidation moved is not moved by consolidation again within a period
//! (consolidation that keeps reshuffling the same pods is the most common complaint about it). A workload
//! is its namespace, owner kind and pod labels without `pod-template-hash`, so a Deployment's pods are one
//! workload across rollouts. Pure.

use std::collections::{BTreeSet, HashMap};

use autoscaler_decision::{ConsolidationPlan, Node, Pod};

/// The label the ReplicaSet controller adds per template revision.
const TEMPLATE_HASH: &str = "pod-template-hash";

/// The workload a pod belongs to.
pub fn workload_key(pod: &Pod) -> String {
    let labels: Vec<String> =
        pod.labels.iter().filter(|(k, _)| k.as_str() != TEMPLATE_HASH).map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}/{}/{}", pod.namespace, pod.owner_kind.as_deref().unwrap_or("-"), labels.join(","))
}

/// The workloads a plan moves: those of the pods to be evicted from the nodes it removes.
pub fn workloads_moved(plan: &ConsolidationPlan, nodes: &[Node]) -> Vec<String> {
    let keys: BTreeSet<String> = nodes
        .iter()
        .filter(|n| plan.remove.contains(&n.name))
        .flat_map(|n| n.pods.iter())
        .filter(|p| p.needs_eviction())
        .map(workload_key)
        .collect();
    keys.into_iter().collect()
}

/// Workloads consolidation moved, with when.
#[derive(Debug, Default)]
pub struct Moved(HashMap<String, jiff::Timestamp>);

impl Moved {
    /// Whether `workload` was moved (and not forgotten).
    pub fn contains(&self, workload: &str) -> bool {
        self.0.contains_key(workload)
    }

    /// Records `workloads` as moved at `at`.
    pub fn record(&mut self, workloads: Vec<String>, at: jiff::Timestamp) {
        self.0.extend(workloads.into_iter().map(|w| (w, at)));
    }

    /// Forgets moves before `cutoff`.
    pub fn forget_before(&mut self, cutoff: jiff::Timestamp) {
        self.0.retain(|_, at| *at >= cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_moved_once_is_held_for_the_period_across_rollouts() {
        let mut a = Pod::new("shop", "web-7d9f-abcde", 500, 1 << 30);
        a.labels.insert("app".into(), "web".into());
        a.labels.insert(TEMPLATE_HASH.into(), "7d9f".into());
        let mut b = a.clone();
        b.name = "web-8e1a-fghij".into();
        b.labels.insert(TEMPLATE_HASH.into(), "8e1a".into());
        assert_eq!(workload_key(&a), workload_key(&b), "one Deployment across two revisions");
        let mut node = Node::new("n1", 4000, 8 << 30);
        node.pods = vec![a.clone()];
        let plan =
            ConsolidationPlan { remove: vec!["n1".into()], replacement: None, moves: vec![], monthly_saving: 29.0 };
        let moved_keys = workloads_moved(&plan, &[node]);
        assert_eq!(moved_keys, vec![workload_key(&a)]);
        let t = |s: i64| jiff::Timestamp::from_second(s).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let mut moved = Moved::default();
        moved.record(moved_keys, t(1000));
        assert!(moved.contains(&workload_key(&b)));
        moved.forget_before(t(999));
        assert!(moved.contains(&workload_key(&b)), "still within the period");
        moved.forget_before(t(1001));
        assert!(!moved.contains(&workload_key(&b)));
    }
}
