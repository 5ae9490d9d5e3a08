//! Scale-down and consolidation decisions with their explanations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use autoscaler_decision::groups::{NodeGroup, Offering};
use autoscaler_decision::scale_up::PodOnNode;
use autoscaler_decision::selectors::LabelSelector;
use autoscaler_decision::{
    ConsolidationInput, Node, Pdb, Pod, Resources, ScaleDownInput, consolidate, plan_scale_down, verify,
};

const GI: i64 = 1 << 30;

fn offering(id: &str, cpu: i64, price: f64) -> Offering {
    let mut allocatable = Resources::cpu_mem(cpu * 1000, cpu * 2 * GI);
    allocatable.pods = 110;
    Offering { id: id.into(), allocatable, monthly_price: price }
}

fn group() -> NodeGroup {
    NodeGroup {
        name: "general".into(),
        max_nodes: 10,
        offerings: vec![offering("small", 2, 10.0), offering("large", 8, 40.0)],
        ..NodeGroup::default()
    }
}

fn node(g: &NodeGroup, name: &str, offering: usize, pods: &[(&str, i64)]) -> Node {
    let mut n = g.template(&g.offerings[offering], name);
    n.ready = true;
    for (p, cpu) in pods {
        let mut pod = Pod::new("shop", p, *cpu, GI / 4);
        pod.labels.insert("app".into(), p.split('-').next().unwrap().into());
        n.pods.push(pod);
    }
    n
}

fn pdb(app: &str, allowed: i32) -> Pdb {
    Pdb {
        name: format!("{app}-pdb"),
        namespace: "shop".into(),
        selector: LabelSelector::labels(&[("app", app)]),
        disruptions_allowed: allowed,
    }
}

#[test]
fn an_underused_node_goes_when_its_pods_fit_elsewhere() {
    let g = group();
    let nodes = vec![node(&g, "busy", 1, &[("api-0", 5000)]), node(&g, "idle", 1, &[("web-0", 500)])];
    let groups = [g];
    let input = ScaleDownInput { nodes: &nodes, groups: &groups, pdbs: &[] };
    let p = plan_scale_down(input);
    assert_eq!(p.remove.len(), 1, "{p:?}");
    assert_eq!(p.remove[0].node, "idle");
    assert_eq!(p.remove[0].moves, vec![PodOnNode::new("shop/web-0", "busy")]);
    assert!((p.remove[0].monthly_saving - 40.0).abs() < 1e-9);
    assert_eq!(p.kept[0].code, "above_threshold");
    assert!(p.kept[0].message.starts_with("requests use 62% CPU"), "{}", p.kept[0].message);
    verify::scale_down_plan(&p, input).unwrap();
}

#[test]
fn several_nodes_go_in_one_decision_within_the_budget_and_minimum() {
    let mut g = group();
    g.scale_down.max_disruptions = 2;
    g.min_nodes = 1;
    let nodes: Vec<Node> = (0..4).map(|i| node(&g, &format!("n{i}"), 1, &[(&format!("web-{i}"), 500)])).collect();
    let groups = [g];
    let input = ScaleDownInput { nodes: &nodes, groups: &groups, pdbs: &[] };
    let p = plan_scale_down(input);
    assert_eq!(p.remove.len(), 2);
    assert!(p.kept.iter().any(|k| k.code == "disruption_budget"), "{p:?}");
    verify::scale_down_plan(&p, input).unwrap();
    let mut groups = groups;
    groups[0].scale_down.max_disruptions = 10;
    groups[0].min_nodes = 3;
    let p = plan_scale_down(ScaleDownInput { nodes: &nodes, groups: &groups, pdbs: &[] });
    assert_eq!(p.remove.len(), 1);
    assert!(p.kept.iter().any(|k| k.message == "general is at minNodes 3"), "{p:?}");
}

#[test]
fn pdbs_annotations_and_ownerless_pods_block_with_reasons() {
    let g = group();
    let busy = node(&g, "busy", 1, &[("api-0", 5000)]);
    let groups = [g.clone()];
    let check = |victim: Node, pdbs: &[Pdb], code: &str, message: &str| {
        let nodes = vec![busy.clone(), victim];
        let p = plan_scale_down(ScaleDownInput { nodes: &nodes, groups: &groups, pdbs });
        assert!(p.remove.is_empty(), "{p:?}");
        let k = p.kept.iter().find(|k| k.node == "victim").unwrap();
        assert_eq!((k.code.as_str(), k.message.as_str()), (code, message));
    };
    let victim = node(&g, "victim", 1, &[("web-0", 500)]);
    check(
        victim.clone(),
        &[pdb("web", 0)],
        "pdb",
        "blocked by PDB web-pdb (0 disruptions allowed, 1 of its pods run here)",
    );
    let mut v = victim.clone();
    v.pods[0].do_not_disrupt = true;
    check(v, &[], "do_not_disrupt", "pod shop/web-0 has the do-not-disrupt annotation");
    let mut v = victim.clone();
    v.pods[0].safe_to_evict = Some(false);
    check(v, &[], "not_safe_to_evict", "pod shop/web-0 is annotated safe-to-evict=false");
    let mut v = victim.clone();
    v.pods[0].owner_kind = None;
    check(v, &[], "no_controller", "pod shop/web-0 has no controller, so nothing would recreate it");
    let mut v = victim.clone();
    v.pods[0].local_storage = true;
    check(v, &[], "local_storage", "pod shop/web-0 uses local storage (emptyDir or hostPath)");
    let mut v = victim.clone();
    v.pods[0].namespace = "kube-system".into();
    check(v, &[], "kube_system_without_pdb", "kube-system pod kube-system/web-0 has no PodDisruptionBudget");
    // A PDB that allows the disruption lets the node go.
    let nodes = vec![busy.clone(), victim];
    let pdbs = [pdb("web", 1)];
    let p = plan_scale_down(ScaleDownInput { nodes: &nodes, groups: &groups, pdbs: &pdbs });
    assert_eq!(p.remove.len(), 1);
}

#[test]
fn a_node_whose_pods_fit_nowhere_stays_and_says_why() {
    let g = group();
    let nodes = vec![node(&g, "full", 0, &[("api-0", 1900)]), node(&g, "victim", 1, &[("web-0", 3000)])];
    let groups = [g];
    let p = plan_scale_down(ScaleDownInput { nodes: &nodes, groups: &groups, pdbs: &[] });
    assert!(p.remove.is_empty());
    let k = p.kept.iter().find(|k| k.node == "victim").unwrap();
    assert_eq!(k.code, "no_room");
    assert!(k.message.starts_with("pod shop/web-0 fits on no other node (on full"), "{}", k.message);
    assert!(k.message.contains("needs 3 cpu"), "{}", k.message);
}

#[test]
fn consolidation_replaces_two_large_nodes_with_one_cheaper_node() {
    let mut g = group();
    g.scale_down.max_disruptions = 2;
    g.offerings.insert(1, offering("medium", 4, 18.0));
    let nodes = vec![
        node(&g, "a", 2, &[("web-0", 1500)]),
        node(&g, "b", 2, &[("api-0", 1500)]),
        node(&g, "small", 0, &[("db-0", 1800)]),
    ];
    let groups = [g];
    let input = |min| ConsolidationInput {
        nodes: &nodes,
        groups: &groups,
        pdbs: &[],
        min_monthly_savings: min,
        only_empty: false,
    };
    let c = consolidate(input(10.0));
    let plan = c.plan.expect("a consolidation");
    assert_eq!(plan.remove, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(plan.replacement.as_ref().map(|r| r.offering.as_str()), Some("medium"));
    assert!((plan.monthly_saving - 62.0).abs() < 1e-9, "{}", plan.monthly_saving);
    assert_eq!(c.summary, "remove 2 node(s) and add one medium to save $62.00/month");
    let c = consolidate(input(100.0));
    assert!(c.plan.is_none());
    assert_eq!(c.summary, "the best consolidation saves $62.00/month, under minMonthlySavings $100.00");
    let c = consolidate(ConsolidationInput { only_empty: true, ..input(0.0) });
    assert!(c.plan.is_none());
    assert!(c.kept.iter().all(|k| k.code == "not_empty"), "{:?}", c.kept);
}

#[test]
fn a_pod_with_an_unmodelled_constraint_keeps_its_node() {
    // As the idle-node case above, but the idle node's pod has a constraint on a topology key the core
    // does not model: whether it fits elsewhere cannot be known, so its node stays.
    let g = group();
    let mut idle = node(&g, "idle", 1, &[("web-0", 500)]);
    idle.pods[0].unmodelled.push("pod anti-affinity on topology key \"rack\"".into());
    let nodes = vec![node(&g, "busy", 1, &[("api-0", 5000)]), idle];
    let groups = [g];
    let p = plan_scale_down(ScaleDownInput { nodes: &nodes, groups: &groups, pdbs: &[] });
    assert!(p.remove.is_empty(), "{p:?}");
    let kept = p.kept.iter().find(|k| k.node == "idle").unwrap();
    assert_eq!(kept.code, "unmodelled_constraint");
    assert!(kept.message.contains("rack"), "{}", kept.message);
}

#[test]
fn verify_refuses_a_plan_that_removes_a_node_the_eviction_rules_keep() {
    // A sound plan, then the same plan against nodes whose moved pod is annotated: verify must refuse it.
    let g = group();
    let nodes = vec![node(&g, "busy", 1, &[("api-0", 5000)]), node(&g, "idle", 1, &[("web-0", 500)])];
    let groups = [g];
    let input = ScaleDownInput { nodes: &nodes, groups: &groups, pdbs: &[] };
    let p = plan_scale_down(input);
    assert_eq!(p.remove.len(), 1);
    verify::scale_down_plan(&p, input).unwrap();
    for annotate in [|p: &mut Pod| p.do_not_disrupt = true, |p: &mut Pod| p.safe_to_evict = Some(false)] {
        let mut blocked = nodes.clone();
        annotate(&mut blocked[1].pods[0]);
        let err = verify::scale_down_plan(&p, ScaleDownInput { nodes: &blocked, ..input }).unwrap_err();
        assert!(err.starts_with("idle is removed but pod shop/web-0"), "{err}");
    }
}
