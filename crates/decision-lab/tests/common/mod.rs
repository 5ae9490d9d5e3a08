//! Helpers the hand-built snapshots share.

use autoscaler_decision::Resources;
use autoscaler_decision::groups::Offering;

/// One GiB.
pub(crate) const GI: i64 = 1 << 30;

/// An offering of `cpu` whole CPUs and `mem_gi` GiB allocatable, 110 pods, at `price` a month.
pub(crate) fn offering(id: &str, cpu: i64, mem_gi: i64, price: f64) -> Offering {
    let mut allocatable = Resources::cpu_mem(cpu * 1000, mem_gi * GI);
    allocatable.pods = 110;
    Offering { id: id.into(), allocatable, monthly_price: price }
}
