//! `GET /v1/models`: the OpenAI list format, one entry per route and per target id (for a named client key
//! with `routes`, only those it may use).

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde::Serialize;

use crate::auth::Caller;
use crate::state::AppState;

/// `{"object": "list", "data": [{"id", "object": "model", "created": 0, "owned_by"}]}`.
pub async fn list(State(state): State<Arc<AppState>>, Extension(caller): Extension<Caller>) -> Json<Models> {
    let allowed = |name: &str| caller.as_ref().is_none_or(|key| key.may_use(name));
    let running = state.current();
    let mut data: Vec<Model> = running
        .routes
        .keys()
        .filter(|name| allowed(name))
        .map(|name| Model::new(name.clone(), "switchyard".to_owned()))
        .collect();
    for route in running.direct.values().filter(|r| allowed(&r.name)) {
        let owner = route.manager.list_models().first().map(|t| t.provider.clone()).unwrap_or_default();
        data.push(Model::new(route.name.to_string(), owner));
    }
    Json(Models { object: "list", data })
}

/// The OpenAI model list.
#[derive(Debug, Serialize)]
pub struct Models {
    /// Always `"list"`.
    object: &'static str,
    /// The routes, then the target ids.
    data: Vec<Model>,
}

/// One entry: a route (owned by `"switchyard"`) or a target id (owned by its provider).
#[derive(Debug, Serialize)]
struct Model {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: String,
}

impl Model {
    fn new(id: String, owned_by: String) -> Self {
        Model { id, object: "model", created: 0, owned_by }
    }
}
