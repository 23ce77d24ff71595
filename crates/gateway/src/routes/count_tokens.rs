//! `POST /v1/messages/count_tokens` (Anthropic shape, SPEC-2 section 14): the route's first target whose API
//! counts tokens (Anthropic), with fallback across them, else the gateway's own estimate; `{"input_tokens": n}`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use switchyard_providers::anthropic;

use crate::auth::Caller;
use crate::error::{Api, ApiError};
use crate::routes::chat::read_body;
use crate::state::{AppState, Snapshot};
use crate::{request_id, server};

/// `POST /v1/messages/count_tokens`.
pub async fn count_tokens(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let request_id = request_id::take_or_make(&parts.headers);
    // The running config, loaded once: the key check and the route are from the same config.
    let running = state.current();
    let mut response = match running.auth.check_client(&parts.headers) {
        Ok(caller) => serve(&state, &running, caller, &request_id, body).await,
        Err(_) => server::client_refused(&state, Api::Anthropic, &request_id, parts.uri.path()),
    };
    request_id::stamp(&mut response, &request_id);
    response
}

/// The answer: the prompt's input tokens.
#[derive(Debug, Serialize)]
struct Counted {
    input_tokens: u64,
}

async fn serve(
    state: &AppState,
    running: &Snapshot,
    caller: Caller,
    request_id: &str,
    body: axum::body::Body,
) -> Response {
    let reject = |e: ApiError| {
        state.metrics.rejected(e.status.as_u16());
        e.with_request_id(request_id).into_response()
    };
    let bytes = match read_body(body, state.max_body).await {
        Ok(bytes) => bytes,
        Err(e) => return reject(e.api(Api::Anthropic)),
    };
    let request = match anthropic::decode_request(&bytes) {
        Ok(request) => request,
        Err(e) => return reject(ApiError::from_engine(Api::Anthropic, &e)),
    };
    let Some(route) = running.resolve(&request.model) else {
        return reject(ApiError::new(
            Api::Anthropic,
            StatusCode::NOT_FOUND,
            format!("unknown model {:?}: name a route or a target id; GET /v1/models lists them", request.model),
        ));
    };
    // Counting calls no model, so it is not held to the key's limits; only to its routes.
    if let Some(key) = caller.filter(|k| !k.may_use(&route.name)) {
        return reject(key.forbidden(&route.name).api_error(Api::Anthropic).0);
    }
    let (tokens, target) = match route.manager.count_tokens(&request).await {
        Some((target, tokens)) => (tokens, Some(target)),
        None => (request.estimate_input_tokens(), None),
    };
    let mut response = axum::Json(Counted { input_tokens: tokens }).into_response();
    // Which target counted; absent when the number is the gateway's estimate.
    if let Some(value) = target.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert(crate::headers::TARGET, value);
    }
    response
}
