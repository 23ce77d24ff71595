//! One request as the log keeps it (SPEC-2 section 10).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use switchyard::ErrorKind;

pub use super::inline::{Attempts, RowId};
pub use crate::error::Api;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An answer was sent in full.
    Success,
    /// An error was sent (before or after commit).
    Failed,
    /// The client went away first.
    Cancelled,
}

impl Outcome {
    /// A small number for the outcome (an earlier layout's column value; the log's filters hash it).
    pub(crate) fn code(self) -> i64 {
        match self {
            Outcome::Success => 0,
            Outcome::Failed => 1,
            Outcome::Cancelled => 2,
        }
    }

    /// From an earlier layout's column value.
    pub(crate) fn from_code(code: i64) -> Outcome {
        match code {
            0 => Outcome::Success,
            1 => Outcome::Failed,
            _ => Outcome::Cancelled,
        }
    }

    /// From the filter text (`success`, `failed`, `cancelled`).
    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "success" => Some(Outcome::Success),
            "failed" => Some(Outcome::Failed),
            "cancelled" => Some(Outcome::Cancelled),
            _ => None,
        }
    }
}

impl Api {
    /// From an earlier layout's column value.
    pub(crate) fn from_code(code: i64) -> Api {
        match code {
            1 => Api::Anthropic,
            2 => Api::Responses,
            _ => Api::OpenAi,
        }
    }

    /// The row's text: `openai`, `anthropic` or `responses`.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::OpenAi => "openai",
            Api::Anthropic => "anthropic",
            Api::Responses => "responses",
        }
    }
}

impl Serialize for Api {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Api {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Api, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        match &*text {
            "openai" => Ok(Api::OpenAi),
            "anthropic" => Ok(Api::Anthropic),
            "responses" => Ok(Api::Responses),
            other => Err(serde::de::Error::unknown_variant(other, &["openai", "anthropic", "responses"])),
        }
    }
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    /// The target answered.
    Success,
    /// The call failed.
    Failed,
    /// The target was not called.
    Skipped,
}

/// One attempt (or skipped target) of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRow {
    /// The target id, shared with the running route.
    #[serde(with = "shared")]
    pub target: Arc<str>,
    /// 0 for the first call to the target, 1 for its first retry…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<u32>,
    /// `success`, `failed` or `skipped`.
    pub outcome: AttemptResult,
    /// The failure's kind, when it failed. A kind this build does not know (a newer version wrote the row)
    /// reads as `server`, as the row's error column does.
    #[serde(default, deserialize_with = "lenient_kind", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    /// The HTTP status of the failure, when the kind implies one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// How long the call took (absent for a skip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Whether this call was a hedge (always false for a skip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<bool>,
    /// Why a target was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The error a failed request answered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// The error kind (`rate_limited`, `server`, …).
    pub kind: ErrorKind,
    /// The message the client got.
    pub message: String,
}

/// One request: every field of the log row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The `x-request-id`.
    pub id: RowId,
    /// Arrival, RFC 3339 UTC with milliseconds.
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    /// The route (or target id, for a direct request), shared with the running route.
    #[serde(with = "shared")]
    pub route: Arc<str>,
    /// The API the caller spoke.
    pub api: Api,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// The client key's name (section 12), or null, shared with the running key.
    #[serde(with = "shared_or_null")]
    pub key: Option<Arc<str>>,
    /// The HTTP status sent; null when the client left before any.
    pub status: Option<u16>,
    /// How it ended.
    pub outcome: Outcome,
    /// The target that served, if any, shared with the running route.
    #[serde(with = "shared_or_null")]
    pub served_by: Option<Arc<str>>,
    /// The value of `x-switchyard-fallback`; false when nothing served.
    pub fallback: bool,
    /// Every attempt and skip, in order.
    pub attempts: Attempts,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Answer tokens.
    pub output_tokens: u64,
    /// Arrival to end.
    pub latency_ms: u64,
    /// Arrival to first chunk; null for whole answers.
    pub first_chunk_ms: Option<u64>,
    /// The error answered, if any.
    pub error: Option<RowError>,
    /// The request body as received (`log_bodies` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The answer as sent (`log_bodies` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

impl Row {
    /// A request that has just arrived: no status, attempts or usage yet; `cancelled` until it ends otherwise.
    pub fn arrived(id: &str, time: SystemTime, route: Arc<str>, api: Api, stream: bool) -> Row {
        Row {
            id: id.into(),
            time,
            route,
            api,
            stream,
            key: None,
            status: None,
            outcome: Outcome::Cancelled,
            served_by: None,
            fallback: false,
            attempts: Attempts::default(),
            input_tokens: 0,
            output_tokens: 0,
            latency_ms: 0,
            first_chunk_ms: None,
            error: None,
            request: None,
            response: None,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// The time `ms` milliseconds after the Unix epoch.
pub(crate) fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// RFC 3339 UTC with milliseconds, as JSON text.
mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*time))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

/// The error kind named `text` in a stored row (an unknown name reads as `server`: rows outlive versions).
pub(crate) fn parse_kind(text: &str) -> ErrorKind {
    ErrorKind::ALL.into_iter().find(|k| k.as_str() == text).unwrap_or(ErrorKind::Server)
}

/// An attempt's kind, through [`parse_kind`].
fn lenient_kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ErrorKind>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|text| parse_kind(&text)))
}

/// Text shared with the running state (serde's `rc` feature would rebuild every crate that uses serde).
mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(text: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        Ok(Arc::from(String::deserialize(d)?))
    }
}

/// [`shared`] text or null.
mod shared_or_null {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(text: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
        text.as_deref().serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<str>>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Arc::from))
    }
}
