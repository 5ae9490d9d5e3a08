//! No harm to serving nodes: what production brings every week must not fail, drain or delete a node that
//! serves pods. The operator binary under its ServiceAccount, the real control plane, vpsie-sim with
//! joining VMs (a powered-off VM's Node stops heartbeating and turns NotReady, as a dead kubelet's does);
//! the simulator's VM list is the ground truth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use autoscaler_api::VPSieNodePhase;
use harness::nodes::{apply_group, assert_no_duplicate_or_leak, events_with, phase, tail, vpsienodes, wait_ready};
use harness::workload::{NS, Watcher, deployment, pods_of, running};
use harness::{Env, Operator, exclusive, holds_within};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::json;
use vpsie_sim::{FaultKind, FaultRule};

const TOKEN: &str = "tok-serving-7d1e40c2";

/// What must not change: the group's VPSieNodes (none failed or going), the pods (by uid, on their node,
/// none deleted) and the simulator's VMs (by identifier).
#[derive(Debug, PartialEq)]
struct Serving {
    vpsienodes: Vec<String>,
    pods: BTreeMap<String, String>,
    vms: Vec<String>,
}

async fn serving(env: &Env) -> (Serving, Vec<String>) {
    let mut problems = Vec::new();
    let vns = vpsienodes(env, "web").await;
    for v in &vns {
        if v.metadata.deletion_timestamp.is_some() || phase(v) != VPSieNodePhase::Ready {
            problems.push(format!(
                "VPSieNode {} is {:?} (deleting: {})",
                v.name_any(),
                phase(v),
                v.metadata.deletion_timestamp.is_some()
            ));
        }
    }
    let mut pods = BTreeMap::new();
    for p in pods_of(env, "web").await {
        if p.metadata.deletion_timestamp.is_some() {
            problems.push(format!("pod {} is being deleted", p.name_any()));
        }
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        pods.insert(p.uid().unwrap_or_default(), node);
    }
    let mut vpsienodes: Vec<String> = vns.iter().map(ResourceExt::name_any).collect();
    vpsienodes.sort();
    let mut vms: Vec<String> = env.sim.dump().vms.iter().map(|v| v.identifier.clone()).collect();
    vms.sort();
    (Serving { vpsienodes, pods, vms }, problems)
}

/// Checks every 500 ms for `lasting` that nothing serving changed; calls `seen` with each Node list.
async fn untouched_for(env: &Env, op: &Operator, before: &Serving, lasting: Duration, mut seen: impl FnMut(&[Node])) {
    let started = Instant::now();
    while started.elapsed() < lasting {
        let (now, problems) = serving(env).await;
        assert!(problems.is_empty(), "{problems:?}\n{}", tail(op));
        assert_eq!(&now, before, "a serving node, pod or VM changed:\n{}", tail(op));
        seen(&Api::<Node>::all(env.admin.clone()).list(&Default::default()).await.unwrap().items);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn vm_calls(env: &Env) -> usize {
    env.sim
        .requests()
        .iter()
        .filter(|r| (r.method == "POST" || r.method == "DELETE") && r.path == "/apps/v2/vm")
        .count()
}

/// Every VM listing comes back empty for 20 s: before, one such listing failed every node as "gone". Then,
/// on Ready nodes older than their provisioning timeout, one VM is restarted (stopped 5 s) while the other
/// is stopped for 2 minutes and started again: before, the operator failed a node on the first listing
/// that caught its VM not running ("not active with an IP within the provisioning timeout") and deleted its
/// Node with the pods at once, then the VM. Nothing may be failed, drained or deleted; the PDB holds; the
/// operator says why it did not believe the listing.
#[tokio::test]
async fn a_restarted_vm_and_an_empty_vm_listing_fail_drain_and_delete_nothing() {
    let _serial = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let _logs = env.logs_on_panic();
    testenv::create_namespace(&env.admin, NS).await.unwrap();
    let op = Operator::start(&env, "serving-0", &["--leader-elect=false", "--log-format", "text"]);
    op.wait_ready(Duration::from_secs(60)).await;
    // provisioningTimeoutSeconds 60 (the CRD's minimum) and registrationTimeoutSeconds 60.
    apply_group(&env, "web", 2, 4, json!({ "cooldownSeconds": 0 })).await;
    wait_ready(&env, &op, "web", 2, Duration::from_secs(90)).await;
    deployment(&env, "web", 6, ("250m", "256Mi"), json!({}), None).await;
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": { "name": "web", "namespace": NS },
        "spec": { "maxUnavailable": 1, "selector": { "matchLabels": { "app": "web" } } }
    }))
    .unwrap();
    Api::<PodDisruptionBudget>::namespaced(env.admin.clone(), NS).create(&PostParams::default(), &pdb).await.unwrap();
    let all_running = holds_within(Duration::from_secs(90), || async {
        let pods = pods_of(&env, "web").await;
        pods.len() == 6 && pods.iter().all(running)
    })
    .await;
    assert!(all_running, "6 pods not Running on the 2 nodes:\n{}", tail(&op));
    let watcher = Watcher::start(&env, "web", 6);

    let (before, problems) = serving(&env).await;
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(before.pods.len(), 6);
    let calls = vm_calls(&env);

    // Every VM listing empty for at least 20 s, and until the operator has said why it does not believe
    // one (a listing serves passes for up to 30 s while every node is Ready, so the first may come late).
    // First, while the nodes age past their provisioning timeout for the restarts below.
    env.sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/vm", FaultKind::PartialListing { keep_percent: 0 }));
    let empty_since = Instant::now();
    let mut said = Vec::new();
    while empty_since.elapsed() < Duration::from_secs(20)
        || (said.is_empty() && empty_since.elapsed() < Duration::from_secs(75))
    {
        untouched_for(&env, &op, &before, Duration::from_secs(5), |_| {}).await;
        said = events_with(&env, "VpsieListingDistrusted").await;
    }
    env.sim.clear_faults();
    let empties = env.sim.requests().iter().filter(|r| r.fault.as_deref() == Some("partial_listing")).count();
    assert!(empties > 0, "no listing was emptied: the scenario did not happen");
    assert!(said.iter().any(|n| n.contains("lacks 2 of the 2 VMs")), "no Event says why: {said:?}\n{}", tail(&op));
    let distrusted = op.metric("vpsie_autoscaler_vpsie_listing_distrusted_total").await.unwrap_or(0.0);
    assert!(distrusted >= 1.0, "metric not counted: {distrusted}");
    println!(
        "{empties} empty VM listings over {:.0}s: distrusted {distrusted} time(s), nothing removed; Event: {}",
        empty_since.elapsed().as_secs_f64(),
        said[0]
    );

    // Older than the provisioning timeout: the case that used to fail.
    let oldest = vpsienodes(&env, "web")
        .await
        .iter()
        .filter_map(|v| v.status.as_ref().and_then(|s| s.created_at.as_ref()).map(|t| t.0))
        .max()
        .unwrap();
    let age = jiff::Timestamp::now().duration_since(oldest).as_secs();
    if age < 65 {
        untouched_for(&env, &op, &before, Duration::from_secs((65 - age).unsigned_abs()), |_| {}).await;
    }
    let hosts: Vec<String> = env.sim.dump().vms.iter().map(|v| v.hostname.clone()).collect();
    let (a, b) = (hosts[0].clone(), hosts[1].clone());

    // A restart of one VM (stopped for 5 s, then started) while the other stays stopped for 2 minutes: its
    // Node turns NotReady (no kubelet), and still nothing is removed.
    assert!(env.sim.set_power(&a, false) && env.sim.set_power(&b, false));
    untouched_for(&env, &op, &before, Duration::from_secs(5), |_| {}).await;
    assert!(env.sim.set_power(&a, true));
    let mut b_not_ready = false;
    untouched_for(&env, &op, &before, Duration::from_secs(115), |nodes| {
        b_not_ready |= nodes.iter().any(|n| n.name_any() == b && !testenv::node_ready(n));
    })
    .await;
    assert!(b_not_ready, "the stopped VM's Node never turned NotReady: the scenario did not happen");
    assert!(env.sim.set_power(&b, true));
    let back = holds_within(Duration::from_secs(60), || async {
        Api::<Node>::all(env.admin.clone()).get(&b).await.is_ok_and(|n| testenv::node_ready(&n))
    })
    .await;
    assert!(back, "the restarted VM's Node did not turn Ready again");
    untouched_for(&env, &op, &before, Duration::from_secs(5), |_| {}).await;
    println!("VM {a} stopped 5 s and VM {b} stopped 2 minutes: no node failed, drained or deleted");

    assert_eq!(vm_calls(&env), calls, "a VM was created or deleted:\n{}", tail(&op));
    assert_eq!(*watcher.min_available.lock().unwrap(), Some(6), "a pod stopped running");
    assert_no_duplicate_or_leak(&env, "web").await;
}

/// Creates `pod` (a Pod, or a Deployment when it has `spec.template`) from JSON.
async fn create(env: &Env, ns: &str, object: serde_json::Value) {
    if object["kind"] == "Deployment" {
        let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(object).unwrap();
        Api::namespaced(env.admin.clone(), ns).create(&PostParams::default(), &d).await.unwrap();
    } else {
        let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(object).unwrap();
        Api::namespaced(env.admin.clone(), ns).create(&PostParams::default(), &p).await.unwrap();
    }
}

/// A one-replica Deployment `name` pinned to `node`, with `volumes`.
fn pinned_deployment(name: &str, node: &str, volumes: serde_json::Value) -> serde_json::Value {
    json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": name },
        "spec": { "replicas": 1, "selector": { "matchLabels": { "app": name } },
          "template": { "metadata": { "labels": { "app": name } },
            "spec": { "nodeSelector": { "kubernetes.io/hostname": node }, "volumes": volumes,
              "containers": [{ "name": "c", "image": name }] } } } })
}

/// `kubectl delete nodegroup` while its nodes run what the voluntary drain refuses (an emptyDir pod, a
/// pod without a controller, a kube-system pod without a PodDisruptionBudget), a pod whose budget never
/// allows an eviction, and one node is dead (its VM powered off, the Node NotReady): before, the drain
/// failed on "it uses local storage" every ~80 s and the group never went. Now every member's removal is
/// involuntary: the refusable pods are evicted, the budget is respected (the pod it covers keeps running)
/// until the group's terminationGracePeriodSeconds (60 s here), then that Node goes with its pod; the group
/// and every VM are gone within the deadline plus 2 minutes, and the leaving nodes stay cordoned.
#[tokio::test]
async fn a_deleted_nodegroup_goes_within_its_deadline_with_unevictable_pods_and_a_dead_node() {
    let _serial = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let _logs = env.logs_on_panic();
    testenv::create_namespace(&env.admin, NS).await.unwrap();
    let op = Operator::start(&env, "serving-1", &["--leader-elect=false", "--log-format", "text"]);
    op.wait_ready(Duration::from_secs(60)).await;
    let extra = json!({ "terminationGracePeriodSeconds": 60, "disruption": { "budgets": [{ "nodes": "100%" }] } });
    apply_group(&env, "gone", 3, 3, extra).await;
    wait_ready(&env, &op, "gone", 3, Duration::from_secs(90)).await;
    let mut hosts: Vec<String> = env.sim.dump().vms.iter().map(|v| v.hostname.clone()).collect();
    hosts.sort();
    let (a, b, c) = (hosts[0].clone(), hosts[1].clone(), hosts[2].clone());

    let scratch = json!([{ "name": "scratch", "emptyDir": {} }]);
    create(&env, NS, pinned_deployment("cache", &a, scratch.clone())).await;
    create(&env, "kube-system", pinned_deployment("dns-e2e", &a, json!([]))).await;
    create(
        &env,
        NS,
        json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "bare", "labels": { "app": "bare" } },
        "spec": { "nodeSelector": { "kubernetes.io/hostname": a }, "volumes": scratch,
                  "containers": [{ "name": "c", "image": "bare" }] } }),
    )
    .await;
    create(&env, NS, pinned_deployment("held", &b, json!([]))).await;
    create(&env, NS, pinned_deployment("doomed", &c, json!([]))).await;
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": { "name": "held", "namespace": NS },
        "spec": { "maxUnavailable": 0, "selector": { "matchLabels": { "app": "held" } } }
    }))
    .unwrap();
    Api::<PodDisruptionBudget>::namespaced(env.admin.clone(), NS).create(&PostParams::default(), &pdb).await.unwrap();
    let all_running = holds_within(Duration::from_secs(60), || async {
        let mut n = 0;
        for app in ["cache", "bare", "held", "doomed"] {
            n += pods_of(&env, app).await.iter().filter(|p| running(p)).count();
        }
        n == 4
    })
    .await;
    assert!(all_running, "the pinned pods are not Running:\n{}", tail(&op));

    // Node c dies: its VM is powered off and its Node turns NotReady.
    assert!(env.sim.set_power(&c, false));
    let nodes: Api<Node> = Api::all(env.admin.clone());
    let dead =
        holds_within(Duration::from_secs(90), || async { nodes.get(&c).await.is_ok_and(|n| !testenv::node_ready(&n)) })
            .await;
    assert!(dead, "the powered-off VM's Node did not turn NotReady");

    let groups: Api<autoscaler_api::NodeGroup> = Api::all(env.admin.clone());
    let deleted_at = Instant::now();
    groups.delete("gone", &Default::default()).await.unwrap();
    let held_uid = pods_of(&env, "held").await.remove(0).uid();
    let (mut b_cordoned_since, mut landed) = (None::<Duration>, Vec::new());
    loop {
        let t = deleted_at.elapsed();
        if groups.get_opt("gone").await.unwrap().is_none() {
            break;
        }
        assert!(
            t < Duration::from_secs(180),
            "the NodeGroup is still there 60 s + 2 minutes after its deletion:\n{}",
            tail(&op)
        );
        if let Some(node_b) = nodes.get_opt(&b).await.unwrap() {
            let spec = node_b.spec.unwrap_or_default();
            let cordoned = spec.unschedulable == Some(true);
            if cordoned {
                b_cordoned_since.get_or_insert(t);
            } else {
                assert!(b_cordoned_since.is_none(), "node {b} was put back in service at {t:?}:\n{}", tail(&op));
            }
            // The budget holds until the deadline: the pod it covers is not evicted (a little margin before
            // the 60 s, which the operator counts from the deletion time stamp the apiserver wrote).
            if t < Duration::from_secs(55) {
                let held = pods_of(&env, "held").await;
                assert!(
                    held.iter().any(|p| p.uid() == held_uid && running(p)),
                    "the pod under a budget allowing nothing was evicted before the deadline, at {t:?}"
                );
            }
            for p in Api::<k8s_openapi::api::core::v1::Pod>::all(env.admin.clone())
                .list(&kube::api::ListParams::default().fields(&format!("spec.nodeName={b}")))
                .await
                .unwrap()
                .items
            {
                if p.uid() != held_uid && !landed.contains(&p.name_any()) {
                    landed.push(p.name_any());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = deleted_at.elapsed();
    println!(
        "NodeGroup with an emptyDir pod, a bare pod, a kube-system pod without PDB, a pod under a budget allowing nothing and a dead node: gone in {:.0}s (deadline 60 s)",
        took.as_secs_f64()
    );
    assert!(b_cordoned_since.is_some(), "node {b} was never cordoned: the scenario did not happen");
    assert!(landed.is_empty(), "pods landed on the leaving node {b}: {landed:?}");
    let deadline_notes = events_with(&env, "RemovalDeadline").await;
    assert!(deadline_notes.iter().any(|n| n.contains(&b)), "no RemovalDeadline Event for {b}: {deadline_notes:?}");
    assert!(
        !deadline_notes.iter().any(|n| n.contains(&format!("node {a} "))),
        "node {a} had only evictable pods, yet it was not drained: {deadline_notes:?}\n{}",
        tail(&op)
    );
    assert!(env.sim.dump().vms.is_empty(), "VMs left: {:?}", env.sim.dump().vms);
    assert!(vpsienodes(&env, "gone").await.is_empty());
    for n in [&a, &b, &c] {
        assert!(nodes.get_opt(n).await.unwrap().is_none(), "Node {n} left");
    }
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(env.admin.clone(), "kube-system")
        .delete("dns-e2e", &Default::default())
        .await
        .unwrap();
}
