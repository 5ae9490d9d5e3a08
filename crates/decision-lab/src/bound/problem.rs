//! The lower bound's view of a scale-up: pod kinds (requests per dimension, the offerings they could
//! use, how many) and offerings (price, capacity per dimension). Dimensions are CPU, memory, pod slots,
//! each extended resource and, for the largest one-per-node kinds, a slot of which every node has one.

use std::collections::{BTreeSet, HashMap};

use autoscaler_decision::Pod;
use autoscaler_decision::groups::NodeGroup;
use autoscaler_decision::simulation::pending_classes;

/// One-per-node kinds given a slot dimension of their own (the largest ones; each adds a dimension).
const SLOT_TERMS: usize = 4;

/// A distinct (group, offering) as the bound sees it.
pub(super) struct Offer {
    /// Monthly price.
    pub(super) price: f64,
    /// Capacity per dimension.
    pub(super) capacity: Vec<f64>,
}

/// Pods with the same requests and the same usable offerings.
pub(super) struct Kind {
    /// Requests per dimension.
    pub(super) requests: Vec<f64>,
    /// The option set (an index into `Problem::sets`).
    pub(super) set: usize,
    /// How many pods.
    pub(super) count: f64,
}

/// The bound's problem: offerings, option sets, and pod kinds.
pub(super) struct Problem {
    /// Each distinct (group, offering).
    pub(super) offers: Vec<Offer>,
    /// The group of each offer.
    pub(super) group_of: Vec<usize>,
    /// Offerings (indices into `offers`) a set of pods could use.
    pub(super) sets: Vec<Vec<usize>>,
    /// The pod kinds.
    pub(super) kinds: Vec<Kind>,
    /// Dimensions: CPU, memory, pods, each extended resource, then the slots.
    pub(super) dims: usize,
}

impl Problem {
    /// The kinds of `pending` and the offerings of `groups` they could use.
    pub(super) fn build(pending: &[Pod], groups: &[NodeGroup]) -> Self {
        let classes = pending_classes(pending, groups);
        let extended: Vec<&str> = pending
            .iter()
            .flat_map(|p| p.requests.extended.keys().map(String::as_str))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // The hostname anti-affinity term that makes a class one-per-node, and how many pods carry it.
        let mut per_term: HashMap<usize, usize> = HashMap::new();
        for &k in &classes.class_of {
            if let Some(t) = classes.classes[k].one_per_node {
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
        let mut kinds: Vec<Kind> = Vec::new();
        let mut class_set: Vec<Option<Option<usize>>> = vec![None; classes.classes.len()];
        for &c in &classes.class_of {
            let class = &classes.classes[c];
            let set = match class_set[c] {
                Some(s) => s,
                None => {
                    let mut set: Vec<usize> = class
                        .offerings
                        .iter()
                        .map(|u| {
                            *offer_ids.entry((u.group, u.offering)).or_insert_with(|| {
                                let off = &groups[u.group].offerings[u.offering];
                                let cap = &u.capacity;
                                let mut v = vec![cap.cpu_milli as f64, cap.memory as f64, cap.pods as f64];
                                v.extend(
                                    extended
                                        .iter()
                                        .map(|k| off.allocatable.extended.get(*k).copied().unwrap_or(0) as f64),
                                );
                                v.resize(dims, 1.0);
                                offers.push(Offer { price: off.monthly_price, capacity: v });
                                group_of.push(u.group);
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
            let r = &class.requests;
            let mut req = vec![r.cpu_milli as f64, r.memory as f64, r.pods as f64];
            req.extend(extended.iter().map(|k| r.extended.get(*k).copied().unwrap_or(0) as f64));
            req.extend(terms.iter().map(|(t, _)| if class.one_per_node == Some(*t) { 1.0 } else { 0.0 }));
            let key = (req.iter().map(|v| v.to_bits()).collect(), set);
            let k = *kind_ids.entry(key).or_insert_with(|| {
                kinds.push(Kind { requests: req, set, count: 0.0 });
                kinds.len() - 1
            });
            kinds[k].count += 1.0;
        }
        Problem { offers, group_of, sets, kinds, dims }
    }
}
