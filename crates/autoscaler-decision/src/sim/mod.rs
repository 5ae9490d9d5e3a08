//! The fast scheduling simulation behind every plan: equivalence classes, counters per term and domain,
//! first-fit cursors. Its checks are the predicates of [`crate::predicates`], computed incrementally;
//! the property tests replay every plan through the reference predicates.

pub(crate) mod amounts;
pub(crate) mod classes;
pub(crate) mod place;
pub(crate) mod state;
