//! The admin API (`Authorization: Bearer <admin_key>`): routes and targets, runtime changes, stats.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard::TargetError;

use super::admin_shapes::{ListedRoute, ListedTarget, Routes, Stats, Target};
use crate::error::{Api, ApiError};
use crate::request_id::RequestId;
use crate::state::AppState;

/// `GET /admin/routes`.
pub async fn routes(State(state): State<Arc<AppState>>) -> Json<Routes> {
    let routes = state
        .current()
        .routes
        .values()
        .map(|r| ListedRoute {
            name: r.name.to_string(),
            targets: r
                .manager
                .list_models()
                .iter()
                .map(|t| ListedTarget::new(t, state.overrides.get(&r.name, &t.id)))
                .collect(),
        })
        .collect();
    Json(Routes { routes })
}

/// Body of `PATCH /admin/routes/{route}/targets/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetPatch {
    enabled: Option<bool>,
    priority: Option<i32>,
    max_retries: Option<u32>,
}

/// `PATCH /admin/routes/{route}/targets/{id}` (id percent-encoded, or written with its `/`).
pub async fn patch_target(
    State(state): State<Arc<AppState>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Option<Target>>, ApiError> {
    let bad =
        |status: StatusCode, message: String| ApiError::new(Api::OpenAi, status, message).with_request_id(&request_id);
    let Path((route_name, id)) = path.map_err(|e| {
        bad(
            StatusCode::BAD_REQUEST,
            format!("invalid path: {}; write /admin/routes/ROUTE/targets/ID (ID percent-encoded)", e.body_text()),
        )
    })?;
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => bad(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {} bytes (server.max_body)", state.max_body),
        ),
        status => bad(status, format!("cannot read the request body: {}", e.body_text())),
    })?;
    let running = state.current();
    let route = running
        .routes
        .get(&route_name)
        .ok_or_else(|| bad(StatusCode::NOT_FOUND, format!("unknown route {route_name:?}")))?;
    let patch: TargetPatch = serde_json::from_slice(&body).map_err(|e| {
        bad(
            StatusCode::BAD_REQUEST,
            format!("invalid body: {e}; send {{\"enabled\"?: bool, \"priority\"?: int, \"max_retries\"?: int}}"),
        )
    })?;
    let map_err = |e: TargetError| match e {
        TargetError::NotFound { .. } => bad(StatusCode::NOT_FOUND, e.to_string()),
        other => bad(StatusCode::CONFLICT, other.to_string()),
    };
    // Check the id first, so a bad id changes nothing.
    if !route.manager.list_models().iter().any(|t| t.id == id) {
        return Err(map_err(
            route
                .manager
                .disable_model(&id)
                .err()
                .unwrap_or(TargetError::NotFound { id: id.clone(), known: String::new() }),
        ));
    }
    if let Some(enabled) = patch.enabled {
        let result = if enabled { route.manager.enable_model(&id) } else { route.manager.disable_model(&id) };
        result.map_err(map_err)?;
        state.target_events.changed(route, &id);
    }
    let change =
        crate::overrides::Change { enabled: patch.enabled, priority: patch.priority, max_retries: patch.max_retries };
    if patch.enabled.is_some() || patch.priority.is_some() || patch.max_retries.is_some() {
        state.overrides.record(&route_name, &id, change);
    }
    if let Some(priority) = patch.priority {
        route.manager.set_priority(&id, priority).map_err(map_err)?;
    }
    if let Some(max_retries) = patch.max_retries {
        route.manager.set_max_retries(&id, max_retries).map_err(map_err)?;
    }
    tracing::info!(route = %route_name, target_id = %id, ?patch, "admin changed target");
    let info = route.manager.list_models().into_iter().find(|t| t.id == id);
    Ok(Json(info.as_ref().map(Target::from)))
}

/// Query of `GET /admin/stats`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    scope: Option<Scope>,
}

/// Whose stats.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Scope {
    /// This replica (the default).
    Instance,
    /// Every live replica sharing the state, summed.
    Cluster,
}

/// `GET /admin/stats` (this replica) or `GET /admin/stats?scope=cluster` (every live replica, summed).
pub async fn stats(
    State(state): State<Arc<AppState>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let bad =
        |status: StatusCode, message: String| ApiError::new(Api::OpenAi, status, message).with_request_id(&request_id);
    let Query(query) = query.map_err(|e| {
        bad(StatusCode::BAD_REQUEST, format!("invalid query: {}; use ?scope=cluster or ?scope=instance", e.body_text()))
    })?;
    match query.scope.unwrap_or(Scope::Instance) {
        Scope::Instance => Ok(Json(stats_of(&state)).into_response()),
        Scope::Cluster => {
            let Some(shared) = &state.shared else {
                return Err(bad(
                    StatusCode::CONFLICT,
                    "scope=cluster needs shared state: set [state] backend = \"redis\"".to_owned(),
                ));
            };
            shared
                .cluster_stats()
                .await
                .map(|sum| Json(sum).into_response())
                .map_err(|e| bad(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).with_code("state_unavailable"))
        }
    }
}

/// `GET /admin/instances`: every live replica sharing the state.
pub async fn instances(
    State(state): State<Arc<AppState>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
) -> Result<Json<Value>, ApiError> {
    let bad =
        |status: StatusCode, message: String| ApiError::new(Api::OpenAi, status, message).with_request_id(&request_id);
    let Some(shared) = &state.shared else {
        return Err(bad(
            StatusCode::CONFLICT,
            "the replica list needs shared state: set [state] backend = \"redis\"".to_owned(),
        ));
    };
    shared
        .instances()
        .await
        .map(Json)
        .map_err(|e| bad(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).with_code("state_unavailable"))
}

/// This replica's stats, as `GET /admin/stats` answers them.
pub(crate) fn stats_of(state: &AppState) -> Stats {
    let running = state.current();
    let every = running.routes.values().chain(running.direct.values());
    Stats::new(every.map(|route| (&*route.name, route.direct, route.manager.stats())))
}

/// The answer of `POST /admin/stats/reset`.
#[derive(Debug, Serialize)]
pub struct Reset {
    /// Always true.
    reset: bool,
}

/// `POST /admin/stats/reset`.
pub async fn reset_stats(State(state): State<Arc<AppState>>) -> Json<Reset> {
    let running = state.current();
    for route in running.routes.values().chain(running.direct.values()) {
        route.manager.reset_stats();
    }
    tracing::info!("admin reset the stats");
    Json(Reset { reset: true })
}
