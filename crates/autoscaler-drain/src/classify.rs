//! Which pods a drain evicts, leaves alone, or refuses to touch: the decision core's rule
//! ([`autoscaler_decision::eviction`]), the one the scale-down plan uses, applied to Kubernetes pods.

use autoscaler_decision::convert::eviction_facts;
use autoscaler_decision::eviction::{Eviction, eviction};
use k8s_openapi::api::core::v1::Pod;

pub use autoscaler_decision::eviction::{BlockReason, SkipReason};

use crate::policy::DrainPolicy;

/// Priority at or above which a pod counts as critical (system-cluster-critical is 2,000,000,000).
const CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// What the drain does with a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Leave it.
    Skip(SkipReason),
    /// Evict it; critical pods go after the others.
    Evict {
        /// system-cluster-critical / system-node-critical (or equivalent priority).
        critical: bool,
    },
    /// Refuse to drain the node.
    Block(BlockReason),
}

fn is_critical(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let class = spec.and_then(|s| s.priority_class_name.as_deref());
    matches!(class, Some("system-cluster-critical" | "system-node-critical"))
        || spec.and_then(|s| s.priority).is_some_and(|p| p >= CRITICAL_PRIORITY)
}

/// Decides what a drain does with `pod` under `policy`. `covered_by_budget`: a PodDisruptionBudget of its
/// namespace selects it (the rule reads it for kube-system pods only).
pub fn classify(pod: &Pod, covered_by_budget: bool, policy: &DrainPolicy) -> Disposition {
    match eviction(&eviction_facts(pod), covered_by_budget, &policy.eviction_policy()) {
        Eviction::Skip(reason) => Disposition::Skip(reason),
        Eviction::Block(reason) => Disposition::Block(reason),
        Eviction::Evict => Disposition::Evict { critical: is_critical(pod) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_decision::eviction::{
        ANNOTATION_DO_NOT_DISRUPT, ANNOTATION_KARPENTER_DO_NOT_DISRUPT, ANNOTATION_MIRROR, ANNOTATION_SAFE_TO_EVICT,
        EvictionPolicy,
    };
    use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, PodSpec, PodStatus, Volume};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn pod(namespace: &str, owner: Option<&str>, annotations: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some(namespace.into()),
                annotations: Some(annotations.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
                owner_references: owner.map(|kind| {
                    vec![OwnerReference {
                        kind: kind.into(),
                        controller: Some(true),
                        name: "o".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            status: Some(PodStatus { phase: Some("Running".into()), ..Default::default() }),
        }
    }

    fn phase(mut p: Pod, phase: &str) -> Pod {
        p.status = Some(PodStatus { phase: Some(phase.into()), ..Default::default() });
        p
    }

    fn local(mut p: Pod) -> Pod {
        p.spec = Some(PodSpec {
            volumes: Some(vec![Volume {
                name: "cache".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    /// One table, two users: the drain's `classify` and the scale-down plan's model of the same pod
    /// (`convert::pod`, then the rule) must both give the expected answer.
    #[test]
    fn the_drain_and_the_scale_down_plan_agree_on_every_pod() {
        use Eviction::{Block, Evict, Skip};
        let strict = DrainPolicy::default();
        let cases: Vec<(&str, Pod, bool, Eviction)> = vec![
            ("replica", pod("shop", Some("ReplicaSet"), &[]), false, Evict),
            (
                "mirror by annotation",
                pod("kube-system", None, &[(ANNOTATION_MIRROR, "x")]),
                false,
                Skip(SkipReason::NodeBound),
            ),
            ("mirror by owner", pod("kube-system", Some("Node"), &[]), false, Skip(SkipReason::NodeBound)),
            ("daemonset", pod("shop", Some("DaemonSet"), &[]), false, Skip(SkipReason::NodeBound)),
            ("succeeded", phase(pod("shop", Some("Job"), &[]), "Succeeded"), false, Skip(SkipReason::Finished)),
            ("failed", phase(pod("shop", None, &[]), "Failed"), false, Skip(SkipReason::Finished)),
            (
                "do-not-disrupt",
                pod("shop", Some("ReplicaSet"), &[(ANNOTATION_DO_NOT_DISRUPT, "true")]),
                false,
                Block(BlockReason::DoNotDisrupt),
            ),
            (
                "karpenter do-not-disrupt, any case",
                pod("shop", Some("ReplicaSet"), &[(ANNOTATION_KARPENTER_DO_NOT_DISRUPT, "TRUE")]),
                false,
                Block(BlockReason::DoNotDisrupt),
            ),
            (
                "safe-to-evict False",
                pod("shop", Some("ReplicaSet"), &[(ANNOTATION_SAFE_TO_EVICT, "False")]),
                false,
                Block(BlockReason::SafeToEvictFalse),
            ),
            ("no controller", pod("shop", None, &[]), false, Block(BlockReason::NoController)),
            ("no controller, consented", pod("shop", None, &[(ANNOTATION_SAFE_TO_EVICT, "true")]), false, Evict),
            ("local storage", local(pod("shop", Some("ReplicaSet"), &[])), false, Block(BlockReason::LocalStorage)),
            (
                "local storage, consented",
                local(pod("shop", Some("ReplicaSet"), &[(ANNOTATION_SAFE_TO_EVICT, "true")])),
                false,
                Evict,
            ),
            (
                "kube-system without a budget",
                pod("kube-system", Some("ReplicaSet"), &[]),
                false,
                Block(BlockReason::SystemPodWithoutBudget),
            ),
            ("kube-system with a budget", pod("kube-system", Some("ReplicaSet"), &[]), true, Evict),
        ];
        for (name, k8s_pod, covered, expected) in cases {
            let drain = match classify(&k8s_pod, covered, &strict) {
                Disposition::Skip(r) => Skip(r),
                Disposition::Block(r) => Block(r),
                Disposition::Evict { .. } => Evict,
            };
            assert_eq!(drain, expected, "drain: {name}");
            let model = autoscaler_decision::convert::pod(&k8s_pod).unwrap_or_default();
            assert_eq!(eviction(&model, covered, &EvictionPolicy::default()), expected, "scale-down model: {name}");
        }
    }

    #[test]
    fn a_policy_can_allow_what_blocks_by_default() {
        let dnd = pod("shop", Some("ReplicaSet"), &[(ANNOTATION_DO_NOT_DISRUPT, "true")]);
        let forced = DrainPolicy { allow_do_not_disrupt: true, ..DrainPolicy::default() };
        assert_eq!(classify(&dnd, false, &forced), Disposition::Evict { critical: false });
        let bare = pod("shop", None, &[]);
        let lenient = DrainPolicy { allow_controllerless: true, ..DrainPolicy::default() };
        assert!(matches!(classify(&bare, false, &lenient), Disposition::Evict { .. }));
        let cache = local(pod("shop", Some("ReplicaSet"), &[]));
        let storage = DrainPolicy { allow_local_storage: true, ..DrainPolicy::default() };
        assert!(matches!(classify(&cache, false, &storage), Disposition::Evict { .. }));
    }

    #[test]
    fn critical_pods_are_marked() {
        let mut p = pod("shop", Some("ReplicaSet"), &[]);
        p.spec = Some(PodSpec { priority_class_name: Some("system-cluster-critical".into()), ..Default::default() });
        assert_eq!(classify(&p, false, &DrainPolicy::default()), Disposition::Evict { critical: true });
        p.spec = Some(PodSpec { priority: Some(2_000_001_000), ..Default::default() });
        assert_eq!(classify(&p, false, &DrainPolicy::default()), Disposition::Evict { critical: true });
    }
}
