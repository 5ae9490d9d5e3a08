//! No harm to serving nodes: what production brings every week must not fail, drain or delete a node that
//! serves pods. The operator binary under its ServiceAccount, the real control plane, vpsie-sim with
//! joining VMs (a powered-off VM's Node stops heartbeating and turns NotReady, as a dead kubelet's does);
//! the simulator's VM list is the ground truth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use autoscaler_api::VPSieNodePhase;
use harness::nodes::{
    apply_group, assert_no_duplicate_or_leak, assert_no_duplicate_or_leak_in, events_with, phase, sim_hostnames, tail,
    vpsienodes, wait_ready,
};
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

/// VM create requests the simulator took so far.
fn vm_creates(env: &Env) -> usize {
    env.sim.requests().iter().filter(|r| r.method == "POST" && r.path == "/apps/v2/vm").count()
}

/// The Node's Ready condition's last transition while it is not Ready.
fn not_ready_since(n: &Node) -> Option<jiff::Timestamp> {
    let cond = n.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?.clone();
    (cond.status != "True").then(|| cond.last_transition_time.map(|t| t.0)).flatten()
}

/// Group `gone` as the deletion part finds it: its three hosts (a: pods the voluntary drain refuses; b: a
/// pod under a budget allowing nothing; c: dead).
struct Gone {
    a: String,
    b: String,
    c: String,
}

/// Sets group `gone` up: an emptyDir pod, a bare pod and a kube-system pod without a budget on a, a pod
/// under a budget allowing nothing on b, a pod on c.
async fn gone_set_up(env: &Env, op: &Operator) -> Gone {
    let mut hosts: Vec<String> =
        env.sim.dump().vms.iter().map(|v| v.hostname.clone()).filter(|h| h.starts_with("gone-")).collect();
    hosts.sort();
    let g = Gone { a: hosts[0].clone(), b: hosts[1].clone(), c: hosts[2].clone() };
    let scratch = json!([{ "name": "scratch", "emptyDir": {} }]);
    create(env, NS, pinned_deployment("cache", &g.a, scratch.clone())).await;
    create(env, "kube-system", pinned_deployment("dns-e2e", &g.a, json!([]))).await;
    create(
        env,
        NS,
        json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "bare", "labels": { "app": "bare" } },
        "spec": { "nodeSelector": { "kubernetes.io/hostname": g.a }, "volumes": scratch,
                  "containers": [{ "name": "c", "image": "bare" }] } }),
    )
    .await;
    create(env, NS, pinned_deployment("held", &g.b, json!([]))).await;
    create(env, NS, pinned_deployment("doomed", &g.c, json!([]))).await;
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": { "name": "held", "namespace": NS },
        "spec": { "maxUnavailable": 0, "selector": { "matchLabels": { "app": "held" } } }
    }))
    .unwrap();
    Api::<PodDisruptionBudget>::namespaced(env.admin.clone(), NS).create(&PostParams::default(), &pdb).await.unwrap();
    let all_running = holds_within(Duration::from_secs(60), || async {
        let mut n = 0;
        for app in ["cache", "bare", "held", "doomed"] {
            n += pods_of(env, app).await.iter().filter(|p| running(p)).count();
        }
        n == 4
    })
    .await;
    assert!(all_running, "the pinned pods of group gone are not Running:\n{}", tail(op));
    g
}

/// `kubectl delete nodegroup gone` (its node c dead) and what must follow: the pods the voluntary drain
/// refuses are evicted from a, the pod under a budget allowing nothing keeps running (sampled every 100 ms)
/// until the 60 s deadline, node b stays cordoned and takes no pod, then everything is gone within the
/// deadline plus 2 minutes.
async fn gone_deleted(env: &Env, op: &Operator, g: &Gone) {
    let (a, b, c) = (&g.a, &g.b, &g.c);
    let nodes: Api<Node> = Api::all(env.admin.clone());
    let groups: Api<autoscaler_api::NodeGroup> = Api::all(env.admin.clone());
    let deleted_at = Instant::now();
    groups.delete("gone", &Default::default()).await.unwrap();
    let held_uid = pods_of(env, "held").await.remove(0).uid();
    let (mut b_cordoned_since, mut landed) = (None::<Duration>, Vec::new());
    loop {
        let t = deleted_at.elapsed();
        if groups.get_opt("gone").await.unwrap().is_none() {
            break;
        }
        assert!(
            t < Duration::from_secs(180),
            "NodeGroup gone still there 60 s + 2 minutes after its deletion:\n{}",
            tail(op)
        );
        if let Some(node_b) = nodes.get_opt(b).await.unwrap() {
            let spec = node_b.spec.unwrap_or_default();
            if spec.unschedulable == Some(true) {
                b_cordoned_since.get_or_insert(t);
            } else {
                assert!(b_cordoned_since.is_none(), "node {b} was put back in service at {t:?}:\n{}", tail(op));
            }
            // The budget holds until the deadline: the pod it covers is not evicted (a little margin before
            // the 60 s, which the operator counts from the deletion time stamp the apiserver wrote).
            if t < Duration::from_secs(55) {
                let held = pods_of(env, "held").await;
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
    println!(
        "NodeGroup with an emptyDir pod, a bare pod, a kube-system pod without PDB, a pod under a budget allowing \
         nothing and a dead node: gone in {:.0}s (deadline 60 s)",
        deleted_at.elapsed().as_secs_f64()
    );
    assert!(b_cordoned_since.is_some(), "node {b} was never cordoned: the scenario did not happen");
    assert!(landed.is_empty(), "pods landed on the leaving node {b}: {landed:?}");
    let deadline_notes = events_with(env, "RemovalDeadline").await;
    assert!(
        deadline_notes.iter().any(|n| n.contains(b.as_str())),
        "no RemovalDeadline Event for {b}: {deadline_notes:?}"
    );
    assert!(
        !deadline_notes.iter().any(|n| n.contains(&format!("node {a} "))),
        "node {a} had only evictable pods, yet it was not drained: {deadline_notes:?}\n{}",
        tail(op)
    );
    assert!(vpsienodes(env, "gone").await.is_empty());
    assert!(!sim_hostnames(env).iter().any(|h| h.starts_with("gone-")), "VMs of group gone left");
    for n in [a, b, c] {
        assert!(nodes.get_opt(n).await.unwrap().is_none(), "Node {n} left");
    }
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(env.admin.clone(), "kube-system")
        .delete("dns-e2e", &Default::default())
        .await
        .unwrap();
}

/// The repair period of group `fix` in this test.
const PERIOD: u64 = 100;

/// Group `fix`'s dead node and its healthy node's pods, as the repair part starts.
struct Fix {
    dead: String,
    healthy_pods: Vec<String>,
    since: jiff::Timestamp,
    creates: usize,
}

/// Within the repair period: no VM created, no VPSieNode of `fix` or `many` going, the healthy pods
/// untouched; `many` says `RepairBlocked`. Then the dead node goes and exactly one replacement comes.
async fn fix_repaired(env: &Env, op: &Operator, f: &Fix) {
    let healthy_untouched = |pods: &[k8s_openapi::api::core::v1::Pod]| {
        f.healthy_pods.iter().all(|uid| pods.iter().any(|p| p.uid().as_ref() == Some(uid) && running(p)))
    };
    let quiet_until = f.since + jiff::SignedDuration::from_secs(PERIOD as i64 - 5);
    let mut blocked = None;
    while jiff::Timestamp::now() < quiet_until {
        assert_eq!(vm_creates(env), f.creates, "a VM was created within the repair period:\n{}", tail(op));
        for group in ["fix", "many"] {
            let going: Vec<String> = vpsienodes(env, group)
                .await
                .iter()
                .filter(|v| v.metadata.deletion_timestamp.is_some())
                .map(ResourceExt::name_any)
                .collect();
            assert!(going.is_empty(), "{group}: {going:?} removed within the repair period or while blocked");
        }
        assert!(healthy_untouched(&pods_of(env, "fixweb").await), "a pod of the healthy node was disrupted");
        let groups: Api<autoscaler_api::NodeGroup> = Api::all(env.admin.clone());
        let status = groups.get("many").await.unwrap().status.unwrap_or_default();
        if let Some(c) = status.conditions.iter().find(|c| c.type_ == "RepairBlocked" && c.status == "True") {
            blocked = Some(c.message.clone());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let blocked =
        blocked.unwrap_or_else(|| panic!("group many never said RepairBlocked with 3 of 5 nodes dead:\n{}", tail(op)));
    assert!(blocked.starts_with("3 of 5 nodes are NotReady"), "{blocked}");
    let said = events_with(env, "RepairBlocked").await;
    assert!(said.iter().any(|n| n.contains("of 5 nodes are NotReady")), "no RepairBlocked Event: {said:?}");
    println!(
        "{} s with a dead node at maxNodes: no VM created; group many (3 of 5 dead): RepairBlocked: {blocked}",
        PERIOD - 5
    );

    // Past the period: the dead node goes and exactly one replacement comes, Ready.
    let dead = &f.dead;
    let repaired = holds_within(Duration::from_secs(120), || async {
        let vns = vpsienodes(env, "fix").await;
        !sim_hostnames(env).contains(dead)
            && vns.len() == 2
            && vns.iter().all(|v| phase(v) == VPSieNodePhase::Ready && &v.name_any() != dead)
    })
    .await;
    let after = jiff::Timestamp::now().as_second() - f.since.as_second();
    let about_dead: Vec<String> =
        op.output().lines().filter(|l| l.contains(dead.as_str())).map(str::to_owned).collect();
    assert!(repaired, "the dead node was not replaced; the operator on {dead}:\n{}", about_dead.join("\n"));
    assert_eq!(vm_creates(env) - f.creates, 1, "exactly one replacement VM");
    assert!(healthy_untouched(&pods_of(env, "fixweb").await), "a pod of the healthy node was disrupted");
    assert_eq!(vpsienodes(env, "many").await.len(), 5, "the blocked group lost a node");
    println!("dead node replaced {after}s after it turned NotReady (period {PERIOD}s), one VM created");
}

/// Node repair and the involuntary removal, in one environment (their waits overlap):
///
/// - Group `fix` is at its maxNodes 2 with pods pending for want of room, and one of its VMs is powered off
///   for good: no VM is created while its Node is NotReady within the repair period (before, a NotReady node
///   did not count toward maxNodes, so scale-up or headroom created a node the NodeGroup controller deleted
///   again, forever), then the broken node is removed and exactly one replacement created; the healthy
///   node's pods are never touched (PDB maxUnavailable 1).
/// - Group `many` has 3 of its 5 VMs powered off: more than repair replaces at once (20%), so it says
///   `RepairBlocked` and removes nothing. Group `calm` (3 healthy nodes) keeps the NotReady share of all
///   nodes below the 55% at which repair is off everywhere.
/// - `kubectl delete nodegroup gone` while its nodes run what the voluntary drain refuses (an emptyDir pod, a
///   pod without a controller, a kube-system pod without a PodDisruptionBudget), a pod whose budget never
///   allows an eviction, and one node is dead: before, the drain failed on "it uses local storage" every
///   ~80 s and the group never went. Now the removals are involuntary: the refusable pods are evicted, the
///   budget is respected until the group's terminationGracePeriodSeconds (60 s here), then that Node goes
///   with its pod; the group and every VM are gone within the deadline plus 2 minutes.
#[tokio::test]
async fn broken_nodes_are_repaired_too_many_block_repair_and_a_deleted_group_goes_by_its_deadline() {
    let _serial = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let _logs = env.logs_on_panic();
    testenv::create_namespace(&env.admin, NS).await.unwrap();
    let op = Operator::start(&env, "serving-1", &["--leader-elect=false", "--log-format", "text"]);
    op.wait_ready(Duration::from_secs(60)).await;
    apply_group(&env, "fix", 2, 2, json!({ "repairAfterSeconds": PERIOD, "cooldownSeconds": 0 })).await;
    apply_group(&env, "many", 5, 5, json!({ "repairAfterSeconds": 60 })).await;
    let gone = json!({ "terminationGracePeriodSeconds": 60, "disruption": { "budgets": [{ "nodes": "100%" }] } });
    apply_group(&env, "gone", 3, 3, gone).await;
    // Healthy nodes elsewhere: 5 of 13 nodes NotReady is no cluster-wide outage (above 55%, repair is off).
    apply_group(&env, "calm", 3, 3, json!({})).await;
    for (group, n) in [("fix", 2), ("many", 5), ("gone", 3), ("calm", 3)] {
        wait_ready(&env, &op, group, n, Duration::from_secs(90)).await;
    }
    // More pods than two nodes hold: some stay pending, and the group is at maxNodes.
    let web = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "fixweb" },
        "spec": { "replicas": 8, "selector": { "matchLabels": { "app": "fixweb" } },
          "template": { "metadata": { "labels": { "app": "fixweb" } },
            "spec": { "nodeSelector": { "autoscaler.vpsie.com/nodegroup": "fix" },
              "containers": [{ "name": "c", "image": "web", "resources": { "requests": { "cpu": "600m" } } }] } } } });
    create(&env, NS, web).await;
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": { "name": "fixweb", "namespace": NS },
        "spec": { "maxUnavailable": 1, "selector": { "matchLabels": { "app": "fixweb" } } }
    }))
    .unwrap();
    Api::<PodDisruptionBudget>::namespaced(env.admin.clone(), NS).create(&PostParams::default(), &pdb).await.unwrap();
    let g = gone_set_up(&env, &op).await;
    let settled = holds_within(Duration::from_secs(60), || async {
        let pods = pods_of(&env, "fixweb").await;
        let (run, pending) = (pods.iter().filter(|p| running(p)).count(), pods.iter().filter(|p| !running(p)).count());
        run >= 4 && pending >= 1
    })
    .await;
    assert!(settled, "fixweb did not settle with pods running and some pending:\n{}", tail(&op));

    let mut fix_hosts: Vec<String> =
        env.sim.dump().vms.iter().map(|v| v.hostname.clone()).filter(|h| h.starts_with("fix-")).collect();
    fix_hosts.sort();
    let (dead, healthy) = (fix_hosts[0].clone(), fix_hosts[1].clone());
    let healthy_pods: Vec<String> = pods_of(&env, "fixweb")
        .await
        .iter()
        .filter(|p| running(p) && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&healthy))
        .filter_map(ResourceExt::uid)
        .collect();
    assert!(!healthy_pods.is_empty());
    let many_hosts: Vec<String> =
        env.sim.dump().vms.iter().map(|v| v.hostname.clone()).filter(|h| h.starts_with("many-")).collect();
    let creates = vm_creates(&env);
    for h in [&dead, &g.c].into_iter().chain(&many_hosts[..3]) {
        assert!(env.sim.set_power(h, false));
    }
    let nodes: Api<Node> = Api::all(env.admin.clone());
    let started = Instant::now();
    let since = loop {
        let dead_since = nodes.get(&dead).await.ok().as_ref().and_then(not_ready_since);
        let c_since = nodes.get(&g.c).await.ok().as_ref().and_then(not_ready_since);
        if let (Some(t), Some(_)) = (dead_since, c_since) {
            break t;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the powered-off VMs' Nodes did not turn NotReady");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let fix = Fix { dead, healthy_pods, since, creates };
    tokio::join!(fix_repaired(&env, &op, &fix), gone_deleted(&env, &op, &g));
    assert_no_duplicate_or_leak_in(&env, &["fix", "many", "calm"]).await;
}
