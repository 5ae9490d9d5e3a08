//! A Pod as the pod cache decodes it: only the fields the conversion reads.
//!
//! A Running pod's JSON carries managedFields (a tree of small maps per writer) and container statuses that
//! the autoscaler never reads; decoding them into `k8s_openapi` types costs dozens of allocations per pod
//! and, at 30,000 pods, most of the operator's start-up peak. Serde skips unknown fields without allocating,
//! so these types name only what `convert::pod` and the cache use, and [`SlimPod::into_pod`] hands the
//! conversion an ordinary `Pod`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource;
use serde::{Deserialize, Deserializer};

/// The metadata fields the cache reads. Everything else, managedFields first, is skipped unread.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
    deletion_timestamp: Option<Time>,
    creation_timestamp: Option<Time>,
}

/// Annotations the conversion reads; the others (often kilobytes of last-applied configuration) are
/// dropped as they are decoded.
const KEPT_ANNOTATIONS: &[&str] = &[
    autoscaler_api::constants::ANNOTATION_DO_NOT_DISRUPT,
    autoscaler_api::constants::ANNOTATION_KARPENTER_DO_NOT_DISRUPT,
    autoscaler_api::constants::ANNOTATION_SAFE_TO_EVICT,
];

fn slim_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = SlimMeta::deserialize(d)?;
    let annotations = m.annotations.map(|mut a| {
        a.retain(|k, _| KEPT_ANNOTATIONS.contains(&k.as_str()));
        a
    });
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        labels: m.labels,
        annotations: annotations.filter(|a| !a.is_empty()),
        owner_references: m.owner_references,
        deletion_timestamp: m.deletion_timestamp,
        creation_timestamp: m.creation_timestamp,
        ..ObjectMeta::default()
    })
}

/// The status fields the cache reads (container statuses are skipped).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimStatus {
    phase: Option<String>,
    conditions: Option<Vec<PodCondition>>,
    nominated_node_name: Option<String>,
}

fn slim_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PodStatus>, D::Error> {
    Ok(Option::<SlimStatus>::deserialize(d)?.map(|s| PodStatus {
        phase: s.phase,
        conditions: s.conditions,
        nominated_node_name: s.nominated_node_name,
        ..PodStatus::default()
    }))
}

/// A Pod decoded with only the fields the cache needs.
#[derive(Debug, Clone, Deserialize)]
pub struct SlimPod {
    /// Metadata (no managedFields, only the annotations the conversion reads).
    #[serde(deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    /// The spec.
    #[serde(default)]
    pub spec: Option<PodSpec>,
    /// Phase, conditions and nominated node only.
    #[serde(default, deserialize_with = "slim_status")]
    pub status: Option<PodStatus>,
}

impl SlimPod {
    /// An ordinary Pod with the decoded fields.
    pub fn into_pod(self) -> Pod {
        Pod { metadata: self.metadata, spec: self.spec, status: self.status }
    }
}

impl Resource for SlimPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind((): &()) -> Cow<'_, str> {
        Cow::Borrowed("Pod")
    }
    fn group((): &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version((): &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural((): &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decodes_what_conversion_reads_and_drops_the_rest() {
        let json = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "shop", "uid": "u1", "resourceVersion": "42",
                "labels": {"app": "web"},
                "annotations": {"karpenter.sh/do-not-disrupt": "true", "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "r", "controller": true}],
                "managedFields": [{"manager": "kubelet", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]},
            "status": {"phase": "Running", "nominatedNodeName": "n2", "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0, "image": "i", "imageID": "x"}]}
        });
        let slim: SlimPod = serde_json::from_value(json.clone()).unwrap();
        let full: Pod = serde_json::from_value(json).unwrap();
        let pod = slim.into_pod();
        assert!(pod.metadata.managed_fields.is_none());
        assert_eq!(pod.metadata.annotations.as_ref().map(|a| a.len()), Some(1));
        assert!(pod.status.as_ref().is_some_and(|s| s.container_statuses.is_none()));
        assert_eq!(pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()), Some("n2"));
        // The conversion sees the same pod either way.
        let a = autoscaler_decision::convert::pod(&pod).unwrap();
        let b = autoscaler_decision::convert::pod(&full).unwrap();
        assert_eq!(a, b);
    }
}
