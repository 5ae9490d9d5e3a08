//! SSH keys, scripts, tags and projects.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{Shared, answer, done, fields, list, ok, ok_total, text};
use crate::Sim;
use crate::state::{ProjectRec, Refusal, ScriptRec, SshKeyRec, TagRec, now_rfc3339};

pub(super) fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/apps/v2/sshkeys", get(list_keys))
        .route("/apps/v2/sshkey/add", post(add_key))
        .route("/apps/v2/sshkey", axum::routing::delete(delete_key))
        .route("/apps/v2/sshkey/{id}", get(get_key))
        .route("/apps/v2/scripts", get(list_scripts))
        .route("/apps/v2/script/add", post(add_script))
        .route("/apps/v2/script", axum::routing::delete(delete_script))
        .route("/apps/v2/script/{id}", get(get_script))
        .route("/apps/v2/tags", get(list_tags))
        .route("/apps/v2/tags/add", post(add_tag))
        .route("/apps/v2/projects", get(list_projects))
        .route("/apps/v2/projects/add", post(add_project))
        .route("/apps/v2/projects/{id}", get(get_project))
}

/// Who created an object, as SSH keys, scripts and managed clusters carry it: a string (govpsie `sshkey.go`,
/// `scripts.go`, `k8s.go`). Projects carry a number instead.
pub(super) const CREATED_BY: &str = "1";

fn key_json(k: &SshKeyRec) -> Value {
    json!({ "id": k.id, "user_id": 1, "name": k.name, "private_key": k.key, "created_on": k.created_on,
            "identifier": k.identifier, "created_by": CREATED_BY })
}

fn script_json(s: &ScriptRec) -> Value {
    json!({ "id": s.id, "user_id": 1, "box_id": 0, "box_identifier": "", "name": s.name, "script_name": s.name,
            "script": s.content, "created_on": s.created_on, "identifier": s.identifier, "created_by": CREATED_BY,
            "type": "bash" })
}

fn project_json(p: &ProjectRec) -> Value {
    json!({ "id": p.id, "name": p.name, "description": p.description, "created_on": p.created_on,
            "updated_at": p.created_on, "identifier": p.identifier, "created_by": 1, "is_default": i32::from(p.is_default) })
}

async fn list_keys(State(sim): Shared) -> Response {
    let st = sim.lock();
    ok_total(Value::Array(st.ssh_keys.iter().map(key_json).collect()), st.ssh_keys.len())
}

async fn get_key(State(sim): Shared, Path(id): Path<String>) -> Response {
    let st = sim.lock();
    ok(st.ssh_keys.iter().find(|k| k.identifier == id).map_or(Value::Bool(false), key_json))
}

async fn add_key(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let (Some(name), Some(key)) = (text(&f, "name"), text(&f, "privateKey")) else {
        return answer(Err(Refusal::Api("name and privateKey are required".into())));
    };
    let mut st = sim.lock();
    let rec = SshKeyRec { id: st.id(), identifier: st.rng.identifier(), name, key, created_on: now_rfc3339() };
    st.ssh_keys.push(rec);
    done()
}

async fn delete_key(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let id = text(&fields(&headers, &body), "identifier").unwrap_or_default();
    let mut st = sim.lock();
    let before = st.ssh_keys.len();
    st.ssh_keys.retain(|k| k.identifier != id);
    answer(if st.ssh_keys.len() < before { Ok(done()) } else { Err(Refusal::NotFound("SSH key not found".into())) })
}

async fn list_scripts(State(sim): Shared) -> Response {
    let st = sim.lock();
    ok_total(Value::Array(st.scripts.iter().map(script_json).collect()), st.scripts.len())
}

async fn get_script(State(sim): Shared, Path(id): Path<String>) -> Response {
    let st = sim.lock();
    ok(st.scripts.iter().find(|s| s.identifier == id).map_or(Value::Bool(false), script_json))
}

async fn add_script(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let (Some(name), Some(content)) = (text(&f, "name"), text(&f, "scriptContent")) else {
        return answer(Err(Refusal::Api("name and scriptContent are required".into())));
    };
    let mut st = sim.lock();
    // The API stores the name with ".sh" appended.
    let rec = ScriptRec {
        id: st.id(),
        identifier: st.rng.identifier(),
        name: format!("{name}.sh"),
        content,
        created_on: now_rfc3339(),
    };
    st.scripts.push(rec);
    done()
}

async fn delete_script(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let id = text(&fields(&headers, &body), "scriptIdentifier").unwrap_or_default();
    let mut st = sim.lock();
    let before = st.scripts.len();
    st.scripts.retain(|s| s.identifier != id);
    answer(if st.scripts.len() < before { Ok(done()) } else { Err(Refusal::NotFound("Script not found".into())) })
}

async fn list_tags(State(sim): Shared) -> Response {
    let st = sim.lock();
    let rows =
        st.tags.iter().map(|t| json!({ "identifier": t.identifier, "name": t.name, "color": t.color })).collect();
    ok(Value::Array(rows))
}

async fn add_tag(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let mut st = sim.lock();
    // Second form: attach tags to an entity.
    if let (Some(_entity), Some(id)) = (text(&f, "entity"), text(&f, "identifier")) {
        let tags = list(&f, "tags");
        return answer(match st.vms.iter_mut().find(|v| v.identifier == id) {
            Some(vm) => {
                vm.tags.extend(tags.into_iter().filter(|t| !vm.tags.contains(t)).collect::<Vec<_>>());
                Ok(done())
            }
            None => Err(Refusal::NotFound("Entity not found".into())),
        });
    }
    let Some(name) = text(&f, "name") else {
        return answer(Err(Refusal::Api("name is required".into())));
    };
    let identifier = st.rng.identifier();
    st.tags.push(TagRec { identifier: identifier.clone(), name, color: text(&f, "color").unwrap_or_default() });
    ok(json!({ "identifier": identifier }))
}

async fn list_projects(State(sim): Shared) -> Response {
    let st = sim.lock();
    let rows: Vec<Value> = st.projects.iter().map(project_json).collect();
    ok(json!({ "rows": rows, "count": st.projects.len() }))
}

async fn get_project(State(sim): Shared, Path(id): Path<String>) -> Response {
    let st = sim.lock();
    ok(st.projects.iter().find(|p| p.identifier == id).map_or(Value::Bool(false), project_json))
}

async fn add_project(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let Some(name) = text(&f, "name") else {
        return answer(Err(Refusal::Api("name is required".into())));
    };
    let mut st = sim.lock();
    let rec = ProjectRec {
        id: st.id(),
        identifier: st.rng.identifier(),
        name,
        description: text(&f, "description").unwrap_or_default(),
        is_default: false,
        created_on: now_rfc3339(),
    };
    st.projects.push(rec);
    done()
}
