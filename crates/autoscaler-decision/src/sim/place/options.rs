//! The options a new node has: every (group, offering) a class could use, and the one a
//! one-template-per-group autoscaler would scale next (the Cluster-Autoscaler-shaped baseline).

use super::{Placer, Score, Strategy, extended_offered};
use crate::groups::Expander;
use crate::resources::Resources;
use crate::sim::amounts::Demand;
use crate::simulation::UsableOffering;

impl Placer<'_> {
    /// Every (group, offering) a new node for `class` could be, with its usable CPU, memory, ephemeral
    /// storage and pods (net of DaemonSets).
    pub(crate) fn options_for(&mut self, class: usize) -> Vec<UsableOffering> {
        let (req, rep) = (self.sim.reg.classes[class].req, self.sim.reg.classes[class].rep);
        let mut out = Vec::new();
        for (g, group) in self.sim.groups.iter().enumerate() {
            if !self.sim.static_ok_new(class, g) {
                continue;
            }
            for (o, off) in group.offerings.iter().enumerate() {
                let cap = self.usable[g][o];
                if !group.backoff.contains(&off.id) && req.fits_in(cap) && extended_offered(rep, off) {
                    let mut capacity = Resources { extended: off.allocatable.extended.clone(), ..Resources::default() };
                    cap.write_to(&mut capacity);
                    out.push(UsableOffering { group: g, offering: o, capacity });
                }
            }
        }
        out
    }

    /// The (group, offering) a one-template-per-group autoscaler would scale next: for each, the pods
    /// it can take and the nodes they need by requests; the least idle share wins, then the cheaper.
    pub(crate) fn least_waste_option(&mut self) -> Option<Strategy> {
        let mut per_class: Vec<(usize, i64)> = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for &c in &self.sim.placed_class {
            let k = *seen.entry(c).or_insert_with(|| {
                per_class.push((c, 0));
                per_class.len() - 1
            });
            per_class[k].1 += 1;
        }
        let mut best: Option<(f64, f64, usize, usize)> = None;
        for g in 0..self.sim.groups.len() {
            let group = &self.sim.groups[g];
            if self.usage[g].nodes >= group.max_nodes {
                continue;
            }
            let compatible: Vec<(usize, i64)> =
                per_class.iter().copied().filter(|&(c, _)| self.sim.static_ok_new(c, g)).collect();
            let group = &self.sim.groups[g];
            for (o, off) in group.offerings.iter().enumerate() {
                let cap = self.usable[g][o];
                if group.backoff.contains(&off.id) || group.limit_exceeded(&self.usage[g], off).is_some() {
                    continue;
                }
                let mut want = Demand::default();
                for &(c, n) in &compatible {
                    let class = &self.sim.reg.classes[c];
                    if class.req.fits_in(cap) && extended_offered(class.rep, off) {
                        want.shift(class.req.demand(), n);
                    }
                }
                if want == Demand::default() {
                    continue;
                }
                let score = Score::planner(Expander::LeastWaste, want, cap, off.monthly_price, 0);
                let (waste, cost) = (score.keys[0], score.keys[1]);
                if best.is_none_or(|(bw, bc, _, _)| waste < bw - 1e-9 || (waste - bw).abs() <= 1e-9 && cost < bc) {
                    best = Some((waste, cost, g, o));
                }
            }
        }
        best.map(|(_, _, group, offering)| Strategy::Fixed { group, offering })
    }
}
