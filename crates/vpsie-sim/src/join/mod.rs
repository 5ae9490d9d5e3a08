//! Booted VMs join a Kubernetes cluster as kwok-managed Nodes, the way their kubelet would register.
//!
//! When a VM becomes active, [`ClusterJoin`] reads the kubelet flags from its user data
//! ([`KubeletArgs`]) and, after the configured join delay, creates a Node: name = host name, the
//! provider id, labels and taints from the flags, capacity from the offer, zone and region from the
//! datacenter, and kwok's annotation so kwok keeps it Ready. User data that starts no kubelet means the VM
//! boots and never joins, as in real life. Registration is retried while the apiserver is unreachable or
//! answers 429/5xx, as a kubelet retries. Managed-cluster nodes join with `vpsie://<identifier>` (VPSie
//! installs their kubelet). Deleting the VM does not delete the Node: kwok stops managing it and its Ready
//! condition turns Unknown, as when a kubelet vanishes. Powering a VM off stops its Node's heartbeats (the
//! controller-manager marks it Unknown after its grace period); powering it on makes it Ready again.

mod kubelet_args;

use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeSpec, NodeStatus, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use std::collections::BTreeMap;

pub use kubelet_args::{KubeletArgs, NoJoin, RegisterTaint};

use crate::boot::{BootHook, BootedVm, PoweredVm};

/// kwok manages Nodes carrying this annotation (testenv starts kwok with this selector).
pub const KWOK_ANNOTATION: &str = "kwok.x-k8s.io/node";
/// Annotation on joined Nodes: the simulator's VM identifier (for people reading `kubectl describe`).
pub const VM_ANNOTATION: &str = "vpsie-sim.vpsie.com/vm";
/// Zone and region labels, set to the datacenter identifier (one zone per VPSie datacenter).
const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
const LABEL_REGION: &str = "topology.kubernetes.io/region";
/// Pods per node, the kubelet default.
const MAX_PODS: &str = "110";

/// Makes booted VMs register as Nodes in the cluster `client` talks to. Install it with
/// [`crate::SimHandle::join_cluster`].
pub struct ClusterJoin {
    client: Client,
    runtime: tokio::runtime::Handle,
    /// Identifiers of VMs deleted while their registration may still be retrying: a deleted VM's kubelet
    /// is gone and must not register afterwards.
    deleted: Deleted,
}

/// Identifiers of deleted VMs, shared with registration tasks.
type Deleted = std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

fn is_deleted(deleted: &Deleted, identifier: &str) -> bool {
    deleted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(identifier)
}

impl std::fmt::Debug for ClusterJoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterJoin").finish_non_exhaustive()
    }
}

impl ClusterJoin {
    /// A joiner for the cluster of `client`; must be made inside a Tokio runtime, where its work runs.
    pub fn new(client: Client) -> Self {
        Self { client, runtime: tokio::runtime::Handle::current(), deleted: Deleted::default() }
    }
}

/// The Node a booted VM registers as, or why it does not join.
pub fn node_for(vm: &BootedVm) -> Result<Node, NoJoin> {
    let args = match &vm.cluster_identifier {
        // VPSie installs the kubelet of managed-cluster nodes; it registers with the node's identifier.
        Some(_) => KubeletArgs { provider_id: format!("vpsie://{}", vm.identifier), ..KubeletArgs::default() },
        None => KubeletArgs::parse(vm.user_data.as_deref().unwrap_or_default())?,
    };
    let name = vm.hostname.to_ascii_lowercase();
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        (LABEL_ZONE, vm.dc_identifier.as_str()),
        (LABEL_REGION, vm.dc_identifier.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if !vm.offer_nickname.is_empty() {
        labels.insert("node.kubernetes.io/instance-type".to_owned(), vm.offer_nickname.clone());
    }
    labels.extend(args.labels);
    let extra = KubeletArgs::parse_taints(&vm.extra_taints)?;
    let taints: Vec<Taint> = args
        .taints
        .into_iter()
        .chain(extra)
        .map(|t| Taint {
            key: t.key,
            value: Some(t.value).filter(|v| !v.is_empty()),
            effect: t.effect,
            ..Default::default()
        })
        .collect();
    let resources: BTreeMap<String, Quantity> = [
        ("cpu", vm.cpu.to_string()),
        ("memory", format!("{}Mi", vm.ram_mib)),
        ("pods", MAX_PODS.to_owned()),
        ("ephemeral-storage", format!("{}Gi", vm.disk_gib.max(1))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Quantity(v)))
    .collect();
    let addresses = [("InternalIP", &vm.private_ip), ("ExternalIP", &vm.default_ip), ("Hostname", &name)]
        .into_iter()
        .filter(|(_, a)| !a.is_empty())
        .map(|(kind, a)| NodeAddress { type_: kind.to_owned(), address: a.clone() })
        .collect();
    Ok(Node {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels),
            annotations: Some(
                [(KWOK_ANNOTATION.to_owned(), "fake".to_owned()), (VM_ANNOTATION.to_owned(), vm.identifier.clone())]
                    .into(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            provider_id: Some(args.provider_id),
            taints: Some(taints).filter(|t| !t.is_empty()),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            allocatable: Some(resources.clone()),
            capacity: Some(resources),
            addresses: Some(addresses),
            ..Default::default()
        }),
    })
}

impl BootHook for ClusterJoin {
    fn vm_booted(&self, vm: &BootedVm) {
        if vm.never_joins {
            tracing::info!(hostname = %vm.hostname, "VM booted; it never joins (fault)");
            return;
        }
        let node = match node_for(vm) {
            Ok(node) => node,
            Err(why) => {
                tracing::info!(hostname = %vm.hostname, %why, "VM booted; it does not join the cluster");
                return;
            }
        };
        let nodes: Api<Node> = Api::all(self.client.clone());
        let delay = vm.join_delay;
        let (hostname, identifier, deleted) = (vm.hostname.clone(), vm.identifier.clone(), self.deleted.clone());
        self.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            let registration =
                Registration { nodes: &nodes, node: &node, hostname: &hostname, identifier: &identifier };
            registration.run(&deleted).await;
        });
    }

    fn vm_powered(&self, vm: &PoweredVm, on: bool) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let vm = vm.clone();
        self.runtime.spawn(async move {
            if let Err(e) = kubelet_powered(&nodes, &vm, on).await {
                tracing::warn!(node = %vm.hostname, on, error = %e, "could not make the Node follow its VM's power");
            }
        });
    }

    fn vm_deleted(&self, vm: &BootedVm) {
        self.deleted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(vm.identifier.clone());
        let nodes: Api<Node> = Api::all(self.client.clone());
        let name = vm.hostname.to_ascii_lowercase();
        let identifier = vm.identifier.clone();
        self.runtime.spawn(async move {
            if let Err(e) = kubelet_gone(&nodes, &name, &identifier).await {
                tracing::warn!(node = %name, error = %e, "could not mark the Node of a deleted VM NotReady");
            }
        });
    }
}

/// How long a kubelet keeps retrying its registration here before the simulator gives up on the VM.
const REGISTER_FOR: std::time::Duration = std::time::Duration::from_secs(300);
/// The pause between registration attempts (the kubelet's own backoff tops out at 7 s).
const REGISTER_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// One VM's Node registration.
struct Registration<'a> {
    nodes: &'a Api<Node>,
    node: &'a Node,
    hostname: &'a str,
    identifier: &'a str,
}

impl Registration<'_> {
    /// Creates the Node, retrying as a kubelet does while the apiserver is unreachable, slow or refuses for
    /// a while (a frozen or restarting control plane must not leave a booted VM without its Node). Stops
    /// once the VM is deleted; a Node created just as its VM was deleted is left as a deleted VM's is.
    async fn run(&self, deleted: &Deleted) {
        let started = tokio::time::Instant::now();
        let mut attempts = 0u32;
        while !is_deleted(deleted, self.identifier) {
            attempts += 1;
            if !self.attempt(attempts, started).await {
                break;
            }
            tokio::time::sleep(REGISTER_RETRY).await;
        }
        if is_deleted(deleted, self.identifier)
            && let Err(e) = kubelet_gone(self.nodes, &self.hostname.to_ascii_lowercase(), self.identifier).await
        {
            tracing::warn!(hostname = %self.hostname, error = %e, "could not mark the Node of a deleted VM NotReady");
        }
    }

    /// One try; whether to try again.
    async fn attempt(&self, attempts: u32, started: tokio::time::Instant) -> bool {
        let hostname = self.hostname;
        match self.nodes.create(&PostParams::default(), self.node).await {
            Ok(_) => {
                tracing::info!(%hostname, attempts, "VM joined the cluster as a Node");
                false
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tracing::info!(%hostname, "Node already registered");
                false
            }
            // A refusal (invalid Node, forbidden) does not heal by waiting.
            Err(kube::Error::Api(e)) if (400..500).contains(&e.code) && e.code != 429 => {
                tracing::warn!(%hostname, error = %e, "VM could not register its Node");
                false
            }
            Err(e) if started.elapsed() >= REGISTER_FOR => {
                tracing::warn!(%hostname, attempts, error = %e, "VM gave up registering its Node");
                false
            }
            Err(e) => {
                tracing::info!(%hostname, attempts, error = %e, "Node registration failed; retrying");
                true
            }
        }
    }
}

/// A powered-off VM's kubelet stops posting status: the simulator takes kwok's annotation off the Node, so
/// kwok stops its heartbeats and the controller-manager marks it `Unknown` after its grace period (40 s
/// here), as for a dead kubelet. Powered on again, the annotation returns and kwok reports it Ready, as a
/// kubelet that starts again does. Only a Node this VM registered (by the identifier annotation) is
/// touched.
async fn kubelet_powered(nodes: &Api<Node>, vm: &PoweredVm, on: bool) -> Result<(), kube::Error> {
    let name = vm.hostname.to_ascii_lowercase();
    let Some(node) = nodes.get_opt(&name).await? else {
        return Ok(());
    };
    let ours = node.metadata.annotations.as_ref().and_then(|a| a.get(VM_ANNOTATION)).map(String::as_str);
    if ours != Some(vm.identifier.as_str()) {
        return Ok(());
    }
    let value = if on { json!("fake") } else { serde_json::Value::Null };
    let patch = json!({ "metadata": { "annotations": { KWOK_ANNOTATION: value } } });
    nodes.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(())
}

/// What a vanished kubelet leaves: kwok no longer heartbeats the Node and Ready is Unknown. Only a Node
/// this VM registered (by the identifier annotation) is touched.
async fn kubelet_gone(nodes: &Api<Node>, name: &str, identifier: &str) -> Result<(), kube::Error> {
    let Some(node) = nodes.get_opt(name).await? else {
        return Ok(());
    };
    let ours = node.metadata.annotations.as_ref().and_then(|a| a.get(VM_ANNOTATION)).map(String::as_str);
    if ours != Some(identifier) {
        return Ok(());
    }
    let params = PatchParams::default();
    nodes
        .patch(name, &params, &Patch::Merge(json!({ "metadata": { "annotations": { KWOK_ANNOTATION: null } } })))
        .await?;
    let now = jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default();
    let status = json!({ "status": { "conditions": [{
        "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status (the VM was deleted).",
        "lastHeartbeatTime": now, "lastTransitionTime": now,
    }] } });
    nodes.patch_status(name, &params, &Patch::Strategic(status)).await?;
    Ok(())
}
