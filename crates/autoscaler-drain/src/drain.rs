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
use crate::client::DrainClient;
use crate::evict::{Evicted, PodEviction, evict_until, selector_matches};
use crate::node::{CordonState, cordon_and_taint, recorded_state, rollback};
use crate::outcome::{DrainFailure, DrainFailureReason, DrainedNode};
use crate::policy::DrainPolicy;

/// How often the drain checks whether evicted pods are gone.
const GONE_POLL: Duration = Duration::from_millis(250);

/// Drains nodes with one policy, through a [`DrainClient`] (kube's retry layer off, so a budget's refusal
/// reaches the drain at once and its own deadline holds).
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
    pub fn new(client: DrainClient, policy: DrainPolicy) -> Self {
        Self { client: client.client().clone(), policy }
    }

    /// Drains `node`. On success the node stays cordoned and tainted and every evictable pod is gone; on
    /// failure the node is uncordoned and untainted again (unless the policy keeps it cordoned) and the error
    /// says which pod and budget blocked.
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
            Err(f) if self.policy.keep_cordoned => {
                tracing::warn!(node, error = %f, "drain failed; node stays cordoned")
            }
            Err(f) => tracing::warn!(node, error = %f, "drain failed; node restored"),
        }
        result
    }

    /// Puts a node back as it was before a drain of ours (our taint removed, cordon as it was), from a
    /// fresh read; a node without our taint is left alone. For a controller that gave up on a drain, or
    /// found one interrupted by a crash.
    pub async fn rollback(&self, node: &str) -> Result<(), kube::Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let Some(current) = nodes.get_opt(node).await? else { return Ok(()) };
        match recorded_state(&current) {
            Some(state) => rollback(&nodes, node, state).await,
            None => Ok(()),
        }
    }

    async fn drain_inner(&self, node: &str, started: Instant) -> Result<DrainedNode, DrainFailure> {
        let deadline = started + self.policy.timeout;
        let nodes: Api<Node> = Api::all(self.client.clone());
        let failure = |reason| DrainFailure { node: node.to_owned(), reason, evicted: 0, rollback_error: None };
        let keep = self.policy.keep_cordoned;
        // Classify before cordoning: a node running a pod that may not be evicted is never cordoned, unless
        // the node is leaving anyway (then it is cordoned first, and stays so).
        if !keep {
            self.victims(node).await.map_err(failure)?;
        }
        let cordon = cordon_and_taint(&nodes, node)
            .await
            .map_err(|e| failure(DrainFailureReason::Api { message: format!("cordon: {e}") }))?;
        // From here until the outcome is known, dropping this future (a cancelled task, a shutdown)
        // rolls the node back instead of leaving it cordoned (a leaving node stays cordoned).
        let guard = RollbackOnDrop { nodes: nodes.clone(), node: node.to_owned(), state: cordon, armed: !keep };
        let mut evicted = 0;
        let mut budget_waits = 0;
        let outcome = self.evict_all(node, deadline, &mut evicted, &mut budget_waits).await;
        guard.disarm();
        match outcome {
            Ok(()) => Ok(DrainedNode { node: node.to_owned(), evicted, budget_waits, duration: started.elapsed() }),
            Err(reason) if keep => Err(DrainFailure { node: node.to_owned(), reason, evicted, rollback_error: None }),
            Err(reason) => Err(self.fail(&nodes, node, cordon, reason, evicted).await),
        }
    }

    /// The pods to evict from `node`, or why the drain may not go on.
    async fn victims(&self, node: &str) -> Result<Vec<Victim>, DrainFailureReason> {
        let on_node =
            self.pods_on(node).await.map_err(|e| DrainFailureReason::Api { message: format!("listing pods: {e}") })?;
        // Budgets matter to the rule for kube-system pods only: list those once, and only when needed.
        let system = autoscaler_decision::eviction::SYSTEM_NAMESPACE;
        let system_budgets = if on_node.iter().any(|p| p.metadata.namespace.as_deref() == Some(system)) {
            let pdbs: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), system);
            pdbs.list(&ListParams::default())
                .await
                .map_err(|e| DrainFailureReason::Api { message: format!("listing kube-system budgets: {e}") })?
                .items
        } else {
            Vec::new()
        };
        let mut victims = Vec::new();
        for pod in on_node {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let covered = system_budgets.iter().any(|b| {
                b.spec.as_ref().and_then(|s| s.selector.as_ref()).is_some_and(|s| selector_matches(s, &labels))
            });
            match classify(&pod, covered, &self.policy) {
                Disposition::Skip(reason) => tracing::debug!(pod = %pod_id(&pod), ?reason, "left on the node"),
                Disposition::Block(reason) => return Err(DrainFailureReason::Blocked { pod: pod_id(&pod), reason }),
                Disposition::Evict { critical } => victims.push(Victim { pod, critical }),
            }
        }
        Ok(victims)
    }

    /// Whether the node's kubelet stopped reporting: its Ready condition is `Unknown` (the controller-manager
    /// sets that when heartbeats stop). `False` is a kubelet that reports (runtime or network not ready) and
    /// still confirms deletions; a failed read says no: wait as for any node.
    async fn unreachable(&self, node: &str) -> bool {
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes.get_opt(node).await.ok().flatten().is_some_and(|n| {
            let conditions = n.status.and_then(|s| s.conditions).unwrap_or_default();
            conditions.iter().any(|c| c.type_ == "Ready" && c.status == "Unknown")
        })
    }

    async fn pods_on(&self, node: &str) -> Result<Vec<Pod>, kube::Error> {
        let all: Api<Pod> = Api::all(self.client.clone());
        Ok(all.list(&ListParams::default().fields(&format!("spec.nodeName={node}"))).await?.items)
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
        // Listed again now that the node is cordoned: a pod that arrived since the first look counts too.
        let victims = self.victims(node).await?;
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
            self.wait_gone(node, &wave, deadline).await?;
        }
        Ok(())
    }

    async fn evict_one(&self, pod: Pod, deadline: Instant) -> PodEviction {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let pdbs: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), &ns);
        evict_until(&pods, &pdbs, &pod, deadline, &self.policy).await
    }

    /// Waits until every pod of `wave` is gone by UID (deleted, not merely terminating): one list of the
    /// node's pods per interval, not one read per pod.
    async fn wait_gone(&self, node: &str, wave: &[Victim], deadline: Instant) -> Result<(), DrainFailureReason> {
        let mut remaining: Vec<&Pod> = wave.iter().map(|v| &v.pod).collect();
        loop {
            // An unreachable node's kubelet never confirms a deletion: a pod whose deletion began is gone.
            let unreachable = self.policy.unreachable_is_gone && self.unreachable(node).await;
            // A failed list leaves `remaining` as it was: looked at again next round.
            if let Ok(on_node) = self.pods_on(node).await {
                let present: HashSet<String> = on_node
                    .into_iter()
                    .filter(|p| !(unreachable && p.metadata.deletion_timestamp.is_some()))
                    .filter_map(|p| p.metadata.uid)
                    .collect();
                remaining.retain(|p| p.metadata.uid.as_ref().is_some_and(|uid| present.contains(uid)));
            }
            if remaining.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let mut pods: Vec<String> = remaining.iter().map(|p| pod_id(p)).collect();
                pods.sort();
                return Err(DrainFailureReason::PodsStillTerminating { pods });
            }
            tokio::time::sleep(GONE_POLL).await;
        }
    }
}

/// Rolls a cordoned node back if the drain future is dropped before its outcome is known.
struct RollbackOnDrop {
    nodes: Api<Node>,
    node: String,
    state: CordonState,
    armed: bool,
}

impl RollbackOnDrop {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for RollbackOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (nodes, node, state) = (self.nodes.clone(), std::mem::take(&mut self.node), self.state);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                tracing::warn!(node = %node, "drain cancelled; rolling the node back");
                runtime.spawn(async move {
                    if let Err(e) = rollback(&nodes, &node, state).await {
                        tracing::error!(node = %node, error = %e, "rollback after a cancelled drain failed");
                    }
                });
            }
            // No runtime left (the process is ending): the taint records the state; the next drain or
            // `Drainer::rollback` restores it.
            Err(_) => tracing::error!(node = %node, "drain cancelled without a runtime; node left cordoned"),
        }
    }
}
