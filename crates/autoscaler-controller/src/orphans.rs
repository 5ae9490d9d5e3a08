//! The orphan collector: capacity nobody claims, both ways.
//!
//! - A VM carrying this cluster's ownership (its notes line, confirmed by its tags before anything is done)
//!   whose host name no VPSieNode holds, older than `--orphan-grace-seconds`, is deleted: a create that
//!   surfaced after its VPSieNode gave up, or a VPSieNode deleted by hand without its finalizer.
//! - A Node we registered (labelled `autoscaler.vpsie.com/managed=true`, provider id `vpsie://...`) that no
//!   VPSieNode claims and whose VM is in neither VPSie list, orphaned for longer than the grace period, is
//!   deleted.
//!
//! A VM without our tags and a Node without our label are never touched. Each deletion gets an Event, an
//! audit line and a count in `vpsie_autoscaler_orphans_deleted_total`; in `--dry-run` it is only logged.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use autoscaler_api::constants::{LABEL_MANAGED, LABEL_NODEGROUP};
use autoscaler_api::nodegroup::ProvisioningMode;
use k8s_openapi::api::core::v1::Node;
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;
use vpsie_client::{Fleet, Ownership, VmLookup};

use crate::audit::Action;
use crate::context::Context;
use crate::error::Result;
use crate::events::reference;
use crate::telemetry::metrics::ORPHANS_DELETED;

/// Starts the collector: a sweep every grace period (at most every 30 s).
pub fn spawn(ctx: Context) -> JoinHandle<()> {
    tokio::spawn(async move {
        let every = ctx.config.orphan_grace.clamp(Duration::from_secs(1), Duration::from_secs(30));
        let mut orphaned_since: HashMap<String, jiff::Timestamp> = HashMap::new();
        loop {
            tokio::time::sleep(every).await;
            if !ctx.leadership.is_leader() || ctx.shutdown.is_stopping() {
                continue;
            }
            if let Err(e) = sweep(&ctx, &mut orphaned_since).await {
                tracing::warn!(error = %e, "orphan sweep failed; retrying at the next one");
            }
        }
    })
}

/// One sweep. `orphaned_since` remembers when each orphan Node was first seen orphaned.
pub async fn sweep(ctx: &Context, orphaned_since: &mut HashMap<String, jiff::Timestamp>) -> Result<()> {
    let Some(client) = ctx.vpsie.client() else { return Ok(()) };
    let Some(_work) = ctx.shutdown.start_work() else { return Ok(()) };
    // VPSieNodes first, then VPSie: a VPSieNode created after the read holds a VM created after it too.
    let claimed: HashSet<String> = ctx
        .cluster
        .vpsienodes
        .read()
        .values()
        .flat_map(|v| {
            let node = v.status.as_ref().and_then(|s| s.node_name.clone());
            [Some(v.spec.hostname.to_ascii_lowercase()), node.map(|n| n.to_ascii_lowercase())]
        })
        .flatten()
        .collect();
    let fleet = client.fleet().await?;
    let now = jiff::Timestamp::now();
    let grace = jiff::SignedDuration::try_from(ctx.config.orphan_grace).unwrap_or(jiff::SignedDuration::from_mins(10));
    vms(ctx, &client, &fleet, &claimed, now, grace).await?;
    nodes(ctx, &fleet, &claimed, orphaned_since, now, grace).await
}

async fn vms(
    ctx: &Context,
    client: &vpsie_client::VpsieClient,
    fleet: &Fleet,
    claimed: &HashSet<String>,
    now: jiff::Timestamp,
    grace: jiff::SignedDuration,
) -> Result<()> {
    let cluster = ctx.config.cluster_id.as_str();
    for entry in fleet.owned_by(cluster) {
        // A VM still being created cannot be deleted; the next sweep sees it created.
        let VmLookup::Created(vm) = &entry.lookup else { continue };
        if claimed.contains(&vm.hostname.to_ascii_lowercase()) {
            continue;
        }
        let created = vm.created_at();
        if created.is_none_or(|t| now.duration_since(t) < grace) {
            continue;
        }
        // The notes line said ours; the tags, the API's own ownership record, must say so too.
        let detail = client.get_vm(&vm.identifier).await?;
        if Ownership::from_tags(&detail.tags).is_none_or(|o| o.cluster_id != cluster) {
            tracing::info!(vm = %vm.hostname, "VM notes name this cluster but its tags do not: left alone");
            continue;
        }
        let why = format!("VM {} carries cluster {cluster}'s tags and no VPSieNode claims it", vm.hostname);
        if ctx.config.dry_run {
            tracing::info!(vm = %vm.hostname, %why, "dry run: would delete an orphan VM");
            continue;
        }
        let Some(password) = ctx.vpsie.delete_password() else {
            tracing::warn!(vm = %vm.hostname, "orphan VM kept: the credentials Secret has no deletePassword");
            continue;
        };
        match client.delete_vm(&vm.identifier, &password, "vpsie-autoscaler orphan").await {
            Ok(()) | Err(vpsie_client::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        metrics::counter!(ORPHANS_DELETED, "kind" => "vm").increment(1);
        tracing::warn!(vm = %vm.hostname, identifier = %vm.identifier, %why, "orphan VM deleted");
        ctx.audit_action(Action::VmDelete, format!("VM/{}", vm.identifier), &why);
        let group = Ownership::from_tags(&detail.tags).map(|o| o.node_group).unwrap_or_default();
        let regarding = reference("autoscaler.vpsie.com/v1alpha1", "NodeGroup", "", &group);
        ctx.events.publish(&regarding, true, "OrphanVmDeleted", "CollectOrphans", &why).await;
    }
    Ok(())
}

async fn nodes(
    ctx: &Context,
    fleet: &Fleet,
    claimed: &HashSet<String>,
    orphaned_since: &mut HashMap<String, jiff::Timestamp>,
    now: jiff::Timestamp,
    grace: jiff::SignedDuration,
) -> Result<()> {
    let managed_groups: HashSet<String> = ctx
        .cluster
        .nodegroups
        .read()
        .values()
        .filter(|e| e.group.spec.provisioning.as_ref().is_some_and(|p| p.mode == ProvisioningMode::ManagedCluster))
        .map(|e| e.group.name_any())
        .collect();
    // A provider id names a VM by identifier or (for VMs we create) by host name.
    let identifiers: HashSet<&str> = fleet
        .iter()
        .filter_map(|v| match &v.lookup {
            VmLookup::Created(vm) => Some(vm.identifier.as_str()),
            VmLookup::Pending(_) => None,
        })
        .collect();
    let candidates: Vec<String> = ctx
        .cluster
        .nodes
        .read()
        .values()
        .filter(|n| n.model.labels.get(LABEL_MANAGED).map(String::as_str) == Some("true"))
        // Managed-cluster nodes are not in the VM lists: their group's backend answers for them.
        .filter(|n| n.model.labels.get(LABEL_NODEGROUP).is_none_or(|g| !managed_groups.contains(g)))
        .filter(|n| !claimed.contains(&n.model.name.to_ascii_lowercase()))
        .filter(|n| {
            let Some(id) = n.provider_id.as_deref().and_then(|p| p.strip_prefix("vpsie://")) else { return false };
            fleet.find(id).is_none() && !identifiers.contains(id)
        })
        .map(|n| n.model.name.clone())
        .collect();
    orphaned_since.retain(|name, _| candidates.contains(name));
    for name in candidates {
        let since = *orphaned_since.entry(name.clone()).or_insert(now);
        if now.duration_since(since) < grace {
            continue;
        }
        let why = format!("Node {name} is ours, no VPSieNode claims it and its VM no longer exists");
        if ctx.config.dry_run {
            tracing::info!(node = %name, %why, "dry run: would delete an orphan Node");
            continue;
        }
        let api: Api<Node> = Api::all(ctx.client.clone());
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        orphaned_since.remove(&name);
        metrics::counter!(ORPHANS_DELETED, "kind" => "node").increment(1);
        tracing::warn!(node = %name, %why, "orphan Node deleted");
        ctx.audit_action(Action::NodeTermination, format!("Node/{name}"), &why);
        ctx.events
            .publish(&reference("v1", "Node", "", &name), true, "OrphanNodeDeleted", "CollectOrphans", &why)
            .await;
    }
    Ok(())
}
