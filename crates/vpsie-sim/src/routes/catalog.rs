//! Catalog endpoints: plan categories, offers per datacenter, managed sizes, datacenters (paged), images.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{Shared, fields, ok, ok_total, refused, text};
use crate::Sim;
use crate::state::Refusal;

pub(super) fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/api/v2/plans/category", get(categories))
        .route("/apps/v2/resources", post(resources))
        .route("/apps/v2/k8s/offers", post(k8s_offers))
        .route("/apps/v2/datacenter", get(datacenters))
        .route("/apps/v2/custom/images", get(images))
}

async fn categories(State(sim): Shared) -> Response {
    let st = sim.lock();
    let rows: Vec<Value> =
        st.catalog.categories.iter().map(|c| json!({ "identifier": c.identifier, "name": c.name })).collect();
    ok(Value::Array(rows))
}

/// A monthly or hourly price: a number, or a string with cents when the `string_prices` setting asks for
/// the shape some environments send. Never `-0.0`.
fn price_json(price: f64, decimals: usize, as_string: bool) -> Value {
    let price = price + 0.0; // -0.0 + 0.0 is +0.0
    if as_string { json!(format!("{price:.decimals$}")) } else { json!(price) }
}

/// Form body (`dcIdentifier`, `osIdentifier`, `planCatIdentifier`). Rows as the CAS autoscaler's `planData`
/// and govpsie's `ResourcePlan` read them: sizes, `price` and `net_speed` (Mbit/s) as numbers.
async fn resources(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let dc = text(&f, "dcIdentifier").unwrap_or_default();
    let category = text(&f, "planCatIdentifier");
    let st = sim.lock();
    if !st.catalog.datacenters.iter().any(|d| d.identifier == dc) {
        return refused(Refusal::Api(format!("Datacenter {dc} not found")));
    }
    let rows: Vec<Value> = st
        .catalog
        .offers
        .iter()
        .filter(|o| o.dc == dc && category.as_ref().is_none_or(|c| c.is_empty() || *c == o.category))
        .map(|o| {
            json!({
                "identifier": o.identifier, "nickname": o.nickname, "cpu": o.cpu, "ram": o.ram,
                "ssd": o.ssd, "traffic": o.traffic, "price": price_json(o.price, 2, st.settings.string_prices),
                "net_speed": 1000,
            })
        })
        .collect();
    ok(Value::Array(rows))
}

async fn k8s_offers(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let dc = text(&f, "dcIdentifier").unwrap_or_default();
    let st = sim.lock();
    if !st.catalog.datacenters.iter().any(|d| d.identifier == dc) {
        return refused(Refusal::Api(format!("Datacenter {dc} not found")));
    }
    let rows: Vec<Value> = st
        .catalog
        .k8s_sizes
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "name": s.name, "cpu": s.cpu, "ram": s.ram, "disk": s.disk,
                "price": price_json(s.price, 2, st.settings.string_prices),
                "hourly_price": price_json(s.price / 730.0, 4, st.settings.string_prices),
            })
        })
        .collect();
    ok(Value::Array(rows))
}

async fn datacenters(State(sim): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(10).clamp(1, 100);
    let st = sim.lock();
    let all = &st.catalog.datacenters;
    let rows: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|d| {
            json!({
                "dc_name": d.dc_name, "dc_image": "", "state": d.state, "country": d.country,
                "is_active": 1, "identifier": d.identifier, "default_selected": i32::from(d.id == 1),
                "is_deleted": 0, "is_fip_available": 1, "is_bucket_available": 0, "is_private": 0,
            })
        })
        .collect();
    ok_total(Value::Array(rows), all.len())
}

/// Rows as govpsie's `CustomImage`.
async fn images(State(sim): Shared) -> Response {
    let st = sim.lock();
    let (dc, dc_name) =
        st.catalog.datacenters.first().map(|d| (d.identifier.clone(), d.dc_name.clone())).unwrap_or_default();
    let rows: Vec<Value> = st
        .catalog
        .os_images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            json!({
                "id": i + 1, "user_id": 1, "datacenter_id": 1, "image_size": 2_147_483_648u64,
                "original_name": format!("{}.qcow2", img.identifier), "fetched_from_url": "",
                "changed_name": img.identifier, "image_hash": "", "image_label": img.image_label,
                "created_on": "2026-01-01T00:00:00Z", "deleted": 0, "identifier": img.identifier,
                "storage": "local", "dc_name": dc_name, "dcIdentifier": dc, "created_by": "1",
            })
        })
        .collect();
    ok(Value::Array(rows))
}
