//! The final right-sizing: each new node becomes the cheapest offering of its group that carries what it
//! got (the Cluster-Autoscaler-shaped baseline keeps its fixed template).

use std::cmp::Ordering;

use super::{Opened, Placer, Strategy};
use crate::sim::amounts::Amounts;

impl Placer<'_> {
    /// Gives each new node the cheapest offering of its group that carries what it got.
    pub(super) fn right_size(&mut self, strategy: Strategy, new_nodes: &mut [Opened]) {
        if !matches!(strategy, Strategy::Fixed { .. }) {
            for new in new_nodes.iter_mut() {
                let (n, g) = (new.node, new.group);
                if let Some(best) = self.cheapest_fitting(g, n) {
                    self.usage[g].monthly_cost -= self.sim.groups[g].offerings[new.offering].monthly_price
                        - self.sim.groups[g].offerings[best].monthly_price;
                    new.offering = best;
                    self.sim.resize(n, g, best);
                }
            }
        }
    }

    /// The cheapest usable offering of `group` that carries what `node` got.
    fn cheapest_fitting(&self, group: usize, node: usize) -> Option<usize> {
        let g = &self.sim.groups[group];
        let load = self.sim.nodes[node].load();
        g.offerings
            .iter()
            .enumerate()
            .filter(|(_, o)| !g.backoff.contains(&o.id))
            .filter(|(_, o)| {
                load.fits_in(Amounts::of(&o.allocatable)) && self.sim.nodes[node].ext_fits(&o.allocatable.extended)
            })
            .min_by(|a, b| a.1.monthly_price.partial_cmp(&b.1.monthly_price).unwrap_or(Ordering::Equal))
            .map(|(i, _)| i)
    }
}
