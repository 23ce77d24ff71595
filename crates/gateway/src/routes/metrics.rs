//! `GET /metrics`: Prometheus text, no key needed.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;

use crate::state::AppState;

/// The exposition.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
