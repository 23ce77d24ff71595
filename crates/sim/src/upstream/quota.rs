//! The vendor's rate-limit headers on demand: a request carrying `x-switchyard-sim-exhausted-ms: N` is
//! answered as usual plus headers saying its requests are used up (remaining 0) for N ms, in the vendor's
//! style (OpenAI: `x-ratelimit-*-requests` with a duration; Anthropic: `anthropic-ratelimit-requests-*`
//! with an RFC 3339 time). Without it, answers carry a healthy remaining count.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;

/// The request header that asks for exhausted rate-limit headers.
pub const EXHAUSTED_HEADER: &str = "x-switchyard-sim-exhausted-ms";

/// Which vendor's header names to use.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Style {
    OpenAi,
    Anthropic,
}

/// Adds the rate-limit headers `request` asks for to `response`.
pub(crate) fn add(style: Style, request: &HeaderMap, response: &mut Response) {
    let exhausted_ms = request.get(EXHAUSTED_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let (remaining, reset_ms) = match exhausted_ms {
        Some(ms) => ("0", ms),
        None => ("1000", 1000),
    };
    let reset = Duration::from_millis(reset_ms);
    let (names, reset) = match style {
        Style::OpenAi => (["x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"], format!("{reset_ms}ms")),
        Style::Anthropic => (
            ["anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"],
            humantime::format_rfc3339_millis(SystemTime::now() + reset).to_string(),
        ),
    };
    let headers = response.headers_mut();
    for (name, value) in names.into_iter().zip([remaining.to_owned(), reset]) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}
