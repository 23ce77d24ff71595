//! What each vendor API must provide for the simulated upstream: reading a request, and writing errors,
//! answers and streams in the vendor's exact shape.

use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::Value;

use super::conversation::{Answer, Conversation};

/// Why a request is answered with an error status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// A status chosen by the model name (`500`, `503`, `529`, `429`, `401`, `400`).
    Status(u16),
    /// The prompt is "too long" (`ctxlen`).
    ContextLength,
    /// The provider's content filter refused the prompt (`filter`, OpenAI-compatible APIs).
    ContentFilter,
    /// No API key was sent.
    MissingKey,
    /// The API key is not the configured one.
    WrongKey,
    /// The request is malformed or misses a required field.
    BadRequest {
        /// What is wrong, as the vendor would say it.
        message: String,
        /// The field at fault (OpenAI's `param`).
        param: Option<&'static str>,
    },
}

impl Failure {
    /// The HTTP status of this failure.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Failure::Status(status) => *status,
            Failure::ContextLength | Failure::ContentFilter | Failure::BadRequest { .. } => 400,
            Failure::MissingKey | Failure::WrongKey => 401,
        }
    }

    /// A malformed-request failure.
    pub(crate) fn bad_request(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Failure::BadRequest { message: message.into(), param }
    }
}

/// A request as the simulated upstream understands it.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    /// The requested model name; its last word picks the behaviour.
    pub(crate) model: &'a str,
    /// Whether the caller asked for SSE.
    pub(crate) stream: bool,
    /// OpenAI's `stream_options`.
    pub(crate) stream_options: StreamOptions,
    /// What the answer depends on.
    pub(crate) conversation: Conversation<'a>,
}

/// OpenAI's `stream_options`: what a stream carries besides the answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamOptions {
    /// `include_usage` (default false): a last chunk with the usage, `"usage":null` in the others.
    pub(crate) include_usage: bool,
    /// `include_obfuscation` (default true): a random `obfuscation` string in every chunk with a delta, which
    /// evens out the chunks' sizes.
    pub(crate) include_obfuscation: bool,
}

/// The SSE events of an answer: before the content, the content chunks, and after them.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    /// Events before the first content chunk (e.g. `message_start`).
    pub(crate) head: Vec<Bytes>,
    /// One event per content chunk.
    pub(crate) content: Vec<Bytes>,
    /// Events after the content (finish, usage, the end marker).
    pub(crate) tail: Vec<Bytes>,
}

/// One vendor API's shapes.
pub(crate) trait Wire {
    /// Name of the response header carrying the request id.
    const REQUEST_ID_HEADER: &'static str;

    /// The API key the caller sent, in the vendor's header.
    fn sent_key(headers: &HeaderMap) -> Option<&str>;

    /// Reads and validates a request.
    fn read<'a>(request: &'a Value, headers: &HeaderMap) -> Result<Parsed<'a>, Failure>;

    /// The error body for a failure.
    fn error_body(failure: &Failure) -> Value;

    /// A complete (non-streaming) answer, serialized (the hot path of load tests: no `Value` tree).
    fn complete(id: u64, model: &str, answer: &Answer, input_tokens: u64) -> Vec<u8>;

    /// A streamed answer.
    fn stream(id: u64, model: &str, answer: &Answer, input_tokens: u64, options: StreamOptions) -> Frames;

    /// The vendor's in-stream error event (an overload).
    fn stream_error_event() -> Bytes;

    /// The error object the in-stream event carries, as a whole body (`sseerr` without streaming).
    fn stream_error_body() -> Value;

    /// A stream event whose data is not JSON.
    fn bad_json_event() -> Bytes;

    /// A content-filter refusal (`filter`): an error status, or a 200 answer that refuses (JSON or SSE).
    fn refusal(id: u64, model: &str, stream: bool) -> Result<Vec<u8>, Failure>;

    /// A content event cut short (its JSON is unfinished), as a flaky proxy may pass on.
    fn malformed_event() -> Bytes;
}

/// One SSE event with only a `data:` line.
pub(crate) fn data_event(data: &impl serde::Serialize) -> Bytes {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"data: ");
    // Serializing a Value, or a struct of plain fields, into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// One SSE event with an `event:` and a `data:` line.
pub(crate) fn named_event(name: &str, data: &Value) -> Bytes {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let _ = serde_json::to_writer(&mut out, data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The bearer token of an `Authorization` header, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

/// A string as a JSON string literal, quotes and escapes included.
pub(crate) fn json_string(s: &str) -> String {
    // Serializing a str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}
