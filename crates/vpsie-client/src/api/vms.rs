//! Virtual machines: list, get, pending, idempotent create, delete, status, tags.

use http::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Body, Call, VpsieClient};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::wire::flex;

/// A VM as the list and get endpoints return it (`VmData`). Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Vm {
    /// Numeric database id.
    #[serde(default, deserialize_with = "flex::i64")]
    pub id: i64,
    /// The VM identifier used in every path and body.
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Host name chosen at create time.
    #[serde(default, deserialize_with = "flex::string")]
    pub hostname: String,
    /// vCPUs.
    #[serde(default, deserialize_with = "flex::i64")]
    pub cpu: i64,
    /// Memory in MiB.
    #[serde(default, deserialize_with = "flex::i64")]
    pub ram: i64,
    /// Disk in GiB.
    #[serde(default, deserialize_with = "flex::i64")]
    pub ssd: i64,
    /// Power state: on.
    #[serde(default, deserialize_with = "flex::bool")]
    pub power: bool,
    /// Provisioned and active.
    #[serde(default, deserialize_with = "flex::bool")]
    pub is_active: bool,
    /// Suspended by the provider.
    #[serde(default, deserialize_with = "flex::bool")]
    pub is_suspended: bool,
    /// Locked against changes.
    #[serde(default, deserialize_with = "flex::bool")]
    pub is_locked: bool,
    /// Terminated.
    #[serde(default, deserialize_with = "flex::bool")]
    pub is_terminated: bool,
    /// Deleted.
    #[serde(default, deserialize_with = "flex::bool")]
    pub is_deleted: bool,
    /// Primary public IPv4 ("" until assigned).
    #[serde(default, deserialize_with = "flex::string")]
    pub default_ip: String,
    /// Primary public IPv6.
    #[serde(default, deserialize_with = "flex::string")]
    pub default_ipv6: String,
    /// Private IP, when the VM has one.
    #[serde(default, deserialize_with = "flex::opt_string")]
    pub private_ip: Option<String>,
    /// Numeric datacenter id.
    #[serde(default, deserialize_with = "flex::i64")]
    pub datacenter_id: i64,
    /// Datacenter identifier.
    #[serde(default, rename = "dcIdentifier", deserialize_with = "flex::string")]
    pub dc_identifier: String,
    /// Project id (sent as `project_id`, `projectId` or both: each official client reads one).
    #[serde(default, deserialize_with = "flex::opt_i64")]
    pub project_id: Option<i64>,
    /// `projectId`, folded into `project_id` after decoding (an alias would refuse a row with both).
    #[serde(default, rename = "projectId", deserialize_with = "flex::opt_i64")]
    project_id_camel: Option<i64>,
    /// Creation time as the API sent it.
    #[serde(default, deserialize_with = "flex::string")]
    pub created_on: String,
    /// Notes.
    #[serde(default, deserialize_with = "flex::opt_string")]
    pub notes: Option<String>,
}

impl Vm {
    /// Takes the project id from whichever spelling the row carried.
    fn with_project_id(mut self) -> Self {
        self.project_id = self.project_id.or(self.project_id_camel.take());
        self
    }

    /// [`Vm::created_on`] parsed; `None` when absent or unreadable.
    pub fn created_at(&self) -> Option<jiff::Timestamp> {
        crate::wire::parse_time(&self.created_on)
    }

    /// Ready to join a cluster: active, powered on, with a public IP.
    pub fn is_ready(&self) -> bool {
        self.is_active && self.power && !self.default_ip.is_empty()
    }
}

/// `GET /vm/{identifier}`: the VM and its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct VmDetail {
    /// The VM.
    pub vm: Vm,
    /// Tag names on the VM.
    pub tags: Vec<String>,
}

#[derive(Deserialize)]
struct RawDetail {
    #[serde(rename = "vmData")]
    vm_data: Vm,
    #[serde(default, rename = "vmTags")]
    vm_tags: Vec<serde_json::Value>,
}

/// A VM still being created (`GET /vm/pending`): the echo of its create request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PendingVm {
    /// The pending job's id.
    #[serde(default, deserialize_with = "flex::string")]
    pub id: String,
    /// The echoed create request.
    pub data: PendingRequest,
    /// Whether the job is running.
    #[serde(default, deserialize_with = "flex::bool")]
    pub running: bool,
}

/// The create request fields echoed in [`PendingVm`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PendingRequest {
    /// Requested host name.
    #[serde(default, deserialize_with = "flex::string")]
    pub hostname: String,
    /// Requested offer.
    #[serde(default, rename = "resourceIdentifier", deserialize_with = "flex::string")]
    pub resource_identifier: String,
    /// Requested OS image.
    #[serde(default, rename = "osIdentifier", deserialize_with = "flex::string")]
    pub os_identifier: String,
    /// Requested datacenter.
    #[serde(default, rename = "dcIdentifier", deserialize_with = "flex::string")]
    pub dc_identifier: String,
    /// Requested tags (names; an API version that echoes tag objects gives their `name`).
    #[serde(default, deserialize_with = "flex::string_list")]
    pub tags: Vec<String>,
    /// Requested notes, when echoed.
    #[serde(default, deserialize_with = "flex::opt_string")]
    pub notes: Option<String>,
}

/// `GET /vm/status/{identifier}`: the hypervisor's view.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VmStatus {
    /// `running` or `stopped`.
    #[serde(default, deserialize_with = "flex::string")]
    pub status: String,
    /// CPU load fraction.
    #[serde(default, deserialize_with = "flex::f64")]
    pub cpu: f64,
    /// Seconds since boot.
    #[serde(default, deserialize_with = "flex::i64")]
    pub uptime: i64,
}

/// What to create. `hostname` must be unique: it is how the VM is found again.
#[derive(Clone, Serialize)]
pub struct CreateVmRequest {
    /// The datacenter-mapped offer identifier from [`VpsieClient::list_offers`].
    #[serde(rename = "resourceIdentifier")]
    pub resource_identifier: String,
    /// OS image identifier.
    #[serde(rename = "osIdentifier")]
    pub os_identifier: String,
    /// Datacenter identifier.
    #[serde(rename = "dcIdentifier")]
    pub dc_identifier: String,
    /// Lowercase RFC 1123 label, unique across the account.
    pub hostname: String,
    /// Project identifier.
    #[serde(rename = "projectId", skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Free text shown in the console.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// SSH key identifier.
    #[serde(rename = "sshKeyIdentifier", skip_serializing_if = "Option::is_none")]
    pub ssh_key_identifier: Option<String>,
    /// Startup script identifier.
    #[serde(rename = "scriptIdentifier", skip_serializing_if = "Option::is_none")]
    pub script_identifier: Option<String>,
    /// Tags; the autoscaler tags every VM with its cluster and NodeGroup.
    pub tags: Vec<String>,
    /// cloud-init user data. It may hold join tokens, so it is a [`Secret`].
    #[serde(rename = "userData", skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub user_data: Option<Secret>,
    /// Add a public IPv4 (sent as `"1"`: numeric flags were silently ignored by the API).
    #[serde(rename = "addPublicIpV4", serialize_with = "flag")]
    pub public_ipv4: bool,
    /// Add a public IPv6.
    #[serde(rename = "addPublicIpV6", serialize_with = "flag")]
    pub public_ipv6: bool,
    /// Add a private IP.
    #[serde(rename = "addPrivateIp", serialize_with = "flag")]
    pub private_ip: bool,
}

impl std::fmt::Debug for CreateVmRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateVmRequest")
            .field("hostname", &self.hostname)
            .field("resource_identifier", &self.resource_identifier)
            .field("dc_identifier", &self.dc_identifier)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

impl CreateVmRequest {
    /// A request with public IPv4 and private IP on, and nothing optional set.
    pub fn new(
        hostname: impl Into<String>,
        dc_identifier: impl Into<String>,
        resource_identifier: impl Into<String>,
        os_identifier: impl Into<String>,
    ) -> Self {
        Self {
            resource_identifier: resource_identifier.into(),
            os_identifier: os_identifier.into(),
            dc_identifier: dc_identifier.into(),
            hostname: hostname.into(),
            project_id: None,
            notes: None,
            ssh_key_identifier: None,
            script_identifier: None,
            tags: Vec::new(),
            user_data: None,
            public_ipv4: true,
            public_ipv6: false,
            private_ip: true,
        }
    }
}

fn flag<S: serde::Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if *v { "1" } else { "0" })
}

fn expose_opt<S: serde::Serializer>(v: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(secret) => s.serialize_str(secret.expose()),
        None => s.serialize_none(),
    }
}

/// Where a VM with a given host name was found.
#[derive(Debug, Clone, PartialEq)]
pub enum VmLookup {
    /// Still being created.
    Pending(PendingVm),
    /// Created (maybe not yet ready; see [`Vm::is_ready`]).
    Created(Vm),
}

/// What [`VpsieClient::create_vm`] did.
// Returned once per create and never stored in bulk: boxing would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// A VM with this host name already existed (an earlier attempt got through); nothing was sent.
    AlreadyExists(VmLookup),
    /// The create request was accepted; the VM shows up in pending, then in the list.
    Requested,
    /// This fleet view already sent a create for the host name (see [`crate::Fleet`]); nothing was sent.
    AlreadyRequested,
}

/// Checks a host name: 1 to 63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`.
pub fn validate_hostname(hostname: &str) -> Result<()> {
    let ok = !hostname.is_empty()
        && hostname.len() <= 63
        && hostname.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !hostname.starts_with('-')
        && !hostname.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "hostname {hostname:?} must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'"
        )))
    }
}

impl VpsieClient {
    /// Lists the account's VMs, optionally of one project.
    pub async fn list_vms(&self, project_id: Option<i64>) -> Result<Vec<Vm>> {
        let path = match project_id {
            Some(p) => self.vm_path(&format!("?projectId={p}")),
            None => self.vm_path(""),
        };
        let vms: Vec<Vm> = self.call(Call::get("vm.list", path)).await?.data;
        Ok(vms.into_iter().map(Vm::with_project_id).collect())
    }

    /// Gets one VM with its tags. A missing VM is [`Error::NotFound`].
    pub async fn get_vm(&self, identifier: &str) -> Result<VmDetail> {
        let raw: RawDetail = self.call(Call::get("vm.get", self.vm_path(&format!("/{}", enc(identifier))))).await?.data;
        let tags = raw
            .vm_tags
            .iter()
            .filter_map(|t| t.as_str().or_else(|| t.get("name").and_then(|n| n.as_str())).map(str::to_owned))
            .collect();
        Ok(VmDetail { vm: raw.vm_data.with_project_id(), tags })
    }

    /// Lists VMs still being created.
    pub async fn list_pending_vms(&self) -> Result<Vec<PendingVm>> {
        Ok(self.call(Call::get("vm.pending", self.vm_path("/pending"))).await?.data)
    }

    /// Finds a VM by host name (case-insensitive), pending or created: one [`VpsieClient::fleet`] listing.
    pub async fn find_vm_by_hostname(&self, hostname: &str) -> Result<Option<VmLookup>> {
        Ok(self.fleet().await?.find(hostname).map(|v| v.lookup.clone()))
    }

    /// Creates a VM unless one with the same host name exists.
    ///
    /// The host name is looked up first, so calling this again after a crash or an ambiguous failure (a
    /// timeout after the API accepted the request) finds the VM instead of creating a second one. The
    /// create call itself is never retried automatically for the same reason. Each call lists the account
    /// (three calls in all); to create many VMs, list once with [`VpsieClient::fleet`] and use
    /// [`VpsieClient::create_vm_in`].
    pub async fn create_vm(&self, request: &CreateVmRequest) -> Result<CreateOutcome> {
        validate_hostname(&request.hostname)?;
        let outcome = self.create_vm_in(&mut self.fleet().await?, request).await?;
        if matches!(outcome, CreateOutcome::AlreadyExists(_)) {
            tracing::info!(hostname = %request.hostname, "VM already exists; not creating another");
        }
        Ok(outcome)
    }

    /// Deletes a VM. `password` is the account password the API demands; a wrong one is an
    /// [`Error::Api`] and the VM keeps running. A VM that is already gone is [`Error::NotFound`].
    pub async fn delete_vm(&self, identifier: &str, password: &Secret, reason: &str) -> Result<()> {
        let body = serde_json::json!({
            "vmIdentifier": identifier,
            "password": password.expose(),
            "deleteStatistic": { "reason": reason, "note": "deleted by vpsie-autoscaler" },
        });
        // Safe to resend: a second delete of the same VM answers not-found.
        self.call::<serde_json::Value>(
            Call::send("vm.delete", Method::DELETE, self.vm_path(""), Body::Json(body)).retryable(),
        )
        .await?;
        Ok(())
    }

    /// The hypervisor status of a VM.
    pub async fn vm_status(&self, identifier: &str) -> Result<VmStatus> {
        Ok(self.call(Call::get("vm.status", self.vm_path(&format!("/status/{}", enc(identifier))))).await?.data)
    }

    /// Adds tags to a VM.
    pub async fn add_vm_tags(&self, identifier: &str, tags: &[String]) -> Result<()> {
        let body = serde_json::json!({ "vmIdentifier": identifier, "tags": tags });
        self.call::<serde_json::Value>(
            Call::send("vm.addtags", Method::POST, self.vm_path("/addtags"), Body::Json(body)).retryable(),
        )
        .await?;
        Ok(())
    }

    /// Lists the VMs carrying `tag`, with their tags. This reads each VM once (the list has no tags), so it
    /// costs one call per VM; use it for orphan sweeps, not in a hot loop.
    pub async fn list_vms_with_tag(&self, tag: &str) -> Result<Vec<VmDetail>> {
        let mut out = Vec::new();
        for vm in self.list_vms(None).await? {
            match self.get_vm(&vm.identifier).await {
                Ok(detail) if detail.tags.iter().any(|t| t == tag) => out.push(detail),
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// Percent-encodes a path segment (identifiers are UUIDs, but input is input).
pub(crate) fn enc(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(validate_hostname("ng-general-7f3a").is_ok());
        for bad in ["", "-a", "a-", "Upper", "a_b", &"a".repeat(64)] {
            assert!(validate_hostname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_request_wire_format_and_redacted_debug() {
        let mut r = CreateVmRequest::new("h1", "dc", "res", "os");
        r.user_data = Some(Secret::new("join-token-xyz"));
        let v = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(v["addPublicIpV4"], "1");
        assert_eq!(v["addPublicIpV6"], "0");
        assert_eq!(v["userData"], "join-token-xyz");
        assert!(!format!("{r:?}").contains("join-token"));
    }

    #[test]
    fn encodes_path_segments() {
        assert_eq!(enc("ab-1"), "ab-1");
        assert_eq!(enc("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn project_id_is_read_from_either_spelling_or_both() {
        let decode = |row: &str| serde_json::from_str::<Vm>(row).map(Vm::with_project_id).map(|v| v.project_id).ok();
        assert_eq!(decode(r#"{"project_id":7,"projectId":7}"#), Some(Some(7)), "both, as the simulator sends");
        assert_eq!(decode(r#"{"projectId":"8"}"#), Some(Some(8)));
        assert_eq!(decode(r#"{"project_id":9}"#), Some(Some(9)));
        assert_eq!(decode(r#"{}"#), Some(None));
    }
}
