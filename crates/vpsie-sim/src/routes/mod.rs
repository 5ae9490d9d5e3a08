//! HTTP surface: the API routes (behind request logging, fault injection and auth) and the `/__sim`
//! admin routes.

mod account;
mod admin;
mod auth;
mod catalog;
mod k8s;
mod vms;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::Sim;
use crate::faults::FaultKind;
use crate::state::{LoggedRequest, Refusal};

pub(crate) type Shared = State<Arc<Sim>>;

/// The whole application.
pub(crate) fn router(sim: Arc<Sim>) -> Router {
    let api = Router::new()
        .merge(vms::routes("/apps/v2/vm"))
        .merge(vms::routes("/api/v2/vm"))
        .merge(catalog::routes())
        .merge(account::routes())
        .merge(k8s::routes())
        .fallback(|| async { http_error(StatusCode::NOT_FOUND, "Not found") })
        // A known path with the wrong method gets the same JSON envelope, never an empty body.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(sim.clone(), auth::require_auth))
        .merge(auth::routes())
        .layer(from_fn_with_state(sim.clone(), inject_faults))
        .layer(from_fn_with_state(sim.clone(), log_request));
    api.merge(admin::routes()).with_state(sim)
}

// ---- envelopes ----

/// `{"error":false,"data":data}`.
pub(crate) fn ok(data: Value) -> Response {
    axum::Json(json!({ "error": false, "data": data })).into_response()
}

/// A paged list with `total`.
pub(crate) fn ok_total(data: Value, total: usize) -> Response {
    axum::Json(json!({ "error": false, "data": data, "total": total })).into_response()
}

/// `{"error":false,"data":true}`: what mutations answer.
pub(crate) fn done() -> Response {
    ok(Value::Bool(true))
}

/// An error body with a status.
pub(crate) fn http_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": true, "code": status.as_u16(), "message": message }))).into_response()
}

/// 405 in the JSON error envelope (a known path, a method it does not serve).
pub(crate) async fn method_not_allowed() -> Response {
    http_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// Maps a refusal to the answer the API gives.
pub(crate) fn refused(r: Refusal) -> Response {
    match r {
        Refusal::Api(message) => {
            // The API really does answer HTTP 200 with error:true for these.
            axum::Json(json!({ "error": true, "code": 400, "message": message })).into_response()
        }
        Refusal::Missing => ok(Value::Bool(false)),
        Refusal::NotFound(message) => http_error(StatusCode::NOT_FOUND, &message),
    }
}

/// Either the result or the refusal.
pub(crate) fn answer(r: Result<Response, Refusal>) -> Response {
    r.unwrap_or_else(refused)
}

// ---- bodies: JSON or form, with lenient fields ----

/// Reads a JSON object or a form body into a map (strings for form values).
pub(crate) fn fields(headers: &HeaderMap, body: &Bytes) -> Map<String, Value> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form && let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        return map;
    }
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map(|pairs| pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
        .unwrap_or_default()
}

/// A string field sent as a string or a number.
pub(crate) fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer field sent as a number or a numeric string.
pub(crate) fn int(map: &Map<String, Value>, key: &str) -> Option<i64> {
    match map.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A string list sent as an array or a comma-separated string.
pub(crate) fn list(map: &Map<String, Value>, key: &str) -> Vec<String> {
    match map.get(key) {
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Some(Value::String(s)) if !s.is_empty() => s.split(',').map(|x| x.trim().to_owned()).collect(),
        _ => Vec::new(),
    }
}

/// A 0/1 flag sent as an int, a string or a bool.
pub(crate) fn flag(map: &Map<String, Value>, key: &str) -> bool {
    match map.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "true"),
        _ => false,
    }
}

// ---- middleware ----

fn auth_kind(headers: &HeaderMap) -> &'static str {
    if headers.contains_key("vpsie-auth") {
        "vpsie-auth"
    } else if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer "))
    {
        "bearer"
    } else {
        "none"
    }
}

/// Header recording which fault, if any, a response carries (read by the log).
const FAULT_HEADER: &str = "x-sim-fault";

async fn log_request(State(sim): Shared, req: Request, next: Next) -> Response {
    let received_at_ms = jiff::Timestamp::now().as_millisecond();
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let auth = auth_kind(req.headers()).to_owned();
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let response = next.run(req).await;
    let fault = response.headers().get(FAULT_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    tracing::debug!(%method, %path, status = response.status().as_u16(), fault = fault.as_deref(), "served");
    let status = response.status().as_u16();
    sim.lock().log.push(LoggedRequest { method, path, query, status, auth, fault, user_agent, received_at_ms });
    response
}

async fn inject_faults(State(sim): Shared, req: Request, next: Next) -> Response {
    let hit = {
        let mut st = sim.lock();
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let mut hit = None;
        for i in 0..st.faults.len() {
            if !st.faults[i].matches(&method, &path) {
                continue;
            }
            let draw = st.rng.unit();
            let rule = &mut st.faults[i];
            if draw < rule.rate {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                hit = Some((rule.kind.clone(), rule.latency_ms));
                break;
            }
        }
        hit
    };
    let Some((kind, latency_ms)) = hit else {
        return next.run(req).await;
    };
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
    let label = serde_json::to_value(&kind)
        .ok()
        .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let mut response = match kind {
        FaultKind::LatencyOnly => next.run(req).await,
        FaultKind::InternalError => http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        FaultKind::Unavailable => http_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        FaultKind::BadGateway => bad_gateway(),
        FaultKind::RateLimited { retry_after_secs } => {
            let mut r = http_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            r.headers_mut().insert(header::RETRY_AFTER, retry_after_secs.into());
            r
        }
        FaultKind::Garbage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(r#"{"error":false,"data":[{"identifier":"trunc"#),
        )
            .into_response(),
        FaultKind::FailAfterEffect => {
            let _ = next.run(req).await;
            bad_gateway()
        }
        FaultKind::Swallowed => done(),
        FaultKind::PartialListing { keep_percent } => partial_listing(next.run(req).await, keep_percent).await,
    };
    if let Ok(v) = label.parse() {
        response.headers_mut().insert(FAULT_HEADER, v);
    }
    response
}

/// Keeps the first `keep_percent` percent of a list answer's `data`; anything else passes unchanged.
async fn partial_listing(response: Response, keep_percent: u8) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let Some(list) = value.get_mut("data").and_then(Value::as_array_mut) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let keep = list.len() * usize::from(keep_percent.min(100)) / 100;
    list.truncate(keep);
    if let Some(total) = value.get_mut("total").filter(|t| t.is_number()) {
        *total = Value::from(keep);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(value.to_string()))
}

fn bad_gateway() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/html")],
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    )
        .into_response()
}
