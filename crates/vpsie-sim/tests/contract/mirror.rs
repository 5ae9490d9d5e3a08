//! Rust mirrors of the types the public VPSie clients decode the API's answers into.
//!
//! Strict on purpose: no lenient decoders here. Go's `int`/`int64` is `i64` (a float or a string fails),
//! `string` is `String` (a number fails), `float64` is `f64`, `time.Time` is an RFC 3339 `jiff::Timestamp`,
//! a Go pointer is `Option`, `struct{}` is an object and `[]interface{}` an array. Every field must be present
//! (Go would take a missing one as zero; requiring it catches a field the simulator dropped). Unknown fields
//! are allowed, as Go ignores them. Where the simulator sends `null` for a non-pointer Go field (Go leaves
//! the zero value), the mirror says `Option` and the comment says so.
//!
//! Sources (read with the search tool; tags as in `shared/vpsie-api.md`):
//! GV = vpsieinc/govpsie @80d965e, GVn = vpsie/govpsie newer files (server.go@76cb48e, k8s.go@372295a,
//! sshkey/scripts/project.go@725a568, tag.go@192b1b9), CAS = vpsieinc/vpsie-k8s-capi-autoscaler
//! internal/vpsie/types.go, AS = vpsieinc/vpsie-k8s-autoscaler pkg/vpsie/client/types.go.
#![allow(dead_code, unreachable_pub)]

use serde::Deserialize;
use serde_json::{Map, Value};

/// govpsie.go `GeneralRspRoot` as mutations answer it: `data` is `true`.
#[derive(Debug, Deserialize)]
pub struct Done {
    pub error: bool,
    pub data: bool,
}

/// govpsie.go `ErrorRsp`. The simulator sends no `stack`; Go reads it as "".
#[derive(Debug, Deserialize)]
pub struct ErrorRsp {
    pub error: bool,
    pub code: i64,
    pub message: String,
    #[serde(default)]
    pub stack: String,
}

/// `{"error":false,"data":T}`.
#[derive(Debug, Deserialize)]
pub struct Root<T> {
    pub error: bool,
    pub data: T,
}

/// `{"error":false,"data":[T],"total":n}` (GV `ListServerRoot`, `SshKeysListRoot`, `DataCenterListRoot`,
/// `ListScriptRoot`).
#[derive(Debug, Deserialize)]
pub struct ListRoot<T> {
    pub error: bool,
    pub data: Vec<T>,
    pub total: i64,
}

/// GV account.go `TokenRoot`.
#[derive(Debug, Deserialize)]
pub struct TokenRoot {
    pub error: bool,
    pub token: Token,
}

/// GV account.go `Token`.
#[derive(Debug, Deserialize)]
pub struct Token {
    pub access: TokenDetails,
    pub refresh: TokenDetails,
}

/// GV account.go `TokenDetails`.
#[derive(Debug, Deserialize)]
pub struct TokenDetails {
    pub token: String,
    pub expires: String,
}

/// GV/GVn server.go `VmData`, every field. GVn reads `project_id`, GV `projectId`: both are required.
#[derive(Debug, Deserialize)]
pub struct VmData {
    pub id: i64,
    pub user_id: i64,
    pub boxsize_id: i64,
    pub boximage_id: i64,
    pub datacenter_id: i64,
    pub node_id: i64,
    pub boxdiscount_id: Option<i64>,
    pub hostname: String,
    pub default_ip: String,
    pub default_ipv6: String,
    pub private_ip: String,
    pub is_autobackup: i64,
    pub box_virtualization_id: String,
    pub ram: i64,
    pub cpu: i64,
    pub ssd: i64,
    pub traffic: i64,
    pub added_ip_addresses: Option<String>,
    pub initial_password: String,
    pub notes: Option<String>,
    pub created_on: String,
    pub last_updated: String,
    pub dropped_on: Option<String>,
    pub is_active: i64,
    pub is_deleted: i64,
    pub identifier: String,
    pub power: i64,
    pub project_id: i64,
    #[serde(rename = "projectId")]
    pub project_id_camel: i64,
    pub is_custom: i64,
    pub nr_added_ips: i64,
    pub in_pcs: i64,
    pub custom_price: Option<i64>,
    pub payable_license: i64,
    pub last_license_pay: Option<String>,
    pub script_id: Option<String>,
    pub sshkey_id: Option<String>,
    pub is_locked: i64,
    pub is_work_with_new_version: i64,
    pub is_suspended: i64,
    pub is_terminated: i64,
    pub old_id: i64,
    pub custom_iso_id: Option<i64>,
    pub is_iso_image_bootable: i64,
    pub has_ssl: i64,
    pub last_action_date: Option<String>,
    pub is_created_from_legacy: i64,
    pub is_smtp_allowed: i64,
    pub weekly_backup: i64,
    pub monthly_backup: i64,
    pub lib_iso_id: Option<i64>,
    pub daily_snapshot: i64,
    pub weekly_snapshot: i64,
    pub monthly_snap: i64,
    pub last_action_in_min: i64,
    pub firstname: String,
    pub lastname: String,
    pub username: String,
    pub state: String,
    pub is_fip_available: i64,
    pub is_bucket_available: i64,
    #[serde(rename = "dcIdentifier")]
    pub dc_identifier: String,
    pub category: String,
    pub fullname: String,
    #[serde(rename = "vmDescription")]
    pub vm_description: String,
    pub boxes_suspended: i64,
    pub is_sata_available: i64,
    pub is_ssd_available: i64,
    #[serde(rename = "publicIp")]
    pub public_ip: Option<String>,
    #[serde(rename = "vmType")]
    pub vm_type: String,
}

/// GVn server.go `ListServerByIdentifierRoot.Data`.
#[derive(Debug, Deserialize)]
pub struct VmByIdentifier {
    #[serde(rename = "vmData")]
    pub vm_data: VmData,
    #[serde(rename = "imageCategories")]
    pub image_categories: Vec<Map<String, Value>>,
    #[serde(rename = "vmTags")]
    pub vm_tags: Vec<Map<String, Value>>,
    #[serde(rename = "privateIpData")]
    pub private_ip_data: Vec<Map<String, Value>>,
    #[serde(rename = "floatingIpData")]
    pub floating_ip_data: Vec<Map<String, Value>>,
}

/// GV/GVn server.go `Status`: `cpu` an integer; `pid`, `diskread`, `diskwrite` strings.
#[derive(Debug, Deserialize)]
pub struct Status {
    pub cpu: i64,
    pub ballon: i64,
    pub uptime: i64,
    pub pid: String,
    pub disk: i64,
    #[serde(rename = "running-machine")]
    pub running_machine: String,
    #[serde(rename = "running-qemu")]
    pub running_qemu: String,
    pub status: String,
    pub diskread: String,
    pub diskwrite: String,
    pub fullname: String,
}

/// GV pending.go `PendingVm`.
#[derive(Debug, Deserialize)]
pub struct PendingVm {
    pub id: String,
    pub user: Map<String, Value>,
    pub user_id: i64,
    pub data: PendingVmData,
    #[serde(rename = "resourceData")]
    pub resource_data: Map<String, Value>,
    pub datacenter: Vec<Value>,
    #[serde(rename = "osData")]
    pub os_data: Map<String, Value>,
    pub running: i64,
    #[serde(rename = "type")]
    pub kind: String,
}

/// GV pending.go `PendingVm.Data`: the create request echoed, flags as bools. The simulator leaves out
/// `vmPassword` (a secret; Go reads it as "").
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingVmData {
    pub resource_identifier: String,
    pub os_identifier: String,
    pub dc_identifier: String,
    pub hostname: String,
    #[serde(rename = "addPublicIpV4")]
    pub add_public_ip_v4: bool,
    #[serde(rename = "addPublicIpV6")]
    pub add_public_ip_v6: bool,
    pub add_private_ip: bool,
    pub backup_enabled: bool,
    pub weekly_backup_enabled: bool,
    pub monthly_backup_enabled: bool,
    pub tags: Vec<Value>,
    pub project_id: i64,
    pub process_id: String,
    pub ssh_key_identifier: String,
    pub script_identifier: String,
    pub is_generated_password: bool,
    pub request_ip: String,
    pub is_create_from_library: bool,
}

/// CAS types.go `PlanCategory` (`GET /api/v2/plans/category`).
#[derive(Debug, Deserialize)]
pub struct PlanCategory {
    pub identifier: String,
    pub name: String,
}

/// An offer of `POST /apps/v2/resources`: CAS types.go `planData` (the client that calls the route; `price`
/// float64) with GV server.go `ResourcePlan`'s `net_speed` (int). GV declares `price` int but never calls
/// the route; a fractional monthly price would not fit it.
#[derive(Debug, Deserialize)]
pub struct ResourcePlan {
    pub identifier: String,
    pub nickname: String,
    pub cpu: i64,
    pub ram: i64,
    pub ssd: i64,
    pub traffic: i64,
    pub price: f64,
    pub net_speed: i64,
}

/// AS types.go `K8sOffer` (`POST /apps/v2/k8s/offers`).
#[derive(Debug, Deserialize)]
pub struct K8sOffer {
    pub id: i64,
    pub name: String,
    pub cpu: i64,
    pub ram: i64,
    pub disk: i64,
    pub price: f64,
    pub hourly_price: f64,
}

/// GV/GVn datacenter.go `DataCenter`.
#[derive(Debug, Deserialize)]
pub struct DataCenter {
    pub dc_name: String,
    pub dc_image: String,
    pub state: String,
    pub country: String,
    pub is_active: i64,
    pub identifier: String,
    pub default_selected: i64,
    pub is_deleted: i64,
    pub is_fip_available: i64,
    pub is_bucket_available: i64,
    pub is_private: i64,
}

/// GV images.go `CustomImage`.
#[derive(Debug, Deserialize)]
pub struct CustomImage {
    pub id: i64,
    pub user_id: i64,
    pub datacenter_id: i64,
    pub image_size: i64,
    pub original_name: String,
    pub fetched_from_url: String,
    pub changed_name: String,
    pub image_hash: String,
    pub image_label: String,
    pub created_on: jiff::Timestamp,
    pub deleted: i64,
    pub identifier: String,
    pub storage: String,
    pub dc_name: String,
    #[serde(rename = "dcIdentifier")]
    pub dc_identifier: String,
    pub created_by: String,
}

/// GV/GVn sshkey.go `SShKey`: `created_by` a string.
#[derive(Debug, Deserialize)]
pub struct SshKey {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub private_key: String,
    pub created_on: String,
    pub identifier: String,
    pub created_by: String,
}

/// GV/GVn scripts.go `Script` (list rows): `created_on` RFC 3339, `created_by` a string.
#[derive(Debug, Deserialize)]
pub struct Script {
    pub user_id: i64,
    pub box_id: i64,
    pub box_identifier: String,
    pub script_name: String,
    pub script: String,
    pub created_on: jiff::Timestamp,
    pub identifier: String,
    pub created_by: String,
}

/// GV/GVn scripts.go `ScriptDetail` (get by identifier).
#[derive(Debug, Deserialize)]
pub struct ScriptDetail {
    pub id: i64,
    pub user_id: i64,
    pub box_id: i64,
    pub box_identifier: String,
    pub name: String,
    pub script: String,
    pub created_on: jiff::Timestamp,
    pub identifier: String,
    pub script_name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// GVn tag.go `Tag`.
#[derive(Debug, Deserialize)]
pub struct Tag {
    pub identifier: String,
    pub name: String,
    pub color: String,
}

/// GVn tag.go `tagCreateRoot.Data`.
#[derive(Debug, Deserialize)]
pub struct TagCreated {
    pub identifier: String,
}

/// GV/GVn project.go `Project`: `id` and `created_by` numbers (uint64).
#[derive(Debug, Deserialize)]
pub struct Project {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub created_on: String,
    pub updated_at: String,
    pub identifier: String,
    pub created_by: u64,
    pub is_default: i64,
}

/// GV/GVn project.go `Data` (`rows` + `count`).
#[derive(Debug, Deserialize)]
pub struct ProjectRows {
    pub rows: Vec<Project>,
    pub count: i64,
}

/// GV/GVn k8s.go `ListK8s`: `created_by` a string, `price` float64.
#[derive(Debug, Deserialize)]
pub struct ListK8s {
    pub cluster_name: String,
    pub identifier: String,
    pub count: i64,
    pub created_on: String,
    pub updated_on: String,
    pub created_by: String,
    pub nickname: String,
    pub cpu: i64,
    pub ram: i64,
    pub traffic: i64,
    pub color: String,
    pub price: f64,
    #[serde(rename = "managerCount")]
    pub manager_count: i64,
    #[serde(rename = "slaveCount")]
    pub slave_count: i64,
}

/// GV/GVn k8s.go `K8s` (one cluster with its nodes).
#[derive(Debug, Deserialize)]
pub struct K8s {
    pub cluster_name: String,
    pub identifier: String,
    pub count: i64,
    pub nodes: Vec<Node>,
    pub created_on: String,
    pub updated_on: String,
    pub created_by: String,
    pub nickname: String,
    pub cpu: i64,
    pub ram: i64,
    pub traffic: i64,
    pub color: String,
    pub price: f64,
}

/// GV/GVn k8s.go `Node`.
#[derive(Debug, Deserialize)]
pub struct Node {
    pub id: i64,
    pub user_id: i64,
    pub hostname: String,
    pub default_ip: String,
    pub private_ip: String,
    pub node_type: i64,
    pub node_id: i64,
    pub datacenter_id: i64,
    pub created_on: String,
}

/// GV/GVn k8s.go `K8sGroup`. `notes` and `dropped_on` arrive as `null` (Go keeps the zero value).
#[derive(Debug, Deserialize)]
pub struct K8sGroup {
    pub id: i64,
    pub group_name: String,
    pub user_id: i64,
    pub boxsize_id: i64,
    pub datacenter_id: i64,
    pub ram: i64,
    pub cpu: i64,
    pub ssd: i64,
    pub traffic: i64,
    pub notes: Option<String>,
    pub created_on: jiff::Timestamp,
    pub last_updated: jiff::Timestamp,
    pub dropped_on: Option<jiff::Timestamp>,
    pub is_active: i64,
    pub is_deleted: i64,
    pub identifier: String,
    pub project_id: i64,
    pub cluster_id: i64,
    pub nodes_count: i64,
    #[serde(rename = "dcIdentifier")]
    pub dc_identifier: String,
}
