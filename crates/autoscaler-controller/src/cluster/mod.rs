//! The caches: Nodes, Pods (all namespaces), PodDisruptionBudgets, DaemonSets, Namespaces (their labels, for
//! pod affinity's `namespaceSelector`), NodeGroups and VPSieNodes,
//! each watched and kept in compact form ([`objects`]), and the decision core's snapshot built from them
//! ([`snapshot`]). Every replica runs them, leader or not, so a new leader acts on warm caches at once.

pub mod budget_schedule;
pub mod objects;
pub mod slim;
pub mod snapshot;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use autoscaler_api::{NodeGroup, VPSieNode};
use autoscaler_decision::Pdb;
use autoscaler_decision::selectors::Labels;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node as K8sNode};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use objects::{DaemonSetEntry, Interner, NodeEntry, NodeGroupEntry, PodEntry, PodPhase};
pub use store::Store;

/// Objects per list page when a cache (re)lists. Pages of 100 (client-go lists 500): a page is decoded whole
/// before its objects are compacted, so the page size bounds the start-up peak more than the object count does.
pub const LIST_PAGE_SIZE: u32 = 100;

/// Watches every object of kind `K` into `store`, converting each with `convert`.
fn watch<K, V>(
    client: &Client,
    store: &Arc<Store<V>>,
    health: &crate::health::Health,
    convert: impl FnMut(K, Option<&V>) -> store::Converted<V> + Send + 'static,
) -> JoinHandle<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    V: Send + Sync + 'static,
{
    let config = watcher::Config::default().page_size(LIST_PAGE_SIZE);
    tokio::spawn(store::drive(Api::<K>::all(client.clone()), config, store.clone(), health.clone(), convert))
}

/// A NodeGroup whose spec changed (a new `metadata.generation`), for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecChange {
    /// NodeGroup name.
    pub name: String,
    /// Generation before.
    pub from: i64,
    /// Generation now.
    pub to: i64,
    /// The field manager that wrote the spec last.
    pub by: Option<String>,
}

/// Every cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Nodes.
    pub nodes: Arc<Store<NodeEntry>>,
    /// Pods that still hold or want a node.
    pub pods: Arc<Store<PodEntry>>,
    /// PodDisruptionBudgets.
    pub pdbs: Arc<Store<Pdb>>,
    /// DaemonSets.
    pub daemonsets: Arc<Store<DaemonSetEntry>>,
    /// Namespaces' labels.
    pub namespaces: Arc<Store<Labels>>,
    /// NodeGroups, each with the field manager that last changed its spec.
    pub nodegroups: Arc<Store<NodeGroupEntry>>,
    /// VPSieNodes.
    pub vpsienodes: Arc<Store<VPSieNode>>,
}

impl Default for Cluster {
    fn default() -> Self {
        Self::new()
    }
}

impl Cluster {
    /// Empty, unsynced caches.
    pub fn new() -> Self {
        Self {
            nodes: Arc::new(Store::new("nodes")),
            pods: Arc::new(Store::new("pods")),
            pdbs: Arc::new(Store::new("poddisruptionbudgets")),
            daemonsets: Arc::new(Store::new("daemonsets")),
            namespaces: Arc::new(Store::new("namespaces")),
            nodegroups: Arc::new(Store::new("nodegroups")),
            vpsienodes: Arc::new(Store::new("vpsienodes")),
        }
    }

    /// Workload pods (not DaemonSet pods) bound to each node, by node name: one scan of the pod cache for a
    /// whole pass. A node with any is serving, whatever phase its VPSieNode is in.
    pub fn workload_pods_by_node(&self) -> std::collections::HashMap<Arc<str>, usize> {
        let mut by_node = std::collections::HashMap::new();
        for pod in self.pods.read().values().filter(|p| p.is_workload()) {
            if let Some(node) = &pod.node_name {
                *by_node.entry(node.clone()).or_insert(0) += 1;
            }
        }
        by_node
    }

    /// Whether every cache has listed once.
    pub fn synced(&self) -> bool {
        self.unsynced().is_empty()
    }

    /// Which caches have not listed yet.
    pub fn unsynced(&self) -> Vec<&'static str> {
        [
            (self.nodes.kind(), self.nodes.is_synced()),
            (self.pods.kind(), self.pods.is_synced()),
            (self.pdbs.kind(), self.pdbs.is_synced()),
            (self.daemonsets.kind(), self.daemonsets.is_synced()),
            (self.namespaces.kind(), self.namespaces.is_synced()),
            (self.nodegroups.kind(), self.nodegroups.is_synced()),
            (self.vpsienodes.kind(), self.vpsienodes.is_synced()),
        ]
        .into_iter()
        .filter_map(|(k, s)| (!s).then_some(k))
        .collect()
    }

    /// Starts every watch. NodeGroup spec changes go to `changes`.
    pub fn start(
        &self,
        client: &Client,
        health: &crate::health::Health,
        changes: mpsc::UnboundedSender<SpecChange>,
    ) -> Vec<JoinHandle<()>> {
        let mut interner = objects::Interner::default();
        vec![
            watch::<K8sNode, _>(client, &self.nodes, health, |n, _| objects::node(n)),
            watch::<slim::SlimPod, _>(client, &self.pods, health, move |p, _| {
                objects::pod(p.into_pod(), &mut interner)
            }),
            watch::<PodDisruptionBudget, _>(client, &self.pdbs, health, |p, _| objects::pdb(p)),
            watch::<DaemonSet, _>(client, &self.daemonsets, health, |d, _| objects::daemonset(d)),
            watch::<Namespace, _>(client, &self.namespaces, health, |n, _| objects::namespace(n)),
            watch::<NodeGroup, _>(client, &self.nodegroups, health, move |g, old| {
                let to = g.metadata.generation.unwrap_or(0);
                let converted = objects::nodegroup(g);
                if let (store::Converted::Keep(new), Some(prev)) = (&converted, old) {
                    let from = prev.group.metadata.generation.unwrap_or(0);
                    if to > from {
                        let name = kube::ResourceExt::name_any(&new.group);
                        let _ = changes.send(SpecChange { name, from, to, by: new.spec_manager.clone() });
                    }
                }
                converted
            }),
            watch::<VPSieNode, _>(client, &self.vpsienodes, health, |v, _| objects::vpsienode(v)),
        ]
    }

    /// Runs `pass` again and again: after a change to Nodes, VPSieNodes or NodeGroups, after one of `wake`
    /// is notified, or when the delay the last pass returned runs out, whichever comes first. The change
    /// futures are armed before each pass, so a change made while a pass runs starts the next one at once.
    /// A burst of changes is folded into one pass by a short settle pause.
    pub async fn on_change<F, Fut>(&self, wake: &[&tokio::sync::Notify], mut pass: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Duration>,
    {
        const SETTLE: Duration = Duration::from_millis(20);
        loop {
            let (nodes, vpsienodes, groups) =
                (self.nodes.notified(), self.vpsienodes.notified(), self.nodegroups.notified());
            tokio::pin!(nodes, vpsienodes, groups);
            nodes.as_mut().enable();
            vpsienodes.as_mut().enable();
            groups.as_mut().enable();
            let mut woken: Vec<_> = wake.iter().map(|w| Box::pin(w.notified())).collect();
            for w in &mut woken {
                w.as_mut().enable();
            }
            let any_woken = async {
                if woken.is_empty() {
                    std::future::pending::<()>().await;
                } else {
                    futures::future::select_all(woken).await;
                }
            };
            let next = pass().await;
            tokio::select! {
                () = &mut nodes => {}
                () = &mut vpsienodes => {}
                () = &mut groups => {}
                () = any_woken => {}
                () = tokio::time::sleep(next) => {}
            }
            tokio::time::sleep(SETTLE).await;
        }
    }

    /// Waits until every cache has listed once, or `timeout` passes. Returns whether they synced.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.synced() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}
