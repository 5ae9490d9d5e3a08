//! A typed, resilient client for the VPSie HTTP API.
//!
//! * Both auth modes: a long-lived access token (`Vpsie-Auth`), or client credentials exchanged for a
//!   token that is refreshed before expiry and once after a 401.
//! * Typed endpoints for VMs, offers with prices, datacenters (all pages), OS images, SSH keys, scripts,
//!   tags, projects and managed Kubernetes.
//! * Typed [`Error`]s for every way the API fails: `data:false`, HTTP 200 with `error:true`, HTML 502
//!   pages, quota messages, rate limits.
//! * Resilience: client-side rate limit, retries with full-jitter backoff for idempotent calls only, a
//!   circuit breaker, a per-request timeout.
//! * Idempotent VM creation by caller-chosen host name ([`VpsieClient::create_vm`]), and a [`Fleet`]
//!   view (pending and created VMs listed once) so a pass over N VMs costs about N calls, not 3N.
//! * `tracing` spans per call and `metrics` counters (see [`telemetry`]); no secret is ever logged:
//!   secrets are a [`Secret`] whose `Debug` is redacted.
//!
//! ```no_run
//! use vpsie_client::{ClientConfig, Credentials, VpsieClient};
//!
//! # async fn run() -> Result<(), vpsie_client::Error> {
//! let config = ClientConfig::new("https://api.vpsie.com", Credentials::Token("my-token".into()));
//! let client = VpsieClient::new(config)?;
//! for dc in client.list_datacenters().await? {
//!     println!("{} {}", dc.identifier, dc.dc_name);
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod api;
mod auth;
mod backoff;
mod breaker;
mod client;
pub mod config;
mod error;
mod secret;
pub mod telemetry;
pub mod wire;

pub use api::account::{Project, Script, SshKey, Tag};
pub use api::catalog::{Datacenter, K8sOffer, Offer, OsImage, PlanCategory};
pub use api::fleet::{DeleteOutcome, Fleet, FleetVm, Ownership};
pub use api::kubernetes::{Cluster, ClusterNode, NodeAddition, NodeGroup};
pub use api::vms::{CreateOutcome, CreateVmRequest, PendingVm, Vm, VmDetail, VmLookup, VmStatus, validate_hostname};
pub use client::VpsieClient;
pub use config::{BreakerPolicy, ClientConfig, Credentials, RateLimit, RetryPolicy, VmPathPrefix};
pub use error::{Error, Result};
pub use secret::Secret;
