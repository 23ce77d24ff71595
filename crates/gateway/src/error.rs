//! One error type for every refusal the gateway answers, and the one place that decides its HTTP
//! status and its body in the caller's API shape (OpenAI or Anthropic).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};
use switchyard::{Error, ErrorKind, attempt::Attempt};

/// Which API the caller speaks, so errors come back in its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions` and everything that is not Anthropic.
    OpenAi,
    /// `POST /v1/messages`.
    Anthropic,
    /// `POST /v1/responses`: errors in the OpenAI shape, answers as `response` objects and events.
    Responses,
}

/// A refusal or failure, ready to become a response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong and what to do.
    pub message: String,
    /// The offending request field, when known.
    pub param: Option<String>,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
    /// Every attempt made, for 502/504/429.
    pub attempts: Vec<Attempt>,
    /// A machine-readable code more precise than the status (e.g. `content_filter`, or `unknown_endpoint`
    /// for a 404).
    pub code: Option<&'static str>,
    /// Shape of the body.
    pub api: Api,
    /// The request id, echoed in the body.
    pub request_id: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(api: Api, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            retry_after: None,
            attempts: Vec::new(),
            code: None,
            api,
            request_id: String::new(),
        }
    }

    /// Sets the OpenAI `code` of the body.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// Sets the request id shown in the body.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        request_id.clone_into(&mut self.request_id);
        self
    }

    /// Maps an engine error to the SPEC's statuses; the message and attempts are what clients may see.
    pub fn from_engine(api: Api, error: &Error) -> Self {
        let (status, retry_after) = status_of(error);
        let error = &crate::client_error::for_client(error);
        let param = match error {
            Error::InvalidRequest { param, .. } => param.clone(),
            _ => None,
        };
        let attempts = error.attempts().to_vec();
        let code = match error.kind() {
            ErrorKind::ContentFiltered => Some("content_filter"),
            _ => None,
        };
        Self { status, message: error.to_string(), param, retry_after, attempts, api, request_id: String::new(), code }
    }

    /// The body in the caller's shape.
    pub fn body(&self) -> Value {
        let attempts: Vec<Value> = self.attempts.iter().map(attempt_json).collect();
        match self.api {
            Api::OpenAi | Api::Responses => {
                let mut error = json!({
                    "message": self.message,
                    "type": openai_type(self.status),
                    "param": self.param,
                    "code": self.code.or_else(|| openai_code(self.status)),
                    "request_id": self.request_id,
                });
                if !attempts.is_empty() {
                    error["attempts"] = Value::Array(attempts);
                }
                json!({ "error": error })
            }
            Api::Anthropic => {
                let mut error = json!({ "type": anthropic_type(self.status), "message": self.message });
                if let Some(code) = self.code {
                    error["code"] = json!(code);
                }
                if !attempts.is_empty() {
                    error["attempts"] = Value::Array(attempts);
                }
                json!({ "type": "error", "error": error, "request_id": self.request_id })
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status, [(http::header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if !self.attempts.is_empty() {
            let called = self.attempts.iter().filter(|a| a.was_called()).count();
            response.headers_mut().insert(crate::headers::ATTEMPTS, crate::headers::count(called));
        }
        response
    }
}

/// The SPEC's status for an engine error, and the seconds for `Retry-After` on a 429.
pub fn status_of(error: &Error) -> (StatusCode, Option<u64>) {
    match error {
        Error::InvalidRequest { status, .. } => {
            (StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST), None)
        }
        // The provider refused on policy: the request is what it objects to, so it is the caller's to change.
        Error::ContentFiltered { .. } => (StatusCode::BAD_REQUEST, None),
        Error::RateLimited { retry_after, .. } => {
            (StatusCode::TOO_MANY_REQUESTS, Some(retry_after.map_or(1, |d| d.as_secs().max(1))))
        }
        // Every target is at its own limit: retry once the first frees.
        Error::TargetsLimited { retry_after, .. } => {
            let ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
            (StatusCode::TOO_MANY_REQUESTS, Some(ms.div_ceil(1000).max(1)))
        }
        Error::AllFailed { attempts } if all_of_kind(attempts, ErrorKind::RateLimited) => {
            (StatusCode::TOO_MANY_REQUESTS, Some(retry_after_of(attempts)))
        }
        Error::AllFailed { attempts } if all_of_kind(attempts, ErrorKind::Timeout) => {
            (StatusCode::GATEWAY_TIMEOUT, None)
        }
        Error::AllFailed { .. } => (StatusCode::BAD_GATEWAY, None),
        Error::DeadlineExceeded { .. } | Error::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, None),
        Error::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, None),
        Error::Cancelled => (StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST), None),
        _ => (StatusCode::BAD_GATEWAY, None),
    }
}

/// True when every call made failed with `kind` (and at least one call was made).
fn all_of_kind(attempts: &[Attempt], kind: ErrorKind) -> bool {
    let mut called = attempts.iter().filter(|a| a.was_called()).peekable();
    called.peek().is_some() && called.all(|a| a.error_kind() == Some(kind))
}

/// The shortest Retry-After the providers gave, in whole seconds (at least 1; 1 when none gave one).
fn retry_after_of(attempts: &[Attempt]) -> u64 {
    attempts.iter().filter_map(|a| a.retry_after_ms).map(|ms| ms.div_ceil(1000).max(1)).min().unwrap_or(1)
}

fn attempt_json(a: &Attempt) -> Value {
    serde_json::to_value(a).unwrap_or(Value::Null)
}

fn openai_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 404 | 413 | 415 | 422 | 431 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

fn openai_code(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        401 => Some("invalid_api_key"),
        404 => Some("model_not_found"),
        413 => Some("request_too_large"),
        429 => Some("rate_limit_exceeded"),
        502 => Some("all_targets_failed"),
        503 => Some("no_target_available"),
        504 => Some("deadline_exceeded"),
        _ => None,
    }
}

fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 415 | 422 | 431 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard::attempt::AttemptOutcome;

    use super::*;

    fn failed(target: &str, kind: ErrorKind, message: &str) -> Attempt {
        Attempt {
            target: target.into(),
            retry: 0,
            outcome: AttemptOutcome::Failed { kind, message: message.into() },
            elapsed: Duration::ZERO,
            retry_after_ms: None,
            dropped: Vec::new(),
            hedge: false,
        }
    }

    fn rate_limited(target: &str, retry_after_ms: u64) -> Attempt {
        Attempt { retry_after_ms: Some(retry_after_ms), ..failed(target, ErrorKind::RateLimited, "rate limited") }
    }

    #[test]
    fn all_rate_limited_is_429_with_the_shortest_retry_after() {
        let e = Error::AllFailed { attempts: vec![rate_limited("a/x", 3000), rate_limited("b/y", 1500)] };
        let api = ApiError::from_engine(Api::OpenAi, &e);
        assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.retry_after, Some(2));
    }

    #[test]
    fn mixed_failures_are_502_listing_every_attempt() {
        let e = Error::AllFailed {
            attempts: vec![failed("a/x", ErrorKind::Server, "500"), failed("b/y", ErrorKind::RateLimited, "429")],
        };
        let api = ApiError::from_engine(Api::Anthropic, &e).with_request_id("req-1");
        assert_eq!(api.status, StatusCode::BAD_GATEWAY);
        let body = api.body();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "api_error");
        assert_eq!(body["error"]["attempts"].as_array().unwrap().len(), 2);
        assert_eq!(body["request_id"], "req-1");
    }

    #[test]
    fn invalid_request_keeps_the_upstream_status_and_field() {
        let e = Error::invalid_request("n must be 1", Some("n"));
        let api = ApiError::from_engine(Api::OpenAi, &e);
        assert_eq!(api.status, StatusCode::BAD_REQUEST);
        assert_eq!(api.body()["error"]["param"], "n");
        let e = Error::DeadlineExceeded { attempts: vec![] };
        assert_eq!(ApiError::from_engine(Api::OpenAi, &e).status, StatusCode::GATEWAY_TIMEOUT);
    }
}
