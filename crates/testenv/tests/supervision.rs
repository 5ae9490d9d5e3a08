//! The control plane restarts what exits, as a kubelet restarts static pods: a scheduler that lost its
//! Lease to a frozen apiserver comes back and schedules, a killed controller-manager comes back and takes
//! its Lease, and a component that cannot start at all still fails the start-up with its log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use testenv::{Component, ControlPlane, KwokNode, wait_for};

const WAIT: Duration = Duration::from_secs(90);

/// A bare Pod (no controller, so only the scheduler and kwok act on it).
fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": { "name": name, "labels": { "app": "after-freeze" } },
        "spec": { "terminationGracePeriodSeconds": 0,
                  "containers": [{ "name": "c", "image": "registry.k8s.io/pause:3.10",
                                   "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } } }] }
    }))
    .unwrap()
}

async fn lease_holder(client: &Client, name: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    leases.get_opt(name).await.ok().flatten().and_then(|l| l.spec).and_then(|s| s.holder_identity)
}

#[tokio::test]
async fn a_frozen_apiserver_costs_the_scheduler_its_lease_and_the_restarted_scheduler_schedules() {
    let cp = ControlPlane::builder().start().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    testenv::create_namespace(&client, "t-freeze").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "t-freeze");
    // Pending before the freeze: there is no node yet.
    for i in 0..3 {
        pods.create(&PostParams::default(), &pod(&format!("p{i}"))).await.unwrap();
    }
    let scheduler = cp.pid(Component::KubeScheduler).unwrap();

    // Longer than the scheduler's Lease (15 s) and renew deadline (10 s).
    let frozen = cp.freeze(Component::KubeApiserver).unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(cp.resume(Component::KubeApiserver).unwrap(), frozen);
    let resumed = Instant::now();

    let restarted = cp.wait_new_run(Component::KubeScheduler, scheduler, WAIT).await.unwrap();
    let exits = cp.exits(Component::KubeScheduler).unwrap();
    assert!(exits.iter().any(|e| e.pid == scheduler), "the old scheduler's exit is recorded: {exits:?}");
    let log = std::fs::read_to_string(cp.dir().join("kube-scheduler.log")).unwrap();
    println!(
        "scheduler exits: {exits:?}; its log says lease lost: {}",
        log.to_ascii_lowercase().contains("leaderelection lost")
    );
    assert_eq!(cp.exits(Component::KubeApiserver).unwrap(), vec![], "a frozen apiserver is not an exited one");
    assert_eq!(cp.pid(Component::KubeApiserver).unwrap(), frozen);

    KwokNode::new("after-freeze", "4", "8Gi").create(&client).await.unwrap();
    wait_for("the 3 pending pods Running on the new node", WAIT, || {
        let pods = pods.clone();
        async move {
            let list = pods.list(&ListParams::default()).await?.items;
            let running = list
                .iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("after-freeze"))
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            Ok(if running == 3 { Ok(()) } else { Err(format!("{running} of {} Running", list.len())) })
        }
    })
    .await
    .unwrap();
    println!(
        "scheduler pid {scheduler} exited, pid {restarted} scheduled the pending pods {:.1}s after the apiserver resumed",
        resumed.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn a_killed_controller_manager_is_started_again_and_takes_its_lease() {
    let cp = ControlPlane::builder().without_scheduler().without_kwok().start().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    let before = lease_holder(&client, "kube-controller-manager").await.expect("a holder after start-up");
    let started = Instant::now();
    let killed = cp.pid(Component::KubeControllerManager).unwrap();
    let restarted = cp.restart(Component::KubeControllerManager, Duration::from_secs(30)).await.unwrap();
    assert_ne!(restarted, killed);
    let exits = cp.exits(Component::KubeControllerManager).unwrap();
    assert_eq!(exits.len(), 1, "{exits:?}");
    assert_eq!((exits[0].pid, exits[0].status), (killed, 128 + 9), "SIGKILL is recorded as status 137");
    assert_eq!(exits[0].restart_in_seconds, testenv::supervisor::INITIAL_BACKOFF.as_secs());
    // Back means working: a new run (a new identity) holds the Lease once the killed one's expires.
    let holder = wait_for("a new controller-manager holding its Lease", WAIT, || {
        let (client, before) = (client.clone(), before.clone());
        async move {
            Ok(match lease_holder(&client, "kube-controller-manager").await {
                Some(h) if h != before => Ok(h),
                other => Err(format!("{other:?}")),
            })
        }
    })
    .await
    .unwrap();
    println!(
        "controller-manager pid {killed} killed; pid {restarted} holds the Lease as {holder} after {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn a_component_that_cannot_start_fails_the_start_up_with_its_log() {
    let err = ControlPlane::builder()
        .without_kwok()
        .without_controller_manager()
        .flag(Component::KubeScheduler, "--no-such-flag")
        .start()
        .await
        .unwrap_err();
    match err {
        testenv::Error::Component { component, problem, tail, .. } => {
            assert_eq!(component, "kube-scheduler");
            assert!(problem.contains("exit status"), "{problem}");
            assert!(tail.contains("unknown flag: --no-such-flag"), "{tail}");
        }
        other => panic!("expected the scheduler's failure, got {other}"),
    }
    // A failed start stops what it started: no supervisor is left to restart the broken scheduler.
    let out = std::process::Command::new("ps").args(["-eo", "stat=,args="]).output().unwrap();
    let left: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim_start().starts_with('Z') && l.contains("--no-such-flag") && !l.contains("ps -eo"))
        .map(str::to_owned)
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
