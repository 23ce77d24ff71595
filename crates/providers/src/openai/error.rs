//! OpenAI error bodies: `error_body` for the gateway, `parse_error` for the client.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::Error;

use super::wire::ErrorBody;
use crate::classify::{UpstreamError, classify, loose_message, or_no_message};

/// `(type, code)` OpenAI uses for an error of this kind.
fn type_and_code(err: &Error) -> (&'static str, Option<&'static str>) {
    match err {
        Error::RateLimited { .. } => ("requests", Some("rate_limit_exceeded")),
        Error::Overloaded { .. } | Error::Server { .. } => ("server_error", None),
        Error::Timeout { .. } => ("server_error", Some("timeout")),
        Error::Connection { .. } => ("server_error", Some("upstream_connection_error")),
        Error::InvalidResponse { .. } => ("server_error", Some("invalid_upstream_response")),
        Error::Auth { .. } => ("authentication_error", Some("invalid_api_key")),
        Error::NotFound { .. } => ("invalid_request_error", Some("model_not_found")),
        Error::ContextLength { .. } => ("invalid_request_error", Some("context_length_exceeded")),
        Error::ContentFiltered { .. } => ("invalid_request_error", Some("content_filter")),
        Error::InvalidRequest { .. } => ("invalid_request_error", None),
        Error::Cancelled => ("server_error", Some("cancelled")),
        Error::DeadlineExceeded { .. } => ("server_error", Some("deadline_exceeded")),
        Error::AllFailed { .. } => ("server_error", Some("all_targets_failed")),
        Error::Unavailable { .. } => ("server_error", Some("no_target_available")),
        _ => ("server_error", None),
    }
}

/// `{"error": {"message", "type", "param", "code", "request_id"?, "attempts"?}}` for `err`.
pub fn error_body(err: &Error, request_id: &str) -> Value {
    let (kind, code) = type_and_code(err);
    let param = match err {
        Error::InvalidRequest { param, .. } => param.clone(),
        _ => None,
    };
    let mut error = json!({ "message": err.to_string(), "type": kind, "param": param, "code": code });
    if !request_id.is_empty() {
        error["request_id"] = json!(request_id);
    }
    if !err.attempts().is_empty() {
        error["attempts"] = json!(err.attempts());
    }
    json!({ "error": error })
}

/// Reads an OpenAI(-compatible) error body; tolerant of `{"error": "text"}`, `{"message": …}` and plain text.
pub(crate) fn upstream_error(status: Option<u16>, body: &str, retry_after: Option<Duration>) -> UpstreamError {
    let mut out = UpstreamError { status, retry_after, ..UpstreamError::default() };
    if let Ok(parsed) = serde_json::from_str::<ErrorBody>(body) {
        out.message = parsed.error.message;
        out.kind = parsed.error.kind;
        out.param = parsed.error.param;
        out.code = parsed.error.code.map(|c| match c {
            Value::String(s) => s,
            other => other.to_string(),
        });
    } else {
        out.message = loose_message(body, &["error", "message", "detail"]);
    }
    out.message = or_no_message(out.message, status);
    out
}

/// Maps an OpenAI(-compatible) error response to the engine's error.
pub fn parse_error(status: Option<u16>, body: &str, retry_after: Option<Duration>) -> Error {
    classify(upstream_error(status, body, retry_after))
}
