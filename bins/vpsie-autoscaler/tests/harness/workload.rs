//! Workloads and measurements for the autoscaling tests: Deployments in namespace `shop`, a pod watcher
//! that records when each pod was marked Unschedulable and the fewest available pods, and latencies from
//! those marks to the simulator's VM create requests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use autoscaler_api::VPSieNode;
use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::nodes::vpsienodes;
use super::{Env, Operator};

/// The namespace of the workloads.
pub const NS: &str = "shop";

/// Creates or scales Deployment `name` in `shop`: `replicas` pods of `size` (CPU, memory), with
/// `annotations` and an optional node selector.
pub async fn deployment(
    env: &Env,
    name: &str,
    replicas: i32,
    size: (&str, &str),
    annotations: serde_json::Value,
    node: Option<&str>,
) {
    let (cpu, memory) = size;
    let selector = node.map_or(json!({}), |n| json!({ "kubernetes.io/hostname": n }));
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": NS },
        "spec": { "replicas": replicas, "selector": { "matchLabels": { "app": name } },
          "template": { "metadata": { "labels": { "app": name }, "annotations": annotations },
            "spec": { "nodeSelector": selector, "containers": [{ "name": "c", "image": name,
              "resources": { "requests": { "cpu": cpu, "memory": memory } } }] } } }
    }))
    .unwrap();
    let api: Api<Deployment> = Api::namespaced(env.admin.clone(), NS);
    api.patch(name, &PatchParams::apply("e2e").force(), &Patch::Apply(&d)).await.unwrap();
}

pub fn running(p: &Pod) -> bool {
    p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        && p.metadata.deletion_timestamp.is_none()
}

pub async fn pods_of(env: &Env, app: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(env.admin.clone(), NS);
    api.list(&kube::api::ListParams::default().labels(&format!("app={app}"))).await.unwrap().items
}

/// The operator's audit lines of `action` (each a JSON object).
pub fn audit_lines(op: &Operator, action: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&op.audit)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["action"] == action)
        .collect()
}

/// Watches the pods of `shop` and records when each was first seen `PodScheduled=False/Unschedulable`,
/// in ms since the epoch (the scheduler's mark as a client sees it), and the fewest available pods of
/// `app` seen once it had `floor_from` available.
pub struct Watcher {
    pub unschedulable_at: Arc<Mutex<HashMap<String, i64>>>,
    pub min_available: Arc<Mutex<Option<usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    pub fn start(env: &Env, app: &'static str, floor_from: usize) -> Watcher {
        let unschedulable_at = Arc::new(Mutex::new(HashMap::new()));
        let min_available = Arc::new(Mutex::new(None));
        let api: Api<Pod> = Api::namespaced(env.admin.clone(), NS);
        let (seen, min) = (unschedulable_at.clone(), min_available.clone());
        let task = tokio::spawn(async move {
            let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
            let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
            while let Some(Ok(event)) = stream.next().await {
                let now = jiff::Timestamp::now().as_millisecond();
                let changed: Vec<Pod> = match event {
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => vec![p],
                    watcher::Event::Delete(p) => {
                        pods.remove(&p.name_any());
                        Vec::new()
                    }
                    _ => Vec::new(),
                };
                for p in changed {
                    let unschedulable = p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
                        cs.iter().any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("Unschedulable"))
                    });
                    if unschedulable {
                        seen.lock().unwrap().entry(p.name_any()).or_insert(now);
                    }
                    pods.insert(p.name_any(), p);
                }
                let available = pods
                    .values()
                    .filter(|p| p.labels().get("app").map(String::as_str) == Some(app) && running(p))
                    .count();
                let mut m = min.lock().unwrap();
                match *m {
                    None if available >= floor_from => *m = Some(available),
                    Some(low) if available < low => *m = Some(available),
                    _ => {}
                }
            }
        });
        Watcher { unschedulable_at, min_available, task }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// For each marked pod, the VM whose create request the simulator took first at or after its mark.
pub fn first_vm_after(env: &Env, marks: &HashMap<String, i64>) -> HashMap<String, String> {
    let dump = env.sim.dump();
    let vms: Vec<(i64, String)> = dump
        .vms
        .iter()
        .chain(dump.pending.iter().map(|p| &p.vm))
        .map(|v| (v.requested_at_ms, v.hostname.clone()))
        .collect();
    marks
        .iter()
        .filter_map(|(pod, at)| {
            let first = vms.iter().filter(|(req, _)| req >= at).min_by_key(|(req, _)| *req)?;
            Some((pod.clone(), first.1.clone()))
        })
        .collect()
}

/// Which VM each pod runs on.
pub async fn running_vm_of(env: &Env) -> HashMap<String, String> {
    pods_of(env, "web").await.into_iter().filter_map(|p| Some((p.name_any(), p.spec?.node_name?))).collect()
}

/// Per pod that went pending, the milliseconds from its first Unschedulable mark to the simulator taking
/// the create request of its VM in `vm_of`, sorted; and how many pending pods have no VM there requested
/// after their mark (placed on capacity already on its way: they waited for no create).
pub fn create_latencies(env: &Env, marks: &HashMap<String, i64>, vm_of: &HashMap<String, String>) -> (Vec<i64>, usize) {
    let dump = env.sim.dump();
    let requested: HashMap<String, i64> = dump
        .vms
        .iter()
        .chain(dump.pending.iter().map(|p| &p.vm))
        .map(|v| (v.hostname.clone(), v.requested_at_ms))
        .collect();
    let mut out = Vec::new();
    let mut on_requested_capacity = 0;
    for (pod, at) in marks {
        match vm_of.get(pod).and_then(|n| requested.get(n)) {
            Some(req) if *req >= *at => out.push(req - at),
            _ => on_requested_capacity += 1,
        }
    }
    out.sort_unstable();
    (out, on_requested_capacity)
}

/// Sorted latencies of every pending pod, those on capacity requested before their mark counted 0.
pub fn with_zeros(latencies: &[i64], zeros: usize) -> Vec<i64> {
    let mut all = latencies.to_vec();
    all.extend(std::iter::repeat_n(0, zeros));
    all.sort_unstable();
    all
}

pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The group's VPSieNodes a scaling loop created (annotation `created-for`).
pub async fn launched(env: &Env, group: &str) -> Vec<VPSieNode> {
    vpsienodes(env, group)
        .await
        .into_iter()
        .filter(|v| v.annotations().get("autoscaler.vpsie.com/created-for").is_some_and(|c| c == "scale-up"))
        .collect()
}
