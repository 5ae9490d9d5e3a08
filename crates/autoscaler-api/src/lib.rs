//! The autoscaler's Kubernetes API: `NodeGroup` and `VPSieNode` in `autoscaler.vpsie.com/v1alpha1`.
//!
//! Both kinds are cluster-scoped (as Nodes are), so VPSieNodes can carry owner references to their
//! NodeGroup. The schemas validate everything they can in the apiserver itself (types, ranges, enums,
//! patterns, defaults and CEL rules for cross-field checks), so a malformed NodeGroup is refused before
//! anything reaches VPSie. `cargo xtask crdgen` writes the manifests in `deploy/crds/`.
#![warn(missing_docs)]
// The KubeSchema derive re-emits each struct in a hidden module, which makes rustc report the
// re-exported public types as unreachable.
#![allow(unreachable_pub)]

pub mod constants;
pub mod crd;
pub mod nodegroup;
pub mod vpsienode;

pub use crd::{crd_yaml_files, crds};
pub use nodegroup::{NodeGroup, NodeGroupSpec, NodeGroupStatus};
pub use vpsienode::{VPSieNode, VPSieNodePhase, VPSieNodeSpec, VPSieNodeStatus};
