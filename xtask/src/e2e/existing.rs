//! `cargo xtask e2e --kubeconfig PATH`: the scenarios against a cluster the harness does not own (kind with
//! kwok, or `cargo xtask cluster up`).
//!
//! The harness then starts no control plane: it connects with the given kubeconfig, issues the operator's
//! ServiceAccount a token and starts vpsie-sim, whose VMs join that cluster as kwok Nodes. This module does
//! what the harness's own control plane would make unnecessary: it checks the cluster can host the
//! scenarios, installs the CRDs and RBAC of `deploy/`, removes everything one scenario left before the next
//! (its operator is gone, so VPSieNode finalizers are stripped), and at the end removes what it installed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use autoscaler_api::{NodeGroup, VPSieNode};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, DynamicObject, ObjectMeta, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

/// The environment variable that points the harness at the cluster (`harness::EXISTING_CLUSTER`).
pub(crate) const EXISTING_CLUSTER: &str = "VPSIE_E2E_KUBECONFIG";

/// The namespace of every scenario's workloads (`harness/workload.rs`).
pub(crate) const WORKLOAD_NAMESPACE: &str = "shop";

/// Field manager of what this module applies.
const MANAGER: &str = "vpsie-e2e";

/// Marks a cluster as in use by `cargo xtask e2e`: its NodeGroups are the scenarios' own, so a run that
/// was interrupted can be cleaned up by the next.
const MARKER: &str = "vpsie-autoscaler-e2e";

/// The marker's key saying whether the run installed the CRDs (`installed`) or found them (`present`).
const MARKER_CRDS: &str = "crds";

/// The marker's key saying whether the run installed the RBAC of `deploy/rbac`.
const MARKER_RBAC: &str = "rbac";

/// The operator's ServiceAccount in `kube-system` (`deploy/rbac`), whose presence tells whether the
/// cluster had that RBAC before the run.
const SERVICE_ACCOUNT: &str = "vpsie-autoscaler";

/// The CRD whose presence tells whether the cluster had ours before the run.
const NODEGROUP_CRD: &str = "nodegroups.autoscaler.vpsie.com";

/// Secrets the harness writes in `kube-system`.
const SECRETS: [&str; 2] = ["vpsie-secret", "vpsie-join"];

/// An existing cluster prepared for the scenarios.
pub(crate) struct ExistingCluster {
    client: Client,
    kubeconfig: PathBuf,
    /// The CRDs were not there before the run (so the run removes them).
    installed_crds: bool,
    /// Nor was the operator's ServiceAccount of `deploy/rbac` (so the run removes that RBAC).
    installed_rbac: bool,
}

impl ExistingCluster {
    /// Checks the cluster can host the scenarios without harming what runs there, then installs the CRDs
    /// and RBAC.
    pub(crate) async fn prepare(kubeconfig: &Path) -> anyhow::Result<ExistingCluster> {
        let kubeconfig = std::path::absolute(kubeconfig).context("the --kubeconfig path")?;
        let client = testenv::client_from_kubeconfig(&kubeconfig)
            .await
            .with_context(|| format!("reading {}", kubeconfig.display()))?;
        let version = client
            .apiserver_version()
            .await
            .with_context(|| format!("reaching the apiserver of {}", kubeconfig.display()))?;
        println!("==> the cluster of {} (Kubernetes {}.{})", kubeconfig.display(), version.major, version.minor);
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let crds_absent = crds.get_opt(NODEGROUP_CRD).await.context("looking for the NodeGroup CRD")?.is_none();
        let markers: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
        let marker = markers.get_opt(MARKER).await.context("looking for the e2e marker ConfigMap")?;
        let marked = marker.is_some();
        // An interrupted run left its marker, which says whether that run installed the CRDs.
        let marker_says = |key: &str| {
            marker.as_ref().and_then(|m| m.data.as_ref()).is_some_and(|d| d.get(key).is_some_and(|v| v == "installed"))
        };
        let installed_crds = crds_absent || marker_says(MARKER_CRDS);
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "kube-system");
        let rbac_absent =
            accounts.get_opt(SERVICE_ACCOUNT).await.context("looking for the operator's ServiceAccount")?.is_none();
        let installed_rbac = rbac_absent || marker_says(MARKER_RBAC);
        if !crds_absent && !marked {
            let groups = Api::<NodeGroup>::all(client.clone()).list(&Default::default()).await?;
            let names: Vec<String> = groups.items.iter().map(ResourceExt::name_any).collect();
            if !names.is_empty() {
                bail!(
                    "the cluster has NodeGroups the e2e did not create ({}); the scenarios delete every NodeGroup and \
                     VPSieNode between runs, so use a scratch cluster",
                    names.join(", ")
                );
            }
        }
        refuse_schedulable_nodes(&client).await?;
        check_kwok(&client).await?;
        let marker = ConfigMap {
            metadata: ObjectMeta { name: Some(MARKER.to_owned()), ..Default::default() },
            data: Some(
                [
                    ("note".to_owned(), "in use by cargo xtask e2e; removed when it ends".to_owned()),
                    (MARKER_CRDS.to_owned(), if installed_crds { "installed" } else { "present" }.to_owned()),
                    (MARKER_RBAC.to_owned(), if installed_rbac { "installed" } else { "present" }.to_owned()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        markers.patch(MARKER, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&marker)).await?;
        let deploy = crate::ci::root().join("deploy");
        apply_manifests(&client, &deploy.join("crds")).await?;
        apply_manifests(&client, &deploy.join("rbac")).await?;
        // A CRD just created answers 429 "storage is (re)initializing" for a moment.
        testenv::wait_for("the CRDs to serve", Duration::from_secs(30), || {
            let client = client.clone();
            async move { Ok(leftovers(&client).await.map(|_| ()).map_err(|e| e.to_string())) }
        })
        .await?;
        let word = |installed| if installed { "installed" } else { "present" };
        println!("    CRDs {} and RBAC {} (deploy/ applied)", word(installed_crds), word(installed_rbac));
        Ok(ExistingCluster { client, kubeconfig, installed_crds, installed_rbac })
    }

    /// The kubeconfig the harness reads.
    pub(crate) fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Removes what a scenario leaves: NodeGroups and VPSieNodes (finalizers stripped: the operator that
    /// would run them has exited, and the simulator holding their VMs with it), the simulator's Nodes, the
    /// workload namespace, the operator's Lease, Events and the Secrets the harness wrote.
    pub(crate) async fn clean(&self) -> anyhow::Result<()> {
        let vpsienodes: Api<VPSieNode> = Api::all(self.client.clone());
        for v in vpsienodes.list(&Default::default()).await?.items {
            delete_without_finalizers(&vpsienodes, &v.name_any()).await?;
        }
        let groups: Api<NodeGroup> = Api::all(self.client.clone());
        for g in groups.list(&Default::default()).await?.items {
            delete_without_finalizers(&groups, &g.name_any()).await?;
        }
        self.remove_workload().await?;
        let nodes: Api<Node> = Api::all(self.client.clone());
        for n in nodes.list(&Default::default()).await?.items.iter().filter(|n| from_simulator(n)) {
            ignore_missing(nodes.delete(&n.name_any(), &DeleteParams::default()).await)?;
        }
        let events: Api<Event> = Api::all(self.client.clone());
        for e in events.list(&Default::default()).await?.items {
            if e.reporting_controller.as_deref() == Some("vpsie-autoscaler") {
                let ns = e.namespace().unwrap_or_default();
                let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
                ignore_missing(api.delete(&e.name_any(), &DeleteParams::default()).await)?;
            }
        }
        let system_secrets: Api<Secret> = Api::namespaced(self.client.clone(), "kube-system");
        for name in SECRETS {
            ignore_missing(system_secrets.delete(name, &DeleteParams::default()).await)?;
        }
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-system");
        ignore_missing(leases.delete("vpsie-autoscaler", &DeleteParams::default()).await)?;
        let client = self.client.clone();
        testenv::wait_for("the previous scenario's objects to be gone", Duration::from_secs(120), || {
            let client = client.clone();
            async move { Ok(leftovers(&client).await.map_err(|e| e.to_string()).and_then(Leftovers::gone)) }
        })
        .await?;
        Ok(())
    }

    /// Deletes the workload namespace and waits until it is gone. The workload goes before its Nodes: a
    /// terminating namespace takes no new pods, and kwok finishes the deleted ones at once while it still
    /// runs their Nodes (a pod whose Node went first waits about 40 s for the pod garbage collector).
    async fn remove_workload(&self) -> anyhow::Result<()> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        ignore_missing(namespaces.delete(WORKLOAD_NAMESPACE, &DeleteParams::default()).await)?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), WORKLOAD_NAMESPACE);
        let now = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
        ignore_missing(pods.delete_collection(&now, &Default::default()).await)?;
        testenv::wait_for("the workload namespace to be gone", Duration::from_secs(120), || {
            let namespaces = namespaces.clone();
            async move {
                Ok(match namespaces.get_opt(WORKLOAD_NAMESPACE).await {
                    Ok(None) => Ok(()),
                    Ok(Some(_)) => Err(format!("namespace {WORKLOAD_NAMESPACE} is terminating")),
                    Err(e) => Err(e.to_string()),
                })
            }
        })
        .await?;
        Ok(())
    }

    /// Cleans up, then removes the RBAC, the CRDs when the run installed them, and the marker.
    pub(crate) async fn remove(self) -> anyhow::Result<()> {
        let begun = std::time::Instant::now();
        self.clean().await?;
        let deploy = crate::ci::root().join("deploy");
        if self.installed_rbac {
            delete_manifests(&self.client, &deploy.join("rbac")).await?;
        }
        if self.installed_crds {
            delete_manifests(&self.client, &deploy.join("crds")).await?;
        }
        let markers: Api<ConfigMap> = Api::namespaced(self.client.clone(), "kube-system");
        ignore_missing(markers.delete(MARKER, &DeleteParams::default()).await)?;
        println!(
            "==> removed from the cluster in {}: the scenarios' objects{}{}",
            crate::progress::seconds(begun.elapsed()),
            if self.installed_rbac { ", the RBAC" } else { " (the RBAC was there before: kept)" },
            if self.installed_crds { ", the CRDs" } else { " (the CRDs were there before: kept)" }
        );
        Ok(())
    }
}

/// What is still there after a clean-up.
struct Leftovers {
    names: BTreeSet<String>,
}

impl Leftovers {
    /// `Ok` once nothing is left, else what is (the shape [`testenv::wait_for`] polls for).
    fn gone(self) -> Result<(), String> {
        if self.names.is_empty() {
            Ok(())
        } else {
            Err(format!("still there: {}", self.names.into_iter().collect::<Vec<_>>().join(", ")))
        }
    }
}

async fn leftovers(client: &Client) -> anyhow::Result<Leftovers> {
    let mut names = BTreeSet::new();
    for v in Api::<VPSieNode>::all(client.clone()).list(&Default::default()).await?.items {
        names.insert(format!("VPSieNode {}", v.name_any()));
    }
    for g in Api::<NodeGroup>::all(client.clone()).list(&Default::default()).await?.items {
        names.insert(format!("NodeGroup {}", g.name_any()));
    }
    for n in
        Api::<Node>::all(client.clone()).list(&Default::default()).await?.items.iter().filter(|n| from_simulator(n))
    {
        names.insert(format!("Node {}", n.name_any()));
    }
    if Api::<Namespace>::all(client.clone()).get_opt(WORKLOAD_NAMESPACE).await?.is_some() {
        names.insert(format!("Namespace {WORKLOAD_NAMESPACE}"));
    }
    Ok(Leftovers { names })
}

/// A Node the simulator created for one of its VMs.
fn from_simulator(node: &Node) -> bool {
    node.spec.as_ref().and_then(|s| s.provider_id.as_deref()).is_some_and(|p| p.starts_with("vpsie://"))
}

/// Nodes of the cluster that would take the scenarios' pods: the scenarios count the pods on the nodes
/// they grow, so other nodes must not accept them.
async fn refuse_schedulable_nodes(client: &Client) -> anyhow::Result<()> {
    let nodes = Api::<Node>::all(client.clone()).list(&Default::default()).await?;
    let open: Vec<String> = nodes
        .items
        .iter()
        .filter(|n| !from_simulator(n))
        .filter(|n| {
            let spec = n.spec.as_ref();
            let cordoned = spec.and_then(|s| s.unschedulable).unwrap_or(false);
            let tainted = spec
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|ts| ts.iter().any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute"));
            !cordoned && !tainted
        })
        .map(ResourceExt::name_any)
        .collect();
    if !open.is_empty() {
        bail!(
            "Nodes {} would take the scenarios' pods, which must land only on the nodes the operator adds; \
             cordon them for the run (kubectl cordon {}) or use a cluster whose nodes are tainted",
            open.join(", "),
            open.join(" ")
        );
    }
    Ok(())
}

/// The simulator's VMs join as Nodes annotated for kwok; without kwok they never turn Ready.
async fn check_kwok(client: &Client) -> anyhow::Result<()> {
    const PROBE: &str = "vpsie-e2e-kwok-probe";
    let nodes: Api<Node> = Api::all(client.clone());
    ignore_missing(nodes.delete(PROBE, &DeleteParams::default()).await)?;
    testenv::KwokNode::new(PROBE, "1", "1Gi").taint("vpsie-e2e/probe", "true", "NoSchedule").create(client).await?;
    let ready = testenv::wait_for("kwok to make a probe Node Ready", Duration::from_secs(30), || {
        let nodes = nodes.clone();
        async move {
            Ok(match nodes.get(PROBE).await {
                Ok(node) if testenv::node_ready(&node) => Ok(()),
                Ok(_) => Err("the probe Node is not Ready".to_owned()),
                Err(e) => Err(e.to_string()),
            })
        }
    })
    .await;
    ignore_missing(nodes.delete(PROBE, &DeleteParams::default()).await)?;
    ready.map_err(|e| {
        anyhow::anyhow!(
            "{e}: kwok must manage Nodes annotated {}={} (https://kwok.sigs.k8s.io, --manage-nodes-with-annotation-selector)",
            testenv::KWOK_ANNOTATION.0,
            testenv::KWOK_ANNOTATION.1
        )
    })
}

async fn delete_without_finalizers<K>(api: &Api<K>, name: &str) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let strip = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    ignore_missing(api.patch(name, &PatchParams::default(), &strip).await.map(|_| ()))?;
    ignore_missing(api.delete(name, &DeleteParams::default()).await.map(|_| ()))
}

/// A deletion of something already gone succeeds.
fn ignore_missing<T>(result: kube::Result<T>) -> anyhow::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Every object of the YAML files in `dir`, in file order.
fn manifests(dir: &Path) -> anyhow::Result<Vec<DynamicObject>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let docs: Vec<Option<DynamicObject>> =
            serde_saphyr::from_multiple(&text).with_context(|| format!("parsing {}", file.display()))?;
        objects.extend(docs.into_iter().flatten());
    }
    Ok(objects)
}

/// The API of one manifest object, found by discovery.
async fn api_for(client: &Client, object: &DynamicObject) -> anyhow::Result<Api<DynamicObject>> {
    let types = object.types.as_ref().context("a manifest object without apiVersion and kind")?;
    let gvk = GroupVersionKind::try_from(types).context("apiVersion")?;
    let (resource, capabilities) =
        pinned_kind(client, &gvk).await.with_context(|| format!("the cluster does not serve {}", types.kind))?;
    Ok(match capabilities.scope {
        Scope::Namespaced => {
            let ns = object.namespace().unwrap_or_else(|| "default".to_owned());
            Api::namespaced_with(client.clone(), &ns, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    })
}

/// Server-side applies every object of `dir` (what `kubectl apply --server-side -f dir` does).
async fn apply_manifests(client: &Client, dir: &Path) -> anyhow::Result<()> {
    for object in manifests(dir)? {
        let api = api_for(client, &object).await?;
        let name = object.name_any();
        api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&object))
            .await
            .with_context(|| format!("applying {name} from {}", dir.display()))?;
    }
    Ok(())
}

/// Deletes every object of `dir`; objects already gone are fine.
async fn delete_manifests(client: &Client, dir: &Path) -> anyhow::Result<()> {
    for object in manifests(dir)? {
        let api = api_for(client, &object).await?;
        ignore_missing(api.delete(&object.name_any(), &DeleteParams::default()).await.map(|_| ()))
            .with_context(|| format!("deleting {} from {}", object.name_any(), dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xtask and the harness name the same environment variable and workload namespace.
    #[test]
    fn the_harness_reads_the_same_variable_and_namespace() {
        let harness = crate::ci::root().join("bins/vpsie-autoscaler/tests/harness");
        let module = std::fs::read_to_string(harness.join("mod.rs")).unwrap_or_default();
        assert!(module.contains(&format!("pub const EXISTING_CLUSTER: &str = \"{EXISTING_CLUSTER}\";")));
        let workload = std::fs::read_to_string(harness.join("workload.rs")).unwrap_or_default();
        assert!(workload.contains(&format!("pub const NS: &str = \"{WORKLOAD_NAMESPACE}\";")));
    }

    /// Every manifest of `deploy/crds` and `deploy/rbac` parses with a kind and a name.
    #[test]
    fn the_deploy_manifests_parse() {
        let deploy = crate::ci::root().join("deploy");
        for dir in ["crds", "rbac"] {
            let objects = manifests(&deploy.join(dir)).unwrap_or_default();
            assert!(!objects.is_empty(), "{dir} has objects");
            for o in &objects {
                assert!(o.types.is_some() && o.metadata.name.is_some(), "{dir}: {:?}", o.metadata.name);
            }
        }
    }
}
