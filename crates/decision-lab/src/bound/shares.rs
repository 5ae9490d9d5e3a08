//! The LP-relaxation bound as weighted shares with one weighting per group.
//!
//! For weights `w ≥ 0` summing to at most 1 over the dimensions, a node of offering `o` carrying pods
//! costs at least the sum over its pods of `price(o) · Σ w_d · req_d / cap_d(o)` (its pods use at most
//! all of every dimension). The weights may differ from node to node, so each group gets its own: a
//! memory-rich family charges by CPU, a CPU-rich one by memory, which is what lets the bound see that a
//! pod whose shape fits no family pays for the dimension it strands. Each pod is charged its cheapest
//! share over the offerings it could use; any weights give a valid bound, and a search per group in turn
//! finds good ones.

use super::problem::{Kind, Offer, Problem};

/// Sweeps over the groups.
const SWEEPS: usize = 3;
/// Steps of the grid over one weighting of CPU, memory and pods for every offering.
const GRID: usize = 20;
/// Steps of the subgradient ascent.
const ASCENT_STEPS: usize = 300;

/// What offer `o` charges a pod requesting `req` under weights `w`: its price times the weighted share of
/// its capacity the pod takes.
fn charge(p: &Problem, o: usize, w: &[f64], req: &[f64]) -> f64 {
    let Offer { price, capacity: cap } = &p.offers[o];
    price * w.iter().zip(req).zip(cap).filter(|((_, r), _)| **r > 0.0).map(|((w, r), c)| w * r / c).sum::<f64>()
}

/// The search state: per group a weighting, per kind and group its cheapest share there.
struct Shares<'p> {
    p: &'p Problem,
    groups: usize,
    /// Per option set, per group: the offerings of that group in the set.
    by_group: Vec<Vec<Vec<usize>>>,
    /// Per kind, per group: its cheapest share on that group's offerings (infinite where it cannot go).
    cheapest: Vec<Vec<f64>>,
}

impl<'p> Shares<'p> {
    /// The cheapest share of `kind` on the offerings of group `g` under weights `w`.
    fn share(&self, kind: usize, g: usize, w: &[f64]) -> f64 {
        let Kind { requests: req, set, .. } = &self.p.kinds[kind];
        self.by_group[*set][g].iter().map(|&o| charge(self.p, o, w, req)).fold(f64::INFINITY, f64::min)
    }

    fn total(&self) -> f64 {
        self.p
            .kinds
            .iter()
            .zip(&self.cheapest)
            .map(|(kind, c)| kind.count * c.iter().copied().fold(f64::INFINITY, f64::min))
            .sum()
    }
}

/// The best weighting of CPU, memory and pods shared by every offering, on a grid refined around its best
/// point: the bound it gives and the weights (over all dimensions, the others at zero).
pub(super) fn best_uniform(p: &Problem) -> (f64, Vec<f64>) {
    let value = |a: f64, b: f64| -> f64 {
        let mut w = vec![0.0; p.dims];
        w[..3].copy_from_slice(&[a, b, (1.0 - a - b).max(0.0)]);
        p.kinds
            .iter()
            .map(|Kind { requests: req, set, count: n }| {
                n * p.sets[*set].iter().map(|&o| charge(p, o, &w, req)).fold(f64::INFINITY, f64::min)
            })
            .sum()
    };
    let step = 1.0 / GRID as f64;
    let mut best = (0.0, 0.0, 0.0);
    for i in 0..=GRID {
        for j in 0..=GRID - i {
            let (a, b) = (i as f64 * step, j as f64 * step);
            let v = value(a, b);
            if v > best.0 {
                best = (v, a, b);
            }
        }
    }
    let (fine, (_, a0, b0)) = (step / 10.0, best);
    for i in -10i32..=10 {
        for j in -10i32..=10 {
            let (a, b) = (a0 + f64::from(i) * fine, b0 + f64::from(j) * fine);
            if a >= 0.0 && b >= 0.0 && a + b <= 1.0 {
                let v = value(a, b);
                if v > best.0 {
                    best = (v, a, b);
                }
            }
        }
    }
    let mut w = vec![0.0; p.dims];
    if let [cpu, mem, pods, ..] = w.as_mut_slice() {
        (*cpu, *mem, *pods) = (best.1, best.2, (1.0 - best.1 - best.2).max(0.0));
    }
    (best.0, w)
}

/// The best bound the search finds, from two starts: `start` for every group, and each group charging by
/// the one dimension that makes its own pods dearest (what a group's pods alone would pay).
pub(super) fn bound(p: &Problem, start: &[f64]) -> f64 {
    if p.kinds.is_empty() {
        return 0.0;
    }
    let groups = p.group_of.iter().copied().max().map_or(0, |g| g + 1);
    let mut by_group = vec![vec![Vec::new(); groups]; p.sets.len()];
    for (set, offers) in p.sets.iter().enumerate() {
        for &o in offers {
            by_group[set][p.group_of[o]].push(o);
        }
    }
    let mut s = Shares { p, groups, by_group, cheapest: Vec::new() };
    let uniform = vec![start.to_vec(); groups];
    let own: Vec<Vec<f64>> = (0..groups)
        .map(|g| {
            let unit = |d: usize| {
                let mut w = vec![0.0; p.dims];
                w[d] = 1.0;
                w
            };
            let dearest = (0..p.dims)
                .map(|d| {
                    let w = unit(d);
                    let v: f64 = (0..p.kinds.len())
                        .map(|k| (p.kinds[k].count, s.share(k, g, &w)))
                        .filter(|(_, v)| v.is_finite())
                        .map(|(n, v)| n * v)
                        .sum();
                    (v, d)
                })
                .fold((f64::NEG_INFINITY, 0), |a, b| if b.0 > a.0 { b } else { a });
            unit(dearest.1)
        })
        .collect();
    let first = search(&mut s, uniform);
    let second = search(&mut s, own);
    let (value, weights) = if first.0 >= second.0 { first } else { second };
    value.max(ascend(&s, weights))
}

/// Projected subgradient ascent on all weightings at once: the bound is concave in them, and where a
/// coordinate search stalls on a kink (raising one group's weights pays only with another's) the
/// subgradient still moves. Returns the best bound seen.
fn ascend(s: &Shares<'_>, mut weights: Vec<Vec<f64>>) -> f64 {
    let p = s.p;
    let mut best = 0.0f64;
    for t in 0..ASCENT_STEPS {
        let mut grad = vec![vec![0.0; p.dims]; s.groups];
        let mut total = 0.0;
        for Kind { requests: req, set, count: n } in &p.kinds {
            // The offering that charges this kind least, and the charge.
            let mut low = (f64::INFINITY, usize::MAX);
            for &o in &p.sets[*set] {
                let v = charge(p, o, &weights[p.group_of[o]], req);
                if v < low.0 {
                    low = (v, o);
                }
            }
            total += n * low.0;
            let Offer { price, capacity: cap } = &p.offers[low.1];
            for (d, g) in grad[p.group_of[low.1]].iter_mut().enumerate() {
                if req[d] > 0.0 {
                    *g += n * price * req[d] / cap[d];
                }
            }
        }
        best = best.max(total);
        let rate = 0.3 / ((t + 1) as f64).sqrt();
        for (w, g) in weights.iter_mut().zip(&grad) {
            let norm: f64 = g.iter().sum();
            if norm > 0.0 {
                for (w, g) in w.iter_mut().zip(g) {
                    *w += rate * g / norm;
                }
                project_to_simplex(w);
            }
        }
    }
    best
}

/// Euclidean projection onto `{w ≥ 0, Σ w = 1}`.
fn project_to_simplex(w: &mut [f64]) {
    let mut sorted = w.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let (mut sum, mut theta) = (0.0, 0.0);
    for (i, v) in sorted.iter().enumerate() {
        sum += v;
        let t = (sum - 1.0) / (i + 1) as f64;
        if v - t > 0.0 {
            theta = t;
        }
    }
    for v in w.iter_mut() {
        *v = (*v - theta).max(0.0);
    }
}

/// Coordinate search over the groups' weightings from `weights`; moves that keep the bound level are
/// taken too (a group's move often pays only once another group has moved).
#[allow(clippy::needless_range_loop, reason = "a group index addresses weights, shares and offerings alike")]
fn search(s: &mut Shares<'_>, mut weights: Vec<Vec<f64>>) -> (f64, Vec<Vec<f64>>) {
    let p = s.p;
    s.cheapest = (0..p.kinds.len()).map(|k| (0..s.groups).map(|g| s.share(k, g, &weights[g])).collect()).collect();
    let mut best = s.total();
    for _ in 0..SWEEPS {
        let before = best;
        for g in 0..s.groups {
            let here: Vec<usize> = (0..p.kinds.len()).filter(|&k| s.cheapest[k][g].is_finite()).collect();
            if here.is_empty() {
                continue;
            }
            // The other groups' cheapest share per kind; kinds this group cannot take keep their cost.
            let others: Vec<f64> = s
                .cheapest
                .iter()
                .map(|c| c.iter().enumerate().filter(|(h, _)| *h != g).map(|(_, v)| *v).fold(f64::INFINITY, f64::min))
                .collect();
            let base: f64 = (0..p.kinds.len())
                .filter(|k| !s.cheapest[*k][g].is_finite())
                .map(|k| p.kinds[k].count * others[k])
                .sum();
            let value = |s: &Shares<'_>, w: &[f64]| -> (f64, Vec<f64>) {
                let mine: Vec<f64> = here.iter().map(|&k| s.share(k, g, w)).collect();
                let total =
                    base + here.iter().zip(&mine).map(|(&k, m)| p.kinds[k].count * m.min(others[k])).sum::<f64>();
                (total, mine)
            };
            // Move weight toward one dimension at a time, in halving steps.
            let mut step = 0.5;
            while step > 0.01 {
                let mut improved = false;
                for d in 0..p.dims {
                    let mut w: Vec<f64> = weights[g].iter().map(|v| v * (1.0 - step)).collect();
                    w[d] += step;
                    let (v, mine) = value(s, &w);
                    let level = v >= best * (1.0 - 1e-12);
                    if level && w[d] > weights[g][d] + 1e-9 {
                        improved |= v > best * (1.0 + 1e-12);
                        best = best.max(v);
                        weights[g] = w;
                        for (i, &k) in here.iter().enumerate() {
                            s.cheapest[k][g] = mine[i];
                        }
                    }
                }
                if !improved {
                    step /= 2.0;
                }
            }
        }
        if best <= before * (1.0 + 1e-9) {
            break;
        }
    }
    // Level moves may have drifted: the bound is what the final weights give.
    (s.total().min(best), weights)
}
