//! Placing pods one by one: first fit over the nodes that exist (input nodes first, then the new nodes
//! in the order they were opened), else a new node chosen by the strategy, finally right-sized to the
//! cheapest offering that carries what it got.

mod mix;
mod options;
mod right_size;
mod score;
mod step_fit;
mod zones;

use super::amounts::{Amounts, Demand};
use super::state::{Fit, PodRef, Sim, Target};
use crate::groups::{Expander, NodeGroup, Usage};
use crate::model::{Node, Pod, TopologyKey};
use score::Score;

/// How new nodes are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// Ours: pods with one-per-node anti-affinity first, each new node sized for the demand still to
    /// come (by expander), right-sized at the end.
    Planner(Expander),
    /// Shaped like Karpenter: largest-first, each new node may become any offering of its group, the
    /// group whose cheapest fitting offering is cheapest; right-sized at the end.
    CheapestFit,
    /// One fixed (group, offering), not right-sized: a Cluster Autoscaler node group with one template.
    Fixed {
        /// Index of the group.
        group: usize,
        /// Index of the offering in the group.
        offering: usize,
    },
    /// No new nodes at all (scale-down re-placement).
    NoNewNodes,
}

/// One decision: input pod `pod` went to simulated node `node`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    pub(crate) pod: usize,
    pub(crate) node: usize,
}

/// A simulated node that is new: its group and (final) offering.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opened {
    pub(crate) node: usize,
    pub(crate) group: usize,
    pub(crate) offering: usize,
}

/// Where each pod went.
pub(crate) struct Placement {
    /// Per input pod: the simulated node it went to.
    pub(crate) node_of: Vec<Option<usize>>,
    /// Decisions in order.
    pub(crate) sequence: Vec<Step>,
    /// Simulated nodes that are new, in opening order, with their final offering.
    pub(crate) new_nodes: Vec<Opened>,
    /// Input nodes count (simulated nodes below this index are input nodes).
    pub(crate) existing: usize,
}

/// The placer: a simulation plus per-group usage, cursors and the demand still to place.
pub(crate) struct Placer<'a> {
    pub(crate) sim: Sim<'a>,
    pods: Vec<&'a Pod>,
    pub(crate) usage: Vec<Usage>,
    /// Usable capacity (allocatable minus DaemonSet requests) per group and offering.
    usable: Vec<Vec<Amounts>>,
    cursors: Vec<usize>,
    /// Per class: the groups whose new nodes could ever take it, as an interned signature.
    signature: Vec<usize>,
    /// Per signature: its groups.
    sig_groups: Vec<Vec<usize>>,
    /// For the planner: the node shape each pod should land on (see `mix.rs`).
    mix: Option<mix::Mix>,
    /// Requests still to place per signature and target shape: CPU, memory, pods.
    shape_demand: Vec<Demand>,
    /// Requests still to place per signature: CPU, memory, pods.
    demand: Vec<Demand>,
    /// Per signature: how many one-per-node pods are still to open their node, and the CPU, memory and
    /// pods of the other pods not yet allotted room on such nodes.
    singles: Vec<Singles>,
    /// A class no group can ever take (static filters or size) is decided once.
    hopeless: Vec<bool>,
    new_count: usize,
    name_prefix_offset: usize,
    /// Simulated nodes below this index are input nodes (their capacity is already paid for).
    input_nodes: usize,
    /// Per first-fit key (same requests and static filters, so the same options): per group, the
    /// cheapest dominant-share cost a pod could have on its new nodes (infinite where it cannot go),
    /// and the yardstick, the best of them (empty until needed).
    shares: Vec<ShapeShares>,
    /// Steps per octave of memory per CPU the advice tells kinds and shapes apart by.
    advice_steps: u32,
    /// Zone-affinity groups: what they still have to place and where they are pinned.
    zone_groups: zones::ZoneGroups,
    /// With the step fit (see `step_fit.rs`): each group's usable offerings by price; empty without.
    by_price: Vec<Vec<usize>>,
    /// While deciding one pod: the zones it should go to if it can (see `zones.rs`).
    zone_pref: Option<Vec<bool>>,
}

/// Per group, the cheapest dominant-share cost a pod could have on its new nodes (infinite where it
/// cannot go), and the yardstick: the best of them.
#[derive(Debug, Clone)]
struct ShapeShares {
    per_group: Vec<f64>,
    best: f64,
}

/// How much more than its best-shaped share a pod may cost on a new node it joins.
const SHAPE_SLACK: f64 = 1.25;

/// Whether the extended resources a pod requests are offered at all.
fn extended_offered(pod: &Pod, offering: &crate::groups::Offering) -> bool {
    pod.requests.extended.iter().all(|(k, v)| *v <= offering.allocatable.extended.get(k).copied().unwrap_or(0))
}

/// `cap` with its pod slots capped by how many pods like `pod` the extended resources of `offering`
/// carry: a GPU node carries as many GPU pods as it has GPUs.
fn slots_for(pod: &Pod, offering: &crate::groups::Offering, mut cap: Amounts) -> Amounts {
    let by_extended = pod
        .requests
        .extended
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| offering.allocatable.extended.get(k).copied().unwrap_or(0) / v)
        .min();
    if let Some(n) = by_extended {
        cap.pods = cap.pods.min(n);
    }
    cap
}

/// Adds `sign` times a pod's CPU, memory and pod slot to a demand.
fn shift(demand: &mut Demand, req: Amounts, sign: i64) {
    demand.shift(req.demand(), sign);
}

/// Per set of usable groups: what its one-per-node pods will need.
#[derive(Debug, Clone, Copy, Default)]
struct Singles {
    /// The nodes its one-per-node pods will open.
    nodes: i64,
    /// The other pods not yet given room on such nodes.
    others: Demand,
}

impl<'a> Placer<'a> {
    /// Prepares to place `pods` onto `nodes`, opening nodes of `groups` when needed.
    pub(crate) fn new(nodes: &'a [Node], pods: Vec<&'a Pod>, groups: &'a [NodeGroup], planned_before: usize) -> Self {
        let mut sim = Sim::new(nodes, &pods, groups);
        let usage: Vec<Usage> = groups.iter().map(|g| g.usage(nodes)).collect();
        let usable: Vec<Vec<Amounts>> = groups
            .iter()
            .map(|g| {
                let ds = g.daemonset_pods.iter().fold(Amounts::default(), |s, p| s.plus(Amounts::of(&p.requests)));
                g.offerings.iter().map(|o| Amounts::of(&o.allocatable).minus(ds)).collect()
            })
            .collect();
        let n_classes = sim.reg.classes.len();
        let mut signatures = super::classes::Interner::<Vec<usize>>::new();
        let mut signature = vec![usize::MAX; n_classes];
        let mut hopeless = vec![false; n_classes];
        let mut demand: Vec<Demand> = Vec::new();
        let mut singles: Vec<Singles> = Vec::new();
        let mut per_term: std::collections::BTreeMap<(usize, usize), i64> = std::collections::BTreeMap::new();
        for i in 0..pods.len() {
            let c = sim.placed_class[i];
            if signature[c] == usize::MAX {
                let (req, rep) = (sim.reg.classes[c].req, sim.reg.classes[c].rep);
                let compatible: Vec<usize> = (0..groups.len())
                    .filter(|&g| {
                        sim.static_ok_new(c, g)
                            && groups[g].offerings.iter().enumerate().any(|(o, off)| {
                                !groups[g].backoff.contains(&off.id)
                                    && req.fits_in(usable[g][o])
                                    && extended_offered(rep, off)
                            })
                    })
                    .collect();
                hopeless[c] = compatible.is_empty();
                signature[c] = signatures.id(compatible);
                demand.resize(signatures.items.len(), Demand::default());
                singles.resize(signatures.items.len(), Singles::default());
            }
            let r = sim.reg.classes[c].req;
            shift(&mut demand[signature[c]], r, 1);
            let s = &mut singles[signature[c]];
            if sim.reg.classes[c].singleton {
                // Counted per anti-affinity term below: one-per-node pods of different kinds share nodes.
                if let Some(t) = sim.reg.classes[c].own_hostname_term() {
                    *per_term.entry((signature[c], t)).or_default() += 1;
                }
            } else {
                s.others.shift(r.demand(), 1);
            }
        }
        // The nodes one-per-node pods will open: per signature, as many as its largest such kind has pods.
        for ((sig, _), n) in per_term {
            singles[sig].nodes = singles[sig].nodes.max(n);
        }
        let cursors = vec![0; sim.reg.classes.iter().map(|c| c.mono + 1).max().unwrap_or(0)];
        let input_nodes = sim.nodes.len();
        Placer {
            sig_groups: signatures.items,
            mix: None,
            shape_demand: Vec::new(),
            input_nodes,
            shares: vec![ShapeShares { per_group: Vec::new(), best: f64::INFINITY }; cursors.len()],
            sim,
            pods,
            usage,
            usable,
            cursors,
            signature,
            demand,
            singles,
            hopeless,
            new_count: 0,
            name_prefix_offset: planned_before,
            advice_steps: mix::DEFAULT_STEPS,
            zone_groups: zones::ZoneGroups::default(),
            by_price: Vec::new(),
            zone_pref: None,
        }
    }

    /// The same placer with the advice telling kinds and shapes apart by `steps` steps per octave of
    /// memory per CPU (the planner tries several; see `scale_up`).
    pub(crate) fn with_advice_steps(mut self, steps: u32) -> Self {
        self.advice_steps = steps.max(1);
        self
    }

    /// The same placer joining each pod to the new node (of the first few that take it) whose final
    /// price grows least, instead of the first (see `step_fit.rs`).
    pub(crate) fn with_step_fit(mut self) -> Self {
        self.enable_step_fit();
        self
    }

    /// The decision order. For the planner: one-per-node pods first (each opens a node that later pods
    /// fill), then pods spreading their own replicas over hostnames (while every node can still take
    /// one: a full node without one pins the spread's minimum at zero), then the pods with a target
    /// shape interleaved (see [`Self::progress`]), then largest first by dominant share of the whole
    /// demand, so CPU-heavy and memory-heavy pods interleave. Otherwise largest CPU first. Ties by name
    /// keep plans deterministic.
    fn order(&self, strategy: Strategy) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.pods.len()).collect();
        let progress = self.progress();
        let planner = matches!(strategy, Strategy::Planner(_));
        let mut total = [1i128; 2];
        for &c in &self.sim.placed_class {
            let req = self.sim.reg.classes[c].req;
            total[0] += i128::from(req.cpu);
            total[1] += i128::from(req.memory);
        }
        let key = |i: usize| {
            let c = &self.sim.reg.classes[self.sim.placed_class[i]];
            let host_spread = c.spread.iter().any(|s| s.topology == TopologyKey::Hostname && s.self_match > 0);
            // Parts per billion of the whole demand.
            let share = |amount: i64, total: i128| i128::from(amount) * 1_000_000_000 / total;
            let dominant = if planner { share(c.req.cpu, total[0]).max(share(c.req.memory, total[1])) } else { 0 };
            (
                planner && c.singleton,
                planner && host_spread,
                std::cmp::Reverse(progress[i]),
                dominant,
                c.req.cpu,
                c.req.memory,
            )
        };
        v.sort_by(|&a, &b| {
            key(b).cmp(&key(a)).then_with(|| {
                let (pa, pb) = (self.pods[a], self.pods[b]);
                (&pa.namespace, &pa.name).cmp(&(&pb.namespace, &pb.name))
            })
        });
        v
    }

    /// First fit over the simulated nodes, skipping for good the nodes the pod's kind can never use and,
    /// for the planner, new nodes whose shape does not suit it.
    fn first_fit(&mut self, class: usize, pod: usize, strategy: Strategy) -> Option<usize> {
        let mono = self.cursor(class, pod);
        let mut i = self.cursors[mono];
        let mut advancing = true;
        let shaped = matches!(strategy, Strategy::Planner(_));
        while i < self.sim.nodes.len() {
            match self.sim.check(class, Target::Node(i)) {
                Fit::Yes if shaped && i >= self.input_nodes && !self.suits(class, pod, i) => {
                    if advancing {
                        self.cursors[mono] = i + 1;
                    }
                }
                Fit::Yes if shaped && i >= self.input_nodes && !self.by_price.is_empty() => {
                    return Some(self.step_fit(class, pod, i));
                }
                Fit::Yes => return Some(i),
                Fit::Never if advancing => self.cursors[mono] = i + 1,
                Fit::Never => {}
                Fit::NotNow => advancing = false,
            }
            i += 1;
        }
        None
    }

    /// Whether node `n` takes pod `pod` of `class` now, a new node only if its shape suits the pod.
    fn takes(&mut self, class: usize, pod: usize, n: usize) -> bool {
        self.sim.check(class, Target::Node(n)) == Fit::Yes && (n < self.input_nodes || self.suits(class, pod, n))
    }

    /// The first node that takes a pod of `class`, shape aside and without moving cursors.
    fn any_fit(&mut self, class: usize) -> Option<usize> {
        (0..self.sim.nodes.len()).find(|&i| self.sim.check(class, Target::Node(i)) == Fit::Yes)
    }

    /// Places every pod; returns where each went.
    pub(crate) fn run(mut self, strategy: Strategy) -> (Placement, Self) {
        let existing = self.sim.nodes.len();
        if let Strategy::Planner(Expander::Cheapest | Expander::LeastWaste) = strategy {
            self.take_advice();
        }
        self.count_zone_groups();
        let order = self.order(strategy);
        let mut node_of = vec![None; self.pods.len()];
        let mut sequence = Vec::with_capacity(self.pods.len());
        let mut new_nodes: Vec<Opened> = Vec::new();
        let mut queue = order;
        let mut deferred = Vec::new();
        let mut first_pass = true;
        loop {
            for &i in &queue {
                if !self.place_one(i, strategy, first_pass, &mut node_of, &mut sequence, &mut new_nodes) {
                    deferred.push(i);
                }
            }
            // A pod whose affinity target was decided after it gets another pass; stop once a pass
            // places nothing.
            if deferred.is_empty() || deferred.len() == queue.len() && !first_pass {
                break;
            }
            first_pass = false;
            queue = std::mem::take(&mut deferred);
        }
        self.right_size(strategy, &mut new_nodes);
        (Placement { node_of, sequence, new_nodes, existing }, self)
    }

    /// Decides one pod; false when it stays unplaced for now.
    fn place_one(
        &mut self,
        i: usize,
        strategy: Strategy,
        first_pass: bool,
        node_of: &mut [Option<usize>],
        sequence: &mut Vec<Step>,
        new_nodes: &mut Vec<Opened>,
    ) -> bool {
        let class = self.sim.placed_class[i];
        let sig = self.signature[class];
        let r = self.sim.reg.classes[class].req;
        // Zone choices for affinity (see `zones.rs`): a node, or `Some(None)` for a new node in a zone
        // the pod's followers can use.
        let start = if matches!(strategy, Strategy::Planner(_)) {
            self.zone_group_start(class, i).map(Some).or_else(|| self.follower_zone_start(class, i))
        } else {
            None
        };
        let found = match start {
            Some(node) => node,
            None => self.first_fit(class, i, strategy),
        };
        let node = match found {
            Some(n) => Some(n),
            None if self.hopeless[class] || strategy == Strategy::NoNewNodes => None,
            None => match self.open(class, i, strategy) {
                Some(opened) => {
                    new_nodes.push(opened);
                    Some(opened.node)
                }
                // No new node may open (max nodes, limits): a node of the wrong shape beats pending.
                None if matches!(strategy, Strategy::Planner(_)) => self.any_fit(class),
                None => None,
            },
        };
        if first_pass {
            shift(&mut self.demand[sig], r, -1);
            if let Some((mix, t)) = self.mix.as_ref().and_then(|m| Some((m, m.target[i]?))) {
                shift(&mut self.shape_demand[sig * mix.shapes + t], r, -1);
            }
        }
        self.zone_pref = None;
        let Some(n) = node else { return false };
        self.sim.commit(class, n, PodRef::Placed(i));
        self.book_zone_groups(class, n);
        node_of[i] = Some(n);
        sequence.push(Step { pod: i, node: n });
        true
    }

    /// What a pod of `class` costs on offering `o` of group `g`: the price times its dominant share.
    fn share(&self, class: usize, g: usize, o: usize) -> f64 {
        let req = self.sim.reg.classes[class].req;
        let cap = self.usable[g][o];
        let dominant = [(req.cpu, cap.cpu), (req.memory, cap.memory), (req.pods, cap.pods)]
            .iter()
            .map(|&(r, c)| r as f64 / c.max(1) as f64)
            .fold(0.0, f64::max);
        self.sim.groups[g].offerings[o].monthly_price * dominant
    }

    /// Whether new node `n` has a shape that suits pod `pod` of `class`; see [`Self::suits_group`].
    fn suits(&mut self, class: usize, pod: usize, n: usize) -> bool {
        self.sim.nodes[n].group.is_none_or(|g| self.suits_group(class, pod, g))
    }

    /// Whether the nodes of group `g` have a shape that suits pod `pod` of `class`: with advice, the
    /// group has the pod's target shape; otherwise the pod's cheapest share of one costs at most
    /// `SHAPE_SLACK` times its cheapest share in the best group for it. Filling a memory-rich node with
    /// CPU-heavy pods strands its memory; such pods wait for (or open) a better-shaped node. Groups are
    /// compared, not offerings, so the expander still picks the size.
    fn suits_group(&mut self, class: usize, pod: usize, g: usize) -> bool {
        if let Some(mix) = &self.mix
            && let Some(t) = mix.target[pod]
        {
            return mix.shape_of[g] == t;
        }
        let mono = self.sim.reg.classes[class].mono;
        if self.shares[mono].per_group.is_empty() {
            let mut per_group = vec![f64::INFINITY; self.sim.groups.len()];
            for u in self.options_for(class) {
                per_group[u.group] = per_group[u.group].min(self.share(class, u.group, u.offering));
            }
            let best = per_group.iter().copied().fold(f64::INFINITY, f64::min);
            self.shares[mono] = ShapeShares { per_group, best };
        }
        let s = &self.shares[mono];
        s.per_group[g] <= SHAPE_SLACK * s.best
    }

    /// Opens a new node for a pod of `class`: (group, offering, simulated node).
    fn open(&mut self, class: usize, pod: usize, strategy: Strategy) -> Option<Opened> {
        let choice = self.choose(class, pod, strategy);
        // A zone preference (see `zones.rs`) that no group can meet does not stop the node.
        let choice = match choice {
            None if self.zone_pref.take().is_some() => self.choose(class, pod, strategy),
            c => c,
        };
        let (g, o) = choice?;
        self.new_count += 1;
        let name = format!("{}-new-{}", self.sim.groups[g].name, self.name_prefix_offset + self.new_count);
        let n = self.sim.add_new_node(g, o, name);
        if self.sim.check(class, Target::Node(n)) != Fit::Yes {
            // Cannot happen when the choice was checked on the group's template; a node no pod uses is
            // still never planned.
            self.sim.nodes[n].accepts = false;
            return None;
        }
        if self.sim.reg.classes[class].singleton {
            // Room on this node for the others is allotted: the share of them its tightest spare
            // dimension takes (pods of their mix); later one-per-node nodes size for the rest.
            let (req, rep, sig) =
                (self.sim.reg.classes[class].req, self.sim.reg.classes[class].rep, self.signature[class]);
            let cap = slots_for(rep, &self.sim.groups[g].offerings[o], self.usable[g][o]);
            let s = &mut self.singles[sig];
            let spare = cap.minus(req).demand();
            let o = s.others;
            let taken = [(spare.cpu, o.cpu), (spare.memory, o.memory), (spare.pods, o.pods)]
                .iter()
                .filter(|&&(_, other)| other > 0)
                .map(|&(room, other)| room.max(0) as f64 / other as f64)
                .fold(1.0f64, f64::min);
            s.nodes -= 1;
            let rest = |v: i64| ((v as f64) * (1.0 - taken)).round() as i64;
            s.others = Demand { cpu: rest(o.cpu), memory: rest(o.memory), pods: rest(o.pods) };
        }
        let advised = self.mix.as_ref().is_some_and(|m| m.target[pod].is_some());
        if matches!(strategy, Strategy::Planner(_)) && !advised && !self.suits(class, pod, n) {
            // The best shape is out of reach (limits, max nodes, expander): what it got is the yardstick.
            let mono = self.sim.reg.classes[class].mono;
            let s = &mut self.shares[mono];
            s.best = s.per_group[g] / SHAPE_SLACK;
        }
        let offering = &self.sim.groups[g].offerings[o];
        let u = &mut self.usage[g];
        u.nodes += 1;
        u.monthly_cost += offering.monthly_price;
        u.cpu_milli += offering.allocatable.cpu_milli;
        u.memory += offering.allocatable.memory;
        Some(Opened { node: n, group: g, offering: o })
    }

    /// The (group, offering) a new node for `class` should be.
    fn choose(&mut self, class: usize, pod: usize, strategy: Strategy) -> Option<(usize, usize)> {
        let groups = self.sim.groups;
        let c = &self.sim.reg.classes[class];
        let (req, singleton, rep) = (c.req, c.singleton, c.rep);
        // With advice, the node is sized for what is still bound for its shape.
        let demand = match self.mix.as_ref().and_then(|m| Some((m, m.target[pod]?))) {
            Some((mix, t)) => self.shape_demand[self.signature[class] * mix.shapes + t],
            None => self.demand[self.signature[class]],
        };
        // A one-per-node pod's node is sized for it plus its share of the other pods not yet given
        // room on such nodes: every such pod needs a node anyway, so the others should fill those
        // nodes, not new ones.
        let single_want = {
            let s = self.singles[self.signature[class]];
            let k = s.nodes.max(1);
            Demand {
                cpu: req.cpu + s.others.cpu / k,
                memory: req.memory + s.others.memory / k,
                pods: 1 + s.others.pods / k,
            }
        };
        let mut best: Option<(Score, usize, usize)> = None;
        // The planner opens a node of a shape that suits the pod when it may; another one only if none may.
        let mut best_misshapen: Option<(Score, usize, usize)> = None;
        let (mut cheapest_in_group, mut largest) = (None, None);
        for (g, group) in groups.iter().enumerate() {
            if !self.zone_preferred(g) {
                continue;
            }
            if let Strategy::Fixed { group: fg, .. } = strategy
                && fg != g
            {
                continue;
            }
            if self.usage[g].nodes >= group.max_nodes
                || !self.sim.static_ok_new(class, g)
                || self.sim.check(class, Target::New(g)) != Fit::Yes
            {
                continue;
            }
            for (o, offering) in group.offerings.iter().enumerate() {
                if let Strategy::Fixed { offering: fo, .. } = strategy
                    && fo != o
                {
                    continue;
                }
                let cap = self.usable[g][o];
                if group.backoff.contains(&offering.id)
                    || !req.fits_in(cap)
                    || !extended_offered(rep, offering)
                    || group.limit_exceeded(&self.usage[g], offering).is_some()
                {
                    continue;
                }
                let score = match strategy {
                    Strategy::Planner(expander) => {
                        let want = if singleton { single_want } else { demand };
                        // GPU nodes are sized by their GPUs, not their CPU.
                        let cap = slots_for(rep, offering, cap);
                        let score = Score::planner(expander, want, cap, offering.monthly_price, group.priority);
                        if !self.suits_group(class, pod, g) {
                            self.consider(&mut best_misshapen, score, g, o);
                            continue;
                        }
                        score
                    }
                    Strategy::CheapestFit => {
                        // The group is ranked by its cheapest fitting offering; the node may grow to its
                        // largest one while it fills.
                        let p = offering.monthly_price;
                        cheapest_in_group = Some(cheapest_in_group.map_or(p, |c: f64| c.min(p)));
                        if largest.is_none_or(|l: usize| {
                            (cap.cpu, cap.memory) > (self.usable[g][l].cpu, self.usable[g][l].memory)
                        }) {
                            largest = Some(o);
                        }
                        continue;
                    }
                    Strategy::Fixed { .. } | Strategy::NoNewNodes => Score::default(),
                };
                self.consider(&mut best, score, g, o);
            }
            if let (Some(price), Some(o)) = (cheapest_in_group.take(), largest.take()) {
                self.consider(&mut best, Score { keys: [price, 0.0, 0.0] }, g, o);
            }
        }
        best.or(best_misshapen).map(|(_, g, o)| (g, o))
    }

    fn consider(&self, best: &mut Option<(Score, usize, usize)>, score: Score, g: usize, o: usize) {
        let tie = (self.usage[g].nodes, g, o);
        if best.as_ref().is_none_or(|(b, bg, bo)| score.better(b, tie, (self.usage[*bg].nodes, *bg, *bo))) {
            *best = Some((score, g, o));
        }
    }
}
