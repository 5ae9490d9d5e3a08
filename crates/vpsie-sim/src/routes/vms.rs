//! VM endpoints, served under both `/apps/v2/vm` and `/api/v2/vm`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{Shared, answer, done, fields, flag, int, list, ok, ok_total, text};
use crate::Sim;
use crate::state::{CreateVm, Refusal, VmRec};

pub(super) fn routes(prefix: &str) -> Router<Arc<Sim>> {
    Router::new()
        .route(prefix, get(list_vms).post(create).delete(delete))
        .route(&format!("{prefix}/pending"), get(pending))
        .route(&format!("{prefix}/status/{{id}}"), get(status))
        .route(&format!("{prefix}/addtags"), post(add_tags))
        .route(&format!("{prefix}/start"), post(power_on))
        .route(&format!("{prefix}/stop"), post(power_off))
        .route(&format!("{prefix}/{{id}}"), get(get_vm))
}

/// `VmData` as the API sends it (govpsie `server.go` `VmData`: every field, 0/1 ints for flags, numbers
/// for sizes, `null` where the Go type is a pointer). The project id goes out under both spellings:
/// `project_id` (vpsie/govpsie) and `projectId` (vpsieinc/govpsie).
pub(crate) fn vm_json(v: &VmRec) -> Value {
    // Two literals: one would pass serde_json's macro recursion limit.
    let mut row = json!({
        "id": v.id, "user_id": 1, "boxsize_id": 0, "boximage_id": 0, "datacenter_id": v.dc_id, "node_id": 1,
        "boxdiscount_id": null, "hostname": v.hostname, "default_ip": v.default_ip, "default_ipv6": "",
        "private_ip": v.private_ip, "is_autobackup": 0, "box_virtualization_id": "kvm",
        "ram": v.offer.ram, "cpu": v.offer.cpu, "ssd": v.offer.ssd, "traffic": v.offer.traffic,
        "added_ip_addresses": null, "initial_password": "", "notes": v.notes,
        "created_on": v.created_on, "last_updated": v.created_on, "dropped_on": null,
        "is_active": i32::from(v.active), "is_deleted": 0, "identifier": v.identifier, "power": i32::from(v.power),
        "project_id": v.project_id.unwrap_or(0), "projectId": v.project_id.unwrap_or(0),
        "is_custom": 0, "nr_added_ips": 0, "in_pcs": 0, "custom_price": null, "payable_license": 0,
        "last_license_pay": null, "script_id": v.script_id, "sshkey_id": v.ssh_key_id,
    });
    let rest = json!({
        "is_locked": 0, "is_work_with_new_version": 1, "is_suspended": 0, "is_terminated": 0, "old_id": 0,
        "custom_iso_id": null, "is_iso_image_bootable": 0, "has_ssl": 0, "last_action_date": null,
        "is_created_from_legacy": 0, "is_smtp_allowed": 0, "weekly_backup": 0, "monthly_backup": 0,
        "lib_iso_id": null, "daily_snapshot": 0, "weekly_snapshot": 0, "monthly_snap": 0,
        "last_action_in_min": 0, "firstname": "Sim", "lastname": "User", "username": "sim",
        "state": "", "is_fip_available": 1, "is_bucket_available": 0, "dcIdentifier": v.offer.dc,
        "category": "ubuntu", "fullname": v.os, "vmDescription": v.os, "boxes_suspended": 0,
        "is_sata_available": 0, "is_ssd_available": 1, "publicIp": v.default_ip, "vmType": "vm",
    });
    if let (Some(row), Value::Object(rest)) = (row.as_object_mut(), rest) {
        row.extend(rest);
    }
    row
}

async fn list_vms(State(sim): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let project: Option<i64> = q.get("projectId").and_then(|p| p.parse().ok());
    let st = sim.lock();
    let rows: Vec<Value> =
        st.vms.iter().filter(|v| project.is_none() || v.project_id == project).map(vm_json).collect();
    let n = rows.len();
    ok_total(Value::Array(rows), n)
}

async fn pending(State(sim): Shared) -> Response {
    let st = sim.lock();
    let rows: Vec<Value> = st
        .listed_pending(tokio::time::Instant::now())
        .map(|p| {
            json!({ "id": p.job_id, "user": {}, "user_id": 1, "data": p.echo, "resourceData": {}, "datacenter": [],
                    "osData": {}, "running": 1, "type": "create" })
        })
        .collect();
    ok(Value::Array(rows))
}

async fn get_vm(State(sim): Shared, Path(id): Path<String>) -> Response {
    let st = sim.lock();
    match st.vms.iter().find(|v| v.identifier == id) {
        Some(v) => {
            let tags: Vec<Value> = v.tags.iter().map(|t| json!({ "name": t })).collect();
            ok(
                json!({ "vmData": vm_json(v), "imageCategories": [], "vmTags": tags, "privateIpData": [], "floatingIpData": [] }),
            )
        }
        None => ok(Value::Bool(false)),
    }
}

async fn status(State(sim): Shared, Path(id): Path<String>) -> Response {
    let st = sim.lock();
    match st.vms.iter().find(|v| v.identifier == id) {
        // govpsie `Status`: cpu, ballon, uptime, disk are integers; pid, diskread, diskwrite strings.
        Some(v) => ok(json!({
            "cpu": 2, "ballon": 0, "uptime": 120, "pid": "4242", "disk": 0,
            "running-machine": "pc-i440fx", "running-qemu": "8.1.2",
            "status": if v.power { "running" } else { "stopped" },
            "diskread": "0", "diskwrite": "0", "fullname": v.os,
        })),
        None => ok(Value::Bool(false)),
    }
}

async fn create(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let ssh_key_id = text(&f, "sshKeyIdentifier").filter(|s| !s.is_empty());
    let script_id = text(&f, "scriptIdentifier").filter(|s| !s.is_empty());
    let tags = list(&f, "tags");
    let req = CreateVm {
        hostname: text(&f, "hostname").unwrap_or_default(),
        dc: text(&f, "dcIdentifier").unwrap_or_default(),
        resource: text(&f, "resourceIdentifier").unwrap_or_default(),
        os: text(&f, "osIdentifier").unwrap_or_default(),
        project_id: int(&f, "projectId"),
        notes: text(&f, "notes"),
        user_data: text(&f, "userData"),
        // The pending list echoes the request (govpsie `PendingVm.data`) with flags as bools and no secrets:
        // the VM password and the user data are not echoed.
        echo: json!({
            "resourceIdentifier": text(&f, "resourceIdentifier").unwrap_or_default(),
            "osIdentifier": text(&f, "osIdentifier").unwrap_or_default(),
            "dcIdentifier": text(&f, "dcIdentifier").unwrap_or_default(),
            "hostname": text(&f, "hostname").unwrap_or_default(),
            "addPublicIpV4": flag(&f, "addPublicIpV4"),
            "addPublicIpV6": flag(&f, "addPublicIpV6"),
            "addPrivateIp": flag(&f, "addPrivateIp"),
            "backupEnabled": flag(&f, "backupEnabled"),
            "weeklyBackupEnabled": flag(&f, "weeklyBackupEnabled"),
            "monthlyBackupEnabled": flag(&f, "monthlyBackupEnabled"),
            "tags": tags,
            "notes": text(&f, "notes"),
            "projectId": int(&f, "projectId").unwrap_or(0),
            "processId": text(&f, "processId").unwrap_or_default(),
            "sshKeyIdentifier": ssh_key_id.clone().unwrap_or_default(),
            "scriptIdentifier": script_id.clone().unwrap_or_default(),
            "isGeneratedPassword": flag(&f, "isGeneratedPassword"),
            "requestIp": "127.0.0.1",
            "isCreateFromLibrary": false,
        }),
        tags,
        ssh_key_id,
        script_id,
    };
    answer(sim.lock().create_vm(req).map(|()| done()))
}

async fn delete(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let id = text(&f, "vmIdentifier").unwrap_or_default();
    let password = text(&f, "password").unwrap_or_default();
    let removed = sim.lock().delete_vm(&id, &password, &sim.config.account_password);
    answer(removed.map(|vm| {
        sim.notify_deleted(&vm.booted(std::time::Duration::ZERO, ""));
        done()
    }))
}

fn with_vm(
    sim: &Sim,
    headers: &HeaderMap,
    body: &Bytes,
    f: impl FnOnce(&mut VmRec, &serde_json::Map<String, Value>),
) -> Response {
    let map = fields(headers, body);
    let id = text(&map, "vmIdentifier").unwrap_or_default();
    let mut st = sim.lock();
    answer(match st.vms.iter_mut().find(|v| v.identifier == id) {
        Some(vm) => {
            f(vm, &map);
            Ok(done())
        }
        None => Err(Refusal::NotFound("Server not found".into())),
    })
}

async fn add_tags(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    with_vm(&sim, &headers, &body, |vm, map| {
        for t in list(map, "tags") {
            if !vm.tags.contains(&t) {
                vm.tags.push(t);
            }
        }
    })
}

async fn power_on(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    set_power(&sim, &headers, &body, true)
}

async fn power_off(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    set_power(&sim, &headers, &body, false)
}

/// A joined VM's Node follows its power (through the boot hook), as a kubelet stops and starts with it.
fn set_power(sim: &Sim, headers: &HeaderMap, body: &Bytes, on: bool) -> Response {
    let map = fields(headers, body);
    let id = text(&map, "vmIdentifier").unwrap_or_default();
    answer(if !id.is_empty() && sim.set_power(&id, on) {
        Ok(done())
    } else {
        Err(Refusal::NotFound("Server not found".into()))
    })
}
