//! The scaling-decision core: plain data in, plans out. No async, no I/O, no kube client, no clock.
//!
//! This first part holds the model ([`model`], [`resources`], [`selectors`]) and the scheduling
//! predicates ([`predicates`]) that mirror kube-scheduler's filters. Scale-up, scale-down,
//! consolidation and cost bounds build on them.
#![warn(missing_docs)]

pub mod model;
pub mod predicates;
pub mod resources;
pub mod selectors;

pub use model::{Node, Pod};
pub use predicates::{Unfit, feasible};
pub use resources::Resources;
