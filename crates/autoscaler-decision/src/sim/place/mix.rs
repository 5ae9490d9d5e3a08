//! Which node shape each pending pod should land on, from the fractional optimum of the scale-up.
//!
//! A pod-at-a-time planner sends each pod to the family whose shape suits it best. With complementary
//! shapes that is not the cheapest plan: memory-heavy pods (little CPU, much memory) and CPU-heavy pods
//! together are carried cheapest when part of the memory-heavy ones share balanced nodes with the
//! CPU-heavy ones, filling the memory those would strand. The linear program below finds that split: for each kind of pod (same
//! groups it may use, similar memory per CPU) the share that should go to each group, with each group's
//! node count fractional and priced at its largest offering. Each pod then gets a target shape (groups
//! of the same memory per CPU are one shape, so zone constraints and the expander still pick the
//! group), and the planner interleaves each shape's pods so every node fills with the mix.

use std::collections::HashMap;

use super::Placer;
use crate::sim::amounts::Demand;
use crate::simplex;

/// The largest tableau solved (8-byte cells, so 32 MiB); a snapshot with more kinds of pods than that
/// allows is planned without advice.
const MAX_CELLS: usize = 4_000_000;

/// The advice: a target shape per pod, and the shape of each group.
pub(super) struct Mix {
    /// Per pod: the shape its node should have, when the program advised one.
    pub(super) target: Vec<Option<usize>>,
    /// Per group: its shape (groups without a usable offering get a shape of their own).
    pub(super) shape_of: Vec<usize>,
    /// How many shapes there are.
    pub(super) shapes: usize,
}

/// A kind of pod for the program: its pods, their CPU and memory, the groups it may use.
struct Kind {
    pods: Vec<usize>,
    cpu: f64,
    mem: f64,
    groups: Vec<usize>,
}

/// The default granularity of the advice: memory per CPU in quarter octaves (pods closer than that are
/// one kind, groups closer than that one shape).
pub(crate) const DEFAULT_STEPS: u32 = 4;

/// Memory per CPU in `steps` steps per octave.
fn ratio_step(cpu: i64, mem: i64, steps: u32) -> i64 {
    let ratio = (mem.max(1) as f64) / (cpu.max(1) as f64);
    (ratio.log2() * f64::from(steps)).round() as i64
}

impl Placer<'_> {
    /// Takes the advice for the planner's pods, if any: first-fit cursors per target shape and the
    /// demand still bound for each shape.
    pub(super) fn take_advice(&mut self) {
        self.mix = self.advise_mix();
        let Some(mix) = &self.mix else { return };
        let monos = self.cursors.len();
        self.cursors = vec![0; monos * (mix.shapes + 1)];
        self.shape_demand = vec![Demand::default(); self.sig_groups.len() * mix.shapes];
        for (i, t) in mix.target.iter().enumerate() {
            if let Some(t) = t {
                let c = self.sim.placed_class[i];
                let r = self.sim.reg.classes[c].req;
                super::shift(&mut self.shape_demand[self.signature[c] * mix.shapes + t], r, 1);
            }
        }
    }

    /// How far through its class's pods bound for the same shape each pod is, in parts per billion
    /// (zero without advice). Taking pods in this order interleaves every shape's kinds in the
    /// proportions the advice gave, so each node fills with the mix and no dimension strands.
    pub(super) fn progress(&self) -> Vec<u64> {
        let mut progress = vec![0; self.pods.len()];
        let Some(mix) = &self.mix else { return progress };
        let mut counts: std::collections::HashMap<(usize, usize), (u64, u64)> = std::collections::HashMap::new();
        let key = |i: usize| mix.target[i].map(|t| (self.sim.placed_class[i], t));
        for k in (0..self.pods.len()).filter_map(key) {
            counts.entry(k).or_default().1 += 1;
        }
        for (i, p) in progress.iter_mut().enumerate() {
            if let Some((seen, total)) = key(i).and_then(|k| counts.get_mut(&k)) {
                *p = *seen * 1_000_000_000 / *total;
                *seen += 1;
            }
        }
        progress
    }

    /// Whether the planner took advice (there were shapes to choose between).
    pub(crate) fn advised(&self) -> bool {
        self.mix.is_some()
    }

    /// The first-fit cursor of a pod of `class`: per monotone key and, with advice, per target shape.
    pub(super) fn cursor(&self, class: usize, pod: usize) -> usize {
        let mono = self.sim.reg.classes[class].mono;
        match &self.mix {
            Some(mix) => mono * (mix.shapes + 1) + mix.target[pod].unwrap_or(mix.shapes),
            None => mono,
        }
    }

    /// The advice for this placer's pods, or `None` when there is nothing to choose between (one
    /// shape) or the program could not be solved.
    fn advise_mix(&self) -> Option<Mix> {
        let groups = self.sim.groups;
        // Each group's largest usable offering stands for it: new nodes open large and shrink to fit.
        let rep: Vec<Option<(f64, f64, f64)>> = groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                group
                    .offerings
                    .iter()
                    .enumerate()
                    .filter(|(o, off)| {
                        let cap = self.usable[g][*o];
                        !group.backoff.contains(&off.id) && cap.cpu > 0 && cap.memory > 0
                    })
                    .max_by_key(|(o, _)| (self.usable[g][*o].cpu, self.usable[g][*o].memory))
                    .map(|(o, off)| (off.monthly_price, self.usable[g][o].cpu as f64, self.usable[g][o].memory as f64))
            })
            .collect();
        // Shapes: memory per CPU of the representative; a group without one is a shape of its own.
        let mut shape_ids: HashMap<Result<i64, usize>, usize> = HashMap::new();
        let shape_of: Vec<usize> = rep
            .iter()
            .enumerate()
            .map(|(g, r)| {
                let key = r.map_or(Err(g), |(_, cpu, mem)| Ok(ratio_step(cpu as i64, mem as i64, self.advice_steps)));
                let next = shape_ids.len();
                *shape_ids.entry(key).or_insert(next)
            })
            .collect();
        let shapes = shape_ids.len();
        if shape_ids.keys().filter(|k| k.is_ok()).count() < 2 {
            return None;
        }

        // Kinds: pods with the same option groups and about the same memory per CPU. Pods with extended
        // resources have their groups decided by them (and are sized by them): they stay out.
        let mut kind_ids: HashMap<(usize, i64), usize> = HashMap::new();
        let mut kinds: Vec<Kind> = Vec::new();
        for (i, &c) in self.sim.placed_class.iter().enumerate() {
            let class = &self.sim.reg.classes[c];
            if self.hopeless[c] || class.extended {
                continue;
            }
            let sig = self.signature[c];
            let k = *kind_ids
                .entry((sig, ratio_step(class.req.cpu, class.req.memory, self.advice_steps)))
                .or_insert_with(|| {
                    let usable: Vec<usize> =
                        self.sig_groups[sig].iter().copied().filter(|&g| rep[g].is_some()).collect();
                    kinds.push(Kind { pods: Vec::new(), cpu: 0.0, mem: 0.0, groups: usable });
                    kinds.len() - 1
                });
            let kind = &mut kinds[k];
            kind.pods.push(i);
            kind.cpu += class.req.cpu as f64;
            kind.mem += class.req.memory as f64;
        }
        kinds.retain(|k| !k.groups.is_empty());
        if kinds.is_empty() {
            return None;
        }

        let shares = solve(&kinds, &rep)?;
        let mut target = vec![None; self.sim.placed_class.len()];
        for (kind, split) in kinds.iter().zip(&shares) {
            // Pods in input order (a Deployment's replicas stay together) fill each group's share in turn.
            let n = kind.pods.len() as f64;
            let mut cumulative = 0.0;
            let mut next = 0;
            for (&g, share) in kind.groups.iter().zip(split) {
                cumulative += share;
                while next < kind.pods.len() && (next as f64 + 0.5) / n <= cumulative + 1e-9 {
                    target[kind.pods[next]] = Some(shape_of[g]);
                    next += 1;
                }
            }
            // Rounding leaves at most a pod or two: they go with the last group that got a share.
            let last = kind.groups.iter().zip(split).rev().find(|(_, s)| **s > 1e-9).map(|(g, _)| shape_of[*g]);
            for &i in &kind.pods[next..] {
                target[i] = last;
            }
        }
        Some(Mix { target, shape_of, shapes })
    }
}

/// The program: per kind, the share of it each of its groups carries (summing to one); per group a
/// fractional node count at the group's representative price, whose CPU and memory cover the shares.
/// Returns the shares per kind, in the order of the kind's groups.
fn solve(kinds: &[Kind], rep: &[Option<(f64, f64, f64)>]) -> Option<Vec<Vec<f64>>> {
    let mut used: Vec<usize> = kinds.iter().flat_map(|k| k.groups.iter().copied()).collect();
    used.sort_unstable();
    used.dedup();
    let row_of: HashMap<usize, usize> = used.iter().enumerate().map(|(i, &g)| (g, i)).collect();
    let shares: usize = kinds.iter().map(|k| k.groups.len()).sum();
    // Columns: the shares, then a node count per used group, then a slack per capacity row.
    let (nodes_at, slack_at) = (shares, shares + used.len());
    let cols = slack_at + 2 * used.len();
    let rows = kinds.len() + 2 * used.len();
    if rows * (cols + rows) > MAX_CELLS {
        return None;
    }
    let mut a = vec![vec![0.0; cols]; rows];
    let mut b = vec![0.0; rows];
    let mut c = vec![0.0; cols];
    let mut col = 0;
    for (k, kind) in kinds.iter().enumerate() {
        b[k] = 1.0;
        for &g in &kind.groups {
            let (_, cpu, mem) = rep[g]?;
            let u = row_of[&g];
            a[k][col] = 1.0;
            a[kinds.len() + 2 * u][col] = kind.cpu / cpu;
            a[kinds.len() + 2 * u + 1][col] = kind.mem / mem;
            col += 1;
        }
    }
    for (u, &g) in used.iter().enumerate() {
        let (price, _, _) = rep[g]?;
        c[nodes_at + u] = price;
        for d in 0..2 {
            let row = kinds.len() + 2 * u + d;
            a[row][nodes_at + u] = -1.0;
            a[row][slack_at + 2 * u + d] = 1.0;
        }
    }
    let x = simplex::minimize(&a, &b, &c)?;
    let mut out = Vec::with_capacity(kinds.len());
    let mut col = 0;
    for kind in kinds {
        out.push(x[col..col + kind.groups.len()].to_vec());
        col += kind.groups.len();
    }
    Some(out)
}
