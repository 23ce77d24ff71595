//! Anthropic error bodies: `error_body` for the gateway, `parse_error` for the client.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::Error;

use super::wire::ErrorBody;
use crate::classify::{UpstreamError, classify, loose_message, or_no_message};

/// The Anthropic error `type` for an error.
pub fn error_type(err: &Error) -> &'static str {
    match err {
        Error::RateLimited { .. } => "rate_limit_error",
        Error::Overloaded { .. } => "overloaded_error",
        Error::Timeout { .. } | Error::DeadlineExceeded { .. } => "timeout_error",
        Error::Auth { status: 403, .. } => "permission_error",
        Error::Auth { .. } => "authentication_error",
        Error::NotFound { .. } => "not_found_error",
        Error::ContextLength { .. } | Error::ContentFiltered { .. } | Error::InvalidRequest { .. } => {
            "invalid_request_error"
        }
        _ => "api_error",
    }
}

/// `{"type":"error","error":{"type","message"},"request_id"?}` for `err` (attempts listed when there are any).
pub fn error_body(err: &Error, request_id: &str) -> Value {
    let mut error = json!({ "type": error_type(err), "message": err.to_string() });
    if !err.attempts().is_empty() {
        error["attempts"] = json!(err.attempts());
    }
    let mut body = json!({ "type": "error", "error": error });
    if !request_id.is_empty() {
        body["request_id"] = json!(request_id);
    }
    body
}

/// Reads an Anthropic error body; tolerant of other JSON shapes and plain text.
pub(crate) fn upstream_error(status: Option<u16>, body: &str, retry_after: Option<Duration>) -> UpstreamError {
    let mut out = UpstreamError { status, retry_after, ..UpstreamError::default() };
    if let Ok(parsed) = serde_json::from_str::<ErrorBody>(body) {
        out.message = parsed.error.message;
        out.kind = Some(parsed.error.kind).filter(|k| !k.is_empty());
    } else {
        out.message = loose_message(body, &["error", "message"]);
    }
    out.message = or_no_message(out.message, status);
    out
}

/// Maps an Anthropic error response (or `event: error` data, with `status` `None`) to the engine's error.
pub fn parse_error(status: Option<u16>, body: &str, retry_after: Option<Duration>) -> Error {
    classify(upstream_error(status, body, retry_after))
}
