//! The LP-relaxation bound in its dual form with a price per unit of every dimension: CPU, memory, pod
//! slots, each extended resource (GPUs) and, for the largest one-per-node pod kinds, a "slot" of which
//! every node has exactly one.
//!
//! For prices `λ ≥ 0` per dimension, scale them down per offering until they fit its price:
//! `t(o) = min(1, price(o) / λ·cap(o))`. A node of offering `o` then carries pods whose charges
//! `λ·req · t(o)` add up to at most `t(o) · λ·cap(o) ≤ price(o)`, so charging each pod
//! `λ·req · min t(o)` over the offerings it could use never exceeds the cost of any plan, integral or
//! fractional. Any `λ` gives a valid bound; a coordinate search finds a good one.

use super::problem::{Kind, Offer, Problem};

/// Evaluations the search may spend.
const BUDGET: usize = 4_000;

impl Problem {
    /// The bound for prices `lambda`.
    fn priced(&self, lambda: &[f64]) -> f64 {
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let scale: Vec<f64> = self
            .offers
            .iter()
            .map(|Offer { price, capacity: cap }| {
                let v = dot(lambda, cap);
                if v > *price { price / v } else { 1.0 }
            })
            .collect();
        let set_min: Vec<f64> =
            self.sets.iter().map(|s| s.iter().map(|&o| scale[o]).fold(f64::INFINITY, f64::min)).collect();
        self.kinds.iter().map(|Kind { requests: req, set, count: n }| n * dot(lambda, req) * set_min[*set]).sum()
    }
}

/// The best bound the search finds (0 when no pod can be placed at all).
pub(super) fn bound(p: &Problem) -> f64 {
    if p.kinds.is_empty() {
        return 0.0;
    }
    // Per dimension, the cheapest price per unit any offering asks: a natural scale for each price.
    let unit: Vec<f64> = (0..p.dims)
        .map(|d| {
            p.offers
                .iter()
                .filter(|o| o.capacity[d] > 0.0)
                .map(|o| o.price / o.capacity[d])
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
        let v = p.priced(&l);
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
                let v = p.priced(&l);
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
