//! Where a zone-affinity group starts. Pods with required zone affinity to their own kind all end in the
//! zone their first pod lands in, so that first pod chooses for the whole group: first fit would pin
//! every such group to the first zone with a node, and that zone's nodes overflow (a node more) while
//! nodes elsewhere keep room they never use. The first pod goes instead to the zone with the most room
//! left for its group: free capacity of the nodes there minus what the groups already pinned there still
//! have to place.

use super::{Placer, shift};
use crate::sim::state::{Fit, Target};

/// Per affinity set: the CPU and memory its member pods still have to place, and the zone it is pinned
/// to once a member is placed.
#[derive(Default)]
pub(super) struct ZoneGroups {
    left: Vec<[i64; 3]>,
    zone: Vec<Option<usize>>,
}

impl Placer<'_> {
    /// Counts what each affinity set's members request (call once, before placing).
    pub(super) fn count_zone_groups(&mut self) {
        let sets = self.sim.reg.affinity_sets.items.len();
        let mut groups = ZoneGroups { left: vec![[0; 3]; sets], zone: vec![None; sets] };
        for &c in &self.sim.placed_class {
            let class = &self.sim.reg.classes[c];
            for &s in &class.in_affinity_all {
                shift(&mut groups.left[s], class.req, 1);
            }
        }
        self.zone_groups = groups;
    }

    /// Books a placed pod of `class` on `node` against the affinity sets it belongs to.
    pub(super) fn book_zone_groups(&mut self, class: usize, node: usize) {
        let zone = self.sim.zone_of(node);
        let groups = &mut self.zone_groups;
        for &s in &self.sim.reg.classes[class].in_affinity_all {
            if let Some(left) = groups.left.get_mut(s) {
                shift(left, self.sim.reg.classes[class].req, -1);
                groups.zone[s] = groups.zone[s].or(zone);
            }
        }
    }

    /// For the first pod of a zone-affinity group: a node that takes it in the zone with the most room
    /// left for the group, or `None` to decide as usual (not such a pod, or fewer than two zones have a
    /// node that takes it).
    pub(super) fn zone_group_start(&mut self, class: usize, pod: usize) -> Option<usize> {
        let set = self.sim.opens_zone_group(class)?;
        let need = *self.zone_groups.left.get(set)?;
        // Per zone: the first node that takes the pod, and the free CPU and memory of every node there
        // (room too small for this pod may still take smaller pods of its group).
        let mut zones: Vec<(Option<usize>, [i64; 2])> = Vec::new();
        for n in 0..self.sim.nodes.len() {
            let Some(z) = self.sim.zone_of(n) else { continue };
            if zones.len() <= z {
                zones.resize(z + 1, (None, [0; 2]));
            }
            if !self.sim.nodes[n].accepts {
                continue;
            }
            let (used, cap) = (self.sim.nodes[n].load(), self.sim.nodes[n].capacity());
            zones[z].1[0] += cap[0] - used[0];
            zones[z].1[1] += cap[1] - used[1];
            if zones[z].0.is_none()
                && self.sim.check(class, Target::Node(n)) == Fit::Yes
                && (n < self.input_nodes || self.suits(class, pod, n))
            {
                zones[z].0 = Some(n);
            }
        }
        let groups = &self.zone_groups;
        for (s, zone) in groups.zone.iter().enumerate() {
            if let Some(z) = zone
                && let Some(entry) = zones.get_mut(*z)
            {
                entry.1[0] -= groups.left[s][0];
                entry.1[1] -= groups.left[s][1];
            }
        }
        // Room in multiples of the group's own demand, by its tighter dimension.
        let room =
            |free: [i64; 2]| (0..2).map(|d| free[d] as f64 / need[d].max(1) as f64).fold(f64::INFINITY, f64::min);
        let candidates: Vec<(usize, f64)> =
            zones.iter().filter_map(|(first, free)| first.map(|n| (n, room(*free)))).collect();
        if candidates.len() < 2 {
            return None;
        }
        candidates
            .into_iter()
            .fold(None, |best: Option<(usize, f64)>, (n, r)| match best {
                Some((_, b)) if b >= r => best,
                _ => Some((n, r)),
            })
            .map(|(n, _)| n)
    }
}
