//! The drain itself: cordon and taint, choose pods, evict (non-critical first), wait for them to go,
//! and on any failure put the node back as it was.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::time::Instant;
use tracing::Instrument;

use crate::classify::{Disposition, classify};
use crate::evict::{Evicted, PodEviction, evict_until};
use crate::node::{CordonState, cordon_and_taint, rollback};
use crate::outcome::{DrainFailure, DrainFailureReason, DrainedNode};
use crate::policy::DrainPolicy;

/// How often the drain checks whether evicted pods are gone.
const GONE_POLL: Duration = Duration::from_millis(250);

/// Drains nodes with one policy.
///
/// Give it a client whose `Config::default_retry` is off: kube's default retry layer repeats 429s (an
/// eviction refused by a PodDisruptionBudget) for minutes and hides them from the drain's own deadline.
#[derive(Clone)]
pub struct Drainer {
    client: Client,
    policy: DrainPolicy,
}

/// A pod to evict, remembered by UID so a replacement of the same name is not mistaken for it.
struct Victim {
    pod: Pod,
    critical: bool,
}

fn pod_id(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

impl Drainer {
    /// A drainer using `client` and `policy`.
    pub fn new(client: Client, policy: DrainPolicy) -> Self {
        Self { client, policy }
    }

    /// Drains `node`. On success the node stays cordoned and tainted and every evictable pod is gone; on
    /// failure the node is uncordoned and untainted again and the error says which pod and budget blocked.
    pub async fn drain(&self, node: &str) -> Result<DrainedNode, DrainFailure> {
        let span = tracing::info_span!("drain", node, nodegroup = %self.policy.nodegroup);
        let started = Instant::now();
        let result = self.drain_inner(node, started).instrument(span).await;
        let label = match &result {
            Ok(_) => "success",
            Err(f) => f.reason.as_str(),
        };
        crate::metrics::record(
            &self.policy.nodegroup,
            label,
            started.elapsed(),
            result.as_ref().map_or_else(|f| f.evicted, |d| d.evicted),
        );
        match &result {
            Ok(d) => {
                tracing::info!(node, evicted = d.evicted, elapsed_ms = d.duration.as_millis() as u64, "node drained")
            }
            Err(f) => tracing::warn!(node, error = %f, "drain failed; node restored"),
        }
        result
    }

    async fn drain_inner(&self, node: &str, started: Instant) -> Result<DrainedNode, DrainFailure> {
        let deadline = started + self.policy.timeout;
        let nodes: Api<Node> = Api::all(self.client.clone());
        let cordon = cordon_and_taint(&nodes, node).await.map_err(|e| DrainFailure {
            node: node.to_owned(),
            reason: DrainFailureReason::Api { message: format!("cordon: {e}") },
            evicted: 0,
            rollback_error: None,
        })?;
        let mut evicted = 0;
        let mut budget_waits = 0;
        let outcome = self.evict_all(node, deadline, &mut evicted, &mut budget_waits).await;
        match outcome {
            Ok(()) => Ok(DrainedNode { node: node.to_owned(), evicted, budget_waits, duration: started.elapsed() }),
            Err(reason) => Err(self.fail(&nodes, node, cordon, reason, evicted).await),
        }
    }

    async fn fail(
        &self,
        nodes: &Api<Node>,
        node: &str,
        cordon: CordonState,
        reason: DrainFailureReason,
        evicted: usize,
    ) -> DrainFailure {
        let rollback_error = rollback(nodes, node, cordon).await.err().map(|e| e.to_string());
        DrainFailure { node: node.to_owned(), reason, evicted, rollback_error }
    }

    async fn evict_all(
        &self,
        node: &str,
        deadline: Instant,
        evicted: &mut usize,
        waits: &mut u32,
    ) -> Result<(), DrainFailureReason> {
        let all: Api<Pod> = Api::all(self.client.clone());
        let on_node = all
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .map_err(|e| DrainFailureReason::Api { message: format!("listing pods: {e}") })?;
        let mut victims = Vec::new();
        for pod in on_node.items {
            match classify(&pod, &self.policy) {
                Disposition::Skip(reason) => tracing::debug!(pod = %pod_id(&pod), ?reason, "left on the node"),
                Disposition::Block(reason) => return Err(DrainFailureReason::Blocked { pod: pod_id(&pod), reason }),
                Disposition::Evict { critical } => victims.push(Victim { pod, critical }),
            }
        }
        // Non-critical pods first, so what they depend on (DNS, CNI helpers) stays up meanwhile.
        let (critical, normal): (Vec<_>, Vec<_>) = victims.into_iter().partition(|v| v.critical);
        for wave in [normal, critical] {
            if wave.is_empty() {
                continue;
            }
            // Futures built up front from owned pods: a stream closure borrowing the wave would make the
            // drain future not `Send` (higher-ranked lifetime), and the controller spawns drains.
            let evictions: Vec<_> = wave.iter().map(|v| self.evict_one(v.pod.clone(), deadline)).collect();
            let results: Vec<PodEviction> =
                futures::stream::iter(evictions).buffer_unordered(self.policy.parallelism.max(1)).collect().await;
            for r in &results {
                *waits += r.budget_waits;
                if matches!(r.result, Evicted::Accepted) {
                    *evicted += 1;
                }
            }
            for r in results {
                match r.result {
                    Evicted::Accepted | Evicted::AlreadyGone => {}
                    Evicted::Budget(budgets) => {
                        return Err(DrainFailureReason::DisruptionBudget { pod: r.pod, budgets });
                    }
                    Evicted::Failed(message) => return Err(DrainFailureReason::Eviction { pod: r.pod, message }),
                }
            }
            self.wait_gone(&wave, deadline).await?;
        }
        Ok(())
    }

    async fn evict_one(&self, pod: Pod, deadline: Instant) -> PodEviction {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let pdbs: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), &ns);
        evict_until(&pods, &pdbs, &pod, deadline, &self.policy).await
    }

    /// Waits until every pod of `wave` is gone by UID (deleted, not merely terminating).
    async fn wait_gone(&self, wave: &[Victim], deadline: Instant) -> Result<(), DrainFailureReason> {
        let mut remaining: HashSet<usize> = (0..wave.len()).collect();
        loop {
            let mut still = HashSet::new();
            for &i in &remaining {
                let pod = &wave[i].pod;
                let api: Api<Pod> =
                    Api::namespaced(self.client.clone(), pod.metadata.namespace.as_deref().unwrap_or_default());
                match api.get_opt(pod.metadata.name.as_deref().unwrap_or_default()).await {
                    Ok(Some(p)) if p.metadata.uid == pod.metadata.uid => {
                        still.insert(i);
                    }
                    Ok(_) => {}
                    // Unknown this round; look again.
                    Err(_) => {
                        still.insert(i);
                    }
                }
            }
            if still.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let mut pods: Vec<String> = still.iter().map(|&i| pod_id(&wave[i].pod)).collect();
                pods.sort();
                return Err(DrainFailureReason::PodsStillTerminating { pods });
            }
            remaining = still;
            tokio::time::sleep(GONE_POLL).await;
        }
    }
}
