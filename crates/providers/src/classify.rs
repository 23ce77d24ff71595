//! Upstream failures (HTTP status, vendor error type and code, message) → the engine's error kinds.

use std::time::Duration;

use switchyard::Error;

/// What an upstream said about a failure, in either vendor's shape.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpstreamError {
    /// HTTP status; `None` for an error event inside a 200 stream.
    pub(crate) status: Option<u16>,
    /// Vendor error type (`invalid_request_error`, `overloaded_error`, …).
    pub(crate) kind: Option<String>,
    /// Vendor error code (`context_length_exceeded`, …).
    pub(crate) code: Option<String>,
    /// Offending field, when the vendor named one.
    pub(crate) param: Option<String>,
    /// Human-readable message.
    pub(crate) message: String,
    /// Parsed `Retry-After`.
    pub(crate) retry_after: Option<Duration>,
}

fn is_context_length(e: &UpstreamError) -> bool {
    let message = e.message.to_ascii_lowercase();
    e.code.as_deref() == Some("context_length_exceeded")
        || e.kind.as_deref() == Some("context_length_exceeded")
        || message.contains("prompt is too long")
        || message.contains("maximum context length")
        || message.contains("context_length_exceeded")
        || message.contains("context window")
}

fn is_content_filter(e: &UpstreamError) -> bool {
    matches!(e.code.as_deref(), Some("content_filter" | "content_policy_violation"))
        || matches!(e.kind.as_deref(), Some("content_filter" | "content_policy_violation"))
}

/// Maps an upstream failure to the engine's [`Error`].
pub(crate) fn classify(e: UpstreamError) -> Error {
    let client_side = matches!(e.status, None | Some(400 | 413 | 422));
    if client_side && is_context_length(&e) {
        return Error::ContextLength { message: e.message };
    }
    if client_side && is_content_filter(&e) {
        return Error::content_filtered(e.message);
    }
    if e.kind.as_deref() == Some("overloaded_error") {
        return Error::Overloaded { status: e.status.unwrap_or(529), message: e.message };
    }
    match e.status {
        Some(429) => Error::RateLimited { message: e.message, retry_after: e.retry_after },
        Some(529) => Error::Overloaded { status: 529, message: e.message },
        Some(status @ (401 | 403)) => Error::Auth { status, message: e.message },
        Some(404) => Error::NotFound { message: e.message },
        Some(status @ (408 | 409 | 500..=599)) => Error::Server { status, message: e.message },
        Some(status) => Error::InvalidRequest { status, message: e.message, param: e.param, attempts: Vec::new() },
        None => classify_in_stream(e),
    }
}

/// An error event inside a 200 stream: only the vendor's type says what it was.
fn classify_in_stream(e: UpstreamError) -> Error {
    let kind = e.kind.clone().or_else(|| e.code.clone()).unwrap_or_default();
    match kind.as_str() {
        "rate_limit_error" | "rate_limit_exceeded" | "requests" | "tokens" => {
            Error::RateLimited { message: e.message, retry_after: e.retry_after }
        }
        "authentication_error" => Error::Auth { status: 401, message: e.message },
        "permission_error" => Error::Auth { status: 403, message: e.message },
        "not_found_error" => Error::NotFound { message: e.message },
        "invalid_request_error" => {
            Error::InvalidRequest { status: 400, message: e.message, param: e.param, attempts: Vec::new() }
        }
        "timeout_error" => Error::Server { status: 504, message: e.message },
        // api_error, server_error and anything unknown: the upstream failed mid-answer.
        _ => Error::Server { status: 500, message: e.message },
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (a date in the past means now).
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Some(Duration::from_secs_f64(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The message of an error body in neither vendor's shape: the first of `keys` present (as text), else an
/// excerpt of the body (also when it is not JSON).
pub(crate) fn loose_message(body: &str, keys: &[&str]) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else { return excerpt(body) };
    match keys.iter().find_map(|key| value.get(key)) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => excerpt(body),
    }
}

/// `message`, or one saying the upstream sent none.
pub(crate) fn or_no_message(message: String, status: Option<u16>) -> String {
    if !message.is_empty() {
        return message;
    }
    match status {
        Some(status) => format!("HTTP {status} with no message"),
        None => "error event with no message".into(),
    }
}

/// Cuts an upstream body to a size fit for an error message.
pub(crate) fn excerpt(body: &str) -> String {
    const MAX: usize = 500;
    let body = body.trim();
    if body.len() <= MAX {
        return body.to_owned();
    }
    let mut end = MAX;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;

    fn at(status: Option<u16>, kind: Option<&str>, code: Option<&str>, message: &str) -> Error {
        classify(UpstreamError {
            status,
            kind: kind.map(Into::into),
            code: code.map(Into::into),
            message: message.into(),
            ..UpstreamError::default()
        })
    }

    #[test]
    fn statuses_map_to_kinds() {
        use switchyard::ErrorKind::*;
        let cases = [
            (at(Some(429), None, None, "slow"), RateLimited),
            (at(Some(500), None, None, "x"), Server),
            (at(Some(502), None, None, "x"), Server),
            (at(Some(503), None, None, "x"), Server),
            (at(Some(504), None, None, "x"), Server),
            (at(Some(529), Some("overloaded_error"), None, "Overloaded"), Overloaded),
            (at(Some(401), None, None, "x"), Auth),
            (at(Some(403), None, None, "x"), Auth),
            (at(Some(404), None, None, "x"), NotFound),
            (at(Some(400), Some("invalid_request_error"), Some("context_length_exceeded"), "x"), ContextLength),
            (
                at(Some(400), Some("invalid_request_error"), None, "prompt is too long: 210000 tokens > 200000"),
                ContextLength,
            ),
            (at(Some(400), None, Some("content_filter"), "x"), ContentFiltered),
            (at(Some(400), Some("invalid_request_error"), None, "bad temperature"), InvalidRequest),
            (at(Some(422), None, None, "x"), InvalidRequest),
            (at(None, Some("overloaded_error"), None, "x"), Overloaded),
            (at(None, Some("api_error"), None, "x"), Server),
            (at(None, Some("server_error"), None, "x"), Server),
            (at(Some(429), Some("rate_limit_error"), None, "tokens per minute; prompt is too long"), RateLimited),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
        }
    }

    #[test]
    fn other_400s_keep_status_message_and_param() {
        let e = classify(UpstreamError {
            status: Some(400),
            message: "temperature must be <= 2".into(),
            param: Some("temperature".into()),
            ..UpstreamError::default()
        });
        assert_eq!(
            e,
            Error::InvalidRequest {
                status: 400,
                message: "temperature must be <= 2".into(),
                param: Some("temperature".into()),
                attempts: Vec::new(),
            }
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_millis(1500)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
    }
}
