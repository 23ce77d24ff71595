//! `PATCH /admin/targets/{id}`: one change to a target everywhere it serves, in every route that lists
//! it and for requests that name it directly (SPEC-2 section 9).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use switchyard::TargetError;

use crate::error::{Api, ApiError};
use crate::request_id::RequestId;
use crate::state::{AppState, Route};

/// Body of `PATCH /admin/targets/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    enabled: Option<bool>,
}

/// The answer: the target, whether it is enabled, and where the change applied.
#[derive(Debug, Serialize)]
pub struct Changed {
    /// The target id.
    id: String,
    /// Whether requests may call it now.
    enabled: bool,
    /// The routes that list it.
    routes: Vec<String>,
    /// Whether requests that name it directly reach it through its own route.
    direct: bool,
}

/// `PATCH /admin/targets/{id}` (id percent-encoded, or written with its `/`).
pub async fn patch(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    request_id: Option<Extension<RequestId>>,
    body: Bytes,
) -> Result<Json<Changed>, ApiError> {
    let request_id = request_id.map(|Extension(RequestId(id))| id).unwrap_or_default();
    let bad =
        |status: StatusCode, message: String| ApiError::new(Api::OpenAi, status, message).with_request_id(&request_id);
    let running = state.current();
    let listing: Vec<&Arc<Route>> =
        running.routes.values().filter(|r| r.manager.list_models().iter().any(|t| t.id == id)).collect();
    let direct = running.direct.get(&id);
    if listing.is_empty() && direct.is_none() {
        return Err(bad(StatusCode::NOT_FOUND, format!("unknown target {id:?}; GET /admin/routes lists the targets")));
    }
    let patch: Patch = serde_json::from_slice(&body)
        .map_err(|e| bad(StatusCode::BAD_REQUEST, format!("invalid body: {e}; send {{\"enabled\"?: bool}}")))?;
    let everywhere = || listing.iter().copied().chain(direct);
    if let Some(enabled) = patch.enabled {
        for route in everywhere() {
            let changed = if enabled { route.manager.enable_model(&id) } else { route.manager.disable_model(&id) };
            changed.map_err(|e| match e {
                TargetError::NotFound { .. } => bad(StatusCode::NOT_FOUND, e.to_string()),
                other => bad(StatusCode::CONFLICT, other.to_string()),
            })?;
        }
    }
    if patch.enabled.is_some() {
        for route in &listing {
            state.target_events.changed(route, &id);
        }
        for route in everywhere() {
            state.overrides.record(
                &route.name,
                &id,
                crate::overrides::Change { enabled: patch.enabled, ..Default::default() },
            );
        }
    }
    tracing::info!(target_id = %id, ?patch, "admin changed target everywhere");
    let enabled =
        everywhere().filter_map(|r| r.manager.list_models().into_iter().find(|t| t.id == id)).all(|t| t.enabled);
    Ok(Json(Changed {
        id: id.clone(),
        enabled,
        routes: listing.iter().map(|r| r.name.to_string()).collect(),
        direct: direct.is_some(),
    }))
}
