//! `/__sim/...`: the admin API for tests and people. Not authenticated, not subject to faults.
//!
//! * `GET /__sim/state`: a dump of the world (no secrets, no user data).
//! * `GET /__sim/requests`, `DELETE /__sim/requests`: the request log.
//! * `GET|POST|DELETE /__sim/faults`: list, add (a [`crate::FaultRule`] as JSON), clear fault rules.
//! * `GET|POST /__sim/settings`: read or replace [`crate::RuntimeSettings`].
//! * `POST /__sim/tokens/expire`: every exchanged token becomes invalid.
//! * `GET|POST /__sim/tokens`: read or replace the accepted long-lived access tokens (`["tok-b"]`), to
//!   rotate credentials.
//! * `POST /__sim/vms/{id}/boot`: boot a pending VM now (identifier or hostname).
//! * `POST /__sim/clusters`: `{name, dc, version}` creates a managed cluster.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::Shared;
use crate::Sim;
use crate::faults::FaultRule;
use crate::state::RuntimeSettings;

pub(super) fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/__sim/state", get(|State(sim): Shared| async move { Json(sim.dump()) }))
        .route(
            "/__sim/requests",
            get(|State(sim): Shared| async move { Json(sim.lock().log.clone()) })
                .delete(|State(sim): Shared| async move { sim.lock().log.clear() }),
        )
        .route(
            "/__sim/faults",
            get(|State(sim): Shared| async move { Json(sim.lock().faults.clone()) })
                .post(|State(sim): Shared, Json(rule): Json<FaultRule>| async move { sim.lock().faults.push(rule) })
                .delete(|State(sim): Shared| async move { sim.lock().faults.clear() }),
        )
        .route(
            "/__sim/settings",
            get(|State(sim): Shared| async move { Json(sim.lock().settings.clone()) })
                .post(|State(sim): Shared, Json(s): Json<RuntimeSettings>| async move { sim.lock().settings = s }),
        )
        .route("/__sim/tokens/expire", post(|State(sim): Shared| async move { sim.lock().issued_tokens.clear() }))
        .route(
            "/__sim/tokens",
            get(|State(sim): Shared| async move { Json(sim.lock().access_tokens.clone()) })
                .post(|State(sim): Shared, Json(t): Json<Vec<String>>| async move { sim.lock().access_tokens = t }),
        )
        .route("/__sim/vms/{id}/boot", post(boot))
        .route("/__sim/clusters", post(create_cluster))
}

async fn boot(State(sim): Shared, Path(id): Path<String>) -> Response {
    if sim.lock().force_boot(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::NOT_FOUND, format!("no pending VM {id}")).into_response()
    }
}

#[derive(Deserialize)]
struct NewCluster {
    name: String,
    dc: String,
    #[serde(default = "default_version")]
    version: String,
}

fn default_version() -> String {
    "1.36.3".into()
}

async fn create_cluster(State(sim): Shared, Json(c): Json<NewCluster>) -> Response {
    match sim.lock().create_cluster(&c.name, &c.dc, &c.version) {
        Ok(id) => Json(serde_json::json!({ "identifier": id })).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e:?}")).into_response(),
    }
}
