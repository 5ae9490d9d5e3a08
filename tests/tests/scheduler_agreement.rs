//! Agreement of the decision core's predicates with the real kube-scheduler.
//!
//! 200 random mixes (resources, nodeSelector, required node affinity with In/NotIn/Gt, taints and
//! tolerations, hostname anti-affinity, hostname topology spread) run on isolated sets of kwok nodes,
//! 25 at a time, each pod by pod: the real scheduler decides, and the decision is checked against our
//! simulation of the state it was made in: a bound pod must be feasible on its node, a pod left Unschedulable
//! must have no feasible node. Prints the agreement rate; the target is 100%.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use autoscaler_decision::{convert, feasible};
use futures::future::join_all;
use k8s_openapi::api::core::v1::{
    Affinity, Container, Node as K8sNode, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    Pod as K8sPod, PodAffinityTerm, PodAntiAffinity, PodSpec, ResourceRequirements, Toleration,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector as K8sSelector, ObjectMeta};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use testenv::{KwokNode, create_namespace, shared, wait_for};
use vpsie_sim::SimRng;

const MIXES: usize = 200;
const BATCH: usize = 25;

fn below(rng: &mut SimRng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

fn pick<'a, T>(rng: &mut SimRng, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len())]
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn requirement(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

/// The nodes of mix `m`: isolated by a `mix` label and a NoSchedule taint only its pods tolerate.
fn mix_nodes(m: usize, rng: &mut SimRng) -> Vec<KwokNode> {
    let count = 3 + below(rng, 3);
    (0..count)
        .map(|j| {
            let cpu = *pick(rng, &[2, 4, 8]);
            let mem = *pick(rng, &["4Gi", "8Gi", "16Gi"]);
            let mut n = KwokNode::new(format!("m{m}-n{j}"), cpu.to_string(), mem)
                .label("mix", m.to_string())
                .label("topology.kubernetes.io/zone", *pick(rng, &["z1", "z2"]))
                .label("pool", *pick(rng, &["a", "b"]))
                .label("cores", cpu.to_string())
                .taint("agreement-mix", &m.to_string(), "NoSchedule");
            if rng.unit() < 0.3 {
                n = n.taint("dedicated", "x", "NoSchedule");
            }
            n
        })
        .collect()
}

fn mix_pods(m: usize, rng: &mut SimRng) -> Vec<K8sPod> {
    let count = 6 + below(rng, 9);
    (0..count)
        .map(|k| {
            let app = *pick(rng, &["a", "b"]);
            let mut tolerations = vec![Toleration {
                key: Some("agreement-mix".into()),
                operator: Some("Equal".into()),
                value: Some(m.to_string()),
                effect: Some("NoSchedule".into()),
                ..Default::default()
            }];
            if rng.unit() < 0.4 {
                tolerations.push(Toleration {
                    key: Some("dedicated".into()),
                    operator: Some("Exists".into()),
                    ..Default::default()
                });
            }
            let mut node_selector = map(&[("mix", &m.to_string())]);
            if rng.unit() < 0.3 {
                node_selector.insert("pool".into(), (*pick(rng, &["a", "b"])).to_owned());
            }
            let mut affinity = Affinity::default();
            if rng.unit() < 0.3 {
                let req = match below(rng, 3) {
                    0 => requirement("topology.kubernetes.io/zone", "In", &["z1"]),
                    1 => requirement("pool", "NotIn", &["b"]),
                    _ => requirement("cores", "Gt", &["2"]),
                };
                affinity.node_affinity = Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: Some(vec![req]),
                            ..Default::default()
                        }],
                    }),
                    ..Default::default()
                });
            }
            let selector = K8sSelector { match_labels: Some(map(&[("app", app)])), ..Default::default() };
            if rng.unit() < 0.25 {
                affinity.pod_anti_affinity = Some(PodAntiAffinity {
                    required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                        label_selector: Some(selector.clone()),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                });
            }
            let spread = (rng.unit() < 0.25).then(|| {
                vec![TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: "kubernetes.io/hostname".into(),
                    when_unsatisfiable: "DoNotSchedule".into(),
                    label_selector: Some(selector.clone()),
                    ..Default::default()
                }]
            });
            let cpu = *pick(rng, &["100m", "250m", "500m", "1", "2", "3"]);
            let mem = *pick(rng, &["128Mi", "512Mi", "1Gi", "2Gi", "6Gi"]);
            K8sPod {
                metadata: ObjectMeta {
                    name: Some(format!("p{k}")),
                    labels: Some(map(&[("app", app)])),
                    ..Default::default()
                },
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
                        image: Some("registry.k8s.io/pause:3.10".into()),
                        resources: Some(ResourceRequirements {
                            requests: Some(
                                [("cpu".to_owned(), Quantity(cpu.into())), ("memory".to_owned(), Quantity(mem.into()))]
                                    .into(),
                            ),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    node_selector: Some(node_selector),
                    tolerations: Some(tolerations),
                    affinity: Some(affinity),
                    topology_spread_constraints: spread,
                    termination_grace_period_seconds: Some(0),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect()
}

fn unschedulable(p: &K8sPod) -> bool {
    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
        cs.iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
    })
}

fn bound(p: &K8sPod) -> Option<&str> {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

/// Runs one mix pod by pod: before each pod the cluster state is known exactly (only bound pods remain),
/// the scheduler decides, and the decision is checked against that state. Pods left Unschedulable are
/// deleted once judged, so they cannot bind later and change the state under the next check.
/// Returns (agreements, pods bound, pods left Unschedulable, disagreements).
async fn run_mix(client: &Client, m: usize, nodes: &[KwokNode], pods: &[K8sPod]) -> (usize, usize, usize, Vec<String>) {
    let ns = format!("mix-{m}");
    let api: Api<K8sPod> = Api::namespaced(client.clone(), &ns);
    let nodes_api: Api<K8sNode> = Api::all(client.clone());
    let names: Vec<String> = nodes.iter().filter_map(|n| n.to_node().metadata.name).collect();
    let live: Vec<K8sNode> =
        join_all(names.iter().map(|n| nodes_api.get(n))).await.into_iter().map(|r| r.unwrap()).collect();
    let mut state: Vec<autoscaler_decision::Node> =
        live.iter().map(|n| convert::node(n, Vec::new()).unwrap()).collect();
    let (mut agree, mut bound_count, mut refused_count) = (0, 0, 0);
    let mut disagree = Vec::new();
    for p in pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        let model = convert::pod(&K8sPod {
            metadata: ObjectMeta { namespace: Some(ns.clone()), ..p.metadata.clone() },
            ..p.clone()
        })
        .unwrap();
        api.create(&PostParams::default(), p).await.unwrap();
        let decided = wait_for(&format!("{ns}/{name} bound or Unschedulable"), Duration::from_secs(60), || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                let pod = api.get(&name).await?;
                Ok(if bound(&pod).is_some() || unschedulable(&pod) { Ok(pod) } else { Err("pending".to_owned()) })
            }
        })
        .await
        .unwrap();
        match bound(&decided) {
            Some(node_name) => {
                bound_count += 1;
                let i = state.iter().position(|n| n.name == node_name).unwrap();
                match feasible(&model, &state[i], &state) {
                    Ok(()) => agree += 1,
                    Err(why) => disagree.push(format!("{} bound to {node_name} but we say: {why}", model.id())),
                }
                state[i].pods.push(model);
            }
            None => {
                refused_count += 1;
                match state.iter().find(|n| feasible(&model, n, &state).is_ok()) {
                    None => agree += 1,
                    Some(n) => {
                        disagree.push(format!("{} left Unschedulable but we find it fits {}", model.id(), n.name))
                    }
                }
                api.delete(&name, &DeleteParams::default()).await.unwrap();
                wait_for(&format!("{ns}/{name} deleted"), Duration::from_secs(60), || {
                    let (api, name) = (api.clone(), name.clone());
                    async move {
                        Ok(if api.get_opt(&name).await?.is_none() { Ok(()) } else { Err("still there".to_owned()) })
                    }
                })
                .await
                .unwrap();
            }
        }
    }
    (agree, bound_count, refused_count, disagree)
}

#[tokio::test]
async fn predicates_agree_with_kube_scheduler() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    let nodes_api: Api<K8sNode> = Api::all(client.clone());
    let started = Instant::now();
    let (mut agree, mut total, mut bound_total, mut refused_total) = (0usize, 0usize, 0usize, 0usize);
    let mut disagreements = Vec::new();
    let mut rng = SimRng::new(20261123);
    for batch in 0..MIXES / BATCH {
        let plans: Vec<(usize, Vec<KwokNode>, Vec<K8sPod>)> =
            (batch * BATCH..(batch + 1) * BATCH).map(|m| (m, mix_nodes(m, &mut rng), mix_pods(m, &mut rng))).collect();
        // Nodes first, Ready and free of the not-ready taint, so pods never race node start-up.
        for r in join_all(plans.iter().flat_map(|(_, nodes, _)| nodes.iter().map(|n| n.create(&client)))).await {
            r.unwrap();
        }
        for (m, nodes, _) in &plans {
            for n in nodes {
                let name = n.to_node().metadata.name.unwrap_or_default();
                wait_for(&format!("{name} without the not-ready taint"), Duration::from_secs(60), || {
                    let api = nodes_api.clone();
                    let name = name.clone();
                    async move {
                        let node = api.get(&name).await?;
                        let tainted = node
                            .spec
                            .and_then(|s| s.taints)
                            .unwrap_or_default()
                            .iter()
                            .any(|t| t.key.starts_with("node.kubernetes.io/"));
                        Ok(if tainted { Err("still tainted".to_owned()) } else { Ok(()) })
                    }
                })
                .await
                .unwrap();
            }
            create_namespace(&client, &format!("mix-{m}")).await.unwrap();
        }
        let results = join_all(plans.iter().map(|(m, nodes, pods)| run_mix(&client, *m, nodes, pods))).await;
        for ((m, _, pods), (a, b, r, d)) in plans.iter().zip(results) {
            agree += a;
            bound_total += b;
            refused_total += r;
            total += pods.len();
            disagreements.extend(d.into_iter().map(|d| format!("mix {m}: {d}")));
        }
        for (_, nodes, _) in &plans {
            for n in nodes {
                let _ =
                    nodes_api.delete(&n.to_node().metadata.name.unwrap_or_default(), &DeleteParams::default()).await;
            }
        }
    }
    let rate = 100.0 * agree as f64 / total.max(1) as f64;
    println!(
        "scheduler agreement: {agree}/{total} scheduling decisions ({rate:.2}%; {bound_total} bound, {refused_total} Unschedulable) over {MIXES} mixes in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    assert!(bound_total > 0 && refused_total > 0, "both outcomes must be exercised");
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
}
