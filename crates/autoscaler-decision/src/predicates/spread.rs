//! PodTopologySpread with `whenUnsatisfiable: DoNotSchedule`.

use std::collections::BTreeMap;

use super::Unfit;
use crate::model::{Inclusion, Node, Pod, TopologySpread};
use crate::predicates::node::{node_affinity, untolerated};

/// The kube-scheduler PodTopologySpread filter for `pod` on `node`.
///
/// For each constraint: the node must carry the topology label. Domains are counted over the nodes that
/// carry every constraint's label and pass the constraint's inclusion policies (`nodeAffinityPolicy`:
/// Honor counts only nodes the pod's node selector and required affinity accept; `nodeTaintsPolicy`: Honor
/// counts only nodes whose NoSchedule/NoExecute taints it tolerates); each domain counts the unfinished
/// pods of the pod's namespace its selector matches. Placing the pod must keep
/// `count(domain) + self - min <= maxSkew`, where `self` is 1 when the pod matches its own selector and
/// `min` is the smallest count, or zero while fewer than `minDomains` domains exist.
pub fn topology_spread(pod: &Pod, node: &Node, nodes: &[Node]) -> Result<(), Unfit> {
    if pod.topology_spread.is_empty() {
        return Ok(());
    }
    for c in &pod.topology_spread {
        if node.domain(c.topology).is_none() {
            return Err(Unfit::MissingTopologyLabel(c.topology));
        }
    }
    let labelled: Vec<&Node> =
        nodes.iter().filter(|n| pod.topology_spread.iter().all(|c| n.domain(c.topology).is_some())).collect();
    for c in &pod.topology_spread {
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for n in labelled.iter().filter(|n| included(pod, c, n)) {
            let Some(domain) = n.domain(c.topology) else { continue };
            let matching = n
                .pods
                .iter()
                .filter(|p| !p.finished && p.namespace == pod.namespace && c.selector.matches(&p.labels))
                .count() as i64;
            *counts.entry(domain).or_default() += matching;
        }
        let here = node.domain(c.topology).unwrap_or_default();
        let here_count = counts.get(here).copied().unwrap_or(0);
        let global_min = if counts.len() < usize::try_from(c.min_domains).unwrap_or(0) {
            0
        } else {
            counts.values().copied().min().unwrap_or(0)
        };
        // The candidate's domain takes part in the minimum even when no counted node is in it (kube-scheduler
        // reads the minimum without it). That only happens when the candidate fails node affinity or
        // taints, which `feasible` refuses anyway.
        let min = global_min.min(here_count);
        let self_match = i64::from(c.selector.matches(&pod.labels));
        let skew = here_count + self_match - min;
        if skew > i64::from(c.max_skew) {
            return Err(Unfit::Spread { topology: c.topology, skew, max_skew: c.max_skew });
        }
    }
    Ok(())
}

/// Whether `node` counts for constraint `c` of `pod` by its inclusion policies.
fn included(pod: &Pod, c: &TopologySpread, node: &Node) -> bool {
    (c.node_affinity == Inclusion::Ignore || node_affinity(pod, node).is_ok())
        && (c.node_taints == Inclusion::Ignore || untolerated(pod, &node.taints).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LABEL_ZONE, TopologyKey};
    use crate::selectors::LabelSelector;

    fn zoned(name: &str, zone: &str, pods: usize) -> Node {
        let mut n = Node::new(name, 8000, 16 << 30);
        n.labels.insert(LABEL_ZONE.into(), zone.into());
        for i in 0..pods {
            n.pods.push(web(&format!("{name}-web-{i}")));
        }
        n
    }

    fn web(name: &str) -> Pod {
        let mut p = Pod::new("ns", name, 100, 0);
        p.labels.insert("app".into(), "web".into());
        p
    }

    fn spread(topology: TopologyKey, max_skew: i32) -> Pod {
        let mut p = web("new");
        p.topology_spread.push(TopologySpread::new(max_skew, topology, LabelSelector::labels(&[("app", "web")])));
        p
    }

    #[test]
    fn zone_spread_follows_the_documented_example() {
        // kube docs: zoneA has 2 matching pods, zoneB has 0, maxSkew 1: only zoneB is feasible.
        let nodes =
            vec![zoned("a1", "zoneA", 1), zoned("a2", "zoneA", 1), zoned("b1", "zoneB", 0), zoned("b2", "zoneB", 0)];
        let p = spread(TopologyKey::Zone, 1);
        assert!(matches!(topology_spread(&p, &nodes[0], &nodes), Err(Unfit::Spread { skew: 3, max_skew: 1, .. })));
        assert!(topology_spread(&p, &nodes[2], &nodes).is_ok());
        // maxSkew 3 allows zoneA too.
        assert!(topology_spread(&spread(TopologyKey::Zone, 3), &nodes[0], &nodes).is_ok());
    }

    #[test]
    fn hostname_spread_counts_empty_nodes_as_domains() {
        let nodes = vec![zoned("a", "z", 1), zoned("b", "z", 0)];
        let p = spread(TopologyKey::Hostname, 1);
        assert!(topology_spread(&p, &nodes[0], &nodes).is_err(), "a already has one, b has none");
        assert!(topology_spread(&p, &nodes[1], &nodes).is_ok());
    }

    #[test]
    fn nodes_the_pod_cannot_use_do_not_count_and_missing_labels_refuse() {
        let mut gpu = zoned("g", "zoneB", 0);
        gpu.labels.insert("pool".into(), "gpu".into());
        let mut general = zoned("c", "zoneA", 2);
        general.labels.insert("pool".into(), "general".into());
        let nodes = vec![general.clone(), gpu];
        let mut p = spread(TopologyKey::Zone, 1);
        p.node_selector.insert("pool".into(), "general".into());
        // zoneB is not eligible, so zoneA is the only domain: skew = 2 + 1 - 2 = 1.
        assert!(topology_spread(&p, &general, &nodes).is_ok());
        let mut bare = Node::new("bare", 8000, 16 << 30);
        bare.labels.clear();
        assert_eq!(topology_spread(&p, &bare, &nodes), Err(Unfit::MissingTopologyLabel(TopologyKey::Zone)));
    }

    #[test]
    fn a_pod_not_matching_its_own_selector_adds_nothing() {
        let nodes = vec![zoned("a", "z1", 1), zoned("b", "z2", 0)];
        let mut p = spread(TopologyKey::Zone, 1);
        p.labels.insert("app".into(), "other".into());
        assert!(topology_spread(&p, &nodes[0], &nodes).is_ok(), "skew = 1 + 0 - 0");
    }

    #[test]
    fn min_domains_holds_the_minimum_at_zero_until_enough_domains_exist() {
        // Two zones with one pod each: without minDomains the minimum is 1 and a second pod fits anywhere.
        let nodes = vec![zoned("a", "z1", 1), zoned("b", "z2", 1)];
        let mut p = spread(TopologyKey::Zone, 1);
        assert!(topology_spread(&p, &nodes[0], &nodes).is_ok(), "skew = 1 + 1 - 1");
        // minDomains 3 with two zones: the minimum counts as zero, so no zone may take a second pod.
        p.topology_spread[0].min_domains = 3;
        assert!(matches!(topology_spread(&p, &nodes[0], &nodes), Err(Unfit::Spread { skew: 2, .. })));
        // A third zone (empty) makes three domains; the real minimum (0) refuses z1 all the same.
        let three = vec![zoned("a", "z1", 1), zoned("b", "z2", 1), zoned("c", "z3", 0)];
        assert!(topology_spread(&p, &three[0], &three).is_err());
        assert!(topology_spread(&p, &three[2], &three).is_ok());
    }

    #[test]
    fn inclusion_policies_choose_which_nodes_count() {
        // zoneB's node is tainted and outside the pod's pool; zoneA already has two pods.
        let mut general = zoned("c", "zoneA", 2);
        general.labels.insert("pool".into(), "general".into());
        let mut other = zoned("g", "zoneB", 0);
        other.labels.insert("pool".into(), "gpu".into());
        other.taints.push(crate::selectors::Taint {
            key: "gpu".into(),
            value: String::new(),
            effect: crate::selectors::TaintEffect::NoSchedule,
        });
        let nodes = vec![general.clone(), other];
        let mut p = spread(TopologyKey::Zone, 1);
        p.node_selector.insert("pool".into(), "general".into());
        p.tolerations.push(crate::selectors::Toleration {
            key: "gpu".into(),
            operator: crate::selectors::TolerationOperator::Exists,
            value: String::new(),
            effect: None,
        });
        // Defaults (affinity Honor): zoneB is not the pod's pool, so zoneA is the only domain.
        assert!(topology_spread(&p, &general, &nodes).is_ok());
        // nodeAffinityPolicy Ignore: zoneB (0 pods) counts, skew = 2 + 1 - 0.
        p.topology_spread[0].node_affinity = Inclusion::Ignore;
        assert!(matches!(topology_spread(&p, &general, &nodes), Err(Unfit::Spread { skew: 3, .. })));
        // nodeTaintsPolicy Honor with the taint tolerated: zoneB still counts.
        p.topology_spread[0].node_taints = Inclusion::Honor;
        assert!(topology_spread(&p, &general, &nodes).is_err());
        // ... and without the toleration it does not (the pod cannot use it).
        p.tolerations.clear();
        assert!(topology_spread(&p, &general, &nodes).is_ok());
    }

    #[test]
    fn finished_pods_are_not_counted() {
        let mut a = zoned("a", "z1", 1);
        a.pods[0].finished = true;
        let nodes = vec![a, zoned("b", "z2", 0)];
        let p = spread(TopologyKey::Zone, 1);
        assert!(topology_spread(&p, &nodes[0], &nodes).is_ok(), "z1's only pod finished: 0 + 1 - 0");
    }
}
