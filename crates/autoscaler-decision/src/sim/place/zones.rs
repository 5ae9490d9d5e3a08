//! Where a zone-affinity group starts. Pods with required zone affinity to their own kind all end in the
//! zone their first pod lands in, so that first pod chooses for the whole group: first fit would pin
//! every such group to the first zone with a node, and that zone's nodes overflow (a node more) while
//! nodes elsewhere keep room they never use. The first pod goes instead to the zone with the most room
//! left for its group: free capacity of the nodes there minus what the groups already pinned there still
//! have to place.
//!
//! Where an affinity target goes. Pods that require another app in their zone and may only run in some
//! zones (pods whose selector binds them to one group's zone) wait forever if every pod of that app lands
//! elsewhere. While no pod of the target runs in a zone its followers can use, the next one goes there.

use super::{Placer, shift};
use crate::sim::amounts::Demand;
use crate::sim::state::{Fit, Target};

/// Per affinity set: the CPU and memory its member pods still have to place, and the zone it is pinned
/// to once a member is placed.
#[derive(Default)]
pub(super) struct ZoneGroups {
    left: Vec<Demand>,
    zone: Vec<Option<usize>>,
    /// The zones the pods that require the set in their zone can use at all, when that is not every
    /// zone (pods bound to one group's zone that need another app there).
    follower_zones: Vec<Option<Vec<bool>>>,
    /// A member of the set runs in one of those zones.
    served: Vec<bool>,
}

impl Placer<'_> {
    /// Counts what each affinity set's members request (call once, before placing).
    pub(super) fn count_zone_groups(&mut self) {
        let sets = self.sim.reg.affinity_sets.items.len();
        let zones = self.sim.zone_count();
        let mut groups = ZoneGroups {
            left: vec![Demand::default(); sets],
            zone: vec![None; sets],
            follower_zones: vec![None; sets],
            served: vec![false; sets],
        };
        let mut seen = vec![false; self.sim.reg.classes.len()];
        for i in 0..self.sim.placed_class.len() {
            let c = self.sim.placed_class[i];
            let class = &self.sim.reg.classes[c];
            for &s in &class.in_affinity_all {
                shift(&mut groups.left[s], class.req, 1);
            }
            let Some(s) = class.affinity_all.filter(|_| class.zone_affinity_only() && !seen[c]) else { continue };
            seen[c] = true;
            // The zones of the groups and input nodes this follower's static filters allow.
            let mut allowed = vec![false; zones];
            for g in 0..self.sim.groups.len() {
                if let Some(z) = self.sim.group_zone(g)
                    && self.sim.static_ok_new(c, g)
                {
                    allowed[z] = true;
                }
            }
            for n in 0..self.input_nodes {
                if let Some(z) = self.sim.zone_of(n)
                    && self.sim.check(c, Target::Node(n)) != Fit::Never
                {
                    allowed[z] = true;
                }
            }
            let union = groups.follower_zones[s].get_or_insert_with(|| vec![false; zones]);
            for (u, a) in union.iter_mut().zip(allowed) {
                *u |= a;
            }
        }
        for f in &mut groups.follower_zones {
            if f.as_ref().is_some_and(|z| z.iter().all(|a| *a) || !z.iter().any(|a| *a)) {
                *f = None;
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
                if let (Some(z), Some(allowed)) = (zone, &groups.follower_zones[s]) {
                    groups.served[s] |= allowed.get(z).copied().unwrap_or(false);
                }
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
        let mut zones: Vec<(Option<usize>, Demand)> = Vec::new();
        for n in 0..self.sim.nodes.len() {
            let Some(z) = self.sim.zone_of(n) else { continue };
            if zones.len() <= z {
                zones.resize(z + 1, (None, Demand::default()));
            }
            if !self.sim.nodes[n].accepts {
                continue;
            }
            let (used, cap) = (self.sim.nodes[n].load(), self.sim.nodes[n].capacity());
            zones[z].1.shift(cap.minus(used).demand(), 1);
            if zones[z].0.is_none() && self.takes(class, pod, n) {
                zones[z].0 = Some(n);
            }
        }
        let groups = &self.zone_groups;
        for (s, zone) in groups.zone.iter().enumerate() {
            if let Some(z) = zone
                && let Some(entry) = zones.get_mut(*z)
            {
                entry.1.shift(groups.left[s], -1);
            }
        }
        // Room in multiples of the group's own demand, by its tighter dimension.
        let room = |free: Demand| {
            (free.cpu as f64 / need.cpu.max(1) as f64).min(free.memory as f64 / need.memory.max(1) as f64)
        };
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

    /// For a pod that belongs to an affinity set whose followers can use only some zones, none of which
    /// has a member yet: the first node in those zones that takes it, or `Some(None)` to open one there
    /// (the zones are left in `zone_pref` for the choice). `None` when there is no such set or no node
    /// and no group in those zones can take it.
    pub(super) fn follower_zone_start(&mut self, class: usize, pod: usize) -> Option<Option<usize>> {
        let groups = &self.zone_groups;
        let want = self.sim.reg.classes[class]
            .in_affinity_all
            .iter()
            .find_map(|&s| groups.follower_zones.get(s)?.as_ref().filter(|_| !groups.served[s]))?
            .clone();
        let in_zone = |z: Option<usize>| z.is_some_and(|z| want.get(z).copied().unwrap_or(false));
        for n in 0..self.sim.nodes.len() {
            if in_zone(self.sim.zone_of(n)) && self.takes(class, pod, n) {
                return Some(Some(n));
            }
        }
        let can_open = (0..self.sim.groups.len()).any(|g| {
            in_zone(self.sim.group_zone(g))
                && self.sim.static_ok_new(class, g)
                && self.sim.check(class, Target::New(g)) == Fit::Yes
        });
        can_open.then(|| {
            self.zone_pref = Some(want);
            None
        })
    }

    /// Whether new nodes of `group` meet the zone preference of the pod being decided (any do without one).
    pub(super) fn zone_preferred(&self, group: usize) -> bool {
        self.zone_pref
            .as_ref()
            .is_none_or(|want| self.sim.group_zone(group).is_some_and(|z| want.get(z).copied().unwrap_or(false)))
    }
}
