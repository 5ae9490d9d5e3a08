//! Scale-up plans on hand-built snapshots.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use autoscaler_decision::groups::{Expander, Limits, NodeGroup, Offering};
use autoscaler_decision::model::{Namespaces, PodAffinityTerm, TopologyKey};
use autoscaler_decision::scale_up::PodOnNode;
use autoscaler_decision::selectors::{LabelSelector, Taint, TaintEffect, Toleration};
use autoscaler_decision::{Node, Pod, ScaleUpInput, plan};

mod common;

use common::{GI, offering};

fn group(name: &str, max: i32, offerings: Vec<Offering>) -> NodeGroup {
    NodeGroup {
        name: name.into(),
        max_nodes: max,
        offerings,
        labels: [("pool".to_owned(), name.to_owned())].into(),
        zone: Some("dc-us-east-1".into()),
        ..NodeGroup::default()
    }
}

fn pods(prefix: &str, n: usize, cpu_milli: i64, mem: i64) -> Vec<Pod> {
    (0..n).map(|i| Pod::new("default", &format!("{prefix}-{i}"), cpu_milli, mem)).collect()
}

fn input<'a>(nodes: &'a [Node], pending: &'a [Pod], groups: &'a [NodeGroup], expander: Expander) -> ScaleUpInput<'a> {
    ScaleUpInput { nodes, pending, groups, expander }
}

/// Replays the plan through the reference predicates (new nodes appear with their first pod).
fn assert_sound(p: &autoscaler_decision::ScaleUpPlan, pending: &[Pod], groups: &[NodeGroup]) {
    assert_eq!(autoscaler_decision::verify::scale_up_plan(p, &[], pending, groups), Ok(()));
}

#[test]
fn pods_that_fit_on_existing_capacity_need_no_new_node() {
    let mut node = Node::new("existing", 8000, 16 * GI);
    node.group = Some("general".into());
    let pending = pods("web", 3, 1000, GI);
    let groups = vec![group("general", 10, vec![offering("sc-4cpu-8gb", 4, 8, 29.0)])];
    let p = plan(input(&[node], &pending, &groups, Expander::LeastWaste));
    assert!(p.new_nodes.is_empty());
    assert_eq!(p.on_existing.len(), 3);
    assert!(p.unplaced.is_empty());
}

#[test]
fn in_flight_capacity_prevents_a_double_scale_up() {
    // A node already being created (not ready) for the same pods absorbs them.
    let groups = vec![group("general", 10, vec![offering("sc-4cpu-8gb", 4, 8, 29.0)])];
    let mut in_flight = groups[0].template(&groups[0].offerings[0], "general-abc");
    in_flight.ready = false;
    let pending = pods("web", 2, 1500, GI);
    let p = plan(input(&[in_flight], &pending, &groups, Expander::LeastWaste));
    assert!(p.new_nodes.is_empty(), "{p:?}");
    assert_eq!(p.on_existing.len(), 2);
}

#[test]
fn one_pass_plans_every_node_needed() {
    // 10 pods of 1.5 CPU on 4-CPU nodes: two per node, five nodes at once (never "+1 and wait").
    let groups = vec![group("general", 10, vec![offering("sc-4cpu-8gb", 4, 8, 29.0)])];
    let pending = pods("batch", 10, 1500, GI);
    let p = plan(input(&[], &pending, &groups, Expander::LeastWaste));
    assert_eq!(p.new_nodes.len(), 5);
    assert!(p.new_nodes.iter().all(|n| n.pods.len() == 2));
    assert!((p.monthly_cost() - 145.0).abs() < 1e-9);
    assert_sound(&p, &pending, &groups);
}

#[test]
fn max_nodes_is_respected_and_explained() {
    let groups = vec![group("general-purpose", 2, vec![offering("sc-4cpu-8gb", 4, 8, 29.0)])];
    let pending = pods("web", 5, 3000, GI);
    let p = plan(input(&[], &pending, &groups, Expander::LeastWaste));
    assert_eq!(p.new_nodes.len(), 2);
    assert_eq!(p.unplaced.len(), 3);
    let u = &p.unplaced[0];
    assert_eq!(u.refusals[0].code, "max_nodes");
    assert!(u.sentence().ends_with("general-purpose is at maxNodes 2"), "{}", u.sentence());
}

#[test]
fn a_pod_larger_than_every_offering_is_explained() {
    let groups = vec![group(
        "general-purpose",
        10,
        vec![offering("sc-2cpu-4gb", 2, 4, 15.0), offering("sc-4cpu-8gb", 4, 8, 29.0)],
    )];
    let pending = vec![Pod::new("default", "huge", 6000, GI)];
    let p = plan(input(&[], &pending, &groups, Expander::LeastWaste));
    assert!(p.new_nodes.is_empty());
    assert_eq!(p.unplaced[0].refusals[0].message, "needs 6 CPU; the largest offering of general-purpose has 4");
}

#[test]
fn untolerated_taints_are_explained_and_tolerating_pods_use_the_group() {
    let mut gpu = group("gpu", 5, vec![offering("co-8cpu-16gb", 8, 16, 90.0)]);
    gpu.taints.push(Taint::new("dedicated", "gpu", TaintEffect::NoSchedule));
    let groups = vec![gpu];
    let plain = vec![Pod::new("default", "plain", 1000, GI)];
    let p = plan(input(&[], &plain, &groups, Expander::LeastWaste));
    assert_eq!(p.unplaced[0].refusals[0].message, "does not tolerate gpu's taint dedicated=gpu:NoSchedule");
    let mut tolerant = plain.clone();
    tolerant[0].tolerations.push(Toleration::equal("dedicated", "gpu", Some(TaintEffect::NoSchedule)));
    let p = plan(input(&[], &tolerant, &groups, Expander::LeastWaste));
    assert_eq!(p.new_nodes.len(), 1);
}

#[test]
fn expanders_choose_differently() {
    // Six pods of 1 CPU / 1 GiB. A 4-CPU node ($30) takes four with no waste ($7.50 a pod); a 16-CPU
    // node ($40) takes all six for $6.67 a pod but leaves most of itself idle.
    let groups =
        vec![group("general", 10, vec![offering("sc-4cpu-4gb", 4, 4, 30.0), offering("sc-16cpu-16gb", 16, 16, 40.0)])];
    let pending = pods("api", 6, 1000, GI);
    let least_waste = plan(input(&[], &pending, &groups, Expander::LeastWaste));
    assert_eq!(least_waste.new_nodes[0].offering, "sc-4cpu-4gb");
    assert!((least_waste.monthly_cost() - 60.0).abs() < 1e-9);
    let cheapest = plan(input(&[], &pending, &groups, Expander::Cheapest));
    assert_eq!(cheapest.new_nodes.len(), 1);
    assert_eq!(cheapest.new_nodes[0].offering, "sc-16cpu-16gb");
    assert!((cheapest.monthly_cost() - 40.0).abs() < 1e-9);
    assert_sound(&least_waste, &pending, &groups);
    assert_sound(&cheapest, &pending, &groups);
    // Priority prefers the higher-priority group even when another wastes less.
    let mut hi = group("reserved", 10, vec![offering("sc-16cpu-16gb", 16, 16, 60.0)]);
    hi.priority = 10;
    let groups = vec![group("general", 10, vec![offering("sc-4cpu-4gb", 4, 4, 30.0)]), hi];
    let prio = plan(input(&[], &pending, &groups, Expander::Priority));
    assert_eq!(prio.new_nodes[0].group, "reserved");
}

#[test]
fn hostname_anti_affinity_puts_one_pod_per_new_node() {
    let groups = vec![group("general", 10, vec![offering("sc-8cpu-16gb", 8, 16, 50.0)])];
    let mut pending = pods("nginx", 4, 100, 100 << 20);
    for p in &mut pending {
        p.labels.insert("app".into(), "nginx".into());
        p.pod_anti_affinity.push(PodAffinityTerm {
            selector: LabelSelector::labels(&[("app", "nginx")]),
            namespaces: Namespaces::Own,
            topology: TopologyKey::Hostname,
        });
    }
    let p = plan(input(&[], &pending, &groups, Expander::LeastWaste));
    assert_eq!(p.new_nodes.len(), 4);
    assert!(p.new_nodes.iter().all(|n| n.pods.len() == 1));
    assert_sound(&p, &pending, &groups);
}

#[test]
fn backoff_and_limits_are_respected() {
    let mut g = group("general", 10, vec![offering("sc-4cpu-8gb", 4, 8, 29.0), offering("sc-8cpu-16gb", 8, 16, 50.0)]);
    g.backoff.insert("sc-4cpu-8gb".into());
    let pending = pods("web", 2, 1000, GI);
    let p = plan(input(&[], &pending, std::slice::from_ref(&g), Expander::LeastWaste));
    assert!(p.new_nodes.iter().all(|n| n.offering == "sc-8cpu-16gb"));

    g.backoff.clear();
    g.limits = Limits { max_monthly_cost: Some(60.0), ..Limits::default() };
    let many = pods("batch", 6, 3000, GI);
    let p = plan(input(&[], &many, std::slice::from_ref(&g), Expander::LeastWaste));
    assert!(p.monthly_cost() <= 60.0 + 1e-9, "{}", p.monthly_cost());
    assert!(!p.unplaced.is_empty());
    assert_eq!(p.unplaced[0].refusals[0].code, "limits");
    assert!(p.unplaced[0].sentence().contains("maxMonthlyCost 60.00"), "{}", p.unplaced[0].sentence());
    assert_sound(&p, &many, std::slice::from_ref(&g));
}

#[test]
fn daemonset_pods_take_their_share_of_new_nodes() {
    let mut g = group("general", 10, vec![offering("sc-4cpu-8gb", 4, 8, 29.0)]);
    g.daemonset_pods.push(Pod::new("kube-system", "agent", 500, GI));
    // 2 pods of 2 CPU fit a bare 4-CPU node, but not next to a 0.5-CPU DaemonSet pod.
    let pending = pods("web", 2, 2000, GI);
    let p = plan(input(&[], &pending, std::slice::from_ref(&g), Expander::LeastWaste));
    assert_eq!(p.new_nodes.len(), 2);
    assert_sound(&p, &pending, std::slice::from_ref(&g));
}

#[test]
fn the_same_input_gives_the_same_plan() {
    let groups =
        vec![group("general", 20, vec![offering("sc-2cpu-4gb", 2, 4, 15.0), offering("sc-4cpu-8gb", 4, 8, 29.0)])];
    let mut pending = pods("a", 7, 700, GI);
    pending.extend(pods("b", 5, 1900, 3 * GI));
    let first = plan(input(&[], &pending, &groups, Expander::LeastWaste));
    let mut reversed = pending.clone();
    reversed.reverse();
    assert_eq!(first, plan(input(&[], &pending, &groups, Expander::LeastWaste)));
    assert_eq!(first, plan(input(&[], &reversed, &groups, Expander::LeastWaste)), "input order does not matter");
    assert!(first.unplaced.is_empty());
}

#[test]
fn a_mixed_plan_is_sound() {
    let groups =
        vec![group("general", 20, vec![offering("sc-2cpu-4gb", 2, 4, 15.0), offering("sc-4cpu-8gb", 4, 8, 29.0)])];
    let mut pending = pods("w", 9, 1300, 2 * GI);
    pending.extend(pods("s", 7, 300, GI / 2));
    for expander in [Expander::LeastWaste, Expander::Cheapest, Expander::Priority] {
        let p = plan(input(&[], &pending, &groups, expander));
        assert!(p.unplaced.is_empty());
        assert_sound(&p, &pending, &groups);
    }
}

#[test]
fn existing_room_is_used_before_a_new_node_is_filled() {
    // The large pod needs a new node; the small one fits the existing node's free CPU and must go there,
    // not onto the new node opened for the large one.
    let mut node = Node::new("existing", 4000, 8 * GI);
    node.group = Some("general".into());
    node.pods.push(Pod::new("shop", "db-0", 2500, 4 * GI));
    let groups = vec![group("general", 10, vec![offering("sc-4cpu-8gb", 4, 8, 29.0)])];
    let pending = vec![Pod::new("default", "big", 3000, 2 * GI), Pod::new("default", "small", 1000, GI)];
    let p = plan(input(&[node], &pending, &groups, Expander::LeastWaste));
    assert_eq!(p.on_existing, vec![PodOnNode::new("default/small", "existing")]);
    assert_eq!(p.new_nodes.len(), 1);
    assert_eq!(p.new_nodes[0].pods, vec!["default/big".to_owned()]);
}

#[test]
fn shape_gives_way_when_no_better_node_may_open() {
    // The CPU-heavy pod would rather have a burst node, but that group may not grow and the memory group is
    // at its maximum: it joins the memory node that has room instead of staying pending.
    let mut burst = group("burst", 0, vec![offering("burst-2c-4g", 2, 4, 10.0)]);
    burst.labels.clear();
    let mut memory = group("memory", 1, vec![offering("memory-2c-16g", 2, 16, 40.0)]);
    memory.labels.clear();
    let groups = vec![burst, memory];
    let pending = vec![Pod::new("default", "cache-0", 1000, 6 * GI), Pod::new("default", "batch-0", 800, 100 << 20)];
    let p = plan(input(&[], &pending, &groups, Expander::Cheapest));
    assert!(p.unplaced.is_empty(), "{:?}", p.unplaced);
    assert_eq!(p.new_nodes.len(), 1);
    assert_eq!(p.new_nodes[0].pods.len(), 2);
    assert_sound(&p, &pending, &groups);
}

#[test]
fn a_zone_affinity_group_starts_in_the_zone_with_room_for_all_of_it() {
    // Pods with required zone affinity to their own kind all follow the first one into its zone. First
    // fit would start them on the small node of zone a, which takes two of them, and open a node for the
    // third; the zone with room for the whole group takes all three.
    let node = |name: &str, zone: &str, cpu: i64| {
        let mut n = Node::new(name, cpu, 16 * GI);
        n.labels.insert(autoscaler_decision::model::LABEL_ZONE.into(), zone.into());
        n
    };
    let nodes = [node("small-a", "zone-a", 2000), node("large-b", "zone-b", 4000)];
    let mut pending = pods("grp", 3, 1000, GI);
    for p in &mut pending {
        p.labels.insert("app".into(), "grp".into());
        p.pod_affinity.push(PodAffinityTerm {
            selector: LabelSelector::labels(&[("app", "grp")]),
            namespaces: Namespaces::Own,
            topology: TopologyKey::Zone,
        });
    }
    let mut groups = Vec::new();
    for zone in ["zone-a", "zone-b"] {
        let mut g = group(&format!("general-{zone}"), 10, vec![offering(&format!("sc-4cpu-{zone}"), 4, 8, 29.0)]);
        g.zone = Some(zone.into());
        groups.push(g);
    }
    let p = plan(input(&nodes, &pending, &groups, Expander::Cheapest));
    assert!(p.new_nodes.is_empty(), "opened {:?}", p.new_nodes);
    assert!(p.unplaced.is_empty());
    assert!(p.on_existing.iter().all(|s| s.node == "large-b"), "{:?}", p.on_existing);
    assert_eq!(autoscaler_decision::verify::scale_up_plan(&p, &nodes, &pending, &groups), Ok(()));
}

#[test]
fn an_affinity_target_lands_where_its_followers_can_go() {
    // Batch pods may only use the tainted batch group of zone b and require a db pod in their zone. The db
    // pod alone would take the cheaper general group of zone a, leaving every batch pod pending; it goes
    // to zone b instead.
    let mut groups = Vec::new();
    for (name, zone, price) in
        [("general-a", "zone-a", 20.0), ("general-b", "zone-b", 29.0), ("batch-b", "zone-b", 29.0)]
    {
        let mut g = group(name, 10, vec![offering(&format!("sc-4cpu-{name}"), 4, 8, price)]);
        g.zone = Some(zone.into());
        groups.push(g);
    }
    groups[2].taints.push(Taint::new("workload", "batch", TaintEffect::NoSchedule));
    let mut db = Pod::new("default", "db-0", 1000, GI);
    db.labels.insert("app".into(), "db".into());
    let mut pending = vec![db];
    for mut p in pods("batch", 3, 1000, GI) {
        p.tolerations.push(Toleration::equal("workload", "batch", Some(TaintEffect::NoSchedule)));
        p.node_selector.insert("pool".into(), "batch-b".into());
        p.pod_affinity.push(PodAffinityTerm {
            selector: LabelSelector::labels(&[("app", "db")]),
            namespaces: Namespaces::Own,
            topology: TopologyKey::Zone,
        });
        pending.push(p);
    }
    let p = plan(input(&[], &pending, &groups, Expander::Cheapest));
    assert!(p.unplaced.is_empty(), "{:?}", p.unplaced.iter().map(|u| u.sentence()).collect::<Vec<_>>());
    let db_node = p.new_nodes.iter().find(|n| n.pods.contains(&"default/db-0".to_owned())).unwrap();
    assert_eq!(db_node.group, "general-b");
    assert_sound(&p, &pending, &groups);
}

#[test]
fn finished_pods_leave_their_node_free_for_pending_ones() {
    // A node whose only pod finished: kube-scheduler places the pending pod there, so no node is needed.
    let mut node = Node::new("existing", 4000, 8 * GI);
    node.group = Some("general".into());
    let mut done = Pod::new("default", "job-1", 4000, 8 * GI);
    done.finished = true;
    node.pods.push(done);
    let pending = pods("web", 1, 2000, 2 * GI);
    let groups = vec![group("general", 10, vec![offering("sc-4cpu-8gb", 4, 8, 29.0)])];
    let p = plan(input(std::slice::from_ref(&node), &pending, &groups, Expander::LeastWaste));
    assert!(p.new_nodes.is_empty(), "{:?}", p.new_nodes);
    assert_eq!(p.on_existing.len(), 1);
}

#[test]
fn min_domains_spreads_new_pods_over_that_many_zones() {
    use autoscaler_decision::model::TopologySpread;
    // Three zonal groups; three pods with zone spread maxSkew 1. Without minDomains the first zone's node
    // may take all three (one domain, skew 0 each time); with minDomains 3 each zone gets one.
    let zonal = |zone: &str| NodeGroup {
        zone: Some(zone.into()),
        ..group(&format!("g-{zone}"), 5, vec![offering(&format!("o-{zone}"), 8, 16, 50.0)])
    };
    let groups = vec![zonal("z1"), zonal("z2"), zonal("z3")];
    let spread_pods = |min_domains: i32| -> Vec<Pod> {
        (0..3)
            .map(|i| {
                let mut p = Pod::new("default", &format!("web-{i}"), 500, GI);
                p.labels.insert("app".into(), "web".into());
                let mut s = TopologySpread::new(1, TopologyKey::Zone, LabelSelector::labels(&[("app", "web")]));
                s.min_domains = min_domains;
                p.topology_spread.push(s);
                p
            })
            .collect()
    };
    let without = spread_pods(1);
    let p = plan(input(&[], &without, &groups, Expander::LeastWaste));
    assert_sound(&p, &without, &groups);
    assert_eq!(p.new_nodes.len(), 1, "one domain is enough without minDomains: {:?}", p.new_nodes);
    let with = spread_pods(3);
    let p = plan(input(&[], &with, &groups, Expander::LeastWaste));
    assert_sound(&p, &with, &groups);
    assert!(p.unplaced.is_empty(), "{:?}", p.unplaced);
    let zones: std::collections::BTreeSet<&str> = p.new_nodes.iter().map(|n| n.group.as_str()).collect();
    assert_eq!(zones.len(), 3, "one node per zone: {:?}", p.new_nodes);
}

#[test]
fn a_pod_with_an_unmodelled_constraint_is_explained_not_placed() {
    let groups = vec![group("general", 10, vec![offering("sc-4cpu-8gb", 4, 8, 29.0)])];
    let mut pending = pods("web", 2, 500, GI);
    pending[1].unmodelled.push("pod anti-affinity on topology key \"rack\"".into());
    let p = plan(input(&[], &pending, &groups, Expander::LeastWaste));
    assert_sound(&p, &pending, &groups);
    assert_eq!(p.new_nodes.iter().map(|n| n.pods.len()).sum::<usize>(), 1, "only the modelled pod: {p:?}");
    assert_eq!(p.unplaced.len(), 1);
    assert_eq!(p.unplaced[0].refusals[0].code, "unmodelled_constraint");
    assert_eq!(
        p.unplaced[0].sentence(),
        "default/web-1 stays pending: its pod anti-affinity on topology key \"rack\" cannot be checked by the autoscaler"
    );
}

#[test]
fn two_nodes_with_one_hostname_label_are_one_hostname_domain() {
    // kube-scheduler's domains are label values: a web pod on node a keeps a second one (hostname
    // anti-affinity) off node b too when both carry hostname "shared". Before, the simulation counted
    // domains by node and placed it on b, which the scheduler refuses.
    let selector = LabelSelector::labels(&[("app", "web")]);
    let web = |name: &str| {
        let mut p = Pod::new("default", name, 100, GI);
        p.labels.insert("app".into(), "web".into());
        p.pod_anti_affinity.push(PodAffinityTerm {
            selector: selector.clone(),
            namespaces: Namespaces::Own,
            topology: TopologyKey::Hostname,
        });
        p
    };
    let shared = |name: &str| {
        let mut n = Node::new(name, 4000, 8 * GI);
        n.labels.insert(autoscaler_decision::model::LABEL_HOSTNAME.into(), "shared".into());
        n
    };
    let mut a = shared("a");
    a.pods.push(web("web-0"));
    let nodes = vec![a, shared("b")];
    let groups = vec![group("general", 10, vec![offering("sc-4cpu-8gb", 4, 8, 29.0)])];
    let pending = vec![web("web-1")];
    let p = plan(input(&nodes, &pending, &groups, Expander::LeastWaste));
    assert!(p.on_existing.is_empty(), "{:?}", p.on_existing);
    assert_eq!(p.new_nodes.len(), 1);
    assert_eq!(autoscaler_decision::verify::scale_up_plan(&p, &nodes, &pending, &groups), Ok(()));
}
