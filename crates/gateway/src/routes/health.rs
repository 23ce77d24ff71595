//! `GET /health`: no key needed; says whether every route has a target it may call.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// `{"status": "ok"|"degraded", "routes": {name: enabled_targets}}`; 503 when a route has no enabled target.
/// With `[state] backend = "redis"`, also `"state": "ok"|"degraded"` (Redis reachable or not); the
/// status code does not depend on it: a replica without Redis still serves.
pub async fn health(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let mut routes = serde_json::Map::new();
    let mut all_ok = true;
    for (name, route) in &state.current().routes {
        let enabled = route.manager.list_models().iter().filter(|t| t.enabled).count();
        all_ok &= enabled > 0;
        routes.insert(name.clone(), json!({ "enabled_targets": enabled }));
    }
    let status = if all_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut body = json!({ "status": if all_ok { "ok" } else { "degraded" }, "routes": routes });
    if let Some(shared) = &state.shared {
        body["state"] = json!(if shared.up() { "ok" } else { "degraded" });
    }
    (status, Json(body))
}
