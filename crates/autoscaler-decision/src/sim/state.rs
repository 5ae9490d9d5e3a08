//! The simulated cluster: nodes with their used resources and host ports, and counters per interned term
//! and topology domain, so that a feasibility check costs a few array lookups instead of a cluster scan.
//! The checks mirror [`crate::predicates`] exactly; the property tests replay every plan through them.

use std::collections::{BTreeMap, HashMap};

use super::amounts::Amounts;
use super::classes::{Class, Interner, Registry};
use crate::groups::NodeGroup;
use crate::model::{HostPort, LABEL_HOSTNAME, LABEL_ZONE, Node, Pod, TopologyKey};
use crate::predicates::node::{node_labels_match, tolerates_unschedulable, untolerated};
use crate::selectors::{Labels, Taint};

/// Where a pod placed in the simulation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodRef {
    /// Bound to an input node: (node, index in its pods).
    Bound(usize, usize),
    /// An input pod being placed (index in the planner's pod list).
    Placed(usize),
    /// A DaemonSet pod of a new node's group: (group, index).
    Daemon(usize, usize),
}

/// A simulated node.
pub(crate) struct SimNode<'a> {
    pub(crate) name: String,
    pub(crate) labels: Labels,
    pub(crate) taints: &'a [Taint],
    pub(crate) unschedulable: bool,
    /// False for nodes that must not receive pods (being removed, not ready).
    pub(crate) accepts: bool,
    zone: Option<usize>,
    /// Its hostname domain: the first node carrying its hostname label (kube-scheduler's domains are
    /// label values, so two nodes with one hostname are one domain).
    host: Option<usize>,
    cap: Amounts,
    ext_cap: &'a BTreeMap<String, i64>,
    pub(crate) used: Amounts,
    ext_used: BTreeMap<String, i64>,
    ports: Vec<&'a HostPort>,
    shape: usize,
    pub(crate) group: Option<usize>,
    /// The offering of a new node (index in its group).
    pub(crate) offering: Option<usize>,
    /// The input node it stands for, if any.
    pub(crate) input: Option<usize>,
    pub(crate) pods: Vec<PodRef>,
}

impl SimNode<'_> {
    /// What its pods request: CPU, memory, ephemeral storage, pod slots.
    pub(crate) fn load(&self) -> Amounts {
        self.used
    }

    /// What it can carry: CPU, memory, ephemeral storage, pod slots.
    pub(crate) fn capacity(&self) -> Amounts {
        self.cap
    }

    /// Whether the extended resources its pods request fit in `cap`.
    pub(crate) fn ext_fits(&self, cap: &BTreeMap<String, i64>) -> bool {
        self.ext_used.iter().all(|(k, v)| *v <= cap.get(k).copied().unwrap_or(0))
    }
}

/// The outcome of a feasibility check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    Yes,
    /// Fails for a reason that only gets worse as pods are added (resources, static filters, ports,
    /// anti-affinity): a first-fit cursor may move past the node for good.
    Never,
    /// Fails for a reason later placements can lift (pod affinity, topology spread).
    NotNow,
}

/// Counts per domain with the number of domains at each count, for the minimum.
struct Tracker {
    topology: TopologyKey,
    eligibility: usize,
    counts: Vec<u32>,
    is_domain: Vec<bool>,
    histogram: BTreeMap<u32, u32>,
    /// How many domains it has.
    domains: u32,
}

impl Tracker {
    fn grow(&mut self, len: usize) {
        if self.counts.len() < len {
            self.counts.resize(len, 0);
            self.is_domain.resize(len, false);
        }
    }

    fn add_domain(&mut self, d: usize) {
        self.grow(d + 1);
        if !self.is_domain[d] {
            self.is_domain[d] = true;
            self.domains += 1;
            *self.histogram.entry(self.counts[d]).or_default() += 1;
        }
    }

    fn increment(&mut self, d: usize) {
        let old = self.counts[d];
        if let Some(n) = self.histogram.get_mut(&old) {
            *n -= 1;
            if *n == 0 {
                self.histogram.remove(&old);
            }
        }
        self.counts[d] = old + 1;
        *self.histogram.entry(old + 1).or_default() += 1;
    }

    fn here(&self, d: Option<usize>) -> u32 {
        d.filter(|&d| self.is_domain.get(d).copied().unwrap_or(false)).map_or(0, |d| self.counts[d])
    }

    /// The global minimum: zero while fewer than `min_domains` domains exist.
    fn min(&self, min_domains: u32) -> u32 {
        if self.domains < min_domains { 0 } else { self.histogram.keys().next().copied().unwrap_or(0) }
    }
}

/// A node to check: an existing simulated node, or a new node of a group not yet added.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    Node(usize),
    New(usize),
}

/// The simulation.
pub(crate) struct Sim<'a> {
    pub(crate) reg: Registry<'a>,
    pub(crate) groups: &'a [NodeGroup],
    pub(crate) nodes: Vec<SimNode<'a>>,
    zones: Interner<String>,
    /// Hostname label value -> the first node carrying it.
    hosts: HashMap<String, usize>,
    /// Per affinity/anti-affinity term: matching pods per node and per zone.
    term_host: Vec<Vec<u32>>,
    term_zone: Vec<Vec<u32>>,
    /// Per anti-affinity (term, topology): holders per domain.
    anti: Vec<Vec<u32>>,
    affinity_all: Vec<u32>,
    trackers: Vec<Tracker>,
    /// Per node: whether each eligibility accepts it.
    node_eligible: Vec<Vec<bool>>,
    shapes: Interner<(Labels, Vec<Taint>, bool)>,
    /// Per (static key, shape): whether static filters pass.
    statics: HashMap<(usize, usize), bool>,
    group_shape: Vec<usize>,
    group_labels: Vec<Labels>,
    group_zone: Vec<Option<usize>>,
    /// Class of each input node's bound pods.
    bound_class: Vec<Vec<usize>>,
    /// Class of each group's DaemonSet pods.
    daemon_class: Vec<Vec<usize>>,
    /// Class of each pod the planner places.
    pub(crate) placed_class: Vec<usize>,
}

fn shape_of(labels: &Labels, taints: &[Taint], unschedulable: bool) -> (Labels, Vec<Taint>, bool) {
    let mut l = labels.clone();
    l.remove(LABEL_HOSTNAME);
    (l, taints.to_vec(), unschedulable)
}

impl<'a> Sim<'a> {
    /// A simulation of `nodes` (with their bound pods) that will place `pods` and may add nodes of `groups`.
    pub(crate) fn new(nodes: &'a [Node], pods: &[&'a Pod], groups: &'a [NodeGroup]) -> Self {
        let all = nodes
            .iter()
            .flat_map(|n| n.pods.iter())
            .chain(pods.iter().copied())
            .chain(groups.iter().flat_map(|g| g.daemonset_pods.iter()));
        let (reg, ids) = Registry::build(all);
        let mut ids = ids.into_iter();
        let bound_class: Vec<Vec<usize>> = nodes.iter().map(|n| ids.by_ref().take(n.pods.len()).collect()).collect();
        let placed_class: Vec<usize> = ids.by_ref().take(pods.len()).collect();
        let daemon_class: Vec<Vec<usize>> =
            groups.iter().map(|g| ids.by_ref().take(g.daemonset_pods.len()).collect()).collect();
        let n_terms = reg.terms.items.len();
        let trackers = reg
            .trackers
            .items
            .iter()
            .map(|t| Tracker {
                topology: t.topology,
                eligibility: t.eligibility,
                counts: Vec::new(),
                is_domain: Vec::new(),
                histogram: BTreeMap::new(),
                domains: 0,
            })
            .collect();
        let mut sim = Sim {
            anti: vec![Vec::new(); reg.antis.items.len()],
            affinity_all: vec![0; reg.affinity_sets.items.len()],
            term_host: vec![Vec::new(); n_terms],
            term_zone: vec![Vec::new(); n_terms],
            reg,
            groups,
            nodes: Vec::new(),
            zones: Interner::new(),
            hosts: HashMap::new(),
            trackers,
            node_eligible: Vec::new(),
            shapes: Interner::new(),
            statics: HashMap::new(),
            group_shape: Vec::new(),
            group_labels: Vec::new(),
            group_zone: Vec::new(),
            bound_class,
            daemon_class,
            placed_class,
        };
        for g in groups {
            let template = g.template_labels("");
            let shape = sim.shapes.id(shape_of(&template, &g.taints, false));
            sim.group_shape.push(shape);
            sim.group_labels.push(template);
            let zone = g.zone.as_ref().map(|z| sim.zone_id(z));
            sim.group_zone.push(zone);
        }
        for (i, n) in nodes.iter().enumerate() {
            let idx = sim.add_node(n.name.clone(), n.labels.clone(), &n.taints, n.unschedulable, None, Some(i));
            sim.nodes[idx].cap = Amounts::of(&n.allocatable);
            sim.nodes[idx].ext_cap = &n.allocatable.extended;
            // Finished pods hold nothing and kube-scheduler does not see them.
            for (k, _) in n.pods.iter().enumerate().filter(|(_, p)| !p.finished) {
                let class = sim.bound_class[i][k];
                sim.commit(class, idx, PodRef::Bound(i, k));
            }
        }
        sim
    }

    fn zone_id(&mut self, zone: &str) -> usize {
        let before = self.zones.items.len();
        let id = self.zones.id(zone.to_owned());
        if id == before {
            for v in &mut self.term_zone {
                v.push(0);
            }
            for (a, v) in self.anti.iter_mut().enumerate() {
                if self.reg.antis.items[a].1 == TopologyKey::Zone {
                    v.push(0);
                }
            }
            for t in &mut self.trackers {
                if t.topology == TopologyKey::Zone {
                    t.grow(id + 1);
                }
            }
        }
        id
    }

    fn add_node(
        &mut self,
        name: String,
        labels: Labels,
        taints: &'a [Taint],
        unschedulable: bool,
        group: Option<usize>,
        input: Option<usize>,
    ) -> usize {
        static NO_EXTENDED: BTreeMap<String, i64> = BTreeMap::new();
        let idx = self.nodes.len();
        let zone = labels.get(LABEL_ZONE).cloned().map(|z| self.zone_id(&z));
        let host = labels.get(LABEL_HOSTNAME).map(|h| *self.hosts.entry(h.clone()).or_insert(idx));
        let shape = match group {
            Some(g) => self.group_shape[g],
            None => self.shapes.id(shape_of(&labels, taints, unschedulable)),
        };
        for v in &mut self.term_host {
            v.push(0);
        }
        for (a, v) in self.anti.iter_mut().enumerate() {
            if self.reg.antis.items[a].1 == TopologyKey::Hostname {
                v.push(0);
            }
        }
        let eligible: Vec<bool> = self.reg.eligibilities.items.iter().map(|e| e.accepts(&labels, taints)).collect();
        for t in &mut self.trackers {
            t.grow(idx + 1);
            if eligible[t.eligibility] {
                match t.topology {
                    TopologyKey::Hostname => {
                        if let Some(h) = host {
                            t.add_domain(h);
                        }
                    }
                    TopologyKey::Zone => {
                        if let Some(z) = zone {
                            t.add_domain(z);
                        }
                    }
                }
            }
        }
        self.node_eligible.push(eligible);
        let group_index = group;
        self.nodes.push(SimNode {
            name,
            labels,
            taints,
            unschedulable,
            accepts: true,
            zone,
            host,
            cap: Amounts::default(),
            ext_cap: &NO_EXTENDED,
            used: Amounts::default(),
            ext_used: BTreeMap::new(),
            ports: Vec::new(),
            shape,
            group: group_index,
            offering: None,
            input,
            pods: Vec::new(),
        });
        idx
    }

    /// Adds a new node of `group` on `offering`, carrying the group's DaemonSet pods.
    pub(crate) fn add_new_node(&mut self, group: usize, offering: usize, name: String) -> usize {
        let g = &self.groups[group];
        let o = &g.offerings[offering];
        let idx = self.add_node(name.clone(), g.template_labels(&name), &g.taints, false, Some(group), None);
        let a = &o.allocatable;
        self.nodes[idx].cap = Amounts::of(a);
        self.nodes[idx].ext_cap = &a.extended;
        self.nodes[idx].offering = Some(offering);
        for k in 0..self.daemon_class[group].len() {
            let class = self.daemon_class[group][k];
            self.commit(class, idx, PodRef::Daemon(group, k));
        }
        idx
    }

    /// Sets a new node's capacity to another offering of its group (the final right-sizing).
    pub(crate) fn resize(&mut self, node: usize, group: usize, offering: usize) {
        let a = &self.groups[group].offerings[offering].allocatable;
        self.nodes[node].cap = Amounts::of(a);
        self.nodes[node].ext_cap = &a.extended;
        self.nodes[node].offering = Some(offering);
    }

    fn domain(&self, node: usize, topology: TopologyKey) -> Option<usize> {
        let n = &self.nodes[node];
        match topology {
            TopologyKey::Hostname => n.host,
            TopologyKey::Zone => n.zone,
        }
    }

    /// Records `class` running on `node`.
    pub(crate) fn commit(&mut self, class: usize, node: usize, what: PodRef) {
        let c = &self.reg.classes[class];
        let n = &mut self.nodes[node];
        n.used = n.used.plus(c.req);
        if c.extended {
            for (k, v) in &c.rep.requests.extended {
                *n.ext_used.entry(k.clone()).or_default() += v;
            }
        }
        n.ports.extend(c.rep.host_ports.iter());
        n.pods.push(what);
        let (zone, host) = (n.zone, n.host);
        for &t in &c.in_terms {
            if let Some(h) = host {
                self.term_host[t][h] += 1;
            }
            if let Some(z) = zone {
                self.term_zone[t][z] += 1;
            }
        }
        for &a in &c.holds_anti {
            if let Some(d) = self.domain(node, self.reg.antis.items[a].1) {
                self.anti[a][d] += 1;
            }
        }
        for &s in &c.in_affinity_all {
            self.affinity_all[s] += 1;
        }
        for &t in &c.in_trackers {
            let tr = &mut self.trackers[t];
            if !self.node_eligible[node][tr.eligibility] {
                continue;
            }
            let d = match tr.topology {
                TopologyKey::Hostname => host,
                TopologyKey::Zone => zone,
            };
            if let Some(d) = d {
                tr.increment(d);
            }
        }
    }

    fn static_ok(
        statics: &mut HashMap<(usize, usize), bool>,
        c: &Class<'_>,
        labels: &Labels,
        taints: &[Taint],
        unschedulable: bool,
        shape: usize,
    ) -> bool {
        let compute = || {
            (!unschedulable || tolerates_unschedulable(c.rep))
                && node_labels_match(c.rep, labels)
                && untolerated(c.rep, taints).is_none()
        };
        if c.hostname_sensitive {
            return compute();
        }
        *statics.entry((c.static_key, shape)).or_insert_with(compute)
    }

    /// Whether a pod of `class` may go on `target` now.
    pub(crate) fn check(&mut self, class: usize, target: Target) -> Fit {
        let c = &self.reg.classes[class];
        let (zone, host) = match target {
            Target::Node(n) => {
                let node = &self.nodes[n];
                if !node.accepts {
                    return Fit::Never;
                }
                if !node.used.plus(c.req).fits_in(node.cap) {
                    return Fit::Never;
                }
                if c.extended
                    && c.rep.requests.extended.iter().any(|(k, v)| {
                        node.ext_used.get(k).copied().unwrap_or(0) + v > node.ext_cap.get(k).copied().unwrap_or(0)
                    })
                {
                    return Fit::Never;
                }
                if c.rep.host_ports.iter().any(|want| node.ports.iter().any(|have| have.conflicts(want))) {
                    return Fit::Never;
                }
                if !Self::static_ok(&mut self.statics, c, &node.labels, node.taints, node.unschedulable, node.shape) {
                    return Fit::Never;
                }
                (node.zone, node.host.map(Some))
            }
            Target::New(g) => (self.group_zone[g], Some(None)),
        };
        let c = &self.reg.classes[class];
        let dom = |t: TopologyKey| match t {
            TopologyKey::Hostname => host.map(|h| h.map_or(usize::MAX, |n| n)),
            TopologyKey::Zone => zone,
        };
        let count = |v: &Vec<u32>, d: usize| v.get(d).copied().unwrap_or(0);
        for &(t, topology) in &c.anti {
            if let Some(d) = dom(topology) {
                let v = if topology == TopologyKey::Hostname { &self.term_host[t] } else { &self.term_zone[t] };
                if count(v, d) > 0 {
                    return Fit::Never;
                }
            }
        }
        for &a in &c.anti_against {
            if let Some(d) = dom(self.reg.antis.items[a].1)
                && count(&self.anti[a], d) > 0
            {
                return Fit::Never;
            }
        }
        for &(t, topology) in &c.affinity {
            let Some(d) = dom(topology) else { return Fit::Never };
            let v = if topology == TopologyKey::Hostname { &self.term_host[t] } else { &self.term_zone[t] };
            if count(v, d) == 0 {
                let first_of_group = c.self_affinity && c.affinity_all.is_some_and(|s| self.affinity_all[s] == 0);
                if !first_of_group {
                    return Fit::NotNow;
                }
            }
        }
        for s in &c.spread {
            let Some(d) = dom(s.topology) else { return Fit::Never };
            let tr = &self.trackers[s.tracker];
            let here = i64::from(tr.here(Some(d)));
            let min = i64::from(tr.min(s.min_domains)).min(here);
            if here + s.self_match - min > s.max_skew {
                return Fit::NotNow;
            }
        }
        Fit::Yes
    }

    /// The zone (interned) new nodes of `group` land in, if it has one.
    pub(crate) fn group_zone(&self, group: usize) -> Option<usize> {
        self.group_zone[group]
    }

    /// How many zones are known (interned zone ids are below this).
    pub(crate) fn zone_count(&self) -> usize {
        self.zones.items.len()
    }

    /// The zone of a simulated node (interned), if it has one.
    pub(crate) fn zone_of(&self, node: usize) -> Option<usize> {
        self.nodes[node].zone
    }

    /// For a pod of `class` that would be the first of its group under required zone affinity to its own
    /// kind (so it may go anywhere, and the whole group follows it into that zone): the group's affinity
    /// set.
    pub(crate) fn opens_zone_group(&self, class: usize) -> Option<usize> {
        let c = &self.reg.classes[class];
        let s = c.affinity_all?;
        (c.self_affinity && c.zone_affinity_only() && self.affinity_all[s] == 0).then_some(s)
    }

    /// Static filters of `class` on a new node of `group` (taints, selectors), without resources.
    pub(crate) fn static_ok_new(&mut self, class: usize, group: usize) -> bool {
        let c = &self.reg.classes[class];
        let g = &self.groups[group];
        Self::static_ok(&mut self.statics, c, &self.group_labels[group], &g.taints, false, self.group_shape[group])
    }

    /// The input pod a reference stands for.
    pub(crate) fn pod(&self, r: PodRef, nodes: &'a [Node], placed: &[&'a Pod]) -> &'a Pod {
        match r {
            PodRef::Bound(n, k) => &nodes[n].pods[k],
            PodRef::Placed(i) => placed[i],
            PodRef::Daemon(g, k) => &self.groups[g].daemonset_pods[k],
        }
    }

    /// The simulated cluster as model nodes (for explanations through the reference predicates).
    pub(crate) fn to_nodes(&self, nodes: &'a [Node], placed: &[&'a Pod]) -> Vec<Node> {
        self.nodes
            .iter()
            .map(|n| {
                let mut allocatable = crate::resources::Resources::default();
                n.cap.write_to(&mut allocatable);
                allocatable.extended = n.ext_cap.clone();
                Node {
                    name: n.name.clone(),
                    labels: n.labels.clone(),
                    allocatable,
                    taints: n.taints.to_vec(),
                    unschedulable: n.unschedulable || !n.accepts,
                    ready: n.input.is_none_or(|i| nodes[i].ready),
                    group: match n.input {
                        Some(i) => nodes[i].group.clone(),
                        None => n.group.map(|g| self.groups[g].name.clone()),
                    },
                    offering: match (n.input, n.group, n.offering) {
                        (Some(i), _, _) => nodes[i].offering.clone(),
                        (None, Some(g), Some(o)) => Some(self.groups[g].offerings[o].id.clone()),
                        _ => None,
                    },
                    created_at: n.input.map_or(0, |i| nodes[i].created_at),
                    pods: n.pods.iter().map(|r| self.pod(*r, nodes, placed).clone()).collect(),
                }
            })
            .collect()
    }
}
