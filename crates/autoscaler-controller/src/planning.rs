//! Plans run off the async executor: the decision core is CPU-bound (tens of milliseconds at 20,000 pods), so
//! a plan runs on a blocking thread while the watches, the Lease renewal and the HTTP endpoints keep going.

use std::sync::Arc;

use autoscaler_decision::groups::Expander;
use autoscaler_decision::{ScaleDownInput, ScaleDownPlan, ScaleUpInput, ScaleUpPlan, plan, plan_scale_down};

use crate::cluster::snapshot::Snapshot;
use crate::error::{Error, Result};

/// The scale-up plan for `snapshot`, computed on a blocking thread.
pub async fn scale_up(snapshot: Arc<Snapshot>, expander: Expander) -> Result<ScaleUpPlan> {
    tokio::task::spawn_blocking(move || {
        plan(ScaleUpInput { nodes: &snapshot.nodes, pending: &snapshot.pending, groups: &snapshot.groups, expander })
    })
    .await
    .map_err(|e| Error::Task(format!("scale-up plan: {e}")))
}

/// The scale-down plan for `snapshot`, computed on a blocking thread.
pub async fn scale_down(snapshot: Arc<Snapshot>) -> Result<ScaleDownPlan> {
    tokio::task::spawn_blocking(move || {
        plan_scale_down(ScaleDownInput { nodes: &snapshot.nodes, groups: &snapshot.groups, pdbs: &snapshot.pdbs })
    })
    .await
    .map_err(|e| Error::Task(format!("scale-down plan: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_decision::groups::{NodeGroup, Offering};
    use autoscaler_decision::{Pod, Resources};

    #[tokio::test(flavor = "current_thread")]
    async fn plans_run_on_a_blocking_thread_of_a_single_threaded_runtime() {
        let mut allocatable = Resources::cpu_mem(4000, 8 << 30);
        allocatable.pods = 110;
        let snap = Snapshot {
            pending: vec![Pod::new("shop", "web-0", 1000, 1 << 30)],
            groups: vec![NodeGroup {
                name: "general".into(),
                max_nodes: 3,
                offerings: vec![Offering { id: "sc-4cpu-8gb".into(), allocatable, monthly_price: 29.0 }],
                ..NodeGroup::default()
            }],
            ..Snapshot::default()
        };
        let up = scale_up(Arc::new(snap.clone()), Expander::Cheapest).await;
        assert_eq!(up.map(|p| p.new_nodes.len()).ok(), Some(1));
        let down = scale_down(Arc::new(snap)).await;
        assert!(down.is_ok());
    }
}
