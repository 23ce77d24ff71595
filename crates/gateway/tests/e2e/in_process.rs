//! A gateway without sockets: the router called with tower's `oneshot`, its targets simulated in process.
//! For what a socket adds nothing to: status codes, error shapes, request ids, auth, admin JSON.

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, Request};
use serde_json::{Value, json};
use switchyard::SharedModel;
use switchyard_gateway::config::{Config, ProviderConfig, TargetConfig};
use switchyard_gateway::server;
use switchyard_gateway::state::{AppState, ModelFactory};
use switchyard_sim::SimModel;
use tower::ServiceExt;

pub(crate) use crate::common::{ADMIN_KEY, CLIENT_KEY};

/// Builds each target from these simulated models, by model name; any other model replies "hello".
pub(crate) struct Models(pub Vec<SimModel>);

impl ModelFactory for Models {
    fn build(&self, _provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String> {
        let model = self.0.iter().find(|m| m.name() == target.model).cloned();
        Ok(Arc::new(model.unwrap_or_else(|| SimModel::replying(target.model.clone(), "hello"))))
    }
}

/// A router over `[server]` lines (`server`) and routes (`routes`, on providers `oa` (openai) and `an`
/// (anthropic), never dialled), serving `models`.
pub(crate) fn router(server: &str, routes: &str, models: Vec<SimModel>) -> axum::Router {
    let text = format!(
        "[server]\n{server}\n\
         [providers.oa]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         [providers.an]\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:9\"\n{routes}"
    );
    let config = Config::parse(&text, &|_| None, None).unwrap();
    server::router(Arc::new(AppState::build(&config, &Models(models)).unwrap()))
}

/// The `[server]` lines of most tests: a client key and an admin key.
pub(crate) fn keys() -> String {
    format!("api_keys = [\"{CLIENT_KEY}\"]\nadmin_key = \"{ADMIN_KEY}\"")
}

/// An answer: status, headers and the JSON body (or the text as a JSON string).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Answer {
    /// A header's value, or "" without it.
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// Sends one request through the router.
pub(crate) async fn call(router: &axum::Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer { status, headers, body }
}

/// A JSON request with `Authorization: Bearer key` when there is a key.
pub(crate) fn request(method: &str, path: &str, key: Option<&str>, body: Option<&Value>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    match body {
        Some(body) => builder.header("content-type", "application/json").body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .unwrap()
}

/// `GET path` with the admin key.
pub(crate) async fn admin_get(router: &axum::Router, path: &str) -> Answer {
    call(router, request("GET", path, Some(ADMIN_KEY), None)).await
}

/// A chat body for `model` saying `text`.
pub(crate) fn chat_body(model: &str, text: &str) -> Value {
    json!({ "model": model, "max_tokens": 50, "messages": [{ "role": "user", "content": text }] })
}

/// `POST /v1/chat/completions` with the client key.
pub(crate) async fn chat(router: &axum::Router, model: &str, text: &str) -> Answer {
    call(router, request("POST", "/v1/chat/completions", Some(CLIENT_KEY), Some(&chat_body(model, text)))).await
}

/// `POST /v1/messages` with the client key.
pub(crate) async fn message(router: &axum::Router, model: &str, text: &str) -> Answer {
    call(router, request("POST", "/v1/messages", Some(CLIENT_KEY), Some(&chat_body(model, text)))).await
}
