//! Helpers for tests whose operator manages nodes: NodeGroups, VPSieNodes, the simulator's VMs (the
//! ground truth for duplicates and leaks), Nodes and Events.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use autoscaler_api::{NodeGroup, VPSieNode, VPSieNodePhase};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{Env, Operator, holds_within};

/// Applies NodeGroup `name` with `min`/`max` and extra spec fields.
pub async fn apply_group(env: &Env, name: &str, min: i32, max: i32, extra: serde_json::Value) {
    let mut spec = json!({
        "minNodes": min, "maxNodes": max, "datacenterID": "dc-us-east-1",
        "offeringIDs": ["sc-2cpu-4gb", "sc-4cpu-8gb"], "osImageID": "ubuntu-22.04-lts",
        "provisioningTimeoutSeconds": 60, "registrationTimeoutSeconds": 60,
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let ng = json!({ "apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "NodeGroup", "metadata": { "name": name }, "spec": spec });
    let api: Api<NodeGroup> = Api::all(env.admin.clone());
    api.patch(name, &PatchParams::apply("e2e-admin").force(), &Patch::Apply(&ng)).await.expect("apply NodeGroup");
}

/// The group's VPSieNodes; retries while a fresh apiserver answers 429 "storage is (re)initializing".
pub async fn vpsienodes(env: &Env, group: &str) -> Vec<VPSieNode> {
    let api: Api<VPSieNode> = Api::all(env.admin.clone());
    for _ in 0..50 {
        match api.list(&Default::default()).await {
            Ok(list) => return list.items.into_iter().filter(|v| v.spec.node_group_name == group).collect(),
            Err(kube::Error::Api(e)) if e.code == 429 => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => panic!("listing VPSieNodes: {e}"),
        }
    }
    panic!("the apiserver kept answering 429 for VPSieNodes")
}

pub fn phase(v: &VPSieNode) -> VPSieNodePhase {
    v.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

/// Host names of the simulator's VMs, pending ones included.
pub fn sim_hostnames(env: &Env) -> Vec<String> {
    let d = env.sim.dump();
    let mut all: Vec<String> =
        d.vms.iter().map(|v| v.hostname.clone()).chain(d.pending.iter().map(|p| p.vm.hostname.clone())).collect();
    all.sort();
    all
}

/// The ground truth: every VM belongs to exactly one VPSieNode and no host name appears twice.
pub async fn assert_no_duplicate_or_leak(env: &Env, group: &str) {
    assert_no_duplicate_or_leak_in(env, &[group]).await;
}

/// [`assert_no_duplicate_or_leak`] over the VPSieNodes of several groups.
pub async fn assert_no_duplicate_or_leak_in(env: &Env, groups: &[&str]) {
    let vms = sim_hostnames(env);
    let mut unique = vms.clone();
    unique.dedup();
    assert_eq!(vms, unique, "duplicate VMs");
    let mut names = Vec::new();
    for group in groups {
        names.extend(vpsienodes(env, group).await.iter().map(|v| v.name_any()));
    }
    names.sort();
    assert_eq!(vms, names, "VMs and VPSieNodes differ");
}

pub async fn ready_nodes(env: &Env, group: &str) -> Vec<Node> {
    let api: Api<Node> = Api::all(env.admin.clone());
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|n| n.labels().get("autoscaler.vpsie.com/nodegroup").map(String::as_str) == Some(group))
        .filter(testenv::node_ready)
        .collect()
}

pub async fn wait_ready(env: &Env, op: &Operator, group: &str, n: usize, within: Duration) {
    let ok = holds_within(within, || async {
        let vns = vpsienodes(env, group).await;
        vns.len() == n
            && vns.iter().all(|v| phase(v) == VPSieNodePhase::Ready)
            && ready_nodes(env, group).await.len() == n
    })
    .await;
    let phases: Vec<(String, VPSieNodePhase)> =
        vpsienodes(env, group).await.iter().map(|v| (v.name_any(), phase(v))).collect();
    assert!(ok, "{n} Ready nodes in {group}: not within {within:?}; VPSieNodes {phases:?}; operator:\n{}", tail(op));
}

pub async fn events_with(env: &Env, reason: &str) -> Vec<String> {
    let api: Api<Event> = Api::all(env.admin.clone());
    let all = api.list(&Default::default()).await.unwrap().items;
    all.into_iter().filter(|e| e.reason.as_deref() == Some(reason)).map(|e| e.note.unwrap_or_default()).collect()
}

/// The last lines the operator printed.
pub fn tail(op: &Operator) -> String {
    let out = op.output();
    let lines: Vec<&str> = out.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}
