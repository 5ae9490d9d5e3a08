//! Managed Kubernetes: clusters, node groups, nodes.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{delete, get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{Shared, answer, done, fields, int, ok, text};
use crate::Sim;
use crate::state::{ClusterRec, NodeRec, Refusal};

pub(super) fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/apps/v2/k8s/cluster/all", get(list_clusters))
        .route("/apps/v2/k8s/create/cluster", post(create_cluster))
        .route("/apps/v2/k8s/cluster/byId/{id}", get(get_cluster).delete(delete_cluster))
        .route("/apps/v2/k8s/cluster/byId/{id}/add/slave", post(add_default_node))
        .route("/apps/v2/k8s/cluster/byId/{id}/reduce", delete(reduce_default))
        .route("/apps/v2/k8s/node/groups/byClusterId/{id}", get(list_groups))
        .route("/apps/v2/k8s/cluster/add/group", post(add_group))
        .route("/apps/v2/k8s/cluster/delete/group/{gid}", delete(delete_group))
        .route("/apps/v2/k8s/cluster/byId/{id}/add/{node_type}/group/{gid}", post(add_node))
        .route("/apps/v2/k8s/cluster/byId/{id}/reduce/{node_type}", delete(reduce))
        .route("/apps/v2/k8s/cluster/byId/{id}/delete/slave", delete(delete_node))
}

fn node_json(n: &NodeRec, dc_id: i64) -> Value {
    json!({ "id": n.id, "identifier": n.identifier, "user_id": 1, "hostname": n.hostname,
            "default_ip": n.default_ip, "private_ip": n.private_ip, "node_type": n.node_type,
            "node_id": n.id, "datacenter_id": dc_id, "group_id": n.group_id, "created_on": n.created_on })
}

fn cluster_json(c: &ClusterRec, price: f64, with_nodes: bool) -> Value {
    let masters = c.nodes.iter().filter(|n| n.node_type == 1).count();
    let mut v = json!({
        "cluster_name": c.name, "identifier": c.identifier, "count": c.nodes.len(), "created_on": c.created_on,
        "updated_on": c.created_on, "created_by": super::account::CREATED_BY, "nickname": c.name, "cpu": 0, "ram": 0, "traffic": 0,
        "color": "", "price": price, "managerCount": masters, "slaveCount": c.nodes.len() - masters,
        "user_id": 1, "kube_version": c.kube_version,
    });
    if with_nodes && let Some(obj) = v.as_object_mut() {
        obj.insert("nodes".into(), Value::Array(c.nodes.iter().map(|n| node_json(n, 1)).collect()));
    }
    v
}

async fn list_clusters(State(sim): Shared) -> Response {
    let st = sim.lock();
    ok(Value::Array(st.clusters.iter().map(|c| cluster_json(c, cluster_price(&st, c), false)).collect()))
}

fn cluster_price(st: &crate::state::State, c: &ClusterRec) -> f64 {
    c.nodes
        .iter()
        .filter_map(|n| n.group_id)
        .filter_map(|g| st.groups.iter().find(|x| x.id == g))
        .map(|g| g.size.price)
        .sum::<f64>()
        + 0.0 // an empty sum is -0.0
}

async fn get_cluster(State(sim): Shared, Path(id): Path<String>) -> Response {
    let st = sim.lock();
    answer(st.cluster(&id).map(|c| ok(cluster_json(c, cluster_price(&st, c), true))))
}

async fn create_cluster(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let name = text(&f, "clusterName").unwrap_or_default();
    let dc = text(&f, "dcIdentifier").unwrap_or_default();
    let version = text(&f, "kuberVer").unwrap_or_else(|| "1.36.3".into());
    if name.is_empty() {
        return answer(Err(Refusal::Api("clusterName is required".into())));
    }
    answer(sim.lock().create_cluster(&name, &dc, &version).map(|_| done()))
}

async fn list_groups(State(sim): Shared, Path(id): Path<String>) -> Response {
    let st = sim.lock();
    answer(st.cluster(&id).map(|c| {
        let rows: Vec<Value> = st
            .groups
            .iter()
            .filter(|g| g.cluster == c.identifier)
            .map(|g| {
                let count = c.nodes.iter().filter(|n| n.group_id == Some(g.id)).count();
                json!({
                    "id": g.id, "group_name": g.name, "user_id": 1, "boxsize_id": g.size.id, "datacenter_id": 1,
                    "ram": g.size.ram, "cpu": g.size.cpu, "ssd": g.size.disk, "traffic": 0, "notes": null,
                    "created_on": g.created_on, "last_updated": g.created_on, "dropped_on": null,
                    "is_active": 1, "is_deleted": 0, "identifier": g.identifier, "project_id": 0,
                    "cluster_id": c.id, "nodes_count": count, "dcIdentifier": c.dc,
                })
            })
            .collect();
        ok(Value::Array(rows))
    }))
}

async fn add_group(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let cluster = text(&f, "clusterIdentifier").unwrap_or_default();
    let name = text(&f, "groupName").unwrap_or_default();
    // The API spells it with a capital K.
    let size = int(&f, "KubeSizeID").unwrap_or_default();
    answer(sim.lock().add_group(&cluster, &name, size).map(|()| done()))
}

async fn delete_group(State(sim): Shared, Path(gid): Path<String>) -> Response {
    let removed = sim.lock().delete_group(&gid);
    answer(removed.map(|nodes| {
        for n in &nodes {
            sim.notify_node_deleted(n);
        }
        done()
    }))
}

async fn delete_cluster(State(sim): Shared, Path(id): Path<String>) -> Response {
    let removed = sim.lock().delete_cluster(&id);
    answer(removed.map(|nodes| {
        for n in &nodes {
            sim.notify_node_deleted(n);
        }
        done()
    }))
}

/// `POST .../add/slave`: one more worker in the cluster's default (first) group.
async fn add_default_node(State(sim): Shared, Path(id): Path<String>) -> Response {
    let mut st = sim.lock();
    let group = st.default_group(&id);
    answer(group.and_then(|gid| st.add_group_node(&id, gid)).map(|()| done()))
}

/// `DELETE .../reduce`: one worker fewer in the cluster's default (first) group.
async fn reduce_default(State(sim): Shared, Path(id): Path<String>) -> Response {
    let removed = {
        let mut st = sim.lock();
        st.default_group(&id).and_then(|gid| st.reduce_group(&id, gid))
    };
    answer(removed.map(|n| {
        sim.notify_node_deleted(&n);
        done()
    }))
}

async fn add_node(State(sim): Shared, Path((id, node_type, gid)): Path<(String, String, i64)>) -> Response {
    if node_type != "slave" {
        return answer(Err(Refusal::Api(format!("Unsupported node type {node_type}"))));
    }
    answer(sim.lock().add_group_node(&id, gid).map(|()| done()))
}

async fn reduce(
    State(sim): Shared,
    Path((id, _node_type)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let group = int(&fields(&headers, &body), "groupId").unwrap_or_default();
    let removed = sim.lock().reduce_group(&id, group);
    answer(removed.map(|n| {
        sim.notify_node_deleted(&n);
        done()
    }))
}

async fn delete_node(State(sim): Shared, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let node = text(&fields(&headers, &body), "identifier").unwrap_or_default();
    let removed = sim.lock().delete_node(&id, &node);
    answer(removed.map(|n| {
        sim.notify_node_deleted(&n);
        done()
    }))
}
