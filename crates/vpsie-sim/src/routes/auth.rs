//! Authentication: the client-credentials exchange and the check on every API request.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;

use super::{Shared, fields, http_error, text};
use crate::Sim;

pub(super) fn routes() -> Router<Arc<Sim>> {
    Router::new().route("/apps/v2/auth/from/api", post(exchange)).method_not_allowed_fallback(super::method_not_allowed)
}

/// Accepts JSON or form bodies and answers with both documented shapes at once.
async fn exchange(State(sim): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let (id, secret) = (text(&f, "clientId"), text(&f, "clientSecret"));
    if id.as_deref() != Some(sim.config.client_id.as_str())
        || secret.as_deref() != Some(sim.config.client_secret.as_str())
    {
        return http_error(StatusCode::UNAUTHORIZED, "Invalid client credentials");
    }
    let mut st = sim.lock();
    let ttl = Duration::from_secs(st.settings.token_ttl_secs);
    let token = format!("simtok-{:016x}", st.rng.next_u64());
    let refresh = format!("simref-{:016x}", st.rng.next_u64());
    st.issued_tokens.insert(token.clone(), Instant::now() + ttl);
    drop(st);
    let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(ttl.as_secs() as i64)).to_string();
    let access = json!({ "token": token, "expires": expires });
    let refresh = json!({ "token": refresh, "expires": expires });
    axum::Json(json!({
        "error": false,
        "token": { "access": access, "refresh": refresh },
        "accessToken": access,
        "refreshToken": refresh,
    }))
    .into_response()
}

/// The token a request carries, from `Vpsie-Auth` or `Authorization: Bearer`.
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("vpsie-auth").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_owned());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_owned())
}

pub(super) async fn require_auth(State(sim): Shared, req: Request, next: Next) -> Response {
    let valid = presented(req.headers()).is_some_and(|t| {
        let st = sim.lock();
        st.access_tokens.contains(&t) || st.issued_tokens.get(&t).is_some_and(|exp| Instant::now() < *exp)
    });
    if !valid {
        return http_error(StatusCode::UNAUTHORIZED, "Please authenticate");
    }
    next.run(req).await
}
