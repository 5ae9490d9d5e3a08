//! What a scale-up should cost at least: a lower bound no plan can beat.

mod dual;
mod exact;
mod problem;
mod shares;

use autoscaler_decision::Pod;
use autoscaler_decision::groups::NodeGroup;

/// A lower bound on the monthly cost of new nodes carrying `pending` from no nodes at all: the
/// fractional (LP-relaxation) cost, in its dual form, the best of four families of dual solutions.
///
/// - **Shares**: for any weights `a + b + c = 1` on CPU, memory and pod slots, a node of offering `o`
///   carrying pods costs at least the sum over its pods of `price(o) · (a·cpu/cpu(o) + b·mem/mem(o) +
///   c/pods(o))`, so each pod costs at least its cheapest such share over the offerings that could take
///   it; the best weighting on a grid (refined) counts.
/// - **Prices per unit** (see `dual.rs`): a price per unit of CPU, memory, pod slots, each extended
///   resource and, for the largest one-per-node kinds, a per-node slot, scaled down per offering to fit
///   its price. This one knows that GPUs are scarce and that every one-per-node pod needs a node.
/// - **Shares per group** (see `shares.rs`): the first family with one weighting per group, so a
///   memory-rich family charges by CPU and a CPU-rich one by memory; exact for a single pod shape.
/// - **The program itself** (see `exact.rs`): column generation over node patterns, whose prices per
///   pod kind give a bound at every round and the LP optimum once no pattern improves the master. It
///   runs under a fixed budget of rounds: snapshots of up to about 10,000 pods reach the optimum (up to about a
///   second here); larger ones stop short (2-3 s at 20,000) and the best of the four counts.
///
/// Capacities are net of DaemonSet requests. Pods no group can take are left out (every plan leaves them
/// pending); topology spread and affinity are ignored, which only lowers the bound.
pub fn lower_bound(pending: &[Pod], groups: &[NodeGroup]) -> f64 {
    let problem = problem::Problem::build(pending, groups);
    let (uniform, start) = shares::best_uniform(&problem);
    uniform.max(dual::bound(&problem)).max(shares::bound(&problem, &start)).max(exact::bound(&problem))
}
