//! Building a VPSieNode's status for one transition, and writing it by server-side apply.

use autoscaler_api::constants::FIELD_MANAGER;
use autoscaler_api::{VPSieNode, VPSieNodePhase, VPSieNodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};

use crate::error::Result;
use crate::provision::Instance;

/// Condition types, one per milestone (Karpenter's NodeClaim keeps the same kind of list).
pub mod condition {
    /// The create was requested.
    pub const LAUNCHED: &str = "Launched";
    /// The VM is active with an IP.
    pub const PROVISIONED: &str = "Provisioned";
    /// The Node registered.
    pub const REGISTERED: &str = "Registered";
    /// The Node is Ready; False with reason `Failed` when the VPSieNode gave up.
    pub const READY: &str = "Ready";
    /// Being drained and removed.
    pub const TERMINATING: &str = "Terminating";
}

/// Sets a condition, keeping its transition time when its status did not change.
pub fn set_condition(conditions: &mut Vec<Condition>, type_: &str, ok: bool, reason: &str, message: &str, now: &Time) {
    let status = if ok { "True" } else { "False" };
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = now.clone();
        }
        c.status = status.to_owned();
        c.reason = reason.to_owned();
        c.message = message.to_owned();
        return;
    }
    conditions.push(Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: now.clone(),
        observed_generation: None,
    });
}

/// The status after moving to `phase`, recording what was observed (the machine and the Node).
pub fn advanced(
    current: &VPSieNodeStatus,
    phase: VPSieNodePhase,
    machine: Option<&Instance>,
    node_name: Option<&str>,
    now: jiff::Timestamp,
) -> VPSieNodeStatus {
    let t = Time(now);
    let mut s = current.clone();
    s.phase = phase;
    if let Some(m) = machine {
        s.vps_id = Some(m.id);
        s.vm_identifier = Some(m.identifier.clone());
        s.ip_address = m.public_ip.clone();
        s.private_ip = m.private_ip.clone();
    }
    if let Some(n) = node_name {
        s.node_name = Some(n.to_owned());
    }
    match phase {
        VPSieNodePhase::Pending => {}
        VPSieNodePhase::Provisioning => {
            s.created_at.get_or_insert_with(|| t.clone());
            set_condition(
                &mut s.conditions,
                condition::LAUNCHED,
                true,
                "CreateRequested",
                "the create request was sent",
                &t,
            );
        }
        VPSieNodePhase::Provisioned => {
            s.provisioned_at = Some(t.clone());
            set_condition(
                &mut s.conditions,
                condition::PROVISIONED,
                true,
                "VmActive",
                "the VM is active with an IP",
                &t,
            );
        }
        VPSieNodePhase::Joining => {
            if node_name.is_some() {
                s.joined_at.get_or_insert_with(|| t.clone());
                set_condition(
                    &mut s.conditions,
                    condition::REGISTERED,
                    true,
                    "NodeRegistered",
                    "the Node registered",
                    &t,
                );
            }
        }
        VPSieNodePhase::Ready => {
            s.joined_at.get_or_insert_with(|| t.clone());
            s.ready_at = Some(t.clone());
            set_condition(&mut s.conditions, condition::REGISTERED, true, "NodeRegistered", "the Node registered", &t);
            set_condition(&mut s.conditions, condition::READY, true, "NodeReady", "the Node is Ready", &t);
        }
        VPSieNodePhase::Terminating | VPSieNodePhase::Deleting => {
            s.terminating_at.get_or_insert_with(|| t.clone());
            set_condition(&mut s.conditions, condition::TERMINATING, true, "Deleting", "the node is being removed", &t);
        }
        VPSieNodePhase::Failed => {}
    }
    s
}

/// Why a VPSieNode gave up: its machine (the offering is then backed off), or the configuration (a
/// template or join Secret problem: no offering is at fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The VM or its Node did not come up.
    Machine,
    /// The NodeGroup's or the operator's configuration is unusable.
    Configuration,
}

impl FailureKind {
    /// The `Ready` condition's reason.
    pub fn reason(self) -> &'static str {
        match self {
            FailureKind::Machine => "Failed",
            FailureKind::Configuration => "ConfigurationError",
        }
    }
}

/// The status after giving up.
pub fn failed(current: &VPSieNodeStatus, reason: &str, kind: FailureKind, now: jiff::Timestamp) -> VPSieNodeStatus {
    let t = Time(now);
    let mut s = current.clone();
    s.phase = VPSieNodePhase::Failed;
    s.last_error = Some(reason.to_owned());
    set_condition(&mut s.conditions, condition::READY, false, kind.reason(), reason, &t);
    s
}

/// Writes the whole status by server-side apply (this controller is its only writer).
pub async fn write(api: &Api<VPSieNode>, vn: &VPSieNode, status: &VPSieNodeStatus) -> Result<()> {
    apply_status(api, vn, status).await
}

/// Applies `status` as the whole status of `obj` with our field manager, which owns every status field
/// of our CRDs: a field left out of `status` is removed.
pub async fn apply_status<K>(api: &Api<K>, obj: &K, status: &impl serde::Serialize) -> Result<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body)).await?;
    Ok(())
}

/// Adds or removes `finalizer` on `obj`, guarded by the resourceVersion the list was computed from (a
/// concurrent change to the finalizers fails with 409 and is retried by the next pass, never overwritten).
pub async fn set_finalizer<K>(api: &Api<K>, obj: &K, finalizer: &str, present: bool) -> Result<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut finalizers: Vec<String> = obj.finalizers().iter().filter(|f| *f != finalizer).cloned().collect();
    if present {
        finalizers.push(finalizer.to_owned());
    }
    let patch =
        serde_json::json!({ "metadata": { "finalizers": finalizers, "resourceVersion": obj.resource_version() } });
    api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}
