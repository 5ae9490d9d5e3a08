//! A real local Kubernetes control plane for tests, e2e runs and the demo.
//!
//! Starts etcd, kube-apiserver (TLS, client-certificate auth, RBAC, service-account signing), and
//! optionally kube-controller-manager, kube-scheduler and kwok (fake kubelets) as plain processes on
//! 127.0.0.1, the way controller-runtime's envtest does plus the components envtest leaves out. Binaries
//! are built from pinned upstream Go modules on first use and cached (see [`binaries`]). Each component
//! runs under a [`supervisor`] that restarts it when it exits, as a kubelet restarts static pods; tests can
//! freeze, resume and kill one ([`ControlPlane::freeze`]).
//!
//! ```no_run
//! # async fn run() -> testenv::Result<()> {
//! let cp = testenv::ControlPlane::builder().start().await?;
//! let client = cp.client().await?;
//! testenv::KwokNode::new("node-a", "4", "8Gi").label("pool", "general").create(&client).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod binaries;
mod component_control;
mod control_plane;
mod error;
mod helpers;
mod kwok_stages;
mod pki;
mod process;
mod shared;
pub mod supervisor;

pub use control_plane::{Builder, ControlPlane, LogsOnPanic, client_from_kubeconfig};
pub use error::{Error, Result};
pub use helpers::{KWOK_ANNOTATION, KwokNode, create_namespace, node_ready, wait_for};
pub use pki::{ClientCert, Pki};
pub use process::{group_alive, kill_group};
pub use shared::shared;
pub use supervisor::{Component, Exit, Signal};
