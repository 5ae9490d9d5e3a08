//! How new-node options are ranked.

use crate::groups::Expander;
use crate::sim::amounts::{Amounts, Demand};

/// How good a new-node option is; lower keys win, in order.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Score {
    pub(super) keys: [f64; 3],
}

impl Score {
    /// For the planner: the nodes of this offering needed to carry `want` (CPU, memory, pods), their
    /// estimated cost and idle share, ranked by expander.
    pub(super) fn planner(expander: Expander, want: Demand, cap: Amounts, price: f64, priority: i32) -> Self {
        let ratio = |w: i64, c: i64| if c > 0 { w as f64 / c as f64 } else { f64::INFINITY };
        let units = ratio(want.cpu, cap.cpu).max(ratio(want.memory, cap.memory)).max(ratio(want.pods, cap.pods));
        let n = units.ceil().max(1.0);
        let cost = n * price;
        let waste = 1.0 - (ratio(want.cpu, cap.cpu) + ratio(want.memory, cap.memory)) / (2.0 * n);
        let keys = match expander {
            Expander::LeastWaste => [waste, cost, 0.0],
            Expander::Cheapest => [cost, waste, 0.0],
            Expander::Priority => [-f64::from(priority), waste, cost],
        };
        Self { keys }
    }

    pub(super) fn better(&self, other: &Score, tie: (i32, usize, usize), other_tie: (i32, usize, usize)) -> bool {
        const EPS: f64 = 1e-9;
        for (a, b) in self.keys.iter().zip(other.keys) {
            if (a - b).abs() > EPS * a.abs().max(b.abs()).max(1.0) {
                return *a < b;
            }
        }
        tie < other_tie
    }
}
