//! `GET /health`: no key needed; says whether every route has a target it may call.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Serialize;

use crate::state::AppState;

/// `{"status": "ok"|"degraded", "routes": {name: enabled_targets}}`; 503 when a route has no enabled target.
/// With `[state] backend = "redis"`, also `"state": "ok"|"degraded"` (Redis reachable or not); the
/// status code does not depend on it: a replica without Redis still serves.
pub async fn health(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Health>) {
    let mut routes = BTreeMap::new();
    for (name, route) in &state.current().routes {
        let enabled_targets = route.manager.list_models().iter().filter(|t| t.enabled).count();
        routes.insert(name.clone(), RouteHealth { enabled_targets });
    }
    let all_ok = routes.values().all(|r| r.enabled_targets > 0);
    let status = if all_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = Health {
        status: Status::from(all_ok),
        routes,
        state: state.shared.as_ref().map(|shared| Status::from(shared.up())),
    };
    (status, Json(body))
}

/// The answer of `GET /health`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// Whether every route has an enabled target.
    status: Status,
    /// Each route's enabled targets.
    routes: BTreeMap<String, RouteHealth>,
    /// Whether Redis is reachable; only with shared state.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<Status>,
}

/// `"ok"` or `"degraded"`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Degraded,
}

impl From<bool> for Status {
    fn from(ok: bool) -> Self {
        if ok { Status::Ok } else { Status::Degraded }
    }
}

/// One route's line in `GET /health`.
#[derive(Debug, Serialize)]
struct RouteHealth {
    enabled_targets: usize,
}
