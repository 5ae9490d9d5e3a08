//! Offline checks: serde round-trips and defaults, and the shape of the generated CRDs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use autoscaler_api::nodegroup::{ConsolidationPolicy, ProvisioningMode, TaintEffect};
use autoscaler_api::{NodeGroup, VPSieNode, VPSieNodePhase, crds};
use kube::CustomResourceExt;
use serde_json::{Value, json};

const SAMPLE: &str = include_str!("../../../deploy/examples/nodegroup-general-purpose.yaml");

#[test]
fn the_seed_manifest_parses_with_defaults() {
    let ng: NodeGroup = serde_saphyr::from_str(SAMPLE).unwrap();
    let s = &ng.spec;
    assert_eq!((s.min_nodes, s.max_nodes), (2, 10));
    assert_eq!(s.offering_ids.as_deref(), Some(&["sc-2cpu-4gb".to_owned(), "sc-4cpu-8gb".to_owned()][..]));
    assert_eq!(s.scale_down_policy.stabilization_window_seconds, 600);
    assert_eq!(s.cooldown_seconds, 600);
    assert_eq!(s.priority, 0);
    assert_eq!(s.provisioning_timeout_seconds, 900);
    assert_eq!(s.registration_timeout_seconds, 900);
    assert_eq!(s.termination_grace_period_seconds, 600);
    assert_eq!(s.repair_after_seconds, 900);
    assert_eq!(s.provisioning_mode(), ProvisioningMode::Vm);
    assert!(ng.status.is_none());
}

#[test]
fn policies_default_when_absent() {
    let ng: NodeGroup = serde_json::from_value(json!({
        "apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "NodeGroup", "metadata": {"name": "x"},
        "spec": {"minNodes": 0, "maxNodes": 3, "datacenterID": "dc", "offeringIDs": ["a"], "osImageID": "os",
                 "disruption": {"consolidation": {}}}
    }))
    .unwrap();
    assert_eq!(ng.spec.scale_up_policy.cpu_threshold, 80);
    assert_eq!(ng.spec.scale_down_policy.cpu_threshold, 50);
    let c = ng.spec.disruption.and_then(|d| d.consolidation).unwrap();
    assert!(c.enabled);
    assert_eq!(c.policy, ConsolidationPolicy::WhenUnderutilized);
}

#[test]
fn full_objects_round_trip() {
    let ng_json = json!({
        "apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "NodeGroup", "metadata": {"name": "gpu"},
        "spec": {
            "minNodes": 1, "maxNodes": 5, "datacenterID": "dc", "osImageID": "os",
            "offeringSelector": {"categories": ["Compute Optimized"], "minCPU": 4, "maxMonthlyPrice": 200.0},
            "labels": {"pool": "gpu"}, "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
            "priority": 10,
            "provisioning": {"mode": "managedCluster", "managedCluster": {"clusterIdentifier": "c-1"}},
            "limits": {"maxMonthlyCost": 1000.0, "maxCPU": 64},
            "disruption": {"budgets": [{"nodes": "10%", "schedule": "0 9 * * 1-5", "duration": "8h"}]}
        },
        "status": {"desiredNodes": 2, "currentNodes": 2, "readyNodes": 1, "monthlyCost": 123.5,
                   "nodes": [{"name": "gpu-abc", "offeringID": "o", "phase": "Ready", "vpsID": 42}]}
    });
    let ng: NodeGroup = serde_json::from_value(ng_json).unwrap();
    assert_eq!(ng.spec.taints[0].effect, TaintEffect::NoSchedule);
    assert_eq!(ng.status.as_ref().unwrap().nodes[0].phase, VPSieNodePhase::Ready);
    let again: NodeGroup = serde_json::from_value(serde_json::to_value(&ng).unwrap()).unwrap();
    assert_eq!(again.spec, ng.spec);
    assert_eq!(again.status, ng.status);

    let vn: VPSieNode = serde_json::from_value(json!({
        "apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "VPSieNode", "metadata": {"name": "gpu-abc"},
        "spec": {"nodeGroupName": "gpu", "offeringID": "o", "datacenterID": "dc", "osImageID": "os", "hostname": "gpu-abc"},
        "status": {"phase": "Provisioning", "vmIdentifier": "v-1", "privateIP": "10.0.0.2",
                   "resources": {"cpu": 4, "memoryMiB": 8192, "diskGiB": 100}, "attempts": 1}
    }))
    .unwrap();
    assert_eq!(vn.spec.provisioning_mode, ProvisioningMode::Vm);
    let v = serde_json::to_value(&vn).unwrap();
    assert_eq!(v["status"]["privateIP"], "10.0.0.2");
    assert_eq!(v["status"]["resources"]["memoryMiB"], 8192);
    assert_eq!(v["spec"]["offeringID"], "o");
}

/// Walks a schema and lists every property without a description.
fn undocumented(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let p = format!("{path}.{name}");
            // metadata, apiVersion and kind are Kubernetes' own.
            if prop.get("description").is_none() && !["apiVersion", "kind", "metadata"].contains(&name.as_str()) {
                out.push(p.clone());
            }
            undocumented(prop, &p, out);
        }
    }
    if let Some(items) = schema.get("items") {
        undocumented(items, &format!("{path}[]"), out);
    }
}

#[test]
fn every_field_has_a_description_and_the_crds_carry_their_metadata() {
    for crd in crds() {
        let v = serde_json::to_value(&crd).unwrap();
        let version = &v["spec"]["versions"][0];
        let mut missing = Vec::new();
        undocumented(&version["schema"]["openAPIV3Schema"], "", &mut missing);
        // Conditions come from k8s-openapi (metav1.Condition) and are documented there.
        missing.retain(|p| !p.contains(".conditions[]."));
        assert!(
            missing.is_empty(),
            "{}: fields without description: {missing:?}",
            crd.metadata.name.unwrap_or_default()
        );
        assert_eq!(v["spec"]["scope"], "Cluster");
        assert_eq!(v["spec"]["names"]["categories"], json!(["vpsie"]));
        assert!(version["subresources"]["status"].is_object());
    }
    let ng = serde_json::to_value(NodeGroup::crd()).unwrap();
    let cols: Vec<&str> = ng["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Min", "Max", "Desired", "Ready", "Cost", "Age"]);
    assert_eq!(ng["spec"]["names"]["shortNames"], json!(["ng"]));
    let vn = serde_json::to_value(VPSieNode::crd()).unwrap();
    let cols: Vec<&str> = vn["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Phase", "Group", "Offering", "Node", "IP", "Age"]);
    assert_eq!(vn["spec"]["names"]["shortNames"], json!(["vn"]));
    let text = ng.to_string();
    for rule in ["self.minNodes <= self.maxNodes", "has(self.offeringIDs) != has(self.offeringSelector)"] {
        assert!(text.contains(rule), "missing CEL rule {rule}");
    }
}

#[test]
fn generated_yaml_matches_the_objects() {
    for ((name, yaml), crd) in autoscaler_api::crd_yaml_files().unwrap().into_iter().zip(crds()) {
        let parsed: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(parsed, serde_json::to_value(&crd).unwrap(), "{name}");
    }
}
