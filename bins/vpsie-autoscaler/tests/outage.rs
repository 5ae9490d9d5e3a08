//! Outages while the operator scales: the operator binary under its ServiceAccount, the real control plane
//! and vpsie-sim. A VPSie outage fails half of the VM calls with an HTML 502 and answers the rest of the
//! creates and deletes with a 502 *after* they took effect (the case that leads to doubled or leaked VMs);
//! a control-plane stall freezes kube-apiserver mid scale-up. The simulator's own VM list is the ground
//! truth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::time::{Duration, Instant};

use harness::nodes::{apply_group, assert_no_duplicate_or_leak, sim_hostnames, tail, vpsienodes};
use harness::workload::{NS, deployment, pods_of, running};
use harness::{Env, Operator, exclusive, holds_within};
use serde_json::json;
use vpsie_sim::{FaultKind, FaultRule};

const TOKEN: &str = "tok-outage-3c2b1a09";

/// The first create or delete takes effect and still answers 502 (rules are tried in order); after that,
/// half the VM calls fail before reaching the API (HTML 502), and every create and delete that gets
/// through takes effect and answers 502 too.
fn outage(env: &Env, method: &str) {
    env.sim.add_fault(FaultRule::new(Some(method), "/apps/v2/vm", FaultKind::FailAfterEffect).times(1));
    env.sim.add_fault(FaultRule::new(None, "/apps/v2/vm", FaultKind::BadGateway).with_rate(0.5));
    env.sim.add_fault(FaultRule::new(Some(method), "/apps/v2/vm", FaultKind::FailAfterEffect));
}

/// Longer than the client's circuit-breaker pause (30 s), so calls resume while the faults last.
const STORM: Duration = Duration::from_secs(45);

/// While the fault storm lasts: the process stays alive and live, and no host name ever appears twice in
/// the simulator's VM list. Returns the most VMs seen at once.
async fn ride_out(env: &Env, op: &mut Operator, lasting: Duration) -> usize {
    let started = Instant::now();
    let mut most = 0;
    while started.elapsed() < lasting {
        assert!(op.child.try_wait().unwrap().is_none(), "the operator exited during the outage:\n{}", tail(op));
        assert_eq!(op.get(false, "/healthz").await.0, 200, "liveness must not depend on VPSie");
        let vms = sim_hostnames(env);
        let mut unique = vms.clone();
        unique.dedup();
        assert_eq!(vms, unique, "a VM was created twice during the outage");
        most = most.max(vms.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    most
}

/// Waits until the simulator holds one VM per VPSieNode of `web`, then checks it: no duplicate, no leak.
async fn settle(env: &Env, op: &Operator) {
    let settled = holds_within(Duration::from_secs(30), || async {
        let vns = vpsienodes(env, "web").await;
        sim_hostnames(env).len() == vns.len()
    })
    .await;
    assert!(settled, "VMs and VPSieNodes did not settle:\n{}", tail(op));
    assert_no_duplicate_or_leak(env, "web").await;
}

#[tokio::test]
async fn a_vpsie_outage_during_scale_up_and_down_doubles_and_leaks_nothing_and_recovers() {
    let _serial = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let _logs = env.logs_on_panic();
    testenv::create_namespace(&env.admin, NS).await.unwrap();
    let mut op = Operator::start(
        &env,
        "outage-0",
        &["--leader-elect=false", "--log-format", "text", "--scale-down-interval-seconds", "2"],
    );
    op.wait_ready(Duration::from_secs(60)).await;
    apply_group(
        &env,
        "web",
        0,
        8,
        json!({ "scaleUpPolicy": { "cpuThreshold": 100, "memoryThreshold": 100 },
                "scaleDownPolicy": { "stabilizationWindowSeconds": 5 }, "cooldownSeconds": 0,
                "disruption": { "budgets": [{ "nodes": "100%" }] } }),
    )
    .await;
    // The catalog is loaded before the storm: this is about VM calls failing, not about starting blind.
    let loaded = holds_within(Duration::from_secs(30), || async {
        op.metric("vpsie_autoscaler_catalog_offerings").await.unwrap_or(0.0) > 0.0
    })
    .await;
    assert!(loaded, "catalog not loaded:\n{}", tail(&op));

    outage(&env, "POST");
    deployment(&env, "web", 10, ("500m", "512Mi"), json!({}), None).await;
    let most = ride_out(&env, &mut op, STORM).await;
    let requests = env.sim.requests();
    let failed_after_effect =
        requests.iter().filter(|r| r.method == "POST" && r.fault.as_deref() == Some("fail_after_effect")).count();
    let bad_gateways = requests.iter().filter(|r| r.fault.as_deref() == Some("bad_gateway")).count();
    let seen: Vec<String> =
        requests.iter().map(|r| format!("{} {} {} {:?}", r.method, r.path, r.status, r.fault)).collect();
    assert!(
        failed_after_effect > 0 && bad_gateways > 0,
        "the storm hit nothing: {failed_after_effect} {bad_gateways}\n{seen:#?}\n{}",
        tail(&op)
    );
    env.sim.clear_faults();

    let recovered = Instant::now();
    let all_running = holds_within(Duration::from_secs(120), || async {
        let pods = pods_of(&env, "web").await;
        pods.len() == 10 && pods.iter().all(running)
    })
    .await;
    assert!(all_running, "pods not all Running 2 minutes after the outage:\n{}", tail(&op));
    println!(
        "outage during scale-up: {bad_gateways} HTML 502s, {failed_after_effect} creates that took effect but \
         answered 502; at most {most} VMs during the storm; all 10 pods Running {:.1}s after it ended",
        recovered.elapsed().as_secs_f64()
    );
    settle(&env, &op).await;

    // Scale-down through the same storm: deletes that fail before or after taking effect.
    outage(&env, "DELETE");
    deployment(&env, "web", 0, ("500m", "512Mi"), json!({}), None).await;
    ride_out(&env, &mut op, STORM).await;
    env.sim.clear_faults();
    let emptied = holds_within(Duration::from_secs(120), || async {
        vpsienodes(&env, "web").await.is_empty() && sim_hostnames(&env).is_empty()
    })
    .await;
    assert!(
        emptied,
        "after the outage the group kept {:?} and the cloud {:?}:\n{}",
        vpsienodes(&env, "web").await.len(),
        sim_hostnames(&env),
        tail(&op)
    );
    let deletes_after_effect = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE" && r.fault.as_deref() == Some("fail_after_effect"))
        .count();
    assert!(deletes_after_effect > 0, "no delete took effect behind a 502");
    println!("outage during scale-down: {deletes_after_effect} deletes took effect behind a 502; no VM left");
}

/// The control plane stalls instead of VPSie: kube-apiserver frozen (SIGSTOP) for 30 s in the middle of a
/// scale-up of 20 pods, with leader election on. The scheduler and controller-manager lose their Leases
/// and exit, and testenv's supervisor starts them again as a kubelet restarts static pods; the operator
/// steps down and leads again. Afterwards every pod runs, the operator never exited, and the simulator's
/// VM list matches the VPSieNodes (no duplicate, no leak).
#[tokio::test]
async fn a_frozen_apiserver_during_a_scale_up_doubles_and_leaks_nothing_and_every_pod_runs() {
    let _serial = exclusive().await;
    let env = Env::with_nodes(TOKEN).await;
    let _logs = env.logs_on_panic();
    let cp = env.cp.as_ref().expect("freezing the apiserver needs a control plane of the test's own");
    testenv::create_namespace(&env.admin, NS).await.unwrap();
    let mut op = Operator::start(&env, "freeze-0", &["--log-format", "text"]);
    op.wait_ready(Duration::from_secs(60)).await;
    let led = holds_within(Duration::from_secs(30), || op.is_leader()).await;
    assert!(led, "the only replica never led:\n{}", tail(&op));
    apply_group(
        &env,
        "web",
        0,
        10,
        json!({ "scaleUpPolicy": { "cpuThreshold": 100, "memoryThreshold": 100 }, "cooldownSeconds": 0 }),
    )
    .await;
    let loaded = holds_within(Duration::from_secs(30), || async {
        op.metric("vpsie_autoscaler_catalog_offerings").await.unwrap_or(0.0) > 0.0
    })
    .await;
    assert!(loaded, "catalog not loaded:\n{}", tail(&op));

    deployment(&env, "web", 20, ("500m", "512Mi"), json!({}), None).await;
    let creates =
        |env: &Env| env.sim.requests().iter().filter(|r| r.method == "POST" && r.path == "/apps/v2/vm").count();
    let began = holds_within(Duration::from_secs(30), || async { creates(&env) > 0 }).await;
    assert!(began, "no VM create request for 20 pending pods:\n{}", tail(&op));

    let frozen = Instant::now();
    cp.freeze(testenv::Component::KubeApiserver).unwrap();
    // Nothing here may call the apiserver until it resumes: only the process and the simulator are read.
    while frozen.elapsed() < Duration::from_secs(30) {
        if op.child.try_wait().unwrap().is_some() {
            cp.resume(testenv::Component::KubeApiserver).unwrap();
            panic!("the operator exited while the apiserver was frozen:\n{}", tail(&op));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let during = creates(&env);
    cp.resume(testenv::Component::KubeApiserver).unwrap();
    let resumed = Instant::now();

    // An exited operator stays exited (nothing restarts it here), so the checks after this wait cover it.
    let all_running = holds_within(Duration::from_secs(180), || async {
        let pods = pods_of(&env, "web").await;
        pods.len() == 20 && pods.iter().all(running)
    })
    .await;
    let restarted = [testenv::Component::KubeScheduler, testenv::Component::KubeControllerManager]
        .map(|c| (c, cp.exits(c).map(|e| e.len()).unwrap_or_default()));
    let restarts: Vec<String> = restarted.iter().map(|(c, n)| format!("{c} exited {n} time(s)")).collect();
    // The freeze is longer than both Leases: both exit, and only their restart lets the pods run.
    assert!(restarted.iter().all(|(_, n)| *n >= 1), "the freeze did not cost the Leases: {restarts:?}");
    assert!(
        all_running,
        "pods not all Running 3 minutes after the apiserver resumed ({}):\n{}",
        restarts.join(", "),
        tail(&op)
    );
    settle(&env, &op).await;
    assert!(op.child.try_wait().unwrap().is_none(), "the operator exited:\n{}", tail(&op));
    println!(
        "apiserver frozen 30s mid scale-up ({during} VM create requests by then, {} in all, {} VMs); {}; all 20 \
         pods Running {:.1}s after it resumed; the operator never exited",
        creates(&env),
        sim_hostnames(&env).len(),
        restarts.join(", "),
        resumed.elapsed().as_secs_f64()
    );
}
