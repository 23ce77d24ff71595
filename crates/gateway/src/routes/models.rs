//! `GET /v1/models`: the OpenAI list format, one entry per route and per target id (for a named client key
//! with `routes`, only those it may use).

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::state::AppState;

/// `{"object": "list", "data": [{"id", "object": "model", "created": 0, "owned_by"}]}`.
pub async fn list(State(state): State<Arc<AppState>>, Extension(caller): Extension<Caller>) -> Json<Value> {
    let allowed = |name: &str| caller.as_ref().is_none_or(|key| key.may_use(name));
    let running = state.current();
    let mut data: Vec<Value> = running
        .routes
        .keys()
        .filter(|name| allowed(name))
        .map(|name| json!({ "id": name, "object": "model", "created": 0, "owned_by": "switchyard" }))
        .collect();
    for route in running.direct.values().filter(|r| allowed(&r.name)) {
        let owner = route.manager.list_models().first().map(|t| t.provider.clone()).unwrap_or_default();
        data.push(json!({ "id": &*route.name, "object": "model", "created": 0, "owned_by": owner }));
    }
    Json(json!({ "object": "list", "data": data }))
}
