//! The node lifecycle end to end: the operator binary as a process under its ServiceAccount, a real local
//! control plane with kwok, the scheduler and the controller-manager, and vpsie-sim whose VMs join as
//! kwok Nodes. The simulator's own VM list is the ground truth for duplicates and leaks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::time::Duration;

use autoscaler_api::{NodeGroup, VPSieNode};
use harness::nodes::{
    apply_group, assert_no_duplicate_or_leak, events_with, ready_nodes, sim_hostnames, tail, vpsienodes, wait_ready,
};
use harness::{DELETE_PASSWORD, Env, JOIN_TOKEN, Operator, exclusive, holds_within, until};
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

const TOKEN: &str = "tok-lifecycle-4f3e2d1c";

fn operator(env: &Env, id: &str) -> Operator {
    Operator::start(env, id, &["--leader-elect=false", "--log-format", "text", "--drain-timeout-seconds", "8"])
}

fn crash_at(env: &Env, id: &str, point: &str) -> Operator {
    Operator::start_with_env(env, id, &["--leader-elect=false"], &[(autoscaler_controller::failpoint::ENV, point)])
}

fn assert_no_secret_output(op: &Operator) {
    let out = op.output();
    for s in [TOKEN, DELETE_PASSWORD, JOIN_TOKEN] {
        assert!(!out.contains(s), "{} printed a secret value", op.identity);
    }
}

#[tokio::test]
async fn a_nodegroup_gets_min_nodes_with_its_labels_and_taints_grows_exactly_and_leaves_nothing() {
    let _one = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let op = operator(&env, "lifecycle-a");
    let extra = json!({
        "labels": { "team": "web" },
        "taints": [{ "key": "dedicated", "value": "web", "effect": "NoSchedule" }],
        "startupTaints": [{ "key": "example.com/agent-not-ready", "effect": "NoSchedule" }],
    });
    apply_group(&env, "web", 2, 6, extra.clone()).await;
    wait_ready(&env, &op, "web", 2, Duration::from_secs(90)).await;

    for node in ready_nodes(&env, "web").await {
        let labels = node.labels();
        assert_eq!(labels.get("team").map(String::as_str), Some("web"));
        assert_eq!(labels.get("autoscaler.vpsie.com/managed").map(String::as_str), Some("true"));
        let taints: Vec<String> =
            node.spec.clone().unwrap_or_default().taints.unwrap_or_default().into_iter().map(|t| t.key).collect();
        assert!(taints.contains(&"dedicated".to_owned()), "{taints:?}");
        assert!(
            taints.contains(&"example.com/agent-not-ready".to_owned()),
            "registered with the startup taint: {taints:?}"
        );
        assert_eq!(
            node.spec.unwrap_or_default().provider_id,
            Some(format!("vpsie://{}", node.metadata.name.unwrap_or_default()))
        );
    }
    assert_no_duplicate_or_leak(&env, "web").await;
    let groups: Api<NodeGroup> = Api::all(env.admin.clone());
    until("status says 2 ready", Duration::from_secs(30), || async {
        let s = groups.get("web").await.unwrap().status.unwrap_or_default();
        s.ready_nodes == 2 && s.current_nodes == 2 && s.monthly_cost.is_some_and(|c| c > 0.0)
    })
    .await;

    // Raising minNodes to 4 adds exactly 2.
    apply_group(&env, "web", 4, 6, extra).await;
    wait_ready(&env, &op, "web", 4, Duration::from_secs(90)).await;
    assert_no_duplicate_or_leak(&env, "web").await;
    assert_eq!(sim_hostnames(&env).len(), 4, "exactly two more VMs");

    // A changed taint value reaches every node, with a bounded number of writes: before, a taint present
    // with another value was never updated and each node was read and patched again on every pass.
    let patches_before = node_patches(&env).await;
    let changed = json!({
        "labels": { "team": "web" },
        "taints": [{ "key": "dedicated", "value": "web-v2", "effect": "NoSchedule" }],
        "startupTaints": [{ "key": "example.com/agent-not-ready", "effect": "NoSchedule" }],
    });
    apply_group(&env, "web", 4, 6, changed).await;
    until("every node carries dedicated=web-v2 and no dedicated=web", Duration::from_secs(60), || async {
        let nodes = ready_nodes(&env, "web").await;
        nodes.len() == 4
            && nodes.iter().all(|n| {
                let taints = n.spec.clone().unwrap_or_default().taints.unwrap_or_default();
                let dedicated: Vec<Option<String>> =
                    taints.into_iter().filter(|t| t.key == "dedicated").map(|t| t.value).collect();
                dedicated == vec![Some("web-v2".to_owned())]
            })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let patches = node_patches(&env).await - patches_before;
    println!("taint value changed on 4 nodes: {patches} Node PATCH requests to the apiserver in all");
    // One labelling patch per node (4 measured here), with room for a retried one; a loop is hundreds.
    assert!(patches <= 12.0, "{patches} Node patches for 4 nodes: the lifecycle patches in a loop\n{}", tail(&op));

    // A VPSie refusal (a wrong delete password) never loses a VM: the VM stays, an Event says why.
    env.put_secret(&[("token", TOKEN), ("deletePassword", "not-the-password")]).await;
    let doomed = vpsienodes(&env, "web").await.remove(0).name_any();
    Api::<VPSieNode>::all(env.admin.clone()).delete(&doomed, &DeleteParams::default()).await.unwrap();
    until("VmDeleteFailed Event", Duration::from_secs(60), || async {
        events_with(&env, "VmDeleteFailed").await.iter().any(|n| n.contains(&doomed) && n.contains("wrong password"))
    })
    .await;
    assert!(sim_hostnames(&env).contains(&doomed), "the VM is kept while its delete is refused");
    env.put_secret(&[("token", TOKEN), ("deletePassword", DELETE_PASSWORD)]).await;

    // Deleting the NodeGroup leaves no VM, no Node and no VPSieNode.
    groups.delete("web", &DeleteParams::default()).await.unwrap();
    let gone = holds_within(Duration::from_secs(90), || async { groups.get_opt("web").await.unwrap().is_none() }).await;
    assert!(gone, "NodeGroup not gone; operator output:\n{}", tail(&op));
    assert!(vpsienodes(&env, "web").await.is_empty());
    assert!(sim_hostnames(&env).is_empty(), "VMs left: {:?}", sim_hostnames(&env));
    let nodes: Api<Node> = Api::all(env.admin.clone());
    let left: Vec<String> = nodes.list(&Default::default()).await.unwrap().items.iter().map(|n| n.name_any()).collect();
    assert!(left.is_empty(), "Nodes left: {left:?}");
    let (_, metrics) = op.get(true, "/metrics").await;
    for family in
        ["vpsie_autoscaler_provisioning_duration_seconds", "vpsie_autoscaler_controller_reconcile_errors_total"]
    {
        assert!(metrics.contains(&format!("# TYPE {family} ")), "{family} not exposed after its events");
    }
    assert!(
        metrics.contains(r#"vpsie_autoscaler_controller_reconcile_errors_total{controller="vpsienode",error="api"}"#)
    );
    assert_no_secret_output(&op);
}

/// PATCH requests on Nodes (not their status) the apiserver has served, from its own metrics.
async fn node_patches(env: &Env) -> f64 {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = env.admin.request_text(req).await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| {
            l.contains(r#"resource="nodes""#) && l.contains(r#"subresource="""#) && l.contains(r#"verb="PATCH""#)
        })
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// The operator stopped dead at each crash point, then restarted: still exactly one VM per VPSieNode,
/// and deletion completes with nothing left.
#[tokio::test]
async fn a_crash_at_any_point_leaves_exactly_one_vm_per_node() {
    let _one = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let groups: Api<NodeGroup> = Api::all(env.admin.clone());
    // Each grow step adds one node and stops the operator at one point of its way to Ready. A crash
    // after the intent and before the request loses that create: the node fails at the provisioning
    // timeout (60 s) and is replaced; never duplicated.
    // A kubelet that registers 2 s after boot makes every phase, Joining included, observable on its own.
    env.sim.update_settings(|s| s.join_delay_ms = 2_000);
    let grow =
        ["create:after-request", "advance:Provisioned", "advance:Joining", "advance:Ready", "create:after-intent"];
    for (i, point) in grow.iter().enumerate() {
        let n = i + 1;
        let mut crashing = crash_at(&env, &format!("crash-{i}"), point);
        apply_group(&env, "crash", i32::try_from(n).unwrap(), 6, json!({})).await;
        crashing.wait_crash(point, Duration::from_secs(90)).await;
        let op = operator(&env, &format!("after-crash-{i}"));
        wait_ready(&env, &op, "crash", n, Duration::from_secs(150)).await;
        assert_no_duplicate_or_leak(&env, "crash").await;
        assert_no_secret_output(&op);
    }
    // Each shrink step removes one node and stops the operator on its way out.
    for (i, point) in ["drain:started", "delete:after-node", "delete:after-vm"].iter().enumerate() {
        let mut crashing = crash_at(&env, &format!("crash-del-{i}"), point);
        let remaining = grow.len() - 1 - i;
        let size = i32::try_from(remaining).unwrap();
        apply_group(&env, "crash", size, size, json!({})).await;
        crashing.wait_crash(point, Duration::from_secs(60)).await;
        let op = operator(&env, &format!("after-crash-del-{i}"));
        wait_ready(&env, &op, "crash", remaining, Duration::from_secs(90)).await;
        until("the removed node's VM is gone", Duration::from_secs(60), || async {
            sim_hostnames(&env).len() == remaining
        })
        .await;
        assert_no_duplicate_or_leak(&env, "crash").await;
        assert_no_secret_output(&op);
    }
    groups.delete("crash", &DeleteParams::default()).await.unwrap();
    let op = operator(&env, "cleanup");
    until("NodeGroup gone", Duration::from_secs(90), || async { groups.get_opt("crash").await.unwrap().is_none() })
        .await;
    assert!(sim_hostnames(&env).is_empty());
    assert_no_secret_output(&op);
}

/// A VM that never becomes active, and one that boots but never joins: Failed at the timeout, the VM
/// deleted, the offering backed off in the group's status, and a replacement on another offering.
#[tokio::test]
async fn a_vm_that_never_becomes_active_or_never_joins_fails_is_deleted_and_backs_its_offering_off() {
    let _one = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let op = operator(&env, "lifecycle-fail");
    let groups: Api<NodeGroup> = Api::all(env.admin.clone());
    for (case, fault) in [("inactive", "never_active"), ("nojoin", "never_join")] {
        env.sim.update_settings(|s| match fault {
            "never_active" => s.never_active = true,
            _ => s.never_join = true,
        });
        apply_group(&env, case, 1, 3, json!({})).await;
        let first = until_some(&env, case).await;
        // The fault is taken when the create arrives: keep it on until then.
        until("the create reached VPSie", Duration::from_secs(30), || async {
            sim_hostnames(&env).contains(&first.name_any())
        })
        .await;
        env.sim.update_settings(|s| {
            s.never_active = false;
            s.never_join = false;
        });
        let failed_offering = first.spec.offering_id.clone();
        until("backoff recorded", Duration::from_secs(120), || async {
            let s = groups.get(case).await.unwrap().status.unwrap_or_default();
            s.offering_backoff.iter().any(|b| b.offering_id == failed_offering && b.reason.contains("timeout"))
        })
        .await;
        until("the failed VM is deleted", Duration::from_secs(60), || async {
            !sim_hostnames(&env).contains(&first.name_any())
        })
        .await;
        wait_ready(&env, &op, case, 1, Duration::from_secs(90)).await;
        let replacement = vpsienodes(&env, case).await.remove(0);
        assert_ne!(replacement.spec.offering_id, failed_offering, "the backed-off offering is avoided");
        let failures = events_with(&env, "ProvisioningFailed").await;
        assert!(failures.iter().any(|n| n.contains(&first.name_any())), "{failures:?}");
        groups.delete(case, &DeleteParams::default()).await.unwrap();
        until("group gone", Duration::from_secs(90), || async { groups.get_opt(case).await.unwrap().is_none() }).await;
    }
    assert_no_secret_output(&op);
}

async fn until_some(env: &Env, group: &str) -> VPSieNode {
    until("a VPSieNode", Duration::from_secs(30), || async { !vpsienodes(env, group).await.is_empty() }).await;
    vpsienodes(env, group).await.remove(0)
}

/// A drain a PodDisruptionBudget blocks leaves the VM running and the Node cordoned and tainted between
/// retries (before, it was uncordoned and took new pods, an uncordoned zombie), with an Event naming the
/// budget; a pod that would fit there stays Pending meanwhile; once the budget allows it, the node goes.
#[tokio::test]
async fn a_drain_blocked_by_a_pdb_keeps_the_vm_and_the_node_cordoned() {
    let _one = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let op = operator(&env, "lifecycle-pdb");
    apply_group(&env, "pdb", 1, 3, json!({})).await;
    wait_ready(&env, &op, "pdb", 1, Duration::from_secs(90)).await;
    let node = ready_nodes(&env, "pdb").await.remove(0).name_any();
    testenv::create_namespace(&env.admin, "shop").await.unwrap();
    // One pod of `name` with `spec` (how it is pinned) and one container.
    let deploy = |name: &str, mut spec: serde_json::Value| -> k8s_openapi::api::apps::v1::Deployment {
        spec["containers"] = json!([{ "name": "c", "image": name }]);
        serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": "shop" },
            "spec": { "replicas": 1, "selector": { "matchLabels": { "app": name } },
              "template": { "metadata": { "labels": { "app": name } }, "spec": spec } }
        }))
        .unwrap()
    };
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(env.admin.clone(), "shop");
    deployments.create(&Default::default(), &deploy("cart", json!({ "nodeName": node }))).await.unwrap();
    let pdb: k8s_openapi::api::policy::v1::PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": { "name": "cart-pdb", "namespace": "shop" },
        "spec": { "maxUnavailable": 0, "selector": { "matchLabels": { "app": "cart" } } }
    }))
    .unwrap();
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> = Api::namespaced(env.admin.clone(), "shop");
    pdbs.create(&Default::default(), &pdb).await.unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(env.admin.clone(), "shop");
    until("cart running", Duration::from_secs(60), || async {
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;

    let vn = vpsienodes(&env, "pdb").await.remove(0);
    Api::<VPSieNode>::all(env.admin.clone()).delete(&vn.name_any(), &DeleteParams::default()).await.unwrap();
    until("DrainBlocked Event naming the PDB", Duration::from_secs(60), || async {
        events_with(&env, "DrainBlocked").await.iter().any(|n| n.contains("cart-pdb"))
    })
    .await;
    // A pod the scheduler would place only there: it must not land while the removal waits.
    let pin = json!({ "nodeSelector": { "kubernetes.io/hostname": node } });
    deployments.create(&Default::default(), &deploy("late", pin)).await.unwrap();
    let nodes: Api<Node> = Api::all(env.admin.clone());
    // 20 s: past the 8 s drain deadline and the 10 s retry delay, so a retry happens inside the window.
    let window = std::time::Instant::now();
    let mut blocked_events = 0;
    while window.elapsed() < Duration::from_secs(20) {
        let spec = nodes.get(&node).await.unwrap().spec.unwrap_or_default();
        let tainted = spec.taints.unwrap_or_default().iter().any(|t| t.key == "autoscaler.vpsie.com/to-be-deleted");
        assert!(spec.unschedulable == Some(true) && tainted, "the leaving node was put back in service\n{}", tail(&op));
        let late = pods.list(&kube::api::ListParams::default().labels("app=late")).await.unwrap().items;
        assert!(
            late.iter().all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none()),
            "a new pod landed on the leaving node"
        );
        blocked_events = events_with(&env, "DrainBlocked").await.iter().filter(|n| n.contains("cart-pdb")).count();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "blocked drain: node cordoned and tainted for 20 s, {blocked_events} DrainBlocked Event(s), no pod landed"
    );
    assert!(sim_hostnames(&env).contains(&vn.name_any()), "the VM keeps running");

    pdbs.delete("cart-pdb", &DeleteParams::default()).await.unwrap();
    until("the node and its VM go once the budget allows", Duration::from_secs(120), || async {
        !sim_hostnames(&env).contains(&vn.name_any())
    })
    .await;
    let (_, metrics) = op.get(true, "/metrics").await;
    for family in ["vpsie_autoscaler_node_drain_duration_seconds", "vpsie_autoscaler_node_drain_pods_evicted"] {
        assert!(metrics.contains(&format!("# TYPE {family} ")), "{family} not exposed after a drain");
    }
    assert!(metrics.contains(r#"result="pdb""#), "the blocked drain is counted by its result");
    assert_no_secret_output(&op);
}

/// The managed-cluster backend through the same lifecycle: min nodes Ready with the group's labels
/// (reconciled onto the Node, which VPSie's kubelet registers without them), then everything removed.
#[tokio::test]
async fn the_managed_cluster_backend_runs_the_same_lifecycle() {
    let _one = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let cluster = env.sim.create_cluster("mc", "dc-us-east-1", "1.36.3").unwrap();
    let op = operator(&env, "lifecycle-managed");
    let extra = json!({
        "offeringIDs": ["2"], "labels": { "team": "data" },
        "provisioning": { "mode": "managedCluster", "managedCluster": { "clusterIdentifier": cluster } },
    });
    apply_group(&env, "mc", 2, 4, extra.clone()).await;
    wait_ready(&env, &op, "mc", 2, Duration::from_secs(90)).await;
    for n in ready_nodes(&env, "mc").await {
        assert_eq!(n.labels().get("team").map(String::as_str), Some("data"));
        assert!(n.spec.unwrap_or_default().provider_id.unwrap_or_default().starts_with("vpsie://"));
    }
    let workers = env.sim.dump().clusters[0].nodes.iter().filter(|n| n.node_type == 2).count();
    assert_eq!(workers, 2, "exactly two managed nodes");
    // One more: exactly one more managed node, each VPSieNode holding its own.
    apply_group(
        &env,
        "mc",
        3,
        4,
        json!({
            "offeringIDs": ["2"], "labels": { "team": "data" },
            "provisioning": { "mode": "managedCluster", "managedCluster": { "clusterIdentifier": cluster } },
        }),
    )
    .await;
    wait_ready(&env, &op, "mc", 3, Duration::from_secs(90)).await;
    let workers = env.sim.dump().clusters[0].nodes.iter().filter(|n| n.node_type == 2).count();
    assert_eq!(workers, 3, "exactly one more managed node");
    let mut held: Vec<i64> =
        vpsienodes(&env, "mc").await.iter().filter_map(|v| v.status.as_ref().and_then(|s| s.vps_id)).collect();
    held.sort_unstable();
    held.dedup();
    assert_eq!(held.len(), 3, "three VPSieNodes, three distinct managed nodes");
    let groups: Api<NodeGroup> = Api::all(env.admin.clone());
    groups.delete("mc", &DeleteParams::default()).await.unwrap();
    until("NodeGroup gone", Duration::from_secs(90), || async { groups.get_opt("mc").await.unwrap().is_none() }).await;
    let workers = env.sim.dump().clusters[0].nodes.iter().filter(|n| n.node_type == 2).count();
    assert_eq!(workers, 0, "every managed node removed");
    assert_no_secret_output(&op);
}

/// Orphans, both ways: a VM with this cluster's tags and no VPSieNode, and a Node of ours whose VM is
/// gone, are deleted after the grace period; an untagged VM, another cluster's VM and a Node we did not
/// create are never touched.
#[tokio::test]
async fn orphans_are_collected_after_the_grace_and_nothing_foreign_is_touched() {
    use vpsie_client::{ClientConfig, CreateVmRequest, Credentials, Ownership, VpsieClient};
    let _one = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let client = VpsieClient::new(ClientConfig::new(env.sim.base_url(), Credentials::Token(TOKEN.into()))).unwrap();
    let offer = env.sim.catalog().offer_by_nickname("dc-us-east-1", "sc-2cpu-4gb").unwrap().identifier.clone();
    let create = |host: &str, owner: Option<Ownership>| {
        let mut req = CreateVmRequest::new(host, "dc-us-east-1", &offer, "ubuntu-22.04-lts");
        if let Some(o) = owner {
            o.apply(&mut req);
        }
        req
    };
    client.create_vm(&create("orphan-1", Some(Ownership::new("e2e", "gone")))).await.unwrap();
    client.create_vm(&create("stranger-1", None)).await.unwrap();
    client.create_vm(&create("neighbour-1", Some(Ownership::new("another-cluster", "web")))).await.unwrap();
    let nodes: Api<Node> = Api::all(env.admin.clone());
    for (name, ours) in [("dead-1", true), ("foreign-1", false)] {
        let mut labels = serde_json::Map::new();
        if ours {
            labels.insert("autoscaler.vpsie.com/managed".into(), json!("true"));
            labels.insert("autoscaler.vpsie.com/nodegroup".into(), json!("web"));
        }
        let node: Node = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": labels },
            "spec": { "providerID": format!("vpsie://{name}") },
        }))
        .unwrap();
        nodes.create(&Default::default(), &node).await.unwrap();
    }
    until("the three VMs boot", Duration::from_secs(30), || async { env.sim.dump().vms.len() == 3 }).await;

    let op = Operator::start(&env, "orphans", &["--leader-elect=false", "--orphan-grace-seconds", "3"]);
    until("the orphan VM and the dead Node are deleted", Duration::from_secs(60), || async {
        !sim_hostnames(&env).contains(&"orphan-1".to_owned()) && nodes.get_opt("dead-1").await.unwrap().is_none()
    })
    .await;
    // Another sweep or two: the foreign ones are still there.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(sim_hostnames(&env), vec!["neighbour-1".to_owned(), "stranger-1".to_owned()]);
    assert!(nodes.get_opt("foreign-1").await.unwrap().is_some(), "a Node we did not create is never deleted");
    assert_eq!(events_with(&env, "OrphanVmDeleted").await.len(), 1);
    assert_eq!(events_with(&env, "OrphanNodeDeleted").await.len(), 1);
    let audit = std::fs::read_to_string(&op.audit).unwrap();
    assert!(audit.contains("orphan-1") && audit.contains("Node/dead-1"), "{audit}");
    let (_, metrics) = op.get(true, "/metrics").await;
    assert!(metrics.contains(r#"vpsie_autoscaler_orphans_deleted_total{kind="vm"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"vpsie_autoscaler_orphans_deleted_total{kind="node"} 1"#));
    assert_no_secret_output(&op);
}

/// A template with an unknown variable stops the group with a condition naming it, before any VM; a
/// fixed template is used as written; a missing join Secret fails a VPSieNode with a message naming the
/// Secret (on the VPSieNode and the NodeGroup), requests no VM and backs no offering off.
#[tokio::test]
async fn a_broken_template_or_join_secret_is_a_clear_error_and_never_a_vm() {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    let _one = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let maps: Api<ConfigMap> = Api::namespaced(env.admin.clone(), "kube-system");
    let put_template = |text: String| {
        let maps = maps.clone();
        async move {
            let cm: ConfigMap = serde_json::from_value(
                json!({ "metadata": { "name": "node-template" }, "data": { "user-data": text } }),
            )
            .unwrap();
            maps.patch("node-template", &PatchParams::apply("e2e-admin").force(), &Patch::Apply(&cm)).await.unwrap();
        }
    };
    put_template("#!/bin/bash\nhostnamectl set-hostname {{nodename}}\n".to_owned()).await;
    let op = operator(&env, "lifecycle-config");
    let spec = json!({ "provisioning": { "mode": "vm", "vm": {
        "cloudInitTemplateRef": { "name": "node-template", "namespace": "kube-system" } } } });
    apply_group(&env, "tmpl", 1, 2, spec.clone()).await;
    let groups: Api<NodeGroup> = Api::all(env.admin.clone());
    until("the Error condition names the variable", Duration::from_secs(30), || async {
        let s = groups.get("tmpl").await.unwrap().status.unwrap_or_default();
        s.conditions.iter().any(|c| c.type_ == "Error" && c.status == "True" && c.message.contains("{{nodename}}"))
    })
    .await;
    assert!(vpsienodes(&env, "tmpl").await.is_empty() && sim_hostnames(&env).is_empty(), "no VPSieNode, no VM");

    // A custom template, fixed: its kubelet flags are what the Node registers with.
    let custom = "#!/bin/bash\n# custom template of {{nodeGroup}}\nkubeadm join {{apiServerEndpoint}} --token {{joinToken}} \
        --discovery-token-ca-cert-hash {{caCertHash}}\nkubelet --provider-id={{providerID}} --node-labels={{labels}},template=custom \
        --register-with-taints={{taints}}\n";
    put_template(custom.to_owned()).await;
    wait_ready(&env, &op, "tmpl", 1, Duration::from_secs(90)).await;
    let node = ready_nodes(&env, "tmpl").await.remove(0);
    assert_eq!(node.labels().get("template").map(String::as_str), Some("custom"));

    // Without the join Secret, a VPSieNode made by hand fails, naming it; no VM is requested for it.
    Api::<Secret>::namespaced(env.admin.clone(), "kube-system")
        .delete("vpsie-join", &DeleteParams::default())
        .await
        .unwrap();
    let first = vpsienodes(&env, "tmpl").await.remove(0);
    let mut manual = first.clone();
    manual.metadata = kube::api::ObjectMeta { name: Some("tmpl-byhand".into()), ..Default::default() };
    manual.spec.hostname = "tmpl-byhand".into();
    manual.status = None;
    Api::<VPSieNode>::all(env.admin.clone()).create(&Default::default(), &manual).await.unwrap();
    until("ProvisioningFailed naming the join Secret", Duration::from_secs(30), || async {
        events_with(&env, "ProvisioningFailed")
            .await
            .iter()
            .any(|n| n.contains("tmpl-byhand") && n.contains("join Secret kube-system/vpsie-join"))
    })
    .await;
    assert!(!sim_hostnames(&env).contains(&"tmpl-byhand".to_owned()), "no VM for it");
    until("the failed VPSieNode is removed", Duration::from_secs(60), || async {
        vpsienodes(&env, "tmpl").await.len() == 1
    })
    .await;
    let s = groups.get("tmpl").await.unwrap().status.unwrap_or_default();
    assert!(s.offering_backoff.is_empty(), "a configuration error backs no offering off: {:?}", s.offering_backoff);
    assert_no_secret_output(&op);
}
