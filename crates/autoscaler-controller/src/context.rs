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
    /// The same API server without kube's retry layer, for drains: a retried 429 would hide a
    /// PodDisruptionBudget's refusal from the drain's own deadline.
    pub drain_client: autoscaler_drain::DrainClient,
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
    /// What the scaling loops tell the NodeGroup controller (the only writer of NodeGroup status).
    pub notes: crate::decisions::Notes,
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

impl Context {
    /// Writes one audit line for an action this replica took; a failed write is logged, never fatal.
    pub fn audit_action(&self, action: crate::audit::Action, object: String, why: &str) {
        self.audit_decision(action, object, why, None);
    }

    /// Writes one audit line for an action of the decision `correlation_id`.
    pub fn audit_decision(
        &self,
        action: crate::audit::Action,
        object: String,
        why: &str,
        correlation_id: Option<&str>,
    ) {
        let entry = crate::audit::Entry {
            who: self.config.identity.clone(),
            action,
            object,
            why: why.to_owned(),
            correlation_id: correlation_id.map(str::to_owned),
            dry_run: self.config.dry_run,
        };
        if let Err(e) = self.audit.record(entry) {
            tracing::error!(error = %e, "audit line not written");
        }
    }
}
