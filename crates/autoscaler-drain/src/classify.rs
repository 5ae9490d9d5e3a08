//! Which pods a drain evicts, leaves alone, or refuses to touch. Pure functions over Pod objects.

use k8s_openapi::api::core::v1::Pod;

use autoscaler_api::constants::{
    ANNOTATION_DO_NOT_DISRUPT, ANNOTATION_KARPENTER_DO_NOT_DISRUPT, ANNOTATION_SAFE_TO_EVICT,
};

use crate::policy::DrainPolicy;

/// The annotation the kubelet puts on mirror pods of static pods.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Priority at or above which a pod counts as critical (system-cluster-critical is 2,000,000,000).
const CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// Why a pod is left on the node untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A mirror pod of a static pod (the kubelet owns it).
    Mirror,
    /// Owned by a DaemonSet (it would come straight back, and DaemonSet pods tolerate the taint).
    DaemonSet,
    /// Already Succeeded or Failed.
    Terminal,
}

/// Why a pod blocks the drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReason {
    /// `autoscaler.vpsie.com/do-not-disrupt: "true"` or `karpenter.sh/do-not-disrupt: "true"`.
    DoNotDisrupt,
    /// `cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`.
    SafeToEvictFalse,
    /// No controller would recreate it.
    NoController,
    /// It keeps data in emptyDir or hostPath volumes that eviction would lose.
    LocalStorage,
}

impl BlockReason {
    /// A short label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::DoNotDisrupt => "do_not_disrupt",
            BlockReason::SafeToEvictFalse => "safe_to_evict_false",
            BlockReason::NoController => "no_controller",
            BlockReason::LocalStorage => "local_storage",
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
        })
    }
}

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

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.annotations.as_ref()?.get(key).map(String::as_str)
}

fn controller_kind(pod: &Pod) -> Option<&str> {
    pod.metadata.owner_references.as_ref()?.iter().find(|o| o.controller == Some(true)).map(|o| o.kind.as_str())
}

fn uses_local_storage(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|vols| vols.iter().any(|v| v.empty_dir.is_some() || v.host_path.is_some()))
}

fn is_critical(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let class = spec.and_then(|s| s.priority_class_name.as_deref());
    matches!(class, Some("system-cluster-critical" | "system-node-critical"))
        || spec.and_then(|s| s.priority).is_some_and(|p| p >= CRITICAL_PRIORITY)
}

/// Decides what a drain does with `pod` under `policy`.
pub fn classify(pod: &Pod, policy: &DrainPolicy) -> Disposition {
    if annotation(pod, MIRROR_ANNOTATION).is_some() {
        return Disposition::Skip(SkipReason::Mirror);
    }
    if controller_kind(pod) == Some("DaemonSet") {
        return Disposition::Skip(SkipReason::DaemonSet);
    }
    if matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")) {
        return Disposition::Skip(SkipReason::Terminal);
    }
    let safe_to_evict = annotation(pod, ANNOTATION_SAFE_TO_EVICT);
    if !policy.allow_do_not_disrupt {
        let dnd = [ANNOTATION_DO_NOT_DISRUPT, ANNOTATION_KARPENTER_DO_NOT_DISRUPT]
            .iter()
            .any(|k| annotation(pod, k) == Some("true"));
        if dnd {
            return Disposition::Block(BlockReason::DoNotDisrupt);
        }
        if safe_to_evict == Some("false") {
            return Disposition::Block(BlockReason::SafeToEvictFalse);
        }
    }
    // safe-to-evict=true is the owner's explicit consent, as in the Cluster Autoscaler.
    let consented = safe_to_evict == Some("true");
    if !consented && !policy.allow_controllerless && controller_kind(pod).is_none() {
        return Disposition::Block(BlockReason::NoController);
    }
    if !consented && !policy.allow_local_storage && uses_local_storage(pod) {
        return Disposition::Block(BlockReason::LocalStorage);
    }
    Disposition::Evict { critical: is_critical(pod) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, PodSpec, PodStatus, Volume};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn pod(owner: Option<&str>, annotations: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
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

    fn strict() -> DrainPolicy {
        DrainPolicy::default()
    }

    #[test]
    fn skips_mirror_daemonset_and_terminal_pods() {
        assert_eq!(classify(&pod(None, &[(MIRROR_ANNOTATION, "x")]), &strict()), Disposition::Skip(SkipReason::Mirror));
        assert_eq!(classify(&pod(Some("DaemonSet"), &[]), &strict()), Disposition::Skip(SkipReason::DaemonSet));
        let mut done = pod(Some("Job"), &[]);
        done.status = Some(PodStatus { phase: Some("Succeeded".into()), ..Default::default() });
        assert_eq!(classify(&done, &strict()), Disposition::Skip(SkipReason::Terminal));
    }

    #[test]
    fn blocks_with_typed_reasons_unless_allowed() {
        let dnd = pod(Some("ReplicaSet"), &[(ANNOTATION_DO_NOT_DISRUPT, "true")]);
        assert_eq!(classify(&dnd, &strict()), Disposition::Block(BlockReason::DoNotDisrupt));
        let karp = pod(Some("ReplicaSet"), &[(ANNOTATION_KARPENTER_DO_NOT_DISRUPT, "true")]);
        assert_eq!(classify(&karp, &strict()), Disposition::Block(BlockReason::DoNotDisrupt));
        let ste = pod(Some("ReplicaSet"), &[(ANNOTATION_SAFE_TO_EVICT, "false")]);
        assert_eq!(classify(&ste, &strict()), Disposition::Block(BlockReason::SafeToEvictFalse));
        let forced = DrainPolicy { allow_do_not_disrupt: true, ..strict() };
        assert_eq!(classify(&dnd, &forced), Disposition::Evict { critical: false });

        let bare = pod(None, &[]);
        assert_eq!(classify(&bare, &strict()), Disposition::Block(BlockReason::NoController));
        assert!(matches!(
            classify(&bare, &DrainPolicy { allow_controllerless: true, ..strict() }),
            Disposition::Evict { .. }
        ));
        let consented = pod(None, &[(ANNOTATION_SAFE_TO_EVICT, "true")]);
        assert!(matches!(classify(&consented, &strict()), Disposition::Evict { .. }));

        let mut local = pod(Some("ReplicaSet"), &[]);
        local.spec = Some(PodSpec {
            volumes: Some(vec![Volume {
                name: "cache".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert_eq!(classify(&local, &strict()), Disposition::Block(BlockReason::LocalStorage));
        assert!(matches!(
            classify(&local, &DrainPolicy { allow_local_storage: true, ..strict() }),
            Disposition::Evict { .. }
        ));
    }

    #[test]
    fn critical_pods_are_marked() {
        let mut p = pod(Some("ReplicaSet"), &[]);
        p.spec = Some(PodSpec { priority_class_name: Some("system-cluster-critical".into()), ..Default::default() });
        assert_eq!(classify(&p, &strict()), Disposition::Evict { critical: true });
        p.spec = Some(PodSpec { priority: Some(2_000_001_000), ..Default::default() });
        assert_eq!(classify(&p, &strict()), Disposition::Evict { critical: true });
    }
}
