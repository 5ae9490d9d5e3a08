//! Typed endpoints, grouped by what they manage. Each group adds methods to [`crate::VpsieClient`].

pub mod account;
pub mod catalog;
pub mod fleet;
pub mod kubernetes;
pub mod vms;
