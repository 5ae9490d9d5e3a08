//! The scaling-decision core: plain data in, plans out. No async, no I/O, no kube client, no clock.
//!
//! The model ([`model`], [`resources`], [`selectors`], [`groups`]), the scheduling predicates
//! ([`predicates`]) that mirror kube-scheduler's filters, scale-up planning ([`scale_up`]), scale-down
//! ([`scale_down`]), consolidation ([`consolidation`]) and a plan verifier that replays plans through the
//! predicates ([`verify`]). Plans run on an incremental simulation with equivalence classes and counters
//! per selector term and topology domain, so 20,000 pending pods plan in tens of milliseconds;
//! [`simulation`] opens it to the benchmark lab (`crates/decision-lab`: the cost lower bound, the
//! anchor-shaped baselines and the synthetic workloads, none of which the operator runs), and [`simplex`]
//! is the small linear-program solver the planner's advice uses.
//!
//! # Worked example
//!
//! One busy node, a group that may grow to three 4-CPU nodes, and three pending pods: one fits the free
//! capacity, one needs a new node, and one asks for more than any offering has.
//!
//! ```
//! use autoscaler_decision::groups::{Expander, NodeGroup, Offering};
//! use autoscaler_decision::scale_up::PodOnNode;
//! use autoscaler_decision::{Node, Pod, Resources, ScaleUpInput, plan};
//!
//! const GI: i64 = 1 << 30;
//! let mut existing = Node::new("general-1", 4000, 8 * GI);
//! existing.group = Some("general-purpose".into());
//! existing.pods.push(Pod::new("shop", "db-0", 2500, 4 * GI));
//!
//! let mut allocatable = Resources::cpu_mem(4000, 8 * GI);
//! allocatable.pods = 110;
//! let group = NodeGroup {
//!     name: "general-purpose".into(),
//!     max_nodes: 3,
//!     offerings: vec![Offering { id: "sc-4cpu-8gb".into(), allocatable, monthly_price: 29.0 }],
//!     ..NodeGroup::default()
//! };
//! let pending = vec![
//!     Pod::new("shop", "web-0", 1000, GI),
//!     Pod::new("shop", "worker-0", 3000, 2 * GI),
//!     Pod::new("shop", "ml-0", 6000, 8 * GI),
//! ];
//! let p = plan(ScaleUpInput { nodes: &[existing], pending: &pending, groups: &[group], expander: Expander::LeastWaste });
//!
//! for placed in &p.on_existing {
//!     println!("{} -> existing node {}", placed.pod, placed.node);
//! }
//! for n in &p.new_nodes {
//!     println!("new {} node {} (${:.2}/month) for {:?}", n.offering, n.name, n.monthly_price, n.pods);
//! }
//! for u in &p.unplaced {
//!     println!("{}", u.sentence());
//! }
//! assert_eq!(p.on_existing, vec![PodOnNode::new("shop/web-0", "general-1")]);
//! assert_eq!(p.new_nodes.len(), 1);
//! assert_eq!(p.unplaced[0].sentence(), "shop/ml-0 stays pending: needs 6 CPU; the largest offering of general-purpose has 4");
//! ```
#![warn(missing_docs)]

pub mod consolidation;
#[cfg(feature = "k8s")]
pub mod convert;
pub mod eviction;
pub mod groups;
pub mod model;
pub mod predicates;
pub mod quantity;
pub mod resources;
pub mod scale_down;
pub mod scale_up;
pub mod selectors;
mod sim;
pub mod simplex;
pub mod simulation;
pub mod verify;

pub use consolidation::{Consolidation, ConsolidationInput, ConsolidationPlan, consolidate};
pub use model::{Node, Pdb, Pod};
pub use predicates::{Unfit, feasible};
pub use resources::Resources;
pub use scale_down::{ScaleDownInput, ScaleDownPlan, plan_scale_down};
pub use scale_up::{ScaleUpInput, ScaleUpPlan, plan};
