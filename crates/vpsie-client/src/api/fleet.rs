//! The fleet view: every pending and created VM of the account, listed once and indexed, so that a pass
//! over many VMs costs two list calls instead of two per VM.
//!
//! The VPSie API returns no identifier when a VM is created, so a VM is found again by its host name in
//! `/vm/pending` and `/vm`. [`VpsieClient::create_vm`] does that lookup itself (three calls per create);
//! a controller creating or checking many VMs in one pass lists once with [`VpsieClient::fleet`], then
//! uses [`VpsieClient::create_vm_in`] and [`VpsieClient::delete_vm_in`], which cost one call each.
//!
//! Ownership: the VM list carries no tags (reading them costs one call per VM), so a VM we create
//! carries its owner twice: as tags (the API's own mechanism, echoed in `/vm/pending` and shown by
//! `GET /vm/{id}`) and as a line in `notes`, which the list shows. [`Ownership`] writes and reads both.

use std::collections::{HashMap, HashSet};

use http::Method;

use crate::api::vms::{CreateOutcome, CreateVmRequest, PendingVm, Vm, VmLookup, validate_hostname};
use crate::client::{Body, Call, VpsieClient};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Prefix of the tags and the notes line that mark a VM as ours.
const MARK: &str = "vpsie-autoscaler";

/// Which cluster and NodeGroup a VM belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ownership {
    /// The autoscaler's cluster id (`--cluster-id`).
    pub cluster_id: String,
    /// The NodeGroup name.
    pub node_group: String,
}

impl Ownership {
    /// The ownership of a VM created for `node_group` in `cluster_id`.
    pub fn new(cluster_id: impl Into<String>, node_group: impl Into<String>) -> Self {
        Self { cluster_id: cluster_id.into(), node_group: node_group.into() }
    }

    /// The tag naming the cluster: every VM of the cluster carries it.
    pub fn cluster_tag(cluster_id: &str) -> String {
        format!("{MARK}.cluster.{cluster_id}")
    }

    /// The tags to put on the VM.
    pub fn tags(&self) -> Vec<String> {
        vec![MARK.to_owned(), Self::cluster_tag(&self.cluster_id), format!("{MARK}.nodegroup.{}", self.node_group)]
    }

    /// The `notes` line to put on the VM, readable from the VM list.
    pub fn note(&self) -> String {
        format!("{MARK} cluster={} nodegroup={}", self.cluster_id, self.node_group)
    }

    /// Reads ownership from tags; `None` unless both the cluster and the group tag are there.
    pub fn from_tags<S: AsRef<str>>(tags: &[S]) -> Option<Self> {
        let value = |kind: &str| {
            let prefix = format!("{MARK}.{kind}.");
            tags.iter().find_map(|t| t.as_ref().strip_prefix(&prefix).map(str::to_owned))
        };
        Some(Self { cluster_id: value("cluster")?, node_group: value("nodegroup")? })
    }

    /// Reads ownership from a `notes` text holding the line [`Ownership::note`] wrote.
    pub fn from_note(notes: &str) -> Option<Self> {
        notes.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            if words.next() != Some(MARK) {
                return None;
            }
            let mut cluster_id = None;
            let mut node_group = None;
            for word in words {
                if let Some(v) = word.strip_prefix("cluster=") {
                    cluster_id = Some(v.to_owned());
                } else if let Some(v) = word.strip_prefix("nodegroup=") {
                    node_group = Some(v.to_owned());
                }
            }
            Some(Self { cluster_id: cluster_id?, node_group: node_group? })
        })
    }

    /// Sets the tags and the notes line on a create request, keeping the caller's own tags and notes.
    pub fn apply(&self, request: &mut CreateVmRequest) {
        for tag in self.tags() {
            if !request.tags.contains(&tag) {
                request.tags.push(tag);
            }
        }
        let note = self.note();
        request.notes = Some(match request.notes.take() {
            Some(existing) if existing.lines().any(|l| l == note) => existing,
            Some(existing) if !existing.is_empty() => format!("{existing}\n{note}"),
            _ => note,
        });
    }
}

/// One VM of the fleet, with the owner it declares.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetVm {
    /// Where it was found.
    pub lookup: VmLookup,
    /// The owner its tags (pending) or notes (created) name, if any.
    pub owner: Option<Ownership>,
}

impl FleetVm {
    /// The host name.
    pub fn hostname(&self) -> &str {
        match &self.lookup {
            VmLookup::Pending(p) => &p.data.hostname,
            VmLookup::Created(vm) => &vm.hostname,
        }
    }
}

/// Every pending and created VM of the account at one moment, indexed by host name (case-insensitive).
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    by_hostname: HashMap<String, FleetVm>,
    /// Host names this process asked to create since the listing: they may not be listed yet.
    requested: HashSet<String>,
}

impl Fleet {
    /// Builds a fleet from the two lists (pending read first; see [`VpsieClient::fleet`]).
    pub fn from_lists(pending: Vec<PendingVm>, created: Vec<Vm>) -> Self {
        let mut by_hostname = HashMap::with_capacity(pending.len() + created.len());
        for p in pending {
            let owner =
                Ownership::from_tags(&p.data.tags).or_else(|| p.data.notes.as_deref().and_then(Ownership::from_note));
            by_hostname.insert(p.data.hostname.to_ascii_lowercase(), FleetVm { lookup: VmLookup::Pending(p), owner });
        }
        // A VM listed as created wins over a pending echo of the same name: it moved between the reads.
        for vm in created {
            let owner = vm.notes.as_deref().and_then(Ownership::from_note);
            by_hostname.insert(vm.hostname.to_ascii_lowercase(), FleetVm { lookup: VmLookup::Created(vm), owner });
        }
        Self { by_hostname, requested: HashSet::new() }
    }

    /// The VM with this host name, pending or created.
    pub fn find(&self, hostname: &str) -> Option<&FleetVm> {
        self.by_hostname.get(&hostname.to_ascii_lowercase())
    }

    /// Whether this process requested a VM of that name after the fleet was listed.
    pub fn was_requested(&self, hostname: &str) -> bool {
        self.requested.contains(&hostname.to_ascii_lowercase())
    }

    /// The VMs whose tags or notes name `cluster_id` as their owner.
    pub fn owned_by<'a>(&'a self, cluster_id: &'a str) -> impl Iterator<Item = &'a FleetVm> + 'a {
        self.by_hostname.values().filter(move |v| v.owner.as_ref().is_some_and(|o| o.cluster_id == cluster_id))
    }

    /// Every VM of the fleet.
    pub fn iter(&self) -> impl Iterator<Item = &FleetVm> {
        self.by_hostname.values()
    }

    /// How many VMs the fleet holds (pending and created).
    pub fn len(&self) -> usize {
        self.by_hostname.len()
    }

    /// Whether the account has no VM.
    pub fn is_empty(&self) -> bool {
        self.by_hostname.is_empty()
    }

    fn forget(&mut self, hostname: &str) {
        self.by_hostname.remove(&hostname.to_ascii_lowercase());
    }
}

/// What [`VpsieClient::delete_vm_in`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The delete was accepted.
    Deleted,
    /// The VM is still being created: it has no identifier yet, so it cannot be deleted, and it will
    /// appear in the VM list later. Retry after it does; never read this as "gone".
    StillPending,
    /// Neither list holds the host name. This is "gone" only if no create for it can still surface: a
    /// create the API accepted may show up in the pending list late, so the caller compares with when it
    /// last requested one.
    NotListed,
}

impl VpsieClient {
    /// Lists pending and created VMs once: two calls.
    ///
    /// Pending is read before the list: a VM moves from pending to the list, never back, so reading in
    /// this order cannot miss one that moves in between.
    pub async fn fleet(&self) -> Result<Fleet> {
        let pending = self.list_pending_vms().await?;
        let created = self.list_vms(None).await?;
        Ok(Fleet::from_lists(pending, created))
    }

    /// Creates a VM unless the fleet already holds its host name: one call, or none.
    ///
    /// The fleet must have been listed after any earlier create of this host name could have been
    /// accepted (a controller lists once per pass); a create requested through this fleet is remembered,
    /// so asking twice in one pass sends one request.
    pub async fn create_vm_in(&self, fleet: &mut Fleet, request: &CreateVmRequest) -> Result<CreateOutcome> {
        validate_hostname(&request.hostname)?;
        if let Some(found) = fleet.find(&request.hostname) {
            return Ok(CreateOutcome::AlreadyExists(found.lookup.clone()));
        }
        if fleet.was_requested(&request.hostname) {
            return Ok(CreateOutcome::AlreadyRequested);
        }
        let body = serde_json::to_value(request).map_err(|e| Error::Config(format!("create request: {e}")))?;
        // Remembered before the call: an ambiguous failure (timeout after the API accepted it) must not
        // lead to a second request in this pass either.
        let key = request.hostname.to_ascii_lowercase();
        fleet.requested.insert(key.clone());
        let sent = self
            .call::<serde_json::Value>(Call::send("vm.create", Method::POST, self.vm_path(""), Body::Json(body)))
            .await;
        if let Err(e) = sent {
            // Refused before it was acted on (429, 401, circuit open): the same fleet may send it again.
            if e.was_not_processed() {
                fleet.requested.remove(&key);
            }
            return Err(e);
        }
        tracing::info!(hostname = %request.hostname, dc = %request.dc_identifier, offer = %request.resource_identifier, "VM create requested");
        Ok(CreateOutcome::Requested)
    }

    /// Deletes the VM with this host name as the fleet shows it: one call, or none.
    pub async fn delete_vm_in(
        &self,
        fleet: &mut Fleet,
        hostname: &str,
        password: &Secret,
        reason: &str,
    ) -> Result<DeleteOutcome> {
        let identifier = match fleet.find(hostname).map(|v| &v.lookup) {
            None => return Ok(DeleteOutcome::NotListed),
            Some(VmLookup::Pending(_)) => return Ok(DeleteOutcome::StillPending),
            Some(VmLookup::Created(vm)) => vm.identifier.clone(),
        };
        match self.delete_vm(&identifier, password, reason).await {
            Ok(()) | Err(Error::NotFound { .. }) => {
                fleet.forget(hostname);
                Ok(DeleteOutcome::Deleted)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_round_trips_through_tags_and_notes() {
        let o = Ownership::new("prod-eu", "general");
        assert_eq!(Ownership::from_tags(&o.tags()), Some(o.clone()));
        assert_eq!(Ownership::from_note(&format!("kept by ops\n{}", o.note())), Some(o.clone()));
        assert_eq!(Ownership::from_tags(&["vpsie-autoscaler.cluster.x"]), None, "group tag missing");
        assert_eq!(Ownership::from_note("vpsie-autoscaler cluster=x"), None);
        assert_eq!(Ownership::from_note("someone else's notes"), None);
    }

    #[test]
    fn apply_keeps_the_callers_tags_and_notes() {
        let mut r = CreateVmRequest::new("h", "dc", "res", "os");
        r.tags = vec!["team:web".into()];
        r.notes = Some("hello".into());
        let o = Ownership::new("c1", "g1");
        o.apply(&mut r);
        o.apply(&mut r);
        assert_eq!(r.tags.len(), 4, "{:?}", r.tags);
        assert_eq!(Ownership::from_note(r.notes.as_deref().unwrap_or_default()), Some(o));
        assert!(r.notes.as_deref().unwrap_or_default().starts_with("hello\n"));
    }
}
