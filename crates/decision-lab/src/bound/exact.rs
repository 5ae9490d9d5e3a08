//! The LP relaxation itself, solved by column generation.
//!
//! The program: choose fractional numbers of node *patterns* (an offering with a fractional load of each
//! pod kind that fits its capacity in every dimension) covering every kind's count, at least cost. The
//! restricted master holds a few patterns; its dual gives a price `y_k` per pod of each kind; for every
//! offering a small program finds the load worth most at those prices (the pricing problem), and the
//! patterns worth more than their offering's price join the master.
//!
//! The bound never depends on the master having converged: for any prices `y ≥ 0`, if `v(o)` is at
//! least what any load of offering `o` is worth, `θ = max v(o) / price(o)` makes `y / θ` a feasible
//! dual, so `Σ count_k · y_k / θ` is a valid lower bound (Lagrangian). `v(o)` comes from the pricing
//! problem's own dual, which bounds it from above whatever the rounding. At convergence this bound
//! equals the LP optimum.

use super::problem::{Kind, Offer, Problem};
use autoscaler_decision::simplex::{self, Tableau};

/// Rounds of pricing the master may take.
const ROUNDS: usize = 150;
/// Patterns that may join the master per round (the most valuable first).
const ADD_PER_ROUND: usize = 200;
/// Patterns the master keeps per kind (the ones nearest to entering).
const KEEP_PER_KIND: usize = 10;
/// How far prices lean toward the best ones so far.
const SMOOTHING: f64 = 0.5;
/// The bound is close enough to the master's cost when within this share of it.
const TOLERANCE: f64 = 1e-5;
/// Entries smaller than this are zero.
const EPS: f64 = 1e-9;

/// The restricted master `min cost·λ` s.t. `Σ_j a_kj λ_j - s_k = count_k`, as a tableau whose first
/// `kinds` columns hold the basis inverse (they started as unit columns), so new patterns can join.
/// Columns: inverse (never enter), surplus, patterns.
struct Master {
    kinds: usize,
    tableau: Tableau,
    /// Pivots left.
    budget: usize,
}

impl Master {
    /// Starts from one pattern per kind (`fit[k]` pods of kind `k` on an offering of price `price[k]`),
    /// a feasible basis with no phase one.
    fn new(counts: &[f64], fit: &[f64], price: &[f64]) -> Self {
        let kinds = counts.len();
        let mut t = Vec::with_capacity(kinds + 1);
        let mut objective = vec![0.0; 3 * kinds + 1];
        for k in 0..kinds {
            let mut row = vec![0.0; 3 * kinds + 1];
            row[k] = 1.0 / fit[k];
            row[kinds + k] = -1.0 / fit[k];
            row[2 * kinds + k] = 1.0;
            row[3 * kinds] = counts[k] / fit[k];
            t.push(row);
            let y = price[k] / fit[k];
            objective[k] = -y;
            objective[kinds + k] = y;
            objective[3 * kinds] -= price[k] * counts[k] / fit[k];
        }
        t.push(objective);
        Master { kinds, tableau: Tableau::new(t, (2 * kinds..3 * kinds).collect()), budget: 50 * kinds + 5_000 }
    }

    /// The price per pod of each kind.
    fn duals(&self) -> Vec<f64> {
        self.tableau.objective()[..self.kinds].iter().map(|r| (-r).max(0.0)).collect()
    }

    /// Adds the pattern `load` (per kind) of cost `price`.
    fn add(&mut self, load: &[(usize, f64)], price: f64) {
        let tableau = &self.tableau;
        let mut column: Vec<f64> =
            (0..self.kinds).map(|r| load.iter().map(|&(k, a)| a * tableau.entry(r, k)).sum()).collect();
        // The tableau's own prices (not clamped), so the new column's reduced cost is consistent with it.
        let priced: f64 = load.iter().map(|&(k, a)| -a * tableau.objective()[k]).sum();
        column.push(price - priced);
        self.tableau.push_column(&column);
    }

    /// Drops the non-basic patterns with the largest reduced costs until at most `keep` patterns remain:
    /// every pivot costs the width of the tableau.
    fn prune(&mut self, keep: usize) {
        let (first, cols) = (2 * self.kinds, self.tableau.objective().len());
        if cols - first <= keep {
            return;
        }
        let basic = self.tableau.basic();
        let reduced = self.tableau.objective();
        let mut order: Vec<usize> = (first..cols).filter(|&j| !basic[j]).collect();
        order.sort_by(|&a, &b| reduced[b].total_cmp(&reduced[a]));
        let mut drop = vec![false; cols];
        for &j in order.iter().take(cols - first - keep) {
            drop[j] = true;
        }
        self.tableau.drop_columns(&drop);
    }

    /// Pivots to the optimum over the patterns it has; false when the budget runs out.
    fn optimize(&mut self) -> bool {
        let cols = self.tableau.objective().len();
        self.tableau.optimize(self.kinds..cols, &mut self.budget)
    }
}

/// A load of a node: (kind, fractional pods of it).
type Load = Vec<(usize, f64)>;

/// What pricing found for an offering: the load worth most at the prices, and at most what any load
/// can be worth.
struct Priced {
    load: Load,
    most: f64,
}

/// The most a node of offering `o` can carry at prices `y` (kinds `users` may use it): the load worth
/// most and an upper bound on what any load is worth (from the pricing problem's dual).
fn price_offer(p: &Problem, users: &[usize], o: usize, y: &[f64]) -> Option<Priced> {
    let kinds: Vec<usize> = users.iter().copied().filter(|&k| y[k] > EPS).collect();
    if kinds.is_empty() {
        return None;
    }
    let cap = &p.offers[o].capacity;
    let dims: Vec<usize> = (0..p.dims).filter(|&d| kinds.iter().any(|&k| p.kinds[k].requests[d] > 0.0)).collect();
    // Each dimension's row is divided by the capacity, so rows are on one scale; a dimension the offering
    // lacks admits none of the kinds that need it.
    let usable: Vec<usize> =
        kinds.into_iter().filter(|&k| dims.iter().all(|&d| p.kinds[k].requests[d] == 0.0 || cap[d] > 0.0)).collect();
    if usable.is_empty() {
        return None;
    }
    let n = usable.len() + dims.len();
    let a: Vec<Vec<f64>> = dims
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let mut row: Vec<f64> =
                usable.iter().map(|&k| if cap[d] > 0.0 { p.kinds[k].requests[d] / cap[d] } else { 0.0 }).collect();
            row.resize(n, 0.0);
            row[usable.len() + i] = 1.0;
            row
        })
        .collect();
    let mut c: Vec<f64> = usable.iter().map(|&k| -y[k]).collect();
    c.resize(n, 0.0);
    let simplex::Solution { x, duals: w } = simplex::solve(&a, &vec![1.0; dims.len()], &c)?;
    let load: Load = usable.iter().zip(&x).filter(|(_, v)| **v > EPS).map(|(&k, &v)| (k, v)).collect();
    // The dual's prices per (scaled) dimension, made feasible for every kind by scaling up.
    let pi: Vec<f64> = w.iter().map(|v| (-v).max(0.0)).collect();
    let mut scale = 1.0f64;
    for &k in &usable {
        let covered: f64 = dims.iter().zip(&pi).map(|(&d, q)| q * p.kinds[k].requests[d] / cap[d]).sum();
        if covered <= 0.0 {
            return Some(Priced { load, most: f64::INFINITY });
        }
        scale = scale.max(y[k] / covered);
    }
    Some(Priced { load, most: pi.iter().sum::<f64>() * scale })
}

/// The LP relaxation's value (a valid lower bound even when the rounds run out first); 0 without pods.
pub(super) fn bound(p: &Problem) -> f64 {
    let kinds = p.kinds.len();
    if kinds == 0 {
        return 0.0;
    }
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); p.offers.len()];
    for (k, kind) in p.kinds.iter().enumerate() {
        for &o in &p.sets[kind.set] {
            users[o].push(k);
        }
    }
    // Start: each kind alone on the offering that carries it cheapest.
    let (mut fit, mut price) = (Vec::with_capacity(kinds), Vec::with_capacity(kinds));
    for Kind { requests: req, set, .. } in &p.kinds {
        let best = p.sets[*set]
            .iter()
            .map(|&o| {
                let Offer { price: pr, capacity: cap } = &p.offers[o];
                let f =
                    req.iter().zip(cap).filter(|(r, _)| **r > 0.0).map(|(r, c)| c / r).fold(f64::INFINITY, f64::min);
                (pr / f, f, *pr)
            })
            .filter(|(unit, f, _)| unit.is_finite() && *f > 0.0)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let Some((_, f, pr)) = best else { return 0.0 };
        fit.push(f);
        price.push(pr);
    }
    let counts: Vec<f64> = p.kinds.iter().map(|k| k.count).collect();
    let mut master = Master::new(&counts, &fit, &price);
    let mut best = 0.0f64;
    // Prices are smoothed toward the ones that gave the best bound so far (Wentges): the master's own
    // duals swing from round to round and new patterns come slowly near the optimum.
    let mut center: Option<Vec<f64>> = None;
    'rounds: for _ in 0..ROUNDS {
        if !master.optimize() {
            break;
        }
        master.prune(KEEP_PER_KIND * kinds);
        let duals = master.duals();
        let value = master.tableau.value();
        let mut alpha = if center.is_some() { SMOOTHING } else { 0.0 };
        loop {
            let y: Vec<f64> = match &center {
                Some(c) if alpha > 0.0 => c.iter().zip(&duals).map(|(c, d)| alpha * c + (1.0 - alpha) * d).collect(),
                _ => duals.clone(),
            };
            let mut theta = 0.0f64;
            let mut better: Vec<(f64, usize, Load)> = Vec::new();
            for (o, users) in users.iter().enumerate() {
                let offer_price = p.offers[o].price;
                let Some(Priced { load, most }) = price_offer(p, users, o, &y) else { continue };
                theta = theta.max(most / offer_price);
                // A pattern joins when it improves the master at the master's own prices.
                let worth: f64 = load.iter().map(|&(k, v)| v * duals[k]).sum();
                if worth > offer_price * (1.0 + 1e-7) {
                    better.push((worth / offer_price, o, load));
                }
            }
            let priced: f64 = counts.iter().zip(&y).map(|(n, v)| n * v).sum();
            if theta > 0.0 && theta.is_finite() && priced / theta * (1.0 - 1e-9) > best {
                best = priced / theta * (1.0 - 1e-9);
                center = Some(y.clone());
            }
            if value - best <= TOLERANCE * value {
                break 'rounds;
            }
            if better.is_empty() {
                if alpha > 0.0 {
                    alpha = 0.0;
                    continue;
                }
                break 'rounds;
            }
            better.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for (_, o, load) in better.into_iter().take(ADD_PER_ROUND) {
                master.add(&load, p.offers[o].price);
            }
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::super::problem::{Kind, Offer, Problem};
    use super::bound;
    use autoscaler_decision::simplex;

    /// The full primal (pods of each kind per offering, nodes per offering), solved directly.
    fn primal(p: &Problem) -> f64 {
        let (offers, kinds, dims) = (p.offers.len(), p.kinds.len(), p.dims);
        let pairs: Vec<(usize, usize)> =
            (0..kinds).flat_map(|k| p.sets[p.kinds[k].set].iter().map(move |&o| (k, o))).collect();
        // Columns: nodes per offering, pods per (kind, offering), a slack per (offering, dimension).
        let cols = offers + pairs.len() + offers * dims;
        let mut a = vec![vec![0.0; cols]; kinds + offers * dims];
        let mut b = vec![0.0; kinds + offers * dims];
        let mut c = vec![0.0; cols];
        for (o, offer) in p.offers.iter().enumerate() {
            c[o] = offer.price;
        }
        for (j, &(k, o)) in pairs.iter().enumerate() {
            a[k][offers + j] = 1.0;
            for d in 0..dims {
                a[kinds + o * dims + d][offers + j] = p.kinds[k].requests[d];
            }
        }
        for (k, kind) in p.kinds.iter().enumerate() {
            b[k] = kind.count;
        }
        for o in 0..offers {
            for d in 0..dims {
                let row = kinds + o * dims + d;
                a[row][o] = -p.offers[o].capacity[d];
                a[row][offers + pairs.len() + row - kinds] = 1.0;
            }
        }
        let x = simplex::minimize(&a, &b, &c).unwrap_or_default();
        x.iter().zip(&c).map(|(x, c)| x * c).sum()
    }

    #[test]
    fn column_generation_reaches_the_lp_optimum() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..30 {
            let offers: Vec<Offer> = (0..5)
                .map(|_| {
                    let (cpu, mem) = (2.0 + next(30) as f64, 2.0 + next(60) as f64);
                    let price = cpu * 3.0 + mem * (0.5 + next(10) as f64 / 10.0);
                    Offer { price, capacity: vec![cpu, mem, 10.0 + next(20) as f64] }
                })
                .collect();
            let sets = vec![vec![0, 1, 2, 3, 4], vec![1, 3], vec![0, 2, 4]];
            let kinds: Vec<Kind> = (0..6)
                .map(|_| {
                    let requests = vec![0.1 + next(20) as f64 / 10.0, 0.1 + next(40) as f64 / 10.0, 1.0];
                    Kind { requests, set: next(3) as usize, count: 1.0 + next(50) as f64 }
                })
                .collect();
            let p = Problem { group_of: (0..offers.len()).collect(), offers, sets, kinds, dims: 3 };
            let (ours, exact) = (bound(&p), primal(&p));
            assert!(exact > 0.0 && ours <= exact * (1.0 + 1e-9), "bound {ours} above the optimum {exact}");
            assert!(ours >= exact * (1.0 - 1e-4), "bound {ours} short of the optimum {exact}");
        }
    }
}
