//! Booted VMs join a real local control plane as kwok Nodes, as their kubelet would register them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{AUTH, JSON, http};
use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client};
use serde_json::json;
use vpsie_sim::{KWOK_ANNOTATION, SimConfig, SimHandle};

const DC: &str = "dc-us-east-1";

async fn setup() -> (SimHandle, Api<Node>) {
    let cp = testenv::shared().await.expect("control plane");
    let client: Client = cp.client().await.expect("client");
    let sim = SimHandle::start(SimConfig { boot_delay: Duration::from_millis(50), ..SimConfig::default() })
        .await
        .expect("simulator");
    sim.join_cluster(client.clone());
    (sim, Api::all(client))
}

async fn create_vm(sim: &SimHandle, hostname: &str, user_data: &str) {
    let offer = sim.catalog().offer_by_nickname(DC, "sc-4cpu-8gb").expect("offer").identifier.clone();
    let body = json!({ "hostname": hostname, "dcIdentifier": DC, "resourceIdentifier": offer,
                       "osIdentifier": "ubuntu-22.04-lts", "userData": user_data });
    let reply = http(sim, "POST", "/apps/v2/vm", &[AUTH, JSON], &body.to_string()).await;
    assert_eq!(reply.json()["error"], false, "{}", reply.body);
}

async fn node(nodes: &Api<Node>, name: &str, what: &str, ok: impl Fn(&Node) -> bool) -> Node {
    testenv::wait_for(what, Duration::from_secs(60), || async {
        Ok(match nodes.get_opt(name).await? {
            Some(n) if ok(&n) => Ok(n),
            other => Err(format!("{other:?}")),
        })
    })
    .await
    .expect(what)
}

fn ready(n: &Node) -> Option<String> {
    let conditions = n.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.status.clone())
}

fn vm_identifier(sim: &SimHandle, hostname: &str) -> String {
    sim.dump().vms.iter().find(|v| v.hostname == hostname).map(|v| v.identifier.clone()).unwrap_or_default()
}

const KUBEADM: &str = "#!/bin/bash\nkubeadm join 10.0.0.1:6443 --token abc.def --discovery-token-ca-cert-hash sha256:00\n\
    cat > /etc/default/kubelet <<EOT\nKUBELET_EXTRA_ARGS=\"--provider-id=vpsie://sim-vm \
    --node-labels=autoscaler.vpsie.com/nodegroup=general,team=web \
    --register-with-taints=dedicated=web:NoSchedule,autoscaler.vpsie.com/initializing:NoSchedule\"\nEOT\n";

#[tokio::test]
async fn a_booted_vm_registers_as_its_kubelet_would_and_a_deleted_one_goes_not_ready() {
    let (sim, nodes) = setup().await;
    create_vm(&sim, "join-web-1", KUBEADM).await;
    let n = node(&nodes, "join-web-1", "Node join-web-1 Ready", |n| ready(n).as_deref() == Some("True")).await;

    let spec = n.spec.clone().unwrap_or_default();
    assert_eq!(spec.provider_id.as_deref(), Some("vpsie://sim-vm"), "from the kubelet flag");
    let labels = n.metadata.labels.clone().unwrap_or_default();
    for (k, v) in [
        ("autoscaler.vpsie.com/nodegroup", "general"),
        ("team", "web"),
        ("kubernetes.io/hostname", "join-web-1"),
        ("topology.kubernetes.io/zone", DC),
        ("topology.kubernetes.io/region", DC),
        ("node.kubernetes.io/instance-type", "sc-4cpu-8gb"),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "label {k}");
    }
    let taints: Vec<(String, String)> =
        spec.taints.unwrap_or_default().into_iter().map(|t| (t.key, t.effect)).collect();
    for key in ["dedicated", "autoscaler.vpsie.com/initializing"] {
        assert!(taints.contains(&(key.to_owned(), "NoSchedule".to_owned())), "{key} in {taints:?}");
    }
    let capacity = n.status.clone().unwrap_or_default().capacity.unwrap_or_default();
    assert_eq!(capacity.get("cpu").map(|q| q.0.as_str()), Some("4"));
    assert_eq!(capacity.get("memory").map(|q| q.0.as_str()), Some("8Gi"));

    // Deleting the VM leaves the Node (nothing deletes it but its owner), no longer heartbeated.
    let id = vm_identifier(&sim, "join-web-1");
    let body = json!({ "vmIdentifier": id, "password": "sim-password" }).to_string();
    let reply = http(&sim, "DELETE", "/apps/v2/vm", &[AUTH, JSON], &body).await;
    assert_eq!(reply.json()["error"], false, "{}", reply.body);
    let gone = node(&nodes, "join-web-1", "Node join-web-1 NotReady", |n| ready(n).as_deref() == Some("Unknown")).await;
    assert!(!gone.metadata.annotations.unwrap_or_default().contains_key(KWOK_ANNOTATION), "kwok no longer runs it");
    nodes.delete("join-web-1", &Default::default()).await.unwrap();
}

/// A powered-off VM's kubelet stops: its Node is no longer heartbeated and the controller-manager marks it
/// Unknown (kwok does not turn it Ready again); powered on, it is Ready again. A deleted VM's Node stays
/// Unknown for good.
#[tokio::test]
async fn a_powered_off_vm_goes_not_ready_and_comes_back_when_powered_on() {
    let (sim, nodes) = setup().await;
    create_vm(&sim, "join-power-1", KUBEADM).await;
    node(&nodes, "join-power-1", "Node join-power-1 Ready", |n| ready(n).as_deref() == Some("True")).await;
    assert!(sim.set_power("join-power-1", false));
    let off = std::time::Instant::now();
    // The controller-manager marks it Unknown, then taints it unreachable.
    let unreachable = |n: &Node| {
        n.spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|t| t.iter().any(|t| t.key == "node.kubernetes.io/unreachable"))
    };
    testenv::wait_for("Node join-power-1 Unknown and unreachable", Duration::from_secs(120), || async {
        Ok(match nodes.get_opt("join-power-1").await? {
            Some(n) if ready(&n).as_deref() == Some("Unknown") && unreachable(&n) => Ok(()),
            other => Err(format!("{:?}", other.as_ref().map(|n| (ready(n), unreachable(n))))),
        })
    })
    .await
    .expect("NotReady after the power-off");
    println!("powered off: Unknown after {:.0}s", off.elapsed().as_secs_f64());
    assert!(sim.set_power("join-power-1", true));
    node(&nodes, "join-power-1", "Node join-power-1 Ready again", |n| ready(n).as_deref() == Some("True")).await;
    nodes.delete("join-power-1", &Default::default()).await.unwrap();
}

#[tokio::test]
async fn vms_without_a_kubelet_or_with_the_never_join_fault_boot_and_never_join() {
    let (sim, nodes) = setup().await;
    create_vm(&sim, "join-none-1", "#cloud-config\npackages: [htop]\n").await;
    sim.update_settings(|s| s.never_join = true);
    create_vm(&sim, "join-never-1", KUBEADM).await;
    sim.update_settings(|s| s.never_join = false);
    create_vm(&sim, "join-late-1", KUBEADM).await;
    // The last VM joining shows the others were booted and handled before it.
    node(&nodes, "join-late-1", "Node join-late-1", |_| true).await;
    assert_eq!(sim.dump().vms.len(), 3, "all three booted");
    for name in ["join-none-1", "join-never-1"] {
        assert!(nodes.get_opt(name).await.unwrap().is_none(), "{name} must not join");
    }
    nodes.delete("join-late-1", &Default::default()).await.unwrap();
}

#[tokio::test]
async fn the_join_delay_holds_the_node_back() {
    let (sim, nodes) = setup().await;
    sim.update_settings(|s| s.join_delay_ms = 3_000);
    create_vm(&sim, "join-slow-1", KUBEADM).await;
    testenv::wait_for("VM active", Duration::from_secs(10), || async {
        Ok(if sim.dump().vms.is_empty() { Err("pending".to_owned()) } else { Ok(()) })
    })
    .await
    .unwrap();
    assert!(nodes.get_opt("join-slow-1").await.unwrap().is_none(), "not yet: the kubelet is still starting");
    node(&nodes, "join-slow-1", "Node join-slow-1 after the delay", |_| true).await;
    nodes.delete("join-slow-1", &Default::default()).await.unwrap();
}

#[tokio::test]
async fn a_managed_cluster_node_joins_with_its_identifier() {
    let (sim, nodes) = setup().await;
    let cluster = sim.create_cluster("joinmc", DC, "1.36.3").unwrap();
    let reply = http(
        &sim,
        "POST",
        "/apps/v2/k8s/cluster/add/group",
        &[AUTH, JSON],
        &json!({ "clusterIdentifier": cluster, "groupName": "g", "KubeSizeID": 2 }).to_string(),
    )
    .await;
    assert_eq!(reply.json()["error"], false, "{}", reply.body);
    let group = sim.dump().groups[0].id;
    let path = format!("/apps/v2/k8s/cluster/byId/{cluster}/add/slave/group/{group}");
    assert_eq!(http(&sim, "POST", &path, &[AUTH], "").await.json()["error"], false);
    let worker = testenv::wait_for("worker listed", Duration::from_secs(10), || async {
        let c = sim.dump().clusters[0].clone();
        Ok(c.nodes.into_iter().find(|n| n.node_type == 2).ok_or_else(|| "not yet".to_owned()))
    })
    .await
    .unwrap();
    let n = node(&nodes, &worker.hostname, "managed Node", |_| true).await;
    assert_eq!(n.spec.unwrap_or_default().provider_id, Some(format!("vpsie://{}", worker.identifier)));
    nodes.delete(&worker.hostname, &Default::default()).await.unwrap();
}
