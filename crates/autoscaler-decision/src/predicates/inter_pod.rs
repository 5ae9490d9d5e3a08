//! InterPodAffinity: required pod affinity and anti-affinity, in both directions.

use super::Unfit;
use crate::model::{Node, Pod, PodAffinityTerm, TermKind};

/// Whether `a` and `b` are in the same domain of `term`'s key (both must have the label).
fn same_domain(a: &Node, b: &Node, term: &PodAffinityTerm) -> bool {
    match (a.domain(term.topology), b.domain(term.topology)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The pods of `node` kube-scheduler sees (not finished ones).
fn live(node: &Node) -> impl Iterator<Item = &Pod> {
    node.pods.iter().filter(|p| !p.finished)
}

/// The kube-scheduler InterPodAffinity filter for `pod` on `node`, given every node and its pods.
///
/// 1. No pod already in the node's domain has a required anti-affinity term selecting `pod`.
/// 2. No pod in the node's domain is selected by `pod`'s anti-affinity terms (a node without the
///    term's label has no domain, so nothing conflicts there).
/// 3. Every affinity term of `pod` is satisfied by a pod in the node's domain; the node must have the
///    label. Exception, as in kube-scheduler: when no pod in the cluster matches all of `pod`'s affinity
///    terms and `pod` matches them itself, it may go anywhere (the first pod of a group).
///
/// Finished pods are not seen, as kube-scheduler does not see them.
pub fn inter_pod_affinity(pod: &Pod, node: &Node, nodes: &[Node]) -> Result<(), Unfit> {
    use TermKind::{Affinity, AntiAffinity};
    for other in nodes {
        for existing in live(other) {
            for term in &existing.pod_anti_affinity {
                if pod.selected_by(term, &existing.namespace, AntiAffinity) && same_domain(node, other, term) {
                    return Err(Unfit::ExistingAntiAffinity { topology: term.topology, existing: existing.id() });
                }
            }
        }
    }
    for term in &pod.pod_anti_affinity {
        for other in nodes.iter().filter(|o| same_domain(node, o, term)) {
            if let Some(existing) = live(other).find(|e| e.selected_by(term, &pod.namespace, AntiAffinity)) {
                return Err(Unfit::AntiAffinity { topology: term.topology, existing: existing.id() });
            }
        }
    }
    if pod.pod_affinity.is_empty() {
        return Ok(());
    }
    let any_match_anywhere = nodes
        .iter()
        .flat_map(live)
        .any(|e| pod.pod_affinity.iter().all(|term| e.selected_by(term, &pod.namespace, Affinity)));
    let self_match = pod.pod_affinity.iter().all(|term| pod.selected_by(term, &pod.namespace, Affinity));
    for term in &pod.pod_affinity {
        if node.domain(term.topology).is_none() {
            return Err(Unfit::MissingTopologyLabel(term.topology));
        }
        let satisfied = nodes
            .iter()
            .filter(|o| same_domain(node, o, term))
            .any(|o| live(o).any(|e| e.selected_by(term, &pod.namespace, Affinity)));
        if !satisfied && (any_match_anywhere || !self_match) {
            return Err(Unfit::Affinity { topology: term.topology });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LABEL_ZONE, Namespaces, TopologyKey};
    use crate::selectors::LabelSelector;

    fn zoned(name: &str, zone: &str) -> Node {
        let mut n = Node::new(name, 8000, 16 << 30);
        n.labels.insert(LABEL_ZONE.into(), zone.into());
        n
    }

    fn app(name: &str, app: &str) -> Pod {
        let mut p = Pod::new("ns", name, 100, 0);
        p.labels.insert("app".into(), app.into());
        p
    }

    fn term(app: &str, topology: TopologyKey) -> PodAffinityTerm {
        PodAffinityTerm { selector: LabelSelector::labels(&[("app", app)]), namespaces: Namespaces::Own, topology }
    }

    #[test]
    fn anti_affinity_on_hostname_allows_one_per_node() {
        let mut a = zoned("a", "z1");
        let b = zoned("b", "z1");
        let mut web1 = app("web-1", "web");
        web1.pod_anti_affinity.push(term("web", TopologyKey::Hostname));
        a.pods.push(web1.clone());
        let nodes = vec![a.clone(), b.clone()];
        let mut web2 = app("web-2", "web");
        web2.pod_anti_affinity.push(term("web", TopologyKey::Hostname));
        assert!(matches!(inter_pod_affinity(&web2, &a, &nodes), Err(Unfit::ExistingAntiAffinity { .. })));
        assert!(inter_pod_affinity(&web2, &b, &nodes).is_ok());
        // Symmetry: a pod without its own term is still refused by the existing pod's term.
        assert!(matches!(
            inter_pod_affinity(&app("web-3", "web"), &a, &nodes),
            Err(Unfit::ExistingAntiAffinity { .. })
        ));
        // A pod of another app is not affected.
        assert!(inter_pod_affinity(&app("db", "db"), &a, &nodes).is_ok());
    }

    #[test]
    fn anti_affinity_on_zone_covers_every_node_of_the_zone() {
        let mut a = zoned("a", "z1");
        let b = zoned("b", "z1");
        let c = zoned("c", "z2");
        a.pods.push(app("cache-1", "cache"));
        let nodes = vec![a, b.clone(), c.clone()];
        let mut p = app("cache-2", "other");
        p.pod_anti_affinity.push(term("cache", TopologyKey::Zone));
        assert!(matches!(
            inter_pod_affinity(&p, &b, &nodes),
            Err(Unfit::AntiAffinity { topology: TopologyKey::Zone, .. })
        ));
        assert!(inter_pod_affinity(&p, &c, &nodes).is_ok());
        // Other namespaces are not selected unless listed.
        let mut other_ns = p.clone();
        other_ns.namespace = "elsewhere".into();
        assert!(inter_pod_affinity(&other_ns, &b, &nodes).is_ok());
    }

    #[test]
    fn affinity_needs_a_match_in_the_domain_except_for_the_first_pod() {
        let mut a = zoned("a", "z1");
        let b = zoned("b", "z2");
        let mut first = app("db-1", "db");
        first.pod_affinity.push(term("db", TopologyKey::Zone));
        let empty = vec![a.clone(), b.clone()];
        assert!(inter_pod_affinity(&first, &b, &empty).is_ok(), "the first pod of a self-affine group goes anywhere");
        let mut follower = app("api", "api");
        follower.pod_affinity.push(term("db", TopologyKey::Zone));
        assert!(
            matches!(inter_pod_affinity(&follower, &b, &empty), Err(Unfit::Affinity { .. })),
            "no db anywhere and not self-matching"
        );
        a.pods.push(app("db-1", "db"));
        let nodes = vec![a.clone(), b.clone()];
        assert!(inter_pod_affinity(&follower, &a, &nodes).is_ok());
        assert!(matches!(
            inter_pod_affinity(&follower, &b, &nodes),
            Err(Unfit::Affinity { topology: TopologyKey::Zone })
        ));
        let mut unlabeled = Node::new("u", 8000, 16 << 30);
        unlabeled.labels.clear();
        assert_eq!(
            inter_pod_affinity(&follower, &unlabeled, &nodes),
            Err(Unfit::MissingTopologyLabel(TopologyKey::Zone))
        );
    }

    #[test]
    fn a_namespace_selector_reads_namespace_labels_and_is_safe_until_resolved() {
        use crate::model::NamespaceLabels;
        // A cache pod in namespace "team-b" (labelled team=b) on node a.
        let mut a = zoned("a", "z1");
        let mut cache = app("cache-1", "cache");
        cache.namespace = "team-b".into();
        a.pods.push(cache);
        let b = zoned("b", "z1");
        let nodes = vec![a.clone(), b];
        let labels: NamespaceLabels = [
            ("team-b".to_owned(), [("team".to_owned(), "b".to_owned())].into()),
            ("ns".to_owned(), [("team".to_owned(), "a".to_owned())].into()),
        ]
        .into();
        let by_team = |team: &str| {
            let mut t = term("cache", TopologyKey::Hostname);
            t.namespaces = Namespaces::Selector { listed: vec![], selector: LabelSelector::labels(&[("team", team)]) };
            t
        };
        // Anti-affinity against team=b's caches: unresolved it already refuses (the safe side) ...
        let mut lonely = app("web", "web");
        lonely.pod_anti_affinity.push(by_team("b"));
        assert!(matches!(inter_pod_affinity(&lonely, &a, &nodes), Err(Unfit::AntiAffinity { .. })));
        // ... resolved, it refuses for team=b and not for team=a.
        let mut resolved = lonely.clone();
        assert!(resolved.resolve_namespace_selectors(&labels));
        assert!(matches!(inter_pod_affinity(&resolved, &a, &nodes), Err(Unfit::AntiAffinity { .. })));
        let mut other_team = app("web", "web");
        other_team.pod_anti_affinity.push(by_team("a"));
        other_team.resolve_namespace_selectors(&labels);
        assert!(inter_pod_affinity(&other_team, &a, &nodes).is_ok());
        // Affinity to team=b's caches: unresolved it finds nothing (the safe side), resolved it follows them.
        let mut follower = app("api", "api");
        follower.pod_affinity.push(by_team("b"));
        assert!(matches!(inter_pod_affinity(&follower, &a, &nodes), Err(Unfit::Affinity { .. })));
        follower.resolve_namespace_selectors(&labels);
        assert!(inter_pod_affinity(&follower, &a, &nodes).is_ok());
        // An empty selector: every namespace.
        let mut everywhere = app("web", "web");
        let mut t = term("cache", TopologyKey::Hostname);
        t.namespaces = Namespaces::All;
        everywhere.pod_anti_affinity.push(t);
        assert!(inter_pod_affinity(&everywhere, &a, &nodes).is_err());
    }

    #[test]
    fn finished_pods_hold_no_anti_affinity_and_satisfy_no_affinity() {
        let mut a = zoned("a", "z1");
        let mut done = app("job-1", "job");
        done.finished = true;
        done.pod_anti_affinity.push(term("web", TopologyKey::Zone));
        a.pods.push(done);
        let nodes = vec![a.clone()];
        assert!(inter_pod_affinity(&app("web", "web"), &a, &nodes).is_ok());
        let mut follower = app("api", "api");
        follower.pod_affinity.push(term("job", TopologyKey::Zone));
        assert!(inter_pod_affinity(&follower, &a, &nodes).is_err());
    }
}
