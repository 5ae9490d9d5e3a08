//! Cordon, taint and their rollback, by merge patches that carry the resourceVersion they were computed
//! from: a stale view fails with 409 and is read again, so nothing is ever written over a newer object.

use k8s_openapi::api::core::v1::{Node, Taint};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use autoscaler_api::constants::TAINT_TO_BE_DELETED;

/// Attempts against concurrent writers before giving up.
const CONFLICT_RETRIES: usize = 8;

/// What the node looked like before we cordoned it, so a rollback restores exactly that.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CordonState {
    /// Someone else had cordoned it; a rollback leaves it cordoned.
    pub(crate) was_unschedulable: bool,
}

/// Suffix of our taint's value when the node was already cordoned by someone else, so a rollback by a
/// later process (after a crash, or [`crate::Drainer::rollback`]) restores exactly that.
const WAS_CORDONED: &str = ".was-cordoned";

fn our_taint(t: &Taint) -> bool {
    t.key == TAINT_TO_BE_DELETED
}

/// The state recorded in our taint, if the node carries it.
pub(crate) fn recorded_state(node: &Node) -> Option<CordonState> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_ref())?;
    let ours = taints.iter().find(|t| our_taint(t))?;
    Some(CordonState { was_unschedulable: ours.value.as_deref().is_some_and(|v| v.ends_with(WAS_CORDONED)) })
}

/// Cordons the node and adds our NoSchedule taint.
pub(crate) async fn cordon_and_taint(nodes: &Api<Node>, name: &str) -> Result<CordonState, kube::Error> {
    let mut last = None;
    for _ in 0..CONFLICT_RETRIES {
        let node = nodes.get(name).await?;
        let spec = node.spec.clone().unwrap_or_default();
        let mut taints = spec.taints.clone().unwrap_or_default();
        // Our taint already there means an earlier drain of ours was interrupted: it recorded the state
        // from before that drain.
        let resumed = recorded_state(&node);
        let was_unschedulable = resumed.map_or(spec.unschedulable.unwrap_or(false), |s| s.was_unschedulable);
        if resumed.is_none() {
            let stamp = jiff::Timestamp::now().as_second().to_string();
            taints.push(Taint {
                key: TAINT_TO_BE_DELETED.to_owned(),
                value: Some(if was_unschedulable { format!("{stamp}{WAS_CORDONED}") } else { stamp }),
                effect: "NoSchedule".to_owned(),
                ..Default::default()
            });
        }
        let patch = json!({
            "metadata": { "resourceVersion": node.metadata.resource_version },
            "spec": { "unschedulable": true, "taints": taints },
        });
        match nodes.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(CordonState { was_unschedulable }),
            Err(kube::Error::Api(s)) if s.code == 409 => last = Some(kube::Error::Api(s)),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| kube::Error::Service("cordon: conflict retries exhausted".into())))
}

/// Removes our taint and restores the node's previous schedulability, from a fresh read.
pub(crate) async fn rollback(nodes: &Api<Node>, name: &str, state: CordonState) -> Result<(), kube::Error> {
    let mut last = None;
    for _ in 0..CONFLICT_RETRIES {
        let Some(node) = nodes.get_opt(name).await? else {
            return Ok(());
        };
        let taints: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !our_taint(t))
            .collect();
        let patch = json!({
            "metadata": { "resourceVersion": node.metadata.resource_version },
            "spec": { "unschedulable": state.was_unschedulable, "taints": taints },
        });
        match nodes.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => last = Some(kube::Error::Api(s)),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| kube::Error::Service("uncordon: conflict retries exhausted".into())))
}
