#![allow(clippy::unwrap_used)]

use autoscaler_decision::groups::Expander;
use autoscaler_decision::{ScaleUpInput, plan};
use serde_json::json;

use super::*;
use crate::cluster::objects;
use crate::cluster::store::Converted;

const GI: i64 = 1 << 30;

fn catalog() -> Vec<CatalogOffer> {
    let offer = |id: &str, nick: &str, cpu: i64, gib: i64, price: f64| CatalogOffer {
        identifier: id.into(),
        datacenter: "dc-a".into(),
        category: if nick.starts_with("co") { "Compute Optimized".into() } else { "Shared CPU".into() },
        nickname: nick.into(),
        cpu,
        ram_mib: gib * 1024,
        disk_gib: 50,
        monthly_price: price,
    };
    vec![
        offer("id-2-4", "sc-2cpu-4gb", 2, 4, 16.0),
        offer("id-4-8", "sc-4cpu-8gb", 4, 8, 29.0),
        offer("id-co-8", "co-8cpu-16gb", 8, 16, 101.0),
        CatalogOffer {
            datacenter: "dc-b".into(),
            identifier: "other-dc".into(),
            ..offer("x", "sc-2cpu-4gb", 2, 4, 1.0)
        },
    ]
}

fn nodegroup(spec: serde_json::Value) -> NodeGroup {
    let mut base = json!({
        "minNodes": 0, "maxNodes": 10, "datacenterID": "dc-a", "osImageID": "ubuntu-22.04-lts",
        "offeringIDs": ["sc-2cpu-4gb", "id-4-8"],
        "startupTaints": [{"key": "example.com/agent-not-ready", "effect": "NoSchedule"}],
        "registrationTimeoutSeconds": 300,
    });
    if let (Some(b), Some(extra)) = (base.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    serde_json::from_value(json!({"apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "NodeGroup",
        "metadata": {"name": "general", "generation": 1}, "spec": base}))
    .unwrap()
}

fn vpsienode(name: &str, offering: &str, phase: &str) -> VPSieNode {
    serde_json::from_value(json!({"apiVersion": "autoscaler.vpsie.com/v1alpha1", "kind": "VPSieNode",
        "metadata": {"name": name},
        "spec": {"nodeGroupName": "general", "offeringID": offering, "datacenterID": "dc-a",
                 "osImageID": "ubuntu-22.04-lts", "hostname": name},
        "status": {"phase": phase}}))
    .unwrap()
}

fn pending_pod(name: &str, cpu: &str, mem: &str) -> PodEntryFor {
    PodEntryFor(json!({"metadata": {"name": name, "namespace": "shop"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                   "reason": "Unschedulable", "lastTransitionTime": "2026-12-01T10:00:00Z"}]}}))
}

struct PodEntryFor(serde_json::Value);

fn insert_pod(c: &Cluster, p: PodEntryFor) {
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(p.0).unwrap();
    let key = super::super::store::key_of(&pod);
    let Converted::Keep(e) = objects::pod(pod, &mut objects::Interner::default()) else { panic!("pod kept") };
    c.pods.insert(key, e);
}

fn insert_node(c: &Cluster, name: &str, ready: bool, taints: serde_json::Value, created: &str) {
    let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(json!({
        "metadata": {"name": name, "creationTimestamp": created,
                     "labels": {"autoscaler.vpsie.com/nodegroup": "general", "autoscaler.vpsie.com/offering": "id-4-8",
                                "kubernetes.io/hostname": name}},
        "spec": {"taints": taints},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    }))
    .unwrap();
    let Converted::Keep(e) = objects::node(node) else { panic!("node kept") };
    c.nodes.insert(name, e);
}

fn cluster_with(ng: NodeGroup) -> Cluster {
    let c = Cluster::new();
    c.nodegroups.insert("general", crate::cluster::objects::NodeGroupEntry { group: ng, spec_manager: None });
    c
}

fn now() -> jiff::Timestamp {
    "2026-12-01T10:05:00Z".parse().unwrap()
}

fn plan_of(s: &Snapshot) -> autoscaler_decision::ScaleUpPlan {
    plan(ScaleUpInput { nodes: &s.nodes, pending: &s.pending, groups: &s.groups, expander: Expander::Cheapest })
}

#[test]
fn offerings_by_identifier_or_nickname_in_the_groups_datacenter_only() {
    let (offers, unknown) =
        offerings(&nodegroup(json!({"offeringIDs": ["sc-2cpu-4gb", "id-4-8", "gone"]})), &catalog());
    let ids: Vec<_> = offers.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["id-2-4", "id-4-8"], "the dc-b offer of the same nickname is not taken");
    assert_eq!(unknown, ["gone"]);
    assert_eq!(offers[1].allocatable.cpu_milli, 4000);
    assert_eq!(offers[1].allocatable.memory, 8 * GI);
    assert_eq!(offers[1].allocatable.pods, NODE_PODS);

    let sel =
        nodegroup(json!({"offeringIDs": null, "offeringSelector": {"categories": ["compute optimized"], "minCPU": 4}}));
    let (offers, _) = offerings(&sel, &catalog());
    assert_eq!(offers.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["id-co-8"]);

    let none = nodegroup(json!({"offeringIDs": ["gone"]}));
    let err = group_model(&none, &catalog(), &[], 0, now()).err().unwrap_or_default();
    assert!(err.contains("spec.offeringIDs") && err.contains("dc-a"), "{err}");
}

#[test]
fn limits_in_vcpus_and_gib_become_millicores_and_bytes() {
    let ng = nodegroup(json!({"limits": {"maxCPU": 8, "maxMemoryGiB": 16, "maxMonthlyCost": 100.0}}));
    let g = group_model(&ng, &catalog(), &[], 0, now()).unwrap();
    assert_eq!(g.limits.max_cpu_milli, Some(8000));
    assert_eq!(g.limits.max_memory, Some(16 * GI));
    // The group may hold 8 vCPUs: two 4-CPU nodes for 7 CPU of pods, not a refusal at the first node.
    let c = cluster_with(ng);
    for i in 0..7 {
        insert_pod(&c, pending_pod(&format!("p{i}"), "900m", "512Mi"));
    }
    let s = build(&c, &catalog(), now());
    let p = plan_of(&s);
    assert!(p.unplaced.is_empty(), "{:?}", p.unplaced.iter().map(|u| u.sentence()).collect::<Vec<_>>());
    let cpu: i64 = p.new_nodes.iter().map(|n| if n.offering == "id-4-8" { 4 } else { 2 }).sum();
    assert!(cpu <= 8, "within the 8-vCPU limit: {:?}", p.new_nodes);
}

#[test]
fn budgets_take_the_most_restrictive_count_or_percentage() {
    let ng = |b: serde_json::Value| nodegroup(json!({"disruption": {"budgets": b}}));
    let now: jiff::Timestamp = "2026-12-02T00:30:00Z".parse().unwrap();
    assert_eq!(max_disruptions(&nodegroup(json!({})), 10, now), 1, "no budget: one at a time");
    assert_eq!(max_disruptions(&ng(json!([{"nodes": "3"}])), 10, now), 3);
    assert_eq!(max_disruptions(&ng(json!([{"nodes": "25%"}, {"nodes": "5"}])), 10, now), 2, "25% of 10 rounds down");
}

#[test]
fn a_scheduled_budget_holds_only_in_its_window_and_an_unreadable_one_always() {
    let ng = |b: serde_json::Value| nodegroup(json!({"disruption": {"budgets": b}}));
    let at = |t: &str| -> jiff::Timestamp { t.parse().unwrap() };
    // No disruption from 09:00 for 8 hours on weekdays; otherwise 4 at a time. 2026-12-02 is a Wednesday.
    let business = ng(json!([{"nodes": "0", "schedule": "0 9 * * 1-5", "duration": "8h"}, {"nodes": "4"}]));
    assert_eq!(max_disruptions(&business, 10, at("2026-12-02T10:00:00Z")), 0, "inside the window");
    assert_eq!(max_disruptions(&business, 10, at("2026-12-02T18:00:00Z")), 4, "after it");
    assert_eq!(max_disruptions(&business, 10, at("2026-12-05T10:00:00Z")), 4, "on a Saturday");
    let only_scheduled = ng(json!([{"nodes": "5", "schedule": "@daily", "duration": "1h"}]));
    assert_eq!(max_disruptions(&only_scheduled, 10, at("2026-12-02T12:00:00Z")), 1, "none active: the default");
    let unreadable = ng(json!([{"nodes": "0", "schedule": "0 25 * * *", "duration": "1h"}, {"nodes": "4"}]));
    assert_eq!(max_disruptions(&unreadable, 10, at("2026-12-02T12:00:00Z")), 0, "unreadable counts as active");
}

#[test]
fn a_starting_node_of_ours_is_capacity_without_its_startup_taints() {
    let c = cluster_with(nodegroup(json!({})));
    let taints = json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                        {"key": "example.com/agent-not-ready", "effect": "NoSchedule"},
                        {"key": "dedicated", "value": "db", "effect": "NoSchedule"}]);
    insert_node(&c, "general-aaaaa", false, taints, "2026-12-01T10:03:00Z");
    c.vpsienodes.insert("general-aaaaa", vpsienode("general-aaaaa", "id-4-8", "Joining"));
    insert_pod(&c, pending_pod("web-0", "1", "1Gi"));
    let s = build(&c, &catalog(), now());
    let node = &s.nodes[0];
    assert_eq!(
        node.taints.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        ["dedicated"],
        "only the group's own taint stays"
    );

    // Without the group's own taint the pending pod waits for this node: no second scale-up.
    let c = cluster_with(nodegroup(json!({})));
    let taints = json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                        {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}]);
    insert_node(&c, "general-aaaaa", false, taints.clone(), "2026-12-01T10:03:00Z");
    c.vpsienodes.insert("general-aaaaa", vpsienode("general-aaaaa", "id-4-8", "Joining"));
    insert_pod(&c, pending_pod("web-0", "1", "1Gi"));
    let p = plan_of(&build(&c, &catalog(), now()));
    assert_eq!(p.on_existing, vec![autoscaler_decision::scale_up::PodOnNode::new("shop/web-0", "general-aaaaa")]);
    assert!(p.new_nodes.is_empty());

    // Ready a moment before the controller-manager lifts `not-ready`: still starting, still capacity.
    let c = cluster_with(nodegroup(json!({})));
    insert_node(&c, "general-aaaaa", true, taints.clone(), "2026-12-01T10:03:00Z");
    c.vpsienodes.insert("general-aaaaa", vpsienode("general-aaaaa", "id-4-8", "Joining"));
    insert_pod(&c, pending_pod("web-0", "1", "1Gi"));
    let p = plan_of(&build(&c, &catalog(), now()));
    assert!(p.new_nodes.is_empty(), "a Ready node still losing its start-up taints takes the pod: {p:?}");

    // A Node we did not create keeps its taints.
    let c = cluster_with(nodegroup(json!({})));
    insert_node(&c, "foreign", false, taints, "2026-12-01T10:03:00Z");
    let s = build(&c, &catalog(), now());
    assert_eq!(s.nodes[0].taints.len(), 2);
}

#[test]
fn a_node_unready_past_its_registration_timeout_is_not_capacity() {
    let c = cluster_with(nodegroup(json!({"registrationTimeoutSeconds": 120})));
    insert_node(&c, "general-late", false, json!([]), "2026-12-01T10:00:00Z");
    c.vpsienodes.insert("general-late", vpsienode("general-late", "id-4-8", "Joining"));
    insert_pod(&c, pending_pod("api-0", "1", "2Gi"));
    let s = build(&c, &catalog(), now());
    assert!(s.nodes.is_empty(), "5 minutes unready with a 2-minute timeout, and not in flight either");
    // Still a member: it counts toward maxNodes, so a group at its maximum plans no more (before, it planned
    // one that the NodeGroup controller deleted as above maxNodes, a real VM each round).
    assert_eq!(s.groups[0].absent_members.nodes, 1);
    assert!((s.groups[0].absent_members.monthly_cost - 29.0).abs() < 1e-9);
    assert_eq!(plan_of(&s).new_nodes.len(), 1, "room below maxNodes 10");
    let c1 = cluster_with(nodegroup(json!({"registrationTimeoutSeconds": 120, "maxNodes": 1})));
    insert_node(&c1, "general-late", false, json!([]), "2026-12-01T10:00:00Z");
    c1.vpsienodes.insert("general-late", vpsienode("general-late", "id-4-8", "Ready"));
    insert_pod(&c1, pending_pod("api-0", "1", "2Gi"));
    let at_max = plan_of(&build(&c1, &catalog(), now()));
    assert!(at_max.new_nodes.is_empty(), "a group at maxNodes with a dead node plans nothing: {:?}", at_max.new_nodes);

    // A VPSieNode without a Node past the timeout of its phase is not in flight (no capacity to wait for),
    // aged by the phase's time stamp: the create intent while Provisioning, the VM's activation after.
    let c = cluster_with(nodegroup(json!({"registrationTimeoutSeconds": 120, "provisioningTimeoutSeconds": 60})));
    let at = |t: &str| Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t.parse().unwrap()));
    let mut stuck = vpsienode("general-stuck", "id-4-8", "Provisioning");
    stuck.status.as_mut().unwrap().created_at = at("2026-12-01T10:03:00Z");
    c.vpsienodes.insert("general-stuck", stuck);
    let mut late = vpsienode("general-late1", "id-4-8", "Joining");
    late.status.as_mut().unwrap().provisioned_at = at("2026-12-01T10:02:00Z");
    c.vpsienodes.insert("general-late1", late);
    // Created long ago but still Pending (its create waited out a VPSie outage): still in flight, so the
    // pods it was made for are not planned a second VM.
    let mut waiting = vpsienode("general-wait1", "id-4-8", "Pending");
    waiting.metadata.creation_timestamp = at("2026-12-01T09:00:00Z");
    c.vpsienodes.insert("general-wait1", waiting);
    let mut fresh = vpsienode("general-fresh", "id-4-8", "Provisioning");
    fresh.metadata.creation_timestamp = at("2026-12-01T09:00:00Z");
    fresh.status.as_mut().unwrap().created_at = at("2026-12-01T10:04:30Z");
    c.vpsienodes.insert("general-fresh", fresh);
    let s = build(&c, &catalog(), now());
    let mut in_flight = s.in_flight.clone();
    in_flight.sort();
    assert_eq!(in_flight, ["general-fresh", "general-wait1"]);
    assert_eq!(s.groups[0].absent_members.nodes, 2, "the two past their phase's timeout still count toward maxNodes");
}

#[test]
fn in_flight_vpsienodes_take_pending_pods_so_none_triggers_twice() {
    let c = cluster_with(nodegroup(json!({})));
    c.vpsienodes.insert("general-fly01", vpsienode("general-fly01", "id-4-8", "Provisioning"));
    c.vpsienodes.insert("general-gone1", vpsienode("general-gone1", "id-4-8", "Failed"));
    for i in 0..3 {
        insert_pod(&c, pending_pod(&format!("api-{i}"), "1", "2Gi"));
    }
    let s = build(&c, &catalog(), now());
    assert_eq!(s.in_flight, ["general-fly01"], "a Failed VPSieNode is no capacity");
    let node = &s.nodes[0];
    assert_eq!((node.allocatable.cpu_milli, node.offering.as_deref()), (4000, Some("id-4-8")));
    let p = plan_of(&s);
    assert_eq!(p.on_existing.len(), 3);
    assert!(p.new_nodes.is_empty(), "the in-flight node holds them: {:?}", p.new_nodes);
}

#[test]
fn bound_and_nominated_pods_use_their_node_and_daemonsets_follow_the_template() {
    let c = cluster_with(nodegroup(json!({"labels": {"pool": "web"}})));
    insert_node(&c, "general-bbbbb", true, json!([]), "2026-12-01T09:00:00Z");
    c.vpsienodes.insert("general-bbbbb", vpsienode("general-bbbbb", "id-4-8", "Ready"));
    let mut bound = pending_pod("db-0", "3", "1Gi");
    bound.0["spec"]["nodeName"] = json!("general-bbbbb");
    bound.0["status"] = json!({"phase": "Running"});
    insert_pod(&c, bound);
    let mut nominated = pending_pod("batch-0", "500m", "1Gi");
    nominated.0["status"]["nominatedNodeName"] = json!("general-bbbbb");
    insert_pod(&c, nominated);
    let ds = |name: &str, selector: serde_json::Value| {
        let d: k8s_openapi::api::apps::v1::DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"selector": {}, "template": {"spec": {"nodeSelector": selector,
                "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}
        }))
        .unwrap();
        let Converted::Keep(e) = objects::daemonset(d) else { panic!("kept") };
        c.daemonsets.insert(format!("kube-system/{name}"), e);
    };
    ds("node-exporter", json!({}));
    ds("gpu-driver", json!({"accelerator": "nvidia"}));
    ds("web-agent", json!({"pool": "web"}));
    let s = build(&c, &catalog(), now());
    let names: Vec<_> = s.nodes[0].pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"db-0") && names.contains(&"batch-0"), "{names:?}");
    assert!(s.pending.is_empty(), "a nominated pod is not pending again");
    let mut ds_names: Vec<_> = s.groups[0].daemonset_pods.iter().map(|p| p.name.as_str()).collect();
    ds_names.sort();
    assert_eq!(ds_names, ["node-exporter", "web-agent"]);
}

#[test]
fn expired_backoff_is_dropped() {
    let mut ng = nodegroup(json!({}));
    ng.status = Some(
        serde_json::from_value(json!({"offeringBackoff": [
        {"offeringID": "id-2-4", "until": "2026-12-01T11:00:00Z", "reason": "quota"},
        {"offeringID": "id-4-8", "until": "2026-12-01T10:00:00Z", "reason": "old"}]}))
        .unwrap(),
    );
    let g = group_model(&ng, &catalog(), &[], 0, now()).unwrap();
    assert_eq!(g.backoff.into_iter().collect::<Vec<_>>(), ["id-2-4"]);
}

#[test]
fn the_preferred_instance_type_wins_between_offerings_that_fit_equally_well() {
    let twin = |id: &str, nick: &str| CatalogOffer {
        identifier: id.into(),
        datacenter: "dc-a".into(),
        category: "Shared CPU".into(),
        nickname: nick.into(),
        cpu: 2,
        ram_mib: 4096,
        disk_gib: 50,
        monthly_price: 16.0,
    };
    let catalog = vec![twin("id-a", "sc-a"), twin("id-b", "sc-b")];
    for (preferred, expected) in [(serde_json::Value::Null, "id-a"), (json!("sc-b"), "id-b"), (json!("id-a"), "id-a")] {
        let c = cluster_with(nodegroup(json!({"offeringIDs": ["id-a", "id-b"], "preferredInstanceType": preferred})));
        insert_pod(&c, pending_pod("p", "500m", "512Mi"));
        let p = plan_of(&build(&c, &catalog, now()));
        let chosen: Vec<&str> = p.new_nodes.iter().map(|n| n.offering.as_str()).collect();
        assert_eq!(chosen, [expected], "preferred {preferred}");
    }
    // Only a tie-break: a dearer preferred offering does not win over a cheaper one that fits as well.
    let dearer = vec![twin("id-a", "sc-a"), CatalogOffer { monthly_price: 20.0, ..twin("id-b", "sc-b") }];
    let c = cluster_with(nodegroup(json!({"offeringIDs": ["id-a", "id-b"], "preferredInstanceType": "sc-b"})));
    insert_pod(&c, pending_pod("p", "500m", "512Mi"));
    let p = plan_of(&build(&c, &dearer, now()));
    assert_eq!(p.new_nodes.iter().map(|n| n.offering.as_str()).collect::<Vec<_>>(), ["id-a"]);
}

#[test]
fn namespace_selectors_are_read_against_the_namespace_cache() {
    use autoscaler_decision::model::Namespaces;
    let c = cluster_with(nodegroup(json!({})));
    insert_node(&c, "general-ccccc", true, json!([]), "2026-12-01T09:00:00Z");
    c.vpsienodes.insert("general-ccccc", vpsienode("general-ccccc", "id-4-8", "Ready"));
    let mut cache = pending_pod("cache-0", "100m", "64Mi");
    cache.0["metadata"]["namespace"] = json!("team-b");
    cache.0["metadata"]["labels"] = json!({"app": "cache"});
    cache.0["spec"]["nodeName"] = json!("general-ccccc");
    cache.0["status"] = json!({"phase": "Running"});
    insert_pod(&c, cache);
    let mut web = pending_pod("web-0", "100m", "64Mi");
    web.0["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname",
         "namespaceSelector": {"matchLabels": {"team": "b"}}}]}});
    insert_pod(&c, web);
    let namespace = |name: &str, team: &str| {
        let n: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": team}}})).unwrap();
        let Converted::Keep(labels) = objects::namespace(n) else { panic!("kept") };
        c.namespaces.insert(name, labels);
    };
    namespace("team-b", "b");
    namespace("shop", "a");
    let s = build(&c, &catalog(), now());
    assert_eq!(
        s.pending[0].pod_anti_affinity[0].namespaces,
        Namespaces::Listed(vec!["team-b".into()]),
        "resolved to the namespaces labelled team=b"
    );
    assert_eq!(plan_of(&s).new_nodes.len(), 1, "the cache's node is refused, a new node is needed");
    // Relabelled: the next snapshot reads the new labels, and the pod fits beside the cache.
    namespace("team-b", "c");
    let s = build(&c, &catalog(), now());
    assert_eq!(s.pending[0].pod_anti_affinity[0].namespaces, Namespaces::Listed(vec![]));
    assert!(plan_of(&s).new_nodes.is_empty());
}

#[test]
fn a_leaving_node_is_no_destination_and_a_group_being_deleted_is_no_target() {
    let c = cluster_with(nodegroup(json!({})));
    insert_node(&c, "general-leave", true, json!([]), "2026-12-01T09:00:00Z");
    let mut leaving = vpsienode("general-leave", "id-4-8", "Terminating");
    leaving.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    c.vpsienodes.insert("general-leave", leaving);
    insert_pod(&c, pending_pod("api-0", "1", "2Gi"));
    let s = build(&c, &catalog(), now());
    assert!(s.nodes[0].unschedulable, "its drain's cordon may not show yet; the plan must not count on it");
    let p = plan_of(&s);
    assert!(p.on_existing.is_empty(), "no pod is placed on a leaving node: {:?}", p.on_existing);
    assert_eq!(p.new_nodes.len(), 1);

    let mut deleting = nodegroup(json!({}));
    deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    let c = cluster_with(deleting);
    c.vpsienodes.insert("general-fly01", vpsienode("general-fly01", "id-4-8", "Provisioning"));
    insert_pod(&c, pending_pod("api-0", "1", "2Gi"));
    let s = build(&c, &catalog(), now());
    assert!(s.groups.is_empty() && s.in_flight.is_empty(), "{:?} {:?}", s.groups, s.in_flight);
    assert_eq!(s.problems.len(), 1);
    assert!(plan_of(&s).new_nodes.is_empty(), "no node is planned in a group being deleted");
}
