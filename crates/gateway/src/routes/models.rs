//! `GET /v1/models`: the OpenAI list format, one entry per route and per target id.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::state::AppState;

/// `{"object": "list", "data": [{"id", "object": "model", "created": 0, "owned_by"}]}`.
pub async fn list(State(state): State<Arc<AppState>>) -> Json<Value> {
    let mut data: Vec<Value> = state
        .routes
        .keys()
        .map(|name| json!({ "id": name, "object": "model", "created": 0, "owned_by": "switchyard" }))
        .collect();
    for route in state.direct.values() {
        let owner = route.manager.list_models().first().map(|t| t.provider.clone()).unwrap_or_default();
        data.push(json!({ "id": &*route.name, "object": "model", "created": 0, "owned_by": owner }));
    }
    Json(json!({ "object": "list", "data": data }))
}
