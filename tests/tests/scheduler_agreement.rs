//! Agreement of the decision core's predicates with the real kube-scheduler.
//!
//! 200 random mixes run on isolated sets of kwok nodes, 25 at a time, each pod by pod: the real scheduler
//! decides, and the decision is checked against our simulation of the state it was made in: a bound pod
//! must be feasible on its node, a pod left Unschedulable must have no feasible node. The mixes cover what
//! the planner leans on: resources with native sidecars, init containers and pod-level requests;
//! nodeSelector; required node affinity with In/NotIn/Exists/DoesNotExist/Gt/Lt, several terms and several
//! expressions per term; taints and tolerations; host ports; pod affinity and anti-affinity on hostname and
//! zone, over the pod's namespace, a list of namespaces, a namespaceSelector or every namespace; topology
//! spread on hostname and zone with maxSkew up to 3, minDomains and both node inclusion policies; pods in
//! two namespaces per mix.
//!
//! That checks that we never refuse what the scheduler accepts where it bound a pod, and never accept
//! anything where it bound nothing. To check over-permissiveness node by node, two pods of each finished
//! mix are then pinned to each of its nodes in turn (required node affinity on the hostname): the
//! scheduler's verdict for that one node is compared with ours, and the pod is deleted again.
//! Prints both agreement rates; the target is 100%.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use autoscaler_decision::model::NamespaceLabels;
use autoscaler_decision::{convert, feasible};
use futures::future::join_all;
use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, Namespace, Node as K8sNode, NodeAffinity, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, Pod as K8sPod, PodAffinity, PodAffinityTerm, PodAntiAffinity, PodSpec,
    ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector as K8sSelector, ObjectMeta};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use testenv::{KwokNode, shared, wait_for};
use vpsie_sim::SimRng;

const MIXES: usize = 200;
const BATCH: usize = 25;
/// Pods of each mix pinned to each of its nodes afterwards.
const PINNED_PER_MIX: usize = 2;
const ZONE: &str = "topology.kubernetes.io/zone";
const HOSTNAME: &str = "kubernetes.io/hostname";

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
        values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

fn requests(cpu: &str, mem: &str) -> Option<ResourceRequirements> {
    Some(ResourceRequirements {
        requests: Some([("cpu".to_owned(), Quantity(cpu.into())), ("memory".to_owned(), Quantity(mem.into()))].into()),
        ..Default::default()
    })
}

/// The two namespaces of mix `m`: the first of team a, the second of team b, both labelled with the mix.
fn mix_namespaces(m: usize) -> [(String, BTreeMap<String, String>); 2] {
    let ns = |name: String, team: &str| {
        let labels = map(&[("mix", &m.to_string()), ("team", team), ("kubernetes.io/metadata.name", &name)]);
        (name, labels)
    };
    [ns(format!("mix-{m}"), "a"), ns(format!("mix-{m}-b"), "b")]
}

/// Zones are per mix, so zone domains never mix pods of two mixes.
fn zone(m: usize, z: usize) -> String {
    format!("m{m}-z{z}")
}

/// The nodes of mix `m`: isolated by a `mix` label, zones of their own and a NoSchedule taint only its pods
/// tolerate.
fn mix_nodes(m: usize, rng: &mut SimRng) -> Vec<KwokNode> {
    let count = 3 + below(rng, 3);
    (0..count)
        .map(|j| {
            let cpu = *pick(rng, &[2, 4, 8]);
            let mem = *pick(rng, &["4Gi", "8Gi", "16Gi"]);
            let mut n = KwokNode::new(format!("m{m}-n{j}"), cpu.to_string(), mem)
                .label("mix", m.to_string())
                .label(ZONE, zone(m, 1 + below(rng, 3)))
                .label("pool", *pick(rng, &["a", "b"]))
                .label("cores", cpu.to_string())
                .taint("agreement-mix", &m.to_string(), "NoSchedule");
            if rng.unit() < 0.3 {
                n = n.label("special", "yes");
            }
            if rng.unit() < 0.3 {
                n = n.taint("dedicated", "x", "NoSchedule");
            }
            n
        })
        .collect()
}

/// Required node affinity: one of several shapes, including several terms (ORed) and several expressions
/// in one term (ANDed).
fn node_affinity(m: usize, rng: &mut SimRng) -> NodeAffinity {
    let z1 = zone(m, 1);
    let term =
        |reqs: Vec<NodeSelectorRequirement>| NodeSelectorTerm { match_expressions: Some(reqs), ..Default::default() };
    let terms = match below(rng, 8) {
        0 => vec![term(vec![requirement(ZONE, "In", &[&z1])])],
        1 => vec![term(vec![requirement("pool", "NotIn", &["b"])])],
        2 => vec![term(vec![requirement("cores", "Gt", &["2"])])],
        3 => vec![term(vec![requirement("cores", "Lt", &["8"])])],
        4 => vec![term(vec![requirement("special", "Exists", &[])])],
        5 => vec![term(vec![requirement("special", "DoesNotExist", &[])])],
        6 => vec![term(vec![requirement("pool", "In", &["a"])]), term(vec![requirement("cores", "Gt", &["4"])])],
        _ => vec![term(vec![requirement("pool", "Exists", &[]), requirement("cores", "Lt", &["16"])])],
    };
    NodeAffinity {
        required_during_scheduling_ignored_during_execution: Some(NodeSelector { node_selector_terms: terms }),
        ..Default::default()
    }
}

/// A pod (anti-)affinity term over one of: the pod's namespace, both of the mix's namespaces by name, a
/// namespaceSelector, or (anti-affinity only) every namespace. Selectors always name the mix: a term
/// reaching another mix's namespaces would make its verdict depend on pods outside this mix.
fn affinity_term(m: usize, rng: &mut SimRng, app: &str, anti: bool) -> PodAffinityTerm {
    let [(first, _), (second, _)] = mix_namespaces(m);
    let mut t = PodAffinityTerm {
        label_selector: Some(K8sSelector { match_labels: Some(map(&[("app", app)])), ..Default::default() }),
        topology_key: (*pick(rng, &[HOSTNAME, ZONE])).to_owned(),
        ..Default::default()
    };
    match below(rng, if anti { 5 } else { 4 }) {
        0 => {}
        1 => t.namespaces = Some(vec![first, second]),
        2 => {
            t.namespace_selector =
                Some(K8sSelector { match_labels: Some(map(&[("mix", &m.to_string())])), ..Default::default() })
        }
        3 => {
            t.namespace_selector = Some(K8sSelector {
                match_labels: Some(map(&[("mix", &m.to_string()), ("team", "b")])),
                ..Default::default()
            })
        }
        _ => t.namespace_selector = Some(K8sSelector::default()),
    }
    t
}

fn spread(rng: &mut SimRng, app: &str) -> TopologySpreadConstraint {
    let mut c = TopologySpreadConstraint {
        max_skew: 1 + below(rng, 3) as i32,
        topology_key: (*pick(rng, &[HOSTNAME, ZONE])).to_owned(),
        when_unsatisfiable: "DoNotSchedule".into(),
        label_selector: Some(K8sSelector { match_labels: Some(map(&[("app", app)])), ..Default::default() }),
        ..Default::default()
    };
    if rng.unit() < 0.25 {
        c.min_domains = Some(3);
    }
    if rng.unit() < 0.2 {
        // Counting every node with the label: taints honoured too, or other mixes' nodes would count.
        c.node_affinity_policy = Some("Ignore".into());
        c.node_taints_policy = Some("Honor".into());
    } else if rng.unit() < 0.25 {
        c.node_taints_policy = Some("Honor".into());
    }
    c
}

fn mix_pods(m: usize, rng: &mut SimRng) -> Vec<K8sPod> {
    let [(first, _), (second, _)] = mix_namespaces(m);
    let count = 6 + below(rng, 9);
    (0..count)
        .map(|k| {
            let app = *pick(rng, &["a", "b"]);
            let namespace = if rng.unit() < 0.3 { second.clone() } else { first.clone() };
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
            if rng.unit() < 0.35 {
                affinity.node_affinity = Some(node_affinity(m, rng));
            }
            if rng.unit() < 0.3 {
                let target = *pick(rng, &["a", "b"]);
                affinity.pod_anti_affinity = Some(PodAntiAffinity {
                    required_during_scheduling_ignored_during_execution: Some(vec![affinity_term(
                        m, rng, target, true,
                    )]),
                    ..Default::default()
                });
            }
            if rng.unit() < 0.15 {
                let target = *pick(rng, &["a", "b"]);
                affinity.pod_affinity = Some(PodAffinity {
                    required_during_scheduling_ignored_during_execution: Some(vec![affinity_term(
                        m, rng, target, false,
                    )]),
                    ..Default::default()
                });
            }
            let spread = (rng.unit() < 0.3).then(|| vec![spread(rng, app)]);
            let cpu = *pick(rng, &["100m", "250m", "500m", "1", "2", "3"]);
            let mem = *pick(rng, &["128Mi", "512Mi", "1Gi", "2Gi", "6Gi"]);
            let ports = (rng.unit() < 0.15)
                .then(|| vec![ContainerPort { container_port: 80, host_port: Some(8080), ..Default::default() }]);
            let mut init_containers = Vec::new();
            if rng.unit() < 0.2 {
                init_containers.push(Container {
                    name: "sidecar".into(),
                    image: Some("registry.k8s.io/pause:3.10".into()),
                    restart_policy: Some("Always".into()),
                    resources: requests("250m", "256Mi"),
                    ..Default::default()
                });
            }
            if rng.unit() < 0.15 {
                init_containers.push(Container {
                    name: "setup".into(),
                    image: Some("registry.k8s.io/pause:3.10".into()),
                    resources: requests("2", "512Mi"),
                    ..Default::default()
                });
            }
            // Pod-level requests must cover the containers' (at most 3 CPU and a 250m sidecar).
            let pod_level = (rng.unit() < 0.1).then(|| ResourceRequirements {
                requests: Some([("cpu".to_owned(), Quantity("4".into()))].into()),
                ..Default::default()
            });
            K8sPod {
                metadata: ObjectMeta {
                    name: Some(format!("p{k}")),
                    namespace: Some(namespace),
                    labels: Some(map(&[("app", app)])),
                    ..Default::default()
                },
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
                        image: Some("registry.k8s.io/pause:3.10".into()),
                        resources: requests(cpu, mem),
                        ports,
                        ..Default::default()
                    }],
                    init_containers: (!init_containers.is_empty()).then_some(init_containers),
                    resources: pod_level,
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

/// `pod` with a required node affinity term naming only `node` (added to each of its terms, as a term
/// list is ORed).
fn pinned(pod: &K8sPod, name: String, node: &str) -> K8sPod {
    let mut p = pod.clone();
    p.metadata.name = Some(name);
    let spec = p.spec.get_or_insert_with(Default::default);
    let affinity = spec.affinity.get_or_insert_with(Default::default);
    let na = affinity.node_affinity.get_or_insert_with(Default::default);
    let required = na
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector { node_selector_terms: vec![NodeSelectorTerm::default()] });
    for t in &mut required.node_selector_terms {
        t.match_expressions.get_or_insert_with(Vec::new).push(requirement(HOSTNAME, "In", &[node]));
    }
    p
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

/// What one mix showed.
#[derive(Default)]
struct MixResult {
    /// Scheduling decisions that agree with ours.
    agree: usize,
    /// Pods the scheduler bound.
    bound: usize,
    /// Pods it left Unschedulable.
    refused: usize,
    /// Pinned verdicts (one pod, one node) that agree with ours.
    pinned_agree: usize,
    /// Pinned verdicts compared.
    pinned: usize,
    /// Pinned pods the scheduler bound.
    pinned_bound: usize,
    /// Every disagreement, as a sentence.
    disagree: Vec<String>,
}

/// Creates `pod` and waits until the scheduler binds it or marks it Unschedulable; returns the created
/// object (what the API server stored, defaults included) and the decided one.
async fn decide(client: &Client, pod: &K8sPod) -> (K8sPod, K8sPod) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<K8sPod> = Api::namespaced(client.clone(), &ns);
    let created = api.create(&PostParams::default(), pod).await.unwrap();
    let decided = wait_for(&format!("{ns}/{name} bound or Unschedulable"), Duration::from_secs(60), || {
        let (api, name) = (api.clone(), name.clone());
        async move {
            let pod = api.get(&name).await?;
            Ok(if bound(&pod).is_some() || unschedulable(&pod) { Ok(pod) } else { Err("pending".to_owned()) })
        }
    })
    .await
    .unwrap();
    (created, decided)
}

/// Deletes a pod at once and waits until it is gone, so it cannot change the state under the next check.
async fn remove(client: &Client, pod: &K8sPod) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<K8sPod> = Api::namespaced(client.clone(), &ns);
    api.delete(&name, &DeleteParams::default().grace_period(0)).await.unwrap();
    wait_for(&format!("{ns}/{name} deleted"), Duration::from_secs(60), || {
        let (api, name) = (api.clone(), name.clone());
        async move { Ok(if api.get_opt(&name).await?.is_none() { Ok(()) } else { Err("still there".to_owned()) }) }
    })
    .await
    .unwrap();
}

/// Runs one mix pod by pod: before each pod the cluster state is known exactly (only bound pods remain),
/// the scheduler decides, and the decision is checked against that state. Pods left Unschedulable are
/// deleted once judged, so they cannot bind later and change the state under the next check. Then the
/// first pods of the mix are pinned to each node in turn.
async fn run_mix(client: &Client, m: usize, nodes: &[KwokNode], pods: &[K8sPod]) -> MixResult {
    let namespaces: NamespaceLabels = mix_namespaces(m).into_iter().collect();
    let model_of = |created: &K8sPod| {
        let mut model = convert::pod(created).unwrap();
        model.resolve_namespace_selectors(&namespaces);
        model
    };
    let nodes_api: Api<K8sNode> = Api::all(client.clone());
    let names: Vec<String> = nodes.iter().filter_map(|n| n.to_node().metadata.name).collect();
    let live: Vec<K8sNode> =
        join_all(names.iter().map(|n| nodes_api.get(n))).await.into_iter().map(|r| r.unwrap()).collect();
    let mut state: Vec<autoscaler_decision::Node> =
        live.iter().map(|n| convert::node(n, Vec::new()).unwrap()).collect();
    let mut r = MixResult::default();
    for p in pods {
        let (created, decided) = decide(client, p).await;
        let model = model_of(&created);
        match bound(&decided) {
            Some(node_name) => {
                r.bound += 1;
                let i = state.iter().position(|n| n.name == node_name).unwrap();
                match feasible(&model, &state[i], &state) {
                    Ok(()) => r.agree += 1,
                    Err(why) => r.disagree.push(format!("{} bound to {node_name} but we say: {why}", model.id())),
                }
                state[i].pods.push(model);
            }
            None => {
                r.refused += 1;
                match state.iter().find(|n| feasible(&model, n, &state).is_ok()) {
                    None => r.agree += 1,
                    Some(n) => {
                        r.disagree.push(format!("{} left Unschedulable but we find it fits {}", model.id(), n.name))
                    }
                }
                remove(client, &decided).await;
            }
        }
    }
    for (k, p) in pods.iter().take(PINNED_PER_MIX).enumerate() {
        for node in &names {
            let (created, decided) = decide(client, &pinned(p, format!("pin{k}-{node}"), node)).await;
            let model = model_of(&created);
            let i = state.iter().position(|n| &n.name == node).unwrap();
            let ours = feasible(&model, &state[i], &state);
            let theirs = bound(&decided);
            r.pinned += 1;
            match (theirs, &ours) {
                (Some(on), Ok(())) if on == node => {
                    r.pinned_bound += 1;
                    r.pinned_agree += 1;
                }
                (None, Err(_)) => r.pinned_agree += 1,
                (Some(on), _) => {
                    r.disagree.push(format!("{} pinned to {node} bound to {on}; we say {ours:?}", model.id()))
                }
                (None, Ok(())) => {
                    r.disagree.push(format!("{} pinned to {node} left Unschedulable but we find it fits", model.id()))
                }
            }
            remove(client, &decided).await;
        }
    }
    r
}

#[tokio::test]
async fn predicates_agree_with_kube_scheduler() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    let nodes_api: Api<K8sNode> = Api::all(client.clone());
    let namespaces_api: Api<Namespace> = Api::all(client.clone());
    let started = Instant::now();
    let mut total = MixResult::default();
    let mut decisions = 0usize;
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
            for (name, labels) in mix_namespaces(*m) {
                let ns = Namespace {
                    metadata: ObjectMeta { name: Some(name), labels: Some(labels), ..Default::default() },
                    ..Default::default()
                };
                namespaces_api.create(&PostParams::default(), &ns).await.unwrap();
            }
        }
        let results = join_all(plans.iter().map(|(m, nodes, pods)| run_mix(&client, *m, nodes, pods))).await;
        for ((m, _, pods), r) in plans.iter().zip(results) {
            decisions += pods.len();
            total.agree += r.agree;
            total.bound += r.bound;
            total.refused += r.refused;
            total.pinned += r.pinned;
            total.pinned_agree += r.pinned_agree;
            total.pinned_bound += r.pinned_bound;
            total.disagree.extend(r.disagree.into_iter().map(|d| format!("mix {m}: {d}")));
        }
        for (_, nodes, _) in &plans {
            for n in nodes {
                let _ =
                    nodes_api.delete(&n.to_node().metadata.name.unwrap_or_default(), &DeleteParams::default()).await;
            }
        }
    }
    let rate = |a: usize, n: usize| 100.0 * a as f64 / n.max(1) as f64;
    println!(
        "scheduler agreement: {}/{decisions} scheduling decisions ({:.2}%; {} bound, {} Unschedulable) and {}/{} pinned verdicts ({:.2}%; {} bound) over {MIXES} mixes in {:.0}s",
        total.agree,
        rate(total.agree, decisions),
        total.bound,
        total.refused,
        total.pinned_agree,
        total.pinned,
        rate(total.pinned_agree, total.pinned),
        total.pinned_bound,
        started.elapsed().as_secs_f64()
    );
    assert!(total.bound > 0 && total.refused > 0, "both outcomes must be exercised");
    assert!(total.pinned_bound > 0 && total.pinned_bound < total.pinned, "pinned pods must be both bound and refused");
    assert!(total.disagree.is_empty(), "{} disagreements:\n{}", total.disagree.len(), total.disagree.join("\n"));
}
