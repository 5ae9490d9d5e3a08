//! Equivalence classes: pods with identical scheduling requirements are interned once and decided per
//! class. The selector terms their constraints use are interned too, so the simulation keeps counters per
//! term and topology domain instead of scanning every pod of the cluster for each decision.

use std::collections::HashMap;

use super::amounts::Amounts;
use crate::model::{HostPort, Inclusion, Namespaces, Pod, PodAffinityTerm, TermKind, TopologyKey, TopologySpread};
use crate::predicates::node::{selector_and_affinity_match, untolerated_by};
use crate::resources::Resources;
use crate::selectors::{LabelSelector, Labels, NodeSelectorTerm, Taint, Toleration};

/// Everything about a pod that scheduling looks at: all but its name and the removal-related fields.
#[derive(Hash, PartialEq, Eq)]
struct ClassKey<'a> {
    namespace: &'a str,
    labels: &'a Labels,
    requests: &'a Resources,
    node_selector: &'a Labels,
    node_affinity: &'a [NodeSelectorTerm],
    tolerations: &'a [Toleration],
    pod_affinity: &'a [PodAffinityTerm],
    pod_anti_affinity: &'a [PodAffinityTerm],
    topology_spread: &'a [TopologySpread],
    host_ports: &'a [HostPort],
}

impl<'a> ClassKey<'a> {
    fn of(p: &'a Pod) -> Self {
        Self {
            namespace: &p.namespace,
            labels: &p.labels,
            requests: &p.requests,
            node_selector: &p.node_selector,
            node_affinity: &p.node_affinity,
            tolerations: &p.tolerations,
            pod_affinity: &p.pod_affinity,
            pod_anti_affinity: &p.pod_anti_affinity,
            topology_spread: &p.topology_spread,
            host_ports: &p.host_ports,
        }
    }
}

/// A pod selector with the namespaces it applies to, resolved for its owner (`None`: every namespace).
#[derive(Hash, PartialEq, Eq, Clone)]
pub(crate) struct Term<'a> {
    pub(crate) selector: &'a LabelSelector,
    pub(crate) namespaces: Option<Vec<&'a str>>,
}

impl<'a> Term<'a> {
    fn resolve(t: &'a PodAffinityTerm, owner_namespace: &'a str, kind: TermKind) -> Self {
        let mut ns: Vec<&str> = match (&t.namespaces, kind) {
            (Namespaces::Own, _) => vec![owner_namespace],
            (Namespaces::Listed(names), _) | (Namespaces::Selector { listed: names, .. }, TermKind::Affinity) => {
                names.iter().map(String::as_str).collect()
            }
            (Namespaces::All, _) | (Namespaces::Selector { .. }, TermKind::AntiAffinity) => {
                return Self { selector: &t.selector, namespaces: None };
            }
        };
        ns.sort_unstable();
        ns.dedup();
        Self { selector: &t.selector, namespaces: Some(ns) }
    }

    fn selects(&self, p: &Pod) -> bool {
        self.namespaces.as_ref().is_none_or(|ns| ns.contains(&p.namespace.as_str())) && self.selector.matches(&p.labels)
    }
}

/// Which nodes count for a spread constraint: those that carry every topology label the pod's constraints
/// use and pass the constraint's inclusion policies (the pod's node selector and required affinity when
/// `nodeAffinityPolicy` is Honor, its tolerations when `nodeTaintsPolicy` is Honor).
#[derive(Hash, PartialEq, Eq, Clone)]
pub(crate) struct Eligibility<'a> {
    /// Node selector and required affinity, when honoured.
    pub(crate) affinity: Option<(&'a Labels, &'a [NodeSelectorTerm])>,
    /// Tolerations, when taints are honoured.
    pub(crate) tolerations: Option<&'a [Toleration]>,
    pub(crate) labels: Vec<TopologyKey>,
}

impl Eligibility<'_> {
    pub(crate) fn accepts(&self, labels: &Labels, taints: &[Taint]) -> bool {
        self.affinity.is_none_or(|(selector, terms)| selector_and_affinity_match(selector, terms, labels))
            && self.tolerations.is_none_or(|tolerations| untolerated_by(tolerations, taints).is_none())
            && self.labels.iter().all(|k| labels.contains_key(k.label()))
    }
}

/// A spread counter: matching pods per domain over the eligible nodes.
#[derive(Hash, PartialEq, Eq, Clone)]
pub(crate) struct TrackerKey<'a> {
    pub(crate) term: Term<'a>,
    pub(crate) topology: TopologyKey,
    pub(crate) eligibility: usize,
}

/// One spread constraint of a class.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpreadUse {
    pub(crate) tracker: usize,
    pub(crate) topology: TopologyKey,
    pub(crate) max_skew: i64,
    pub(crate) self_match: i64,
    /// While the tracker has fewer domains, its minimum counts as zero.
    pub(crate) min_domains: u32,
}

/// An interned class with its constraints resolved to counter ids.
pub(crate) struct Class<'a> {
    /// The first pod seen of the class; every member schedules exactly like it.
    pub(crate) rep: &'a Pod,
    /// CPU, memory, ephemeral storage, pod slots.
    pub(crate) req: Amounts,
    /// Whether it requests an extended resource.
    pub(crate) extended: bool,
    /// Its node selector or affinity names the hostname label, so static results differ per node.
    pub(crate) hostname_sensitive: bool,
    /// Interned (node selector, node affinity, tolerations): classes sharing it pass the same static filters.
    pub(crate) static_key: usize,
    /// Required affinity terms.
    pub(crate) affinity: Vec<(usize, TopologyKey)>,
    /// The interned set of its affinity terms, for "does any pod match all of them".
    pub(crate) affinity_all: Option<usize>,
    /// It matches all of its own affinity terms (the first pod of a group may go anywhere).
    pub(crate) self_affinity: bool,
    /// Its own anti-affinity terms.
    pub(crate) anti: Vec<(usize, TopologyKey)>,
    /// The anti-affinity holders (term, topology) it adds to when placed.
    pub(crate) holds_anti: Vec<usize>,
    /// The anti-affinity holders whose term selects it.
    pub(crate) anti_against: Vec<usize>,
    /// Its spread constraints.
    pub(crate) spread: Vec<SpreadUse>,
    /// Affinity/anti-affinity terms that select it.
    pub(crate) in_terms: Vec<usize>,
    /// Affinity sets all of whose terms select it.
    pub(crate) in_affinity_all: Vec<usize>,
    /// Spread trackers whose term selects it.
    pub(crate) in_trackers: Vec<usize>,
    /// Classes sharing this key fail the same monotone checks (resources, static filters, ports,
    /// anti-affinity) on the same nodes, so they share a first-fit cursor.
    pub(crate) mono: usize,
    /// It has required hostname anti-affinity against its own kind: one per node.
    pub(crate) singleton: bool,
}

impl Class<'_> {
    /// The hostname anti-affinity term that selects this class itself (what makes it one per node).
    pub(crate) fn own_hostname_term(&self) -> Option<usize> {
        self.anti
            .iter()
            .find(|(t, topology)| *topology == TopologyKey::Hostname && self.in_terms.contains(t))
            .map(|(t, _)| *t)
    }

    /// It has required pod affinity, all of it on the zone: its pods follow their targets into a zone.
    pub(crate) fn zone_affinity_only(&self) -> bool {
        !self.affinity.is_empty() && self.affinity.iter().all(|(_, t)| *t == TopologyKey::Zone)
    }
}

/// What the monotone checks look at: requests, static filters, host ports, anti-affinity both ways.
type MonoKey<'a> = (&'a Resources, usize, &'a [HostPort], Vec<(usize, TopologyKey)>, Vec<usize>);

/// Interns values to dense ids.
pub(crate) struct Interner<K> {
    ids: HashMap<K, usize>,
    pub(crate) items: Vec<K>,
}

impl<K: std::hash::Hash + Eq + Clone> Interner<K> {
    pub(crate) fn new() -> Self {
        Self { ids: HashMap::new(), items: Vec::new() }
    }

    pub(crate) fn id(&mut self, k: K) -> usize {
        if let Some(&id) = self.ids.get(&k) {
            return id;
        }
        let id = self.items.len();
        self.ids.insert(k.clone(), id);
        self.items.push(k);
        id
    }
}

/// Every class, term, anti-affinity holder, affinity set and spread tracker of a snapshot.
pub(crate) struct Registry<'a> {
    keys: HashMap<ClassKey<'a>, usize>,
    pub(crate) classes: Vec<Class<'a>>,
    pub(crate) terms: Interner<Term<'a>>,
    /// (term, topology) of every anti-affinity term some pod holds.
    pub(crate) antis: Interner<(usize, TopologyKey)>,
    pub(crate) affinity_sets: Interner<Vec<usize>>,
    pub(crate) eligibilities: Interner<Eligibility<'a>>,
    pub(crate) trackers: Interner<TrackerKey<'a>>,
    statics: Interner<(&'a Labels, &'a [NodeSelectorTerm], &'a [Toleration])>,
}

impl<'a> Registry<'a> {
    /// Interns every pod (bound, pending, DaemonSet templates), then resolves the constraints.
    pub(crate) fn build(pods: impl Iterator<Item = &'a Pod>) -> (Self, Vec<usize>) {
        let mut r = Registry {
            keys: HashMap::new(),
            classes: Vec::new(),
            terms: Interner::new(),
            antis: Interner::new(),
            affinity_sets: Interner::new(),
            eligibilities: Interner::new(),
            trackers: Interner::new(),
            statics: Interner::new(),
        };
        let ids: Vec<usize> = pods.map(|p| r.intern(p)).collect();
        r.resolve();
        (r, ids)
    }

    fn intern(&mut self, p: &'a Pod) -> usize {
        let next = self.classes.len();
        let id = *self.keys.entry(ClassKey::of(p)).or_insert(next);
        if id == next {
            let rq = &p.requests;
            let hostname_sensitive = p.node_selector.contains_key(TopologyKey::Hostname.label())
                || p.node_affinity
                    .iter()
                    .any(|t| t.requirements.iter().any(|r| r.key == TopologyKey::Hostname.label()));
            let static_key = self.statics.id((&p.node_selector, &p.node_affinity[..], &p.tolerations[..]));
            self.classes.push(Class {
                rep: p,
                req: Amounts::of(rq),
                extended: rq.extended.values().any(|v| *v > 0),
                hostname_sensitive,
                static_key,
                affinity: Vec::new(),
                affinity_all: None,
                self_affinity: false,
                anti: Vec::new(),
                holds_anti: Vec::new(),
                anti_against: Vec::new(),
                spread: Vec::new(),
                in_terms: Vec::new(),
                in_affinity_all: Vec::new(),
                in_trackers: Vec::new(),
                mono: 0,
                singleton: false,
            });
        }
        id
    }

    /// Resolves every class's constraints to ids, then which counters each class feeds.
    fn resolve(&mut self) {
        for c in 0..self.classes.len() {
            let p = self.classes[c].rep;
            let ns = p.namespace.as_str();
            let mut affinity = Vec::new();
            for t in &p.pod_affinity {
                affinity.push((self.terms.id(Term::resolve(t, ns, TermKind::Affinity)), t.topology));
            }
            let mut set: Vec<usize> = affinity.iter().map(|a| a.0).collect();
            set.sort_unstable();
            set.dedup();
            let affinity_all = (!set.is_empty()).then(|| self.affinity_sets.id(set));
            let self_affinity = p.pod_affinity.iter().all(|t| Term::resolve(t, ns, TermKind::Affinity).selects(p));
            let mut anti = Vec::new();
            let mut holds_anti = Vec::new();
            let mut singleton = false;
            for t in &p.pod_anti_affinity {
                let term = Term::resolve(t, ns, TermKind::AntiAffinity);
                singleton |= t.topology == TopologyKey::Hostname && term.selects(p);
                let id = self.terms.id(term);
                anti.push((id, t.topology));
                holds_anti.push(self.antis.id((id, t.topology)));
            }
            let mut spread = Vec::new();
            if !p.topology_spread.is_empty() {
                let mut labels: Vec<TopologyKey> = p.topology_spread.iter().map(|s| s.topology).collect();
                labels.sort_by_key(|k| *k == TopologyKey::Zone);
                labels.dedup();
                for s in &p.topology_spread {
                    let eligibility = self.eligibilities.id(Eligibility {
                        affinity: (s.node_affinity == Inclusion::Honor)
                            .then_some((&p.node_selector, &p.node_affinity[..])),
                        tolerations: (s.node_taints == Inclusion::Honor).then_some(&p.tolerations[..]),
                        labels: labels.clone(),
                    });
                    let term = Term { selector: &s.selector, namespaces: Some(vec![ns]) };
                    let self_match = i64::from(term.selects(p));
                    let tracker = self.trackers.id(TrackerKey { term, topology: s.topology, eligibility });
                    spread.push(SpreadUse {
                        tracker,
                        topology: s.topology,
                        max_skew: i64::from(s.max_skew),
                        self_match,
                        min_domains: u32::try_from(s.min_domains).unwrap_or(0),
                    });
                }
            }
            let class = &mut self.classes[c];
            class.affinity = affinity;
            class.affinity_all = affinity_all;
            class.self_affinity = self_affinity;
            class.anti = anti;
            class.holds_anti = holds_anti;
            class.singleton = singleton;
            class.spread = spread;
        }
        let mut monos: Interner<MonoKey<'_>> = Interner::new();
        for class in &mut self.classes {
            let p = class.rep;
            class.in_terms = (0..self.terms.items.len()).filter(|&t| self.terms.items[t].selects(p)).collect();
            class.anti_against =
                (0..self.antis.items.len()).filter(|&a| class.in_terms.contains(&self.antis.items[a].0)).collect();
            class.in_affinity_all = (0..self.affinity_sets.items.len())
                .filter(|&s| self.affinity_sets.items[s].iter().all(|t| class.in_terms.contains(t)))
                .collect();
            class.in_trackers =
                (0..self.trackers.items.len()).filter(|&t| self.trackers.items[t].term.selects(p)).collect();
            class.mono = monos.id((
                &p.requests,
                class.static_key,
                &p.host_ports,
                class.anti.clone(),
                class.anti_against.clone(),
            ));
        }
    }
}
