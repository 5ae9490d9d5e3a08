//! The lower bound's view of a scale-up: pod kinds (requests per dimension, the offerings they could
//! use, how many) and offerings (price, capacity per dimension). Dimensions are CPU, memory, pod slots,
//! each extended resource and, for the largest one-per-node kinds, a slot of which every node has one.

use std::collections::{BTreeSet, HashMap};

use crate::groups::NodeGroup;
use crate::model::Pod;
use crate::sim::place::Placer;

/// One-per-node kinds given a slot dimension of their own (the largest ones; each adds a dimension).
const SLOT_TERMS: usize = 4;

/// The bound's problem: offerings as (price, capacity), option sets, and pod kinds.
pub(super) struct Problem {
    /// (price, capacity per dimension) of each distinct (group, offering).
    pub(super) offers: Vec<(f64, Vec<f64>)>,
    /// The group of each offer.
    pub(super) group_of: Vec<usize>,
    /// Offerings (indices into `offers`) a set of pods could use.
    pub(super) sets: Vec<Vec<usize>>,
    /// (requests per dimension, option set, count).
    pub(super) kinds: Vec<(Vec<f64>, usize, f64)>,
    /// Dimensions: CPU, memory, pods, each extended resource, then the slots.
    pub(super) dims: usize,
}

impl Problem {
    /// The kinds of `pending` and the offerings of `groups` they could use.
    pub(super) fn build(pending: &[Pod], groups: &[NodeGroup]) -> Self {
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
            let term = placer.sim.reg.classes[c].own_hostname_term();
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
        let mut group_of = Vec::new();
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
                                group_of.push(g);
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
        Problem { offers, group_of, sets, kinds, dims }
    }
}
