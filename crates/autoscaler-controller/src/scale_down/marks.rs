//! The two marks the scale-down loop keeps on an unneeded Node, together: the
//! `autoscaler.vpsie.com/unneeded-since` annotation (the clock, which survives a restart) and the
//! `autoscaler.vpsie.com/deletion-candidate:PreferNoSchedule` taint (new pods avoid the node while its clock
//! runs). Only the loop writes them, and only on Nodes of our groups.

use autoscaler_api::constants::{ANNOTATION_UNNEEDED_SINCE, TAINT_DELETION_CANDIDATE};
use k8s_openapi::api::core::v1::{Node, Taint};
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::error::Result;

/// Sets (`Some`) or clears (`None`) both marks on `node`, from a fresh read; the patch carries the
/// read's resourceVersion, so a concurrent change to the taints fails it instead of being lost (the next
/// pass retries). A Node already gone is left alone.
pub async fn set(api: &Api<Node>, node: &str, since: Option<jiff::Timestamp>) -> Result<()> {
    let Some(current) = api.get_opt(node).await? else { return Ok(()) };
    let mut taints: Vec<Taint> = current.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let had = taints.iter().any(|t| t.key == TAINT_DELETION_CANDIDATE);
    let annotated = current.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(ANNOTATION_UNNEEDED_SINCE));
    if since.is_some() == had && since.is_some() == annotated {
        return Ok(());
    }
    taints.retain(|t| t.key != TAINT_DELETION_CANDIDATE);
    if let Some(at) = since {
        taints.push(Taint {
            key: TAINT_DELETION_CANDIDATE.to_owned(),
            value: Some(at.as_second().to_string()),
            effect: "PreferNoSchedule".to_owned(),
            time_added: None,
        });
    }
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": current.metadata.resource_version,
            "annotations": { ANNOTATION_UNNEEDED_SINCE: since.map(|t| t.to_string()) },
        },
        "spec": { "taints": taints },
    });
    api.patch(node, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}
