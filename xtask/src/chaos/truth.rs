//! The ground truth of a chaos run: the simulator's own VM list against the VPSieNodes (not the operator's
//! view), sampled all along for duplicates, and a watch on the workload's pods for budget violations.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use autoscaler_api::{VPSieNode, VPSieNodePhase};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, ResourceExt};

use crate::stack::{Stack, VmCall};
use crate::workload::{Workload, is_running};

/// One look at the cloud and the cluster.
pub(crate) struct Cloud {
    /// Host names of the simulator's VMs, pending ones included (a name twice is a duplicate).
    pub(crate) vms: Vec<String>,
    /// The group's VPSieNodes by name, with whether each is Ready.
    pub(crate) vpsienodes: BTreeMap<String, bool>,
}

impl Cloud {
    /// Reads both now.
    pub(crate) async fn read(stack: &Stack, group: &str) -> anyhow::Result<Cloud> {
        let dump = stack.sim.dump();
        let vms = dump.vms.iter().map(|v| v.hostname.clone()).chain(dump.pending.iter().map(|p| p.vm.hostname.clone()));
        let api: Api<VPSieNode> = Api::all(stack.admin.clone());
        let vpsienodes = api
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter(|v| v.spec.node_group_name == group)
            .map(|v| {
                let ready = v.status.as_ref().is_some_and(|s| s.phase == VPSieNodePhase::Ready);
                (v.name_any(), ready)
            })
            .collect();
        Ok(Cloud { vms: vms.collect(), vpsienodes })
    }

    /// Host names that appear more than once.
    pub(crate) fn duplicates(&self) -> usize {
        let unique: BTreeSet<&String> = self.vms.iter().collect();
        self.vms.len() - unique.len()
    }

    /// VMs no VPSieNode accounts for.
    pub(crate) fn leaked(&self) -> usize {
        self.vms.iter().collect::<BTreeSet<_>>().into_iter().filter(|h| !self.vpsienodes.contains_key(*h)).count()
    }

    /// Settled: one VM per VPSieNode, every VPSieNode Ready.
    pub(crate) fn settled(&self) -> bool {
        let vms: BTreeSet<&String> = self.vms.iter().collect();
        let names: BTreeSet<&String> = self.vpsienodes.keys().collect();
        self.duplicates() == 0 && vms == names && self.vpsienodes.values().all(|r| *r)
    }
}

/// VM create requests the simulator carried out (2xx).
pub(crate) fn vms_created(stack: &Stack) -> usize {
    stack.vm_calls(VmCall::Create).len()
}

/// VM deletes the simulator carried out (2xx).
pub(crate) fn vms_deleted(stack: &Stack) -> usize {
    stack.vm_calls(VmCall::Delete).len()
}

/// The most duplicates seen in the simulator's VM list, sampled whenever the scenario waits.
#[derive(Default)]
pub(crate) struct DuplicateSampler {
    most: usize,
}

impl DuplicateSampler {
    /// Looks once.
    pub(crate) fn sample(&mut self, stack: &Stack) {
        let dump = stack.sim.dump();
        let names: Vec<&String> =
            dump.vms.iter().map(|v| &v.hostname).chain(dump.pending.iter().map(|p| &p.vm.hostname)).collect();
        let unique: BTreeSet<&&String> = names.iter().collect();
        self.most = self.most.max(names.len() - unique.len());
    }

    /// Waits `span`, sampling every 250 ms.
    pub(crate) async fn wait(&mut self, stack: &Stack, span: Duration) {
        let started = Instant::now();
        while started.elapsed() < span {
            self.sample(stack);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The most seen so far.
    pub(crate) fn most(&self) -> usize {
        self.most
    }
}

/// Counts the times the workload's Running pods fell below the budget's `minAvailable`, once it had
/// reached it (a Deployment scaled down to the minimum does not count; an eviction past it does).
pub(crate) struct BudgetWatch {
    violations: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl BudgetWatch {
    /// Watches `workload`'s pods against `min_available`.
    pub(crate) fn start(stack: &Stack, workload: &Workload, min_available: usize) -> Self {
        let violations = Arc::new(Mutex::new(0));
        let api: Api<Pod> = Api::namespaced(stack.admin.clone(), workload.namespace);
        let (count, app) = (violations.clone(), workload.app);
        let task = tokio::spawn(async move {
            let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
            let (mut reached, mut below) = (false, false);
            let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
            while let Some(Ok(event)) = stream.next().await {
                match event {
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                        pods.insert(p.name_any(), p);
                    }
                    watcher::Event::Delete(p) => {
                        pods.remove(&p.name_any());
                    }
                    _ => continue,
                }
                let available = pods
                    .values()
                    .filter(|p| p.labels().get("app").map(String::as_str) == Some(app) && is_running(p))
                    .count();
                reached |= available >= min_available;
                if reached && available < min_available && !below {
                    *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                }
                below = reached && available < min_available;
            }
        });
        BudgetWatch { violations, task }
    }

    /// Violations so far.
    pub(crate) fn violations(&self) -> usize {
        *self.violations.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for BudgetWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until the workload has `replicas` pods Running and the cloud is settled; the time it took, or
/// `None` after `within`.
pub(crate) async fn converge(
    stack: &Stack,
    group: &str,
    workload: &Workload,
    replicas: usize,
    within: Duration,
) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    while started.elapsed() < within {
        let cloud = Cloud::read(stack, group).await;
        let running = workload.running(stack).await;
        if let (Ok(cloud), Ok(running)) = (cloud, running)
            && running == replicas
            && cloud.settled()
        {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(None)
}
