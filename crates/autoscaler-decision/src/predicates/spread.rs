//! PodTopologySpread with `whenUnsatisfiable: DoNotSchedule`.

use std::collections::BTreeMap;

use super::Unfit;
use crate::model::{Node, Pod};
use crate::predicates::node::node_affinity;

/// The kube-scheduler PodTopologySpread filter for `pod` on `node`.
///
/// For each constraint: the node must carry the topology label; pods matching the selector in the pod's
/// namespace are counted per domain over the nodes the pod could use by node affinity (taints are ignored,
/// the defaults `nodeAffinityPolicy: Honor`, `nodeTaintsPolicy: Ignore`) that carry every constraint's
/// label; placing the pod must keep `count(domain) + self - min(count) <= maxSkew`, where `self` is 1 when
/// the pod matches its own selector.
pub fn topology_spread(pod: &Pod, node: &Node, nodes: &[Node]) -> Result<(), Unfit> {
    if pod.topology_spread.is_empty() {
        return Ok(());
    }
    for c in &pod.topology_spread {
        if node.domain(c.topology).is_none() {
            return Err(Unfit::MissingTopologyLabel(c.topology));
        }
    }
    let eligible: Vec<&Node> = nodes
        .iter()
        .filter(|n| node_affinity(pod, n).is_ok())
        .filter(|n| pod.topology_spread.iter().all(|c| n.domain(c.topology).is_some()))
        .collect();
    for c in &pod.topology_spread {
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for n in &eligible {
            let Some(domain) = n.domain(c.topology) else { continue };
            let matching =
                n.pods.iter().filter(|p| p.namespace == pod.namespace && c.selector.matches(&p.labels)).count() as i64;
            *counts.entry(domain).or_default() += matching;
        }
        let here = node.domain(c.topology).unwrap_or_default();
        // The candidate node's domain counts even if the node itself is not eligible by affinity.
        let here_count = counts.get(here).copied().unwrap_or(0);
        let min = counts.values().copied().min().unwrap_or(0).min(here_count);
        let self_match = i64::from(c.selector.matches(&pod.labels));
        let skew = here_count + self_match - min;
        if skew > i64::from(c.max_skew) {
            return Err(Unfit::Spread { topology: c.topology, skew, max_skew: c.max_skew });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LABEL_ZONE, TopologyKey, TopologySpread};
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
        p.topology_spread.push(TopologySpread {
            max_skew,
            topology,
            selector: LabelSelector::labels(&[("app", "web")]),
        });
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
}
