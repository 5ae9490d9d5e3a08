//! The scaling-decision core: plain data in, plans out. No async, no I/O, no kube client, no clock.
//!
//! The model ([`model`], [`resources`], [`selectors`], [`groups`]), the scheduling predicates
//! ([`predicates`]) that mirror kube-scheduler's filters, and scale-up planning ([`scale_up`]).
//! Scale-down, consolidation and cost bounds are still to come.
#![warn(missing_docs)]

pub mod groups;
pub mod model;
pub mod predicates;
pub mod resources;
pub mod scale_up;
pub mod selectors;

pub use model::{Node, Pod};
pub use predicates::{Unfit, feasible};
pub use resources::Resources;
pub use scale_up::{ScaleUpInput, ScaleUpPlan, plan};
