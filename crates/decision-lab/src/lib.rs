//! The decision core's measuring instruments, kept out of the operator: a cost lower bound no plan can
//! beat ([`lower_bound`], by column generation over node patterns), two baselines shaped like the anchors
//! ([`baselines`]), and the synthetic workloads of the benchmark ([`workloads`]). The benchmark
//! (`cargo bench -p decision-lab`) and the property tests use them; nothing the operator runs does.
#![warn(missing_docs)]

pub mod baselines;
mod bound;
pub mod workloads;

pub use baselines::{baseline_cheapest_fit, baseline_one_group_at_a_time};
pub use bound::lower_bound;
