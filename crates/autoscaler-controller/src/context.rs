//! What every controller and loop shares.

use std::sync::Arc;

use crate::audit::AuditLog;
use crate::catalog::Catalog;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::credentials::VpsieHandle;
use crate::events::Events;
use crate::health::Health;
use crate::leader::Leadership;
use crate::shutdown::Shutdown;

/// Shared state: clients, caches, the leadership gate, Events, audit and health. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// The configuration (`dry_run`, `cluster_id`, identity).
    pub config: Config,
    /// The caches.
    pub cluster: Cluster,
    /// The VPSie offering catalog.
    pub catalog: Catalog,
    /// The current VPSie client.
    pub vpsie: VpsieHandle,
    /// Whether this replica may act.
    pub leadership: Leadership,
    /// Events, published only while leader.
    pub events: Events,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Liveness and readiness.
    pub health: Health,
    /// Graceful shutdown: register work with `shutdown.start_work()`; none starts once it has begun.
    pub shutdown: Shutdown,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("identity", &self.config.identity).finish_non_exhaustive()
    }
}

impl Context {
    /// Whether this replica may write now: it leads and is not in dry-run.
    pub fn may_act(&self) -> bool {
        self.leadership.is_leader() && !self.config.dry_run
    }
}
