//! `POST /admin/reload` (reload the config file now) and `GET /admin/config` (the running config, secrets
//! redacted).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Api, ApiError};
use crate::reload::{ReloadError, Reloaded, Trigger};
use crate::state::AppState;

/// `POST /admin/reload`: 200 with what changed, or 400 with the same text as `switchyard check` (nothing
/// changed then).
pub async fn reload(State(state): State<Arc<AppState>>) -> Result<Json<Reloaded>, ApiError> {
    // Reading the file and building HTTP clients blocks for a moment: off the request threads.
    let result = tokio::task::spawn_blocking(move || state.reload(Trigger::Admin))
        .await
        .map_err(|_| ApiError::new(Api::OpenAi, StatusCode::INTERNAL_SERVER_ERROR, "the reload did not finish"))?;
    result.map(Json).map_err(|e| {
        let status = match e {
            ReloadError::NoFile => StatusCode::CONFLICT,
            ReloadError::Invalid(_) | ReloadError::Build(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(Api::OpenAi, status, e.to_string()).with_code("invalid_config")
    })
}

/// The answer of `GET /admin/config`.
#[derive(Debug, Serialize)]
pub struct RunningConfig {
    /// The config as read, variables expanded, every secret replaced by `"<redacted>"`.
    config: Value,
    /// When it was loaded (RFC 3339).
    loaded_at: String,
    /// The SHA-256 of the file's text, hex.
    hash: String,
}

/// `GET /admin/config`: `{"config", "loaded_at", "hash"}`, every secret replaced by `"<redacted>"`.
pub async fn config(State(state): State<Arc<AppState>>) -> Json<RunningConfig> {
    let running = state.current();
    Json(RunningConfig {
        config: running.config.file.redacted(),
        loaded_at: humantime::format_rfc3339_millis(running.loaded_at).to_string(),
        hash: running.config.file.hash.clone(),
    })
}
