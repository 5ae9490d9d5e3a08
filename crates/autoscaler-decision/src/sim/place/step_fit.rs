//! Joining the node where a pod adds least to the bill. Each new node ends as the cheapest offering of its
//! group that carries its pods, so a pod that pushes a node past an offering boundary costs a step of
//! price, while the same pod on a node with room left in its step costs nothing. First fit ignores this;
//! with many sizes (Karpenter's 400 instance types) the leftovers of every node add up. This fit looks at
//! the first few nodes that take the pod and picks the one whose final price grows least.

use super::Placer;
use crate::sim::amounts::Amounts;

/// How many nodes that take the pod are compared (from the first that does).
const CANDIDATES: usize = 8;

impl Placer<'_> {
    /// Turns the fit on: offerings of each group in order of price, for the cheapest fitting one.
    pub(super) fn enable_step_fit(&mut self) {
        self.by_price = self
            .sim
            .groups
            .iter()
            .map(|g| {
                let mut order: Vec<usize> =
                    (0..g.offerings.len()).filter(|&o| !g.backoff.contains(&g.offerings[o].id)).collect();
                order.sort_by(|&a, &b| g.offerings[a].monthly_price.total_cmp(&g.offerings[b].monthly_price));
                order
            })
            .collect();
    }

    /// The price of the cheapest offering of `group` carrying `load` (infinite when none does).
    fn fitting_price(&self, group: usize, load: Amounts) -> f64 {
        let g = &self.sim.groups[group];
        self.by_price[group]
            .iter()
            .map(|&o| &g.offerings[o])
            .find(|o| load.fits_in(Amounts::of(&o.allocatable)))
            .map_or(f64::INFINITY, |o| o.monthly_price)
    }

    /// Among the first `CANDIDATES` new nodes from `first` (which takes the pod) that take a pod of
    /// `class` and suit it, the one whose final price grows least (the earliest on a tie).
    pub(super) fn step_fit(&mut self, class: usize, pod: usize, first: usize) -> usize {
        let req = self.sim.reg.classes[class].req;
        let mut best = (f64::INFINITY, first);
        let mut seen = 0;
        for n in first..self.sim.nodes.len() {
            if seen == CANDIDATES {
                break;
            }
            if n != first && !self.takes(class, pod, n) {
                continue;
            }
            seen += 1;
            let Some(g) = self.sim.nodes[n].group else { continue };
            let load = self.sim.nodes[n].load();
            let after = load.plus(req);
            let grows = self.fitting_price(g, after) - self.fitting_price(g, load);
            if grows < best.0 - 1e-9 {
                best = (grows, n);
            }
        }
        best.1
    }
}
