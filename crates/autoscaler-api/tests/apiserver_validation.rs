//! The generated CRDs in the real kube-apiserver: they install, the seed manifest applies unchanged, every
//! malformed manifest is refused with a message naming the field, and `kubectl explain` shows our docs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use autoscaler_api::crds;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use serde_json::{Value, json};
use testenv::{ControlPlane, wait_for};

const SAMPLE: &str = include_str!("../../../deploy/examples/nodegroup-general-purpose.yaml");

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("autoscaler.vpsie.com", "v1alpha1", kind), plural)
}

async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds() {
        let name = crd.metadata.name.clone().unwrap();
        api.create(&PostParams::default(), &crd).await.unwrap();
        wait_for(&format!("CRD {name} Established"), Duration::from_secs(30), || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                let crd = api.get(&name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                Ok(if established { Ok(()) } else { Err("not established".into()) })
            }
        })
        .await
        .unwrap();
    }
}

fn sample() -> Value {
    serde_saphyr::from_str(SAMPLE).unwrap()
}

/// Sets `value` at a `/`-separated path under the object, creating objects on the way; `Value::Null`
/// removes the field.
fn set(obj: &mut Value, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('/').collect();
    let last = parts.pop().unwrap();
    let mut cur = obj;
    for p in parts {
        cur = match p.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => {
                if cur.get(p).is_none() {
                    cur[p] = json!({});
                }
                &mut cur[p]
            }
        };
    }
    if value.is_null() {
        if let Some(m) = cur.as_object_mut() {
            m.remove(last);
        }
    } else {
        cur[last] = value;
    }
}

/// What is wrong, the changes to the seed manifest (path, new value), and text the refusal must contain.
type InvalidCase = (&'static str, Vec<(&'static str, Value)>, &'static str);

fn invalid_nodegroups() -> Vec<InvalidCase> {
    let long = "x".repeat(2000);
    vec![
        (
            "min above max",
            vec![("spec/minNodes", json!(11))],
            "spec.minNodes must be less than or equal to spec.maxNodes",
        ),
        ("negative min", vec![("spec/minNodes", json!(-1))], "spec.minNodes"),
        ("zero max", vec![("spec/maxNodes", json!(0)), ("spec/minNodes", json!(0))], "spec.maxNodes"),
        ("max too large", vec![("spec/maxNodes", json!(5000))], "spec.maxNodes"),
        ("min as string", vec![("spec/minNodes", json!("two"))], "spec.minNodes"),
        ("no datacenter", vec![("spec/datacenterID", Value::Null)], "spec.datacenterID"),
        ("empty datacenter", vec![("spec/datacenterID", json!(""))], "spec.datacenterID"),
        ("no os image", vec![("spec/osImageID", Value::Null)], "spec.osImageID"),
        (
            "both offering forms",
            vec![("spec/offeringSelector", json!({"minCPU": 2}))],
            "exactly one of spec.offeringIDs and spec.offeringSelector",
        ),
        (
            "no offering form",
            vec![("spec/offeringIDs", Value::Null)],
            "exactly one of spec.offeringIDs and spec.offeringSelector",
        ),
        ("empty offering list", vec![("spec/offeringIDs", json!([]))], "spec.offeringIDs"),
        ("duplicate offerings", vec![("spec/offeringIDs", json!(["a", "a"]))], "spec.offeringIDs"),
        (
            "preferred not listed",
            vec![("spec/preferredInstanceType", json!("large-8cpu"))],
            "spec.preferredInstanceType must be one of spec.offeringIDs",
        ),
        (
            "selector min above max",
            vec![("spec/offeringIDs", Value::Null), ("spec/offeringSelector", json!({"minCPU": 8, "maxCPU": 2}))],
            "spec.offeringSelector.minCPU must be less than or equal to maxCPU",
        ),
        (
            "scale-up threshold above 100",
            vec![("spec/scaleUpPolicy/cpuThreshold", json!(150))],
            "spec.scaleUpPolicy.cpuThreshold",
        ),
        (
            "negative scale-down threshold",
            vec![("spec/scaleDownPolicy/memoryThreshold", json!(-5))],
            "spec.scaleDownPolicy.memoryThreshold",
        ),
        (
            "window as a string",
            vec![("spec/scaleUpPolicy/stabilizationWindowSeconds", json!("60s"))],
            "spec.scaleUpPolicy.stabilizationWindowSeconds",
        ),
        ("negative cooldown", vec![("spec/cooldownSeconds", json!(-1))], "spec.cooldownSeconds"),
        ("priority out of range", vec![("spec/priority", json!(5000))], "spec.priority"),
        (
            "reserved label kubernetes.io",
            vec![("spec/labels", json!({"kubernetes.io/hostname": "x"}))],
            "spec.labels: keys under kubernetes.io/",
        ),
        (
            "reserved label k8s.io",
            vec![("spec/labels", json!({"node.k8s.io/pool": "x"}))],
            "spec.labels: keys under kubernetes.io/",
        ),
        (
            "reserved label ours",
            vec![("spec/labels", json!({"autoscaler.vpsie.com/nodegroup": "x"}))],
            "spec.labels: keys under kubernetes.io/",
        ),
        (
            "malformed label key",
            vec![("spec/labels", json!({"bad key!": "x"}))],
            "spec.labels: every key must be a qualified name",
        ),
        ("label value too long", vec![("spec/labels", json!({"pool": "v".repeat(64)}))], "spec.labels"),
        (
            "invalid taint effect",
            vec![("spec/taints", json!([{"key": "dedicated", "effect": "Sometimes"}]))],
            "spec.taints[0].effect",
        ),
        (
            "invalid taint key",
            vec![("spec/taints", json!([{"key": "no spaces allowed", "effect": "NoSchedule"}]))],
            "spec.taints[0].key",
        ),
        (
            "startup taint without effect",
            vec![("spec/startupTaints", json!([{"key": "init"}]))],
            "spec.startupTaints[0].effect",
        ),
        (
            "managed cluster without identifier",
            vec![("spec/provisioning", json!({"mode": "managedCluster"}))],
            "spec.provisioning.managedCluster.clusterIdentifier is required",
        ),
        (
            "empty cluster identifier",
            vec![("spec/provisioning", json!({"mode": "managedCluster", "managedCluster": {"clusterIdentifier": ""}}))],
            "spec.provisioning.managedCluster.clusterIdentifier",
        ),
        ("unknown provisioning mode", vec![("spec/provisioning", json!({"mode": "docker"}))], "spec.provisioning.mode"),
        (
            "join secret without namespace",
            vec![("spec/provisioning", json!({"mode": "vm", "vm": {"joinSecretRef": {"name": "join"}}}))],
            "spec.provisioning.vm.joinSecretRef.namespace",
        ),
        (
            "budget nodes not a number",
            vec![("spec/disruption", json!({"budgets": [{"nodes": "ten"}]}))],
            "spec.disruption.budgets[0].nodes",
        ),
        (
            "budget schedule without duration",
            vec![("spec/disruption", json!({"budgets": [{"nodes": "1", "schedule": "0 9 * * *"}]}))],
            "spec.disruption.budgets[].schedule and spec.disruption.budgets[].duration must be set together",
        ),
        (
            "budget bad duration",
            vec![("spec/disruption", json!({"budgets": [{"nodes": "1", "schedule": "@daily", "duration": "1 day"}]}))],
            "spec.disruption.budgets[0].duration",
        ),
        (
            "budget bad cron",
            vec![("spec/disruption", json!({"budgets": [{"nodes": "1", "schedule": "every day", "duration": "1h"}]}))],
            "spec.disruption.budgets[0].schedule",
        ),
        (
            "unknown consolidation policy",
            vec![("spec/disruption", json!({"consolidation": {"policy": "Always"}}))],
            "spec.disruption.consolidation.policy",
        ),
        (
            "negative savings",
            vec![("spec/disruption", json!({"consolidation": {"minMonthlySavings": -1}}))],
            "spec.disruption.consolidation.minMonthlySavings",
        ),
        ("negative cost limit", vec![("spec/limits", json!({"maxMonthlyCost": -10}))], "spec.limits.maxMonthlyCost"),
        (
            "provisioning timeout too short",
            vec![("spec/provisioningTimeoutSeconds", json!(10))],
            "spec.provisioningTimeoutSeconds",
        ),
        ("notes too long", vec![("spec/notes", json!(long))], "spec.notes"),
    ]
}

#[tokio::test]
async fn crds_validate_in_the_real_apiserver() {
    let cp =
        ControlPlane::builder().without_controller_manager().without_scheduler().without_kwok().start().await.unwrap();
    let client = cp.client().await.unwrap();
    install_crds(&client).await;
    let ngs: Api<DynamicObject> = Api::all_with(client.clone(), &resource("NodeGroup", "nodegroups"));

    // The seed manifest applies unchanged and gets its defaults.
    let seed: DynamicObject = serde_json::from_value(sample()).unwrap();
    let created = ngs.create(&PostParams::default(), &seed).await.unwrap();
    assert_eq!(created.data["spec"]["cooldownSeconds"], 600);
    assert_eq!(created.data["spec"]["priority"], 0);

    // Every malformed manifest is refused, naming the field.
    let cases = invalid_nodegroups();
    let mut wrong = Vec::new();
    for (i, (what, changes, expected)) in cases.iter().enumerate() {
        let mut obj = sample();
        set(&mut obj, "metadata/name", json!(format!("invalid-{i}")));
        for (path, value) in changes {
            set(&mut obj, path, value.clone());
        }
        let obj: DynamicObject = serde_json::from_value(obj).unwrap();
        match ngs.create(&PostParams::default(), &obj).await {
            Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains(expected) => {
                println!("refused as expected [{what}]: {}", s.message);
            }
            Err(e) => wrong.push(format!("[{what}] wrong refusal: {e}")),
            Ok(_) => wrong.push(format!("[{what}] was accepted")),
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases failed:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    println!("{} invalid NodeGroups refused, each naming its field", cases.len());

    // VPSieNode: hostname pattern and an immutable spec.
    let vns: Api<DynamicObject> = Api::all_with(client.clone(), &resource("VPSieNode", "vpsienodes"));
    let vn = |name: &str, hostname: &str| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "VPSieNode", "metadata": {"name": name},
            "spec": {"nodeGroupName": "general-purpose", "offeringID": "o", "datacenterID": "dc", "osImageID": "os", "hostname": hostname}
        }))
        .unwrap()
    };
    match vns.create(&PostParams::default(), &vn("bad-host", "Bad_Host")).await {
        Err(kube::Error::Api(s)) => assert!(s.code == 422 && s.message.contains("spec.hostname"), "{}", s.message),
        other => panic!("uppercase hostname accepted: {other:?}"),
    }
    let mut ok = vns.create(&PostParams::default(), &vn("gp-1", "gp-1")).await.unwrap();
    ok.data["spec"]["offeringID"] = json!("other");
    match vns.replace("gp-1", &PostParams::default(), &ok).await {
        Err(kube::Error::Api(s)) => assert!(s.message.contains("spec is immutable"), "{}", s.message),
        other => panic!("spec change accepted: {other:?}"),
    }

    // kubectl sees printer columns and our descriptions.
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new(&cp.binaries().kubectl)
            .args(args)
            .env("KUBECONFIG", cp.kubeconfig_path())
            .output()
            .unwrap();
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let explain = kubectl(&["explain", "nodegroup.spec.scaleDownPolicy"]);
    println!("{explain}");
    // kubectl wraps descriptions; compare with whitespace collapsed.
    let explain = explain.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(explain.contains("stabilizationWindowSeconds"));
    assert!(explain.contains("requested-utilization levels under which a node is a removal"));
    assert!(explain.contains("Seconds a node must stay under both thresholds"));
    let table = kubectl(&["get", "ng", "-n", "kube-system"]);
    assert!(
        table.starts_with("NAME")
            && table.contains("MIN")
            && table.contains("COST")
            && table.contains("general-purpose"),
        "{table}"
    );
    let vn_table = kubectl(&["get", "vn"]);
    assert!(vn_table.contains("PHASE") && vn_table.contains("GROUP") && vn_table.contains("gp-1"), "{vn_table}");
    assert!(kubectl(&["get", "vpsie"]).contains("general-purpose"), "category vpsie lists both kinds");
}
