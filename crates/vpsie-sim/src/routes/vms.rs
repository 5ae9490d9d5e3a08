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

/// `VmData` as the API sends it: 0/1 ints for flags, numbers for sizes.
pub(crate) fn vm_json(v: &VmRec) -> Value {
    json!({
        "id": v.id,
        "user_id": 1,
        "identifier": v.identifier,
        "hostname": v.hostname,
        "boxsize_id": 0,
        "datacenter_id": v.dc_id,
        "dcIdentifier": v.offer.dc,
        "ram": v.offer.ram,
        "cpu": v.offer.cpu,
        "ssd": v.offer.ssd,
        "traffic": v.offer.traffic,
        "power": i32::from(v.power),
        "is_active": 1,
        "is_deleted": 0,
        "is_locked": 0,
        "is_suspended": 0,
        "is_terminated": 0,
        "default_ip": v.default_ip,
        "default_ipv6": "",
        "private_ip": v.private_ip,
        "project_id": v.project_id,
        "created_on": v.created_on,
        "last_updated": v.created_on,
        "notes": v.notes,
        "state": "",
        "category": "ubuntu",
        "fullname": v.os,
    })
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
        .pending
        .iter()
        .map(|p| json!({ "id": p.job_id, "user_id": 1, "data": p.echo, "running": 1, "type": "create" }))
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
        Some(v) => ok(json!({
            "cpu": 0.02, "ballon": 0, "uptime": 120, "pid": 4242, "disk": 0,
            "running-machine": "pc-i440fx", "running-qemu": "8.1.2",
            "status": if v.power { "running" } else { "stopped" },
            "diskread": 0, "diskwrite": 0, "fullname": v.os,
        })),
        None => ok(Value::Bool(false)),
    }
}

async fn create(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let req = CreateVm {
        hostname: text(&f, "hostname").unwrap_or_default(),
        dc: text(&f, "dcIdentifier").unwrap_or_default(),
        resource: text(&f, "resourceIdentifier").unwrap_or_default(),
        os: text(&f, "osIdentifier").unwrap_or_default(),
        project_id: int(&f, "projectId"),
        notes: text(&f, "notes"),
        tags: list(&f, "tags"),
        user_data: text(&f, "userData"),
        // The pending list echoes the request with flags as bools and no secrets.
        echo: json!({
            "resourceIdentifier": text(&f, "resourceIdentifier"),
            "osIdentifier": text(&f, "osIdentifier"),
            "dcIdentifier": text(&f, "dcIdentifier"),
            "hostname": text(&f, "hostname"),
            "addPublicIpV4": flag(&f, "addPublicIpV4"),
            "addPublicIpV6": flag(&f, "addPublicIpV6"),
            "addPrivateIp": flag(&f, "addPrivateIp"),
            "projectId": int(&f, "projectId"),
            "processId": text(&f, "processId"),
            "requestIp": "127.0.0.1",
            "isCreateFromLibrary": false,
        }),
    };
    answer(sim.lock().create_vm(req).map(|()| done()))
}

async fn delete(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let id = text(&f, "vmIdentifier").unwrap_or_default();
    let password = text(&f, "password").unwrap_or_default();
    let removed = sim.lock().delete_vm(&id, &password, &sim.config.account_password);
    answer(removed.map(|vm| {
        sim.notify_deleted(&vm.booted());
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
    with_vm(&sim, &headers, &body, |vm, _| vm.power = true)
}

async fn power_off(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    with_vm(&sim, &headers, &body, |vm, _| vm.power = false)
}
