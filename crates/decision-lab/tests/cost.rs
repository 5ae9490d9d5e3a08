//! The lower bound on hand-built snapshots whose optimum is known, and how close plans come to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use autoscaler_decision::groups::{Expander, NodeGroup, Offering};
use autoscaler_decision::model::{Namespaces, PodAffinityTerm, TopologyKey};
use autoscaler_decision::selectors::{LabelSelector, Taint, TaintEffect, Toleration};
use autoscaler_decision::{Pod, ScaleUpInput, plan, verify};
use decision_lab::lower_bound;
use decision_lab::workloads::karpenter_diverse;

mod common;

use common::{GI, offering};

fn group(name: &str, offerings: Vec<Offering>) -> NodeGroup {
    NodeGroup { name: name.into(), max_nodes: 100, offerings, ..NodeGroup::default() }
}

/// An offering of `cpu` CPUs, `mem_gi` GiB and `gpus` GPUs.
fn gpu_offering(id: &str, cpu: i64, mem_gi: i64, gpus: i64, price: f64) -> Offering {
    let mut o = offering(id, cpu, mem_gi, price);
    o.allocatable.extended.insert("nvidia.com/gpu".into(), gpus);
    o
}

/// `n` inference pods of `cpu_milli`, `mem` and one GPU each.
fn gpu_pods(n: usize, cpu_milli: i64, mem: i64) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            let mut p = Pod::new("default", &format!("infer-{i}"), cpu_milli, mem);
            p.requests.extended.insert("nvidia.com/gpu".into(), 1);
            p
        })
        .collect()
}

fn cost_of(pending: &[Pod], groups: &[NodeGroup]) -> f64 {
    let p = plan(ScaleUpInput { nodes: &[], pending, groups, expander: Expander::Cheapest });
    assert!(p.unplaced.is_empty());
    assert_eq!(verify::scale_up_plan(&p, &[], pending, groups), Ok(()));
    p.monthly_cost()
}

#[test]
fn every_one_per_node_pod_is_charged_a_node() {
    // Ten tiny pods, one per node: the optimum is ten of the cheapest node, though their CPU would fit one.
    let groups = vec![group("general", vec![offering("small", 2, 4, 10.0), offering("large", 16, 32, 70.0)])];
    let pending: Vec<Pod> = (0..10)
        .map(|i| {
            let mut p = Pod::new("default", &format!("nginx-{i}"), 100, 100 << 20);
            p.labels.insert("app".into(), "nginx".into());
            p.pod_anti_affinity.push(PodAffinityTerm {
                selector: LabelSelector::labels(&[("app", "nginx")]),
                namespaces: Namespaces::Own,
                topology: TopologyKey::Hostname,
            });
            p
        })
        .collect();
    let lb = lower_bound(&pending, &groups);
    assert!((lb - 100.0).abs() < 1e-6, "bound {lb}, optimum 100");
    assert!((cost_of(&pending, &groups) - 100.0).abs() < 1e-6);
}

#[test]
fn gpus_are_a_dimension_of_the_bound() {
    // Three pods of one GPU each on machines with one GPU: three machines, whatever their CPU says.
    let mut gpu = group("gpu", vec![gpu_offering("gpu-8c", 8, 32, 1, 300.0)]);
    gpu.taints.push(Taint::new("dedicated", "gpu", TaintEffect::NoSchedule));
    let groups = vec![group("general", vec![offering("small", 2, 4, 10.0)]), gpu];
    let mut pending = gpu_pods(3, 500, GI);
    for p in &mut pending {
        p.tolerations.push(Toleration::equal("dedicated", "gpu", Some(TaintEffect::NoSchedule)));
    }
    let lb = lower_bound(&pending, &groups);
    assert!((lb - 900.0).abs() < 1e-6, "bound {lb}, optimum 900");
    assert!((cost_of(&pending, &groups) - 900.0).abs() < 1e-6);
}

#[test]
fn karpenters_diverse_pods_land_within_ten_percent_of_the_bound_on_one_node_per_anti_affinity_pod() {
    let w = karpenter_diverse(2_000, 7);
    let p = plan(ScaleUpInput { nodes: &[], pending: &w.pods, groups: &w.groups, expander: Expander::Cheapest });
    assert!(p.unplaced.is_empty());
    let lb = lower_bound(&w.pods, &w.groups);
    let gap = p.monthly_cost() / lb - 1.0;
    println!(
        "W1 2,000 pods: {} nodes, cost {:.2}, bound {lb:.2}, {:+.2}%",
        p.new_nodes.len(),
        p.monthly_cost(),
        gap * 100.0
    );
    // 400 anti-affinity pods need 400 nodes; the others fill them rather than nodes of their own (Karpenter
    // publishes 400 nodes for this workload too).
    assert_eq!(p.new_nodes.len(), 2_000 / 5);
    assert!((0.0..0.10).contains(&gap), "gap {gap}");
}

#[test]
fn a_pod_shape_no_family_matches_pays_for_what_it_strands() {
    // 1 CPU / 3 GiB pods. A burst node (4 CPU, 8 GiB, $10) holds 8/3 of them by memory: $3.75 a pod; a
    // memory node (4 CPU, 32 GiB, $24) holds 4 by CPU: $6 a pod. The fractional optimum is $3.75 x 12 = 45;
    // one weighting for both families could only prove 40.5.
    let groups = vec![
        group("burst", vec![offering("burst-4c", 4, 8, 10.0)]),
        group("memory", vec![offering("memory-4c", 4, 32, 24.0)]),
    ];
    let pending: Vec<Pod> = (0..12).map(|i| Pod::new("default", &format!("jvm-{i}"), 1000, 3 * GI)).collect();
    let lb = lower_bound(&pending, &groups);
    assert!((lb - 45.0).abs() < 1e-6, "bound {lb}, fractional optimum 45");
    // Whole pods: two per burst node, six nodes.
    assert!((cost_of(&pending, &groups) - 60.0).abs() < 1e-6);
}

#[test]
fn complementary_shapes_share_nodes() {
    // Caches (0.5 CPU, 4 GiB) would each rather have a memory node, CPU-heavy pods (1 CPU, 0.5 GiB) a burst
    // node. Together they match the burst shape: 24 caches and 48 CPU-heavy pods need 60 CPU and 120 GiB,
    // and 4 burst nodes carrying 6 caches and 12 CPU-heavy pods each are the optimum (520). Sending the
    // caches to a memory node and the rest to burst nodes costs 670.
    let groups = vec![
        group("burst", vec![offering("burst-16c", 16, 32, 130.0)]),
        group("memory", vec![offering("memory-16c", 16, 128, 280.0)]),
    ];
    let mut pending: Vec<Pod> = (0..24).map(|i| Pod::new("default", &format!("cache-{i}"), 500, 4 * GI)).collect();
    pending.extend((0..48).map(|i| Pod::new("default", &format!("cpu-{i}"), 1000, GI / 2)));
    let cost = cost_of(&pending, &groups);
    let lb = lower_bound(&pending, &groups);
    println!("complementary shapes: cost {cost}, bound {lb:.2}");
    assert!((cost - 520.0).abs() < 1e-6, "cost {cost}, optimum 520");
    assert!((lb - 487.5).abs() < 1e-6, "bound {lb}, fractional optimum 487.5");
}

#[test]
fn gpu_nodes_are_sized_by_their_gpus() {
    // Eight pods of 5 CPU and one GPU. A 40-CPU machine has 4 GPUs for 1,400; an 8-CPU one has 1 for 300:
    // eight small machines (2,400) beat two large ones (2,800), though one large machine has the CPU of five
    // small ones.
    let offerings = vec![gpu_offering("gpu-8c", 8, 32, 1, 300.0), gpu_offering("gpu-40c", 40, 160, 4, 1400.0)];
    let groups = vec![group("gpu", offerings)];
    let pending = gpu_pods(8, 5000, 8 * GI);
    assert!((lower_bound(&pending, &groups) - 2400.0).abs() < 1e-6);
    let cost = cost_of(&pending, &groups);
    assert!((cost - 2400.0).abs() < 1e-6, "cost {cost}, optimum 2400");
}
