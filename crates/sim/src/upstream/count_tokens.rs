//! `POST /v1/messages/count_tokens`: the Anthropic token count, in words, with the same key, header and
//! fault checks as the Messages endpoint (a status fault in the model name answers that status).

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::anthropic::Anthropic;
use super::conversation::words_in;
use super::wire::{Failure, Wire};
use super::{Fault, Shared};

/// The fields the endpoint takes; any other is refused, as the real API does.
const TAKEN: &[&str] = &["model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"];

pub(super) fn handle(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Some(key) = &shared.config.api_key
        && Anthropic::sent_key(headers) != Some(key.as_str())
    {
        return fail(&Failure::WrongKey);
    }
    if !headers.contains_key("anthropic-version") {
        return fail(&Failure::bad_request("anthropic-version: header is required", None));
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return fail(&Failure::bad_request("The request body is not a JSON object", None));
    };
    if let Some(extra) = request.keys().find(|k| !TAKEN.contains(&k.as_str())) {
        return fail(&Failure::bad_request(format!("{extra}: Extra inputs are not permitted"), None));
    }
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return fail(&Failure::bad_request("model: Field required", Some("model")));
    };
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return fail(&Failure::bad_request("messages: Field required", Some("messages")));
    };
    shared.count(model);
    if let Fault::Status(status) = Fault::of_model(model) {
        return fail(&Failure::Status(status));
    }
    let tools = request.get("tools").and_then(Value::as_array).map_or(0, |t| t.len() as u64);
    let words = request.get("system").map_or(0, words_in)
        + messages.iter().map(|m| m.get("content").map_or(0, words_in)).sum::<u64>();
    axum::Json(json!({ "input_tokens": words + tools })).into_response()
}

fn fail(failure: &Failure) -> Response {
    let status = StatusCode::from_u16(failure.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(Anthropic::error_body(failure))).into_response()
}
