//! The LP-relaxation bound in its dual form with a price per unit of every dimension: CPU, memory, pod
//! slots, each extended resource (GPUs) and, for the largest one-per-node pod kinds, a "slot" of which
//! every node has exactly one.
//!
//! For prices `λ ≥ 0` per dimension, scale them down per offering until they fit its price:
//! `t(o) = min(1, price(o) / λ·cap(o))`. A node of offering `o` then carries pods whose charges
//! `λ·req · t(o)` add up to at most `t(o) · λ·cap(o) ≤ price(o)`, so charging each pod
//! `λ·req · min t(o)` over the offerings it could use never exceeds the cost of any plan, integral or
//! fractional. Any `λ` gives a valid bound; a coordinate search finds a good one.

use std::collections::{BTreeSet, HashMap};

use crate::groups::NodeGroup;
use crate::model::{Pod, TopologyKey};
use crate::sim::place::Placer;

/// One-per-node kinds given a slot dimension of their own (the largest ones; each adds a dimension).
const SLOT_TERMS: usize = 4;
/// Evaluations the search may spend.
const BUDGET: usize = 4_000;

/// The bound's problem: offerings as (price, capacity), option sets, and pod kinds.
struct Problem {
    offers: Vec<(f64, Vec<f64>)>,
    /// Offerings (indices into `offers`) a set of pods could use.
    sets: Vec<Vec<usize>>,
    /// (requests per dimension, option set, count).
    kinds: Vec<(Vec<f64>, usize, f64)>,
    dims: usize,
}

impl Problem {
    fn build(pending: &[Pod], groups: &[NodeGroup]) -> Self {
        let pods: Vec<&Pod> = pending.iter().collect();
        let mut placer = Placer::new(&[], pods, groups, 0);
        let extended: Vec<&str> = pending
            .iter()
            .flat_map(|p| p.requests.extended.keys().map(String::as_str))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // The hostname anti-affinity term that makes a class one-per-node, and how many pods carry it.
        let classes = placer.sim.reg.classes.len();
        let mut slot_term = vec![None; classes];
        let mut per_term: HashMap<usize, usize> = HashMap::new();
        for &c in &placer.sim.placed_class {
            let class = &placer.sim.reg.classes[c];
            let term = class
                .anti
                .iter()
                .find(|(t, topology)| *topology == TopologyKey::Hostname && class.in_terms.contains(t))
                .map(|(t, _)| *t);
            slot_term[c] = term;
            if let Some(t) = term {
                *per_term.entry(t).or_default() += 1;
            }
        }
        let mut terms: Vec<(usize, usize)> = per_term.into_iter().filter(|(_, n)| *n > 1).collect();
        terms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        terms.truncate(SLOT_TERMS);
        let dims = 3 + extended.len() + terms.len();

        let mut offer_ids: HashMap<(usize, usize), usize> = HashMap::new();
        let mut offers = Vec::new();
        let mut set_ids: HashMap<Vec<usize>, usize> = HashMap::new();
        let mut sets = Vec::new();
        let mut kind_ids: HashMap<(Vec<u64>, usize), usize> = HashMap::new();
        let mut kinds: Vec<(Vec<f64>, usize, f64)> = Vec::new();
        let mut class_set: Vec<Option<Option<usize>>> = vec![None; classes];
        for i in 0..pending.len() {
            let c = placer.sim.placed_class[i];
            let set = match class_set[c] {
                Some(s) => s,
                None => {
                    let mut set: Vec<usize> = placer
                        .options_for(c)
                        .into_iter()
                        .map(|(g, o, cap)| {
                            *offer_ids.entry((g, o)).or_insert_with(|| {
                                let off = &groups[g].offerings[o];
                                let mut v = vec![cap[0] as f64, cap[1] as f64, cap[3] as f64];
                                v.extend(
                                    extended
                                        .iter()
                                        .map(|k| off.allocatable.extended.get(*k).copied().unwrap_or(0) as f64),
                                );
                                v.resize(dims, 1.0);
                                offers.push((off.monthly_price, v));
                                offers.len() - 1
                            })
                        })
                        .collect();
                    set.sort_unstable();
                    // Pods no group can take are left out: every plan leaves them pending.
                    let id = (!set.is_empty()).then(|| {
                        *set_ids.entry(set.clone()).or_insert_with(|| {
                            sets.push(set);
                            sets.len() - 1
                        })
                    });
                    class_set[c] = Some(id);
                    id
                }
            };
            let Some(set) = set else { continue };
            let class = &placer.sim.reg.classes[c];
            let mut req = vec![class.req[0] as f64, class.req[1] as f64, class.req[3] as f64];
            req.extend(extended.iter().map(|k| class.rep.requests.extended.get(*k).copied().unwrap_or(0) as f64));
            req.extend(terms.iter().map(|(t, _)| if slot_term[c] == Some(*t) { 1.0 } else { 0.0 }));
            let key = (req.iter().map(|v| v.to_bits()).collect(), set);
            let k = *kind_ids.entry(key).or_insert_with(|| {
                kinds.push((req, set, 0.0));
                kinds.len() - 1
            });
            kinds[k].2 += 1.0;
        }
        Problem { offers, sets, kinds, dims }
    }

    fn value(&self, lambda: &[f64]) -> f64 {
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let scale: Vec<f64> = self
            .offers
            .iter()
            .map(|(price, cap)| {
                let v = dot(lambda, cap);
                if v > *price { price / v } else { 1.0 }
            })
            .collect();
        let set_min: Vec<f64> =
            self.sets.iter().map(|s| s.iter().map(|&o| scale[o]).fold(f64::INFINITY, f64::min)).collect();
        self.kinds.iter().map(|(req, set, n)| n * dot(lambda, req) * set_min[*set]).sum()
    }
}

/// The best bound the search finds (0 when no pod can be placed at all).
pub(super) fn bound(pending: &[Pod], groups: &[NodeGroup]) -> f64 {
    let p = Problem::build(pending, groups);
    if p.kinds.is_empty() {
        return 0.0;
    }
    // Per dimension, the cheapest price per unit any offering asks: a natural scale for each price.
    let unit: Vec<f64> = (0..p.dims)
        .map(|d| {
            p.offers
                .iter()
                .filter(|(_, cap)| cap[d] > 0.0)
                .map(|(price, cap)| price / cap[d])
                .fold(f64::INFINITY, f64::min)
        })
        .map(|u| if u.is_finite() { u } else { 0.0 })
        .collect();
    // Start from the best single-dimension pricing.
    let mut lambda = vec![0.0; p.dims];
    let mut best = 0.0;
    for d in 0..p.dims {
        let mut l = vec![0.0; p.dims];
        l[d] = unit[d];
        let v = p.value(&l);
        if v > best {
            (best, lambda) = (v, l);
        }
    }
    // Coordinate search: grow or shrink one price at a time, with steps that halve when nothing helps.
    let mut evaluations = p.dims;
    let mut step = 0.5;
    while step > 1e-3 && evaluations < BUDGET {
        let mut improved = false;
        for d in 0..p.dims {
            for candidate in [lambda[d] * (1.0 + step), lambda[d] * (1.0 - step), lambda[d] + unit[d] * step] {
                let mut l = lambda.clone();
                l[d] = candidate.max(0.0);
                let v = p.value(&l);
                evaluations += 1;
                if v > best * (1.0 + 1e-12) {
                    (best, lambda) = (v, l);
                    improved = true;
                }
            }
        }
        if !improved {
            step /= 2.0;
        }
    }
    best
}
