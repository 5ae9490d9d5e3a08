//! kwok's stages as this control plane runs them: upstream's, with every Node stage gated on kwok's
//! annotation still saying `fake`.
//!
//! kwok v0.8 picks the Nodes it manages by annotation but keeps managing a Node whose annotation was
//! removed: its heartbeats go on, and its `node-initialize` stage turns any Node whose Ready condition is
//! not True back to Ready. So nothing could make a kwok Node behave as one whose kubelet died (a powered-off
//! VM, a deleted one). With the gate, taking the annotation off (or changing its value) stops every Node
//! stage for that Node: no heartbeat, no re-initialising; the controller-manager marks it `Unknown` after
//! its grace period, as for a dead kubelet. Putting the annotation back makes kwok report it Ready again.

use crate::error::{Error, Result};
use crate::helpers::KWOK_ANNOTATION;

/// Upstream's stages (one multi-document YAML file) with each Node stage's selector gated.
pub(crate) fn gated(upstream: &str) -> Result<String> {
    let (key, value) = KWOK_ANNOTATION;
    let gate = format!(
        "    matchExpressions:\n    - key: '.metadata.annotations[\"{key}\"]'\n      operator: 'In'\n      values:\n      - '{value}'\n"
    );
    let mut out = String::with_capacity(upstream.len() + 512);
    let mut gated_stages = 0;
    for doc in upstream.split("---\n") {
        if doc.trim().is_empty() {
            continue;
        }
        out.push_str("---\n");
        if doc.contains("\n    kind: Node\n") {
            if doc.matches("    matchExpressions:\n").count() != 1 {
                return Err(Error::Build(format!("a kwok Node stage without exactly one selector:\n{doc}")));
            }
            out.push_str(&doc.replacen("    matchExpressions:\n", &gate, 1));
            gated_stages += 1;
        } else {
            out.push_str(doc);
        }
    }
    if gated_stages == 0 {
        return Err(Error::Build("kwok's stages have no Node stage to gate".into()));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn node_stages_are_gated_and_pod_stages_left_alone() {
        let upstream = "---\nkind: Stage\nmetadata:\n  name: node-initialize\nspec:\n  resourceRef:\n    apiGroup: v1\n    kind: Node\n  selector:\n    matchExpressions:\n    - key: '.status.phase'\n---\nkind: Stage\nmetadata:\n  name: pod-ready\nspec:\n  resourceRef:\n    apiGroup: v1\n    kind: Pod\n  selector:\n    matchExpressions:\n    - key: '.status.phase'\n";
        let out = gated(upstream).unwrap();
        assert_eq!(out.matches("kwok.x-k8s.io/node").count(), 1, "{out}");
        let node_doc = out.split("---\n").find(|d| d.contains("node-initialize")).unwrap();
        assert!(node_doc.contains("- key: '.metadata.annotations[\"kwok.x-k8s.io/node\"]'\n      operator: 'In'\n      values:\n      - 'fake'\n    - key: '.status.phase'"), "{node_doc}");
        assert!(gated("---\nkind: Stage\n").is_err(), "no Node stage: refused, not silently ungated");
    }
}
