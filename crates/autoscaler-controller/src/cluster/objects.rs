//! What the caches keep of each object: the decision core's compact model plus the few fields the runtime
//! reads (binding, phase, the Unschedulable mark, ownership), never the whole object.
//!
//! Pods are most of a big cluster, and the replicas of one workload have the same model but for their name.
//! So a pod keeps its name, namespace and binding, and shares its model (the *template*) with every pod whose
//! model is equal: at 30,000 pods from a few hundred workloads that is a few hundred models, not 30,000.

use autoscaler_api::constants::{
    ANNOTATION_SCALE_DOWN_DISABLED, ANNOTATION_UNNEEDED_SINCE, LABEL_NODEGROUP, LABEL_OFFERING,
};
use std::collections::HashMap;
use std::sync::Arc;

use autoscaler_api::{NodeGroup, VPSieNode};
use autoscaler_decision::{Node, Pdb, Pod, convert};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node as K8sNode, Pod as K8sPod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::store::Converted;

/// A Node: its model (no pods; the snapshot binds them) and its cloud identity.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEntry {
    /// The decision core's node, with `group` and `offering` from our labels and no pods.
    pub model: Node,
    /// `spec.providerID`.
    pub provider_id: Option<String>,
    /// Since when the scale-down loop has found it unneeded (its annotation), if it has.
    pub unneeded_since: Option<jiff::Timestamp>,
    /// Annotated `autoscaler.vpsie.com/scale-down-disabled: "true"`: never scaled down or consolidated.
    pub scale_down_disabled: bool,
    /// Since when its Ready condition has not been True (its last transition), while it is not; `None` when
    /// Ready or when the condition carries no transition time.
    pub not_ready_since: Option<jiff::Timestamp>,
}

/// Where a pod stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// Not running yet.
    Pending,
    /// Running (or unknown: it still holds its node).
    Running,
}

/// A pod that still counts: its name, its shared model and what binds or blocks it. Finished pods are not
/// kept.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEntry {
    /// Name.
    pub name: Box<str>,
    /// Namespace (shared).
    pub namespace: Arc<str>,
    /// The decision core's pod with an empty name and namespace, shared by every equal pod; `do_not_disrupt`
    /// and `safe_to_evict` are read from the annotations.
    pub template: Arc<Pod>,
    /// The node it is bound to (shared).
    pub node_name: Option<Arc<str>>,
    /// Its phase.
    pub phase: PodPhase,
    /// When the scheduler marked it Unschedulable (PodScheduled False, reason Unschedulable), if it did.
    pub unschedulable_since: Option<jiff::Timestamp>,
    /// `status.nominatedNodeName`: preemption made room for it there.
    pub nominated_node: Option<Arc<str>>,
    /// Being deleted.
    pub terminating: bool,
}

impl PodEntry {
    /// A workload pod: not a DaemonSet's (those run on every node and are never evicted for a removal).
    pub fn is_workload(&self) -> bool {
        self.template.owner_kind.as_deref() != Some("DaemonSet")
    }

    /// The decision core's pod, with its name and namespace.
    pub fn model(&self) -> Pod {
        let mut p = (*self.template).clone();
        p.name = self.name.to_string();
        p.namespace = self.namespace.to_string();
        p
    }
}

/// Shares equal pod models and repeated strings (namespaces, node names) among the pods of a cache.
#[derive(Debug, Default)]
pub struct Interner {
    /// By a hash of the serialised model; equal models are confirmed with `==` (a collision keeps both).
    templates: HashMap<u64, Vec<Arc<Pod>>>,
    strings: HashMap<Box<str>, Arc<str>>,
    since_sweep: usize,
}

impl Interner {
    /// Entries added between two sweeps of unused ones.
    const SWEEP_EVERY: usize = 4096;

    fn template(&mut self, model: Pod) -> Arc<Pod> {
        self.sweep();
        // Pod is not Hash: hash its serialisation, streamed into the hasher (no string is built).
        let mut hasher = HashingWriter(std::collections::hash_map::DefaultHasher::new());
        let _ = serde_json::to_writer(&mut hasher, &model);
        let bucket = self.templates.entry(std::hash::Hasher::finish(&hasher.0)).or_default();
        if let Some(t) = bucket.iter().find(|t| ***t == model) {
            return t.clone();
        }
        let t = Arc::new(model);
        bucket.push(t.clone());
        t
    }

    fn string(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(Box::from(s), a.clone());
        a
    }

    /// Drops templates and strings no pod uses any more.
    fn sweep(&mut self) {
        self.since_sweep += 1;
        if self.since_sweep < Self::SWEEP_EVERY {
            return;
        }
        self.since_sweep = 0;
        self.templates.retain(|_, bucket| {
            bucket.retain(|t| Arc::strong_count(t) > 1);
            !bucket.is_empty()
        });
        self.strings.retain(|_, s| Arc::strong_count(s) > 1);
    }

    /// Number of distinct templates held.
    pub fn templates(&self) -> usize {
        self.templates.values().map(Vec::len).sum()
    }
}

/// Feeds written bytes to a hasher.
struct HashingWriter(std::collections::hash_map::DefaultHasher);

impl std::io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::hash::Hasher::write(&mut self.0, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A DaemonSet: the pod every matching new node will carry.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSetEntry {
    /// The model of its pod template.
    pub pod: Pod,
}

/// Converts a Pod. Succeeded and Failed pods are skipped: they hold no resources on any node.
pub fn pod(p: K8sPod, interner: &mut Interner) -> Converted<PodEntry> {
    let status = p.status.as_ref();
    let phase = match status.and_then(|s| s.phase.as_deref()) {
        Some("Succeeded" | "Failed") => return Converted::Skip,
        Some("Running" | "Unknown") => PodPhase::Running,
        _ => PodPhase::Pending,
    };
    let mut model = match convert::pod(&p) {
        Ok(m) => m,
        Err(e) => return Converted::Failed(e.to_string()),
    };
    let unschedulable_since = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter().find(|c| {
                c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
            })
        })
        .map(|c| c.last_transition_time.as_ref().map_or_else(jiff::Timestamp::now, |t| t.0));
    let node_name =
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()).map(|n| interner.string(n));
    let name = std::mem::take(&mut model.name).into_boxed_str();
    let namespace = interner.string(&std::mem::take(&mut model.namespace));
    Converted::Keep(PodEntry {
        name,
        namespace,
        template: interner.template(model),
        unschedulable_since: if node_name.is_none() { unschedulable_since } else { None },
        node_name,
        phase,
        nominated_node: status
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
            .map(|n| interner.string(n)),
        terminating: p.metadata.deletion_timestamp.is_some(),
    })
}

/// Converts a Node; `group` and `offering` come from our labels.
pub fn node(n: K8sNode) -> Converted<NodeEntry> {
    match convert::node(&n, Vec::new()) {
        Ok(mut model) => {
            model.group = model.labels.get(LABEL_NODEGROUP).cloned();
            model.offering = model.labels.get(LABEL_OFFERING).cloned();
            let annotations = n.metadata.annotations.as_ref();
            let annotation = |key: &str| annotations.and_then(|a| a.get(key));
            let not_ready_since = if model.ready {
                None
            } else {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                    .and_then(|c| c.last_transition_time.as_ref())
                    .map(|t| t.0)
            };
            Converted::Keep(NodeEntry {
                model,
                not_ready_since,
                unneeded_since: annotation(ANNOTATION_UNNEEDED_SINCE).and_then(|v| v.parse().ok()),
                scale_down_disabled: annotation(ANNOTATION_SCALE_DOWN_DISABLED)
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                provider_id: n.spec.and_then(|s| s.provider_id),
            })
        }
        Err(e) => Converted::Failed(e.to_string()),
    }
}

/// Keeps a Namespace's labels only: pod affinity's `namespaceSelector` reads nothing else.
pub fn namespace(n: k8s_openapi::api::core::v1::Namespace) -> Converted<autoscaler_decision::selectors::Labels> {
    Converted::Keep(n.metadata.labels.unwrap_or_default())
}

/// Converts a PodDisruptionBudget.
pub fn pdb(p: PodDisruptionBudget) -> Converted<Pdb> {
    match convert::pdb(&p) {
        Ok(m) => Converted::Keep(m),
        Err(e) => Converted::Failed(e.to_string()),
    }
}

/// Converts a DaemonSet to the model of the pod it runs on each node.
pub fn daemonset(d: DaemonSet) -> Converted<DaemonSetEntry> {
    let Some(spec) = d.spec else { return Converted::Skip };
    let template = K8sPod {
        metadata: kube::api::ObjectMeta {
            name: Some(d.metadata.name.clone().unwrap_or_default()),
            namespace: d.metadata.namespace.clone(),
            labels: spec.template.metadata.as_ref().and_then(|m| m.labels.clone()),
            ..Default::default()
        },
        spec: spec.template.spec,
        status: None,
    };
    match convert::pod(&template) {
        Ok(mut pod) => {
            pod.owner_kind = Some("DaemonSet".into());
            Converted::Keep(DaemonSetEntry { pod })
        }
        Err(e) => Converted::Failed(e.to_string()),
    }
}

/// A NodeGroup and who last changed its spec.
#[derive(Debug, Clone)]
pub struct NodeGroupEntry {
    /// The NodeGroup, without managedFields.
    pub group: NodeGroup,
    /// The field manager whose latest write touched its spec (for the audit log).
    pub spec_manager: Option<String>,
}

/// Keeps a NodeGroup without its managedFields, remembering who last changed its spec.
pub fn nodegroup(mut g: NodeGroup) -> Converted<NodeGroupEntry> {
    let spec_manager = spec_manager(&g.metadata);
    g.metadata.managed_fields = None;
    Converted::Keep(NodeGroupEntry { group: g, spec_manager })
}

/// Keeps a VPSieNode without its managedFields.
pub fn vpsienode(mut v: VPSieNode) -> Converted<VPSieNode> {
    v.metadata.managed_fields = None;
    Converted::Keep(v)
}

/// The field manager whose latest write touched `spec` (who changed it), from managedFields.
pub fn spec_manager(meta: &kube::api::ObjectMeta) -> Option<String> {
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|m| m.fields_v1.as_ref().is_some_and(|f| f.0.get("f:spec").is_some()))
        .max_by_key(|m| m.time.as_ref().map(|t| t.0))
        .and_then(|m| m.manager.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pod_json(v: serde_json::Value) -> K8sPod {
        serde_json::from_value(v).unwrap()
    }

    /// The API crate's annotation names are the decision core's, which reads them.
    #[test]
    fn annotation_names_agree_with_the_decision_core() {
        use autoscaler_api::constants as api;
        use autoscaler_decision::eviction as core;
        assert_eq!(api::ANNOTATION_DO_NOT_DISRUPT, core::ANNOTATION_DO_NOT_DISRUPT);
        assert_eq!(api::ANNOTATION_KARPENTER_DO_NOT_DISRUPT, core::ANNOTATION_KARPENTER_DO_NOT_DISRUPT);
        assert_eq!(api::ANNOTATION_SAFE_TO_EVICT, core::ANNOTATION_SAFE_TO_EVICT);
    }

    #[test]
    fn a_pod_keeps_what_plans_read_and_finished_pods_are_skipped() {
        let p = pod_json(serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"},
                         "annotations": {"karpenter.sh/do-not-disrupt": "true",
                                         "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
                                         "kubectl.kubernetes.io/last-applied-configuration": "{...big...}"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "env": [{"name": "A", "value": "1"}],
                                     "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                        "reason": "Unschedulable", "lastTransitionTime": "2026-12-01T10:00:00Z"}]}
        }));
        let mut interner = Interner::default();
        let Converted::Keep(e) = pod(p.clone(), &mut interner) else { panic!("kept") };
        let m = e.model();
        assert_eq!((m.name.as_str(), m.namespace.as_str()), ("web-0", "shop"));
        assert_eq!((m.requests.cpu_milli, m.requests.memory), (250, 64 << 20));
        assert!(m.do_not_disrupt);
        assert_eq!(m.safe_to_evict, Some(false));
        let mut twin = p;
        twin.metadata.name = Some("web-1".into());
        let Converted::Keep(t) = pod(twin, &mut interner) else { panic!("kept") };
        assert!(Arc::ptr_eq(&e.template, &t.template), "replicas share one model");
        assert_eq!(interner.templates(), 1);
        assert!(Arc::ptr_eq(&e.namespace, &t.namespace));
        assert_eq!(t.model().name, "web-1");
        assert_eq!(e.unschedulable_since.map(|t| t.to_string()), Some("2026-12-01T10:00:00Z".into()));
        assert_eq!(e.phase, PodPhase::Pending);

        let done = pod_json(serde_json::json!({"metadata": {"name": "job", "namespace": "a"},
            "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Succeeded"}}));
        assert!(matches!(pod(done, &mut interner), Converted::Skip));
        let bad = pod_json(serde_json::json!({"metadata": {"name": "x", "namespace": "a"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "lots"}}}]}}));
        assert!(matches!(pod(bad, &mut interner), Converted::Failed(_)));
    }

    #[test]
    fn nodes_carry_group_and_offering_from_our_labels() {
        let n: K8sNode = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "general-abcde", "labels": {"autoscaler.vpsie.com/nodegroup": "general",
                                                              "autoscaler.vpsie.com/offering": "sc-2cpu-4gb"}},
            "spec": {"providerID": "vpsie://vm-1"},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let Converted::Keep(e) = node(n) else { panic!("kept") };
        assert_eq!(e.model.group.as_deref(), Some("general"));
        assert_eq!(e.model.offering.as_deref(), Some("sc-2cpu-4gb"));
        assert_eq!(e.provider_id.as_deref(), Some("vpsie://vm-1"));
        assert!(e.model.ready && e.model.pods.is_empty());
    }

    #[test]
    fn the_spec_manager_is_the_latest_writer_of_spec() {
        let meta: kube::api::ObjectMeta = serde_json::from_value(serde_json::json!({
            "managedFields": [
                {"manager": "kubectl", "operation": "Update", "time": "2026-12-01T09:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:maxNodes": {}}}},
                {"manager": "vpsie-autoscaler", "operation": "Apply", "time": "2026-12-01T11:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}},
                {"manager": "helm", "operation": "Update", "time": "2026-12-01T10:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:minNodes": {}}}}
            ]
        }))
        .unwrap();
        assert_eq!(spec_manager(&meta).as_deref(), Some("helm"));
    }
}
