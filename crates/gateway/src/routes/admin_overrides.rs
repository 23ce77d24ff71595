//! `DELETE /admin/routes/{route}/targets/{id}/override`: the target returns to its config values on that
//! route (id percent-encoded).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;

use super::admin_shapes::Target;
use crate::error::{Api, ApiError};
use crate::overrides;
use crate::state::AppState;

/// `DELETE /admin/routes/{route}/targets/{id}/override`.
pub async fn clear(
    State(state): State<Arc<AppState>>,
    Path((route_name, rest)): Path<(String, String)>,
) -> Result<Json<Option<Target>>, ApiError> {
    let bad = |status: StatusCode, message: String| ApiError::new(Api::OpenAi, status, message);
    let Some(id) = rest.strip_suffix("/override") else {
        return Err(bad(
            StatusCode::NOT_FOUND,
            "write DELETE /admin/routes/ROUTE/targets/ID/override (ID percent-encoded)".to_owned(),
        ));
    };
    let route = state
        .resolve(&route_name)
        .ok_or_else(|| bad(StatusCode::NOT_FOUND, format!("unknown route {route_name:?}")))?;
    let configured = route.configured(id).ok_or_else(|| {
        bad(StatusCode::NOT_FOUND, format!("route {route_name:?} has no target {id:?}; GET /admin/routes lists them"))
    })?;
    overrides::apply(&route, id, configured).map_err(|e| bad(StatusCode::CONFLICT, e.to_string()))?;
    state.overrides.clear(&route.name, id);
    state.target_events.changed(&route, id);
    tracing::info!(route = %route_name, target_id = %id, "admin cleared the target's override");
    let info = route.manager.list_models().into_iter().find(|t| t.id == id);
    Ok(Json(info.as_ref().map(Target::from)))
}
