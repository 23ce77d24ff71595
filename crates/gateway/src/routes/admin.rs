//! The admin API (`Authorization: Bearer <admin_key>`): routes and targets, runtime changes, stats.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard::{StatsSnapshot, TargetError, TargetInfo, TargetStatsSnapshot};

use crate::error::{Api, ApiError};
use crate::request_id::RequestId;
use crate::state::{AppState, Route};

/// `GET /admin/routes`.
pub async fn routes(State(state): State<Arc<AppState>>) -> Json<Value> {
    let routes: Vec<Value> = state
        .current()
        .routes
        .values()
        .map(|r| {
            let targets: Vec<Value> = r
                .manager
                .list_models()
                .iter()
                .map(|t| {
                    let mut json = target_json(t);
                    json["override"] = json!(state.overrides.get(&r.name, &t.id));
                    json["breaker_since"] =
                        json!(t.breaker_since.map(|at| humantime::format_rfc3339_millis(at).to_string()));
                    json
                })
                .collect();
            json!({ "name": &*r.name, "targets": targets })
        })
        .collect();
    Json(json!({ "routes": routes }))
}

/// The SPEC's target shape; times are RFC 3339.
pub(crate) fn target_json(t: &TargetInfo) -> Value {
    let time = |t: Option<std::time::SystemTime>| t.map(|t| humantime::format_rfc3339_millis(t).to_string());
    json!({
        "id": t.id,
        "provider": t.provider,
        "model": t.model,
        "enabled": t.enabled,
        "priority": t.priority,
        "max_retries": t.max_retries,
        "is_current": t.is_current,
        "usage": t.usage_count,
        "breaker": t.breaker.as_str(),
        "breaker_opened": t.breaker_opened,
        "last_failure": time(t.last_failure),
        "last_recovery": time(t.last_recovery),
        "disabled_reason": t.disabled_reason,
    })
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
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(info.as_ref().map_or(Value::Null, target_json)))
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
) -> Result<Json<Value>, ApiError> {
    let bad =
        |status: StatusCode, message: String| ApiError::new(Api::OpenAi, status, message).with_request_id(&request_id);
    let Query(query) = query.map_err(|e| {
        bad(StatusCode::BAD_REQUEST, format!("invalid query: {}; use ?scope=cluster or ?scope=instance", e.body_text()))
    })?;
    match query.scope.unwrap_or(Scope::Instance) {
        Scope::Instance => Ok(Json(stats_json(&state))),
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
                .map(Json)
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
pub(crate) fn stats_json(state: &AppState) -> Value {
    let mut totals = [0u64; 6];
    let mut routes = serde_json::Map::new();
    let mut targets: BTreeMap<String, TargetStatsSnapshot> = BTreeMap::new();
    let running = state.current();
    for route in running.routes.values().chain(running.direct.values()) {
        let s = route.manager.stats();
        let counts = [s.total, s.success, s.failed, s.cancelled, s.fallbacks, s.in_flight];
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
        for (id, t) in &s.targets {
            add_target(targets.entry(id.clone()).or_default(), t);
        }
        routes.insert(route.name.to_string(), route_json(route, &s));
    }
    let [total, success, failed, cancelled, fallbacks, in_flight] = totals;
    let targets: serde_json::Map<String, Value> =
        targets.iter().map(|(id, t)| (id.clone(), target_stats_json(t))).collect();
    json!({
        "total": total,
        "success": success,
        "failed": failed,
        "cancelled": cancelled,
        "fallbacks": fallbacks,
        "in_flight": in_flight,
        "routes": routes,
        "targets": targets,
    })
}

/// `POST /admin/stats/reset`.
pub async fn reset_stats(State(state): State<Arc<AppState>>) -> Json<Value> {
    let running = state.current();
    for route in running.routes.values().chain(running.direct.values()) {
        route.manager.reset_stats();
    }
    tracing::info!("admin reset the stats");
    Json(json!({ "reset": true }))
}

fn route_json(route: &Route, s: &StatsSnapshot) -> Value {
    let targets: serde_json::Map<String, Value> =
        s.targets.iter().map(|(id, t)| (id.clone(), target_stats_json(t))).collect();
    json!({
        "direct": route.direct,
        "total": s.total,
        "success": s.success,
        "failed": s.failed,
        "cancelled": s.cancelled,
        "fallbacks": s.fallbacks,
        "in_flight": s.in_flight,
        "last_fallback": s.last_fallback.map(|t| humantime::format_rfc3339_millis(t).to_string()),
        "targets": targets,
    })
}

fn add_target(into: &mut TargetStatsSnapshot, t: &TargetStatsSnapshot) {
    into.attempts += t.attempts;
    into.successes += t.successes;
    into.cancelled += t.cancelled;
    into.stream_failures += t.stream_failures;
    into.usage_count += t.usage_count;
    into.latency_total += t.latency_total;
    into.skipped += t.skipped;
    into.retries_refused += t.retries_refused;
    into.hedges += t.hedges;
    into.events_skipped += t.events_skipped;
    for (kind, n) in &t.failures {
        *into.failures.entry(*kind).or_default() += n;
    }
}

fn target_stats_json(t: &TargetStatsSnapshot) -> Value {
    let failures: serde_json::Map<String, Value> =
        t.failures.iter().map(|(k, n)| (k.as_str().to_owned(), json!(n))).collect();
    json!({
        "attempts": t.attempts,
        "successes": t.successes,
        "failures": failures,
        "cancelled": t.cancelled,
        "stream_failures": t.stream_failures,
        "usage": t.usage_count,
        "skipped": t.skipped,
        "retries_refused": t.retries_refused,
        "hedges": t.hedges,
        "events_skipped": t.events_skipped,
        "mean_latency_ms": t.mean_latency().as_secs_f64() * 1000.0,
    })
}
