//! Errors of a model call, and the kind that decides what the engine does next.
//!
//! The table (SPEC section 2):
//!
//! | kind | retry same target | fall back |
//! |---|---|---|
//! | RateLimited | yes, if the wait fits | yes |
//! | Overloaded, Server | yes | yes |
//! | Timeout, Connection | yes | yes |
//! | InvalidResponse | yes | yes |
//! | Auth, NotFound | no | yes |
//! | ContextLength | no | only to a larger window |
//! | ContentFiltered | no | configurable (default no: answered at once) |
//! | InvalidRequest | no | no |
//! | Cancelled, Deadline | no | no |

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::attempt::{Attempt, AttemptList};

/// The class of a failure; it decides retry, fallback or fail-fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 429: too many requests.
    RateLimited,
    /// 529 or a vendor's "overloaded".
    Overloaded,
    /// 500, 502, 503, 504.
    Server,
    /// Connect, first-chunk, idle or total timeout.
    Timeout,
    /// Refused, reset, DNS, TLS.
    Connection,
    /// Unparsable body, a validator said no, a stream ended without its finish.
    InvalidResponse,
    /// 401, 403.
    Auth,
    /// 404: unknown model or endpoint.
    NotFound,
    /// The prompt does not fit the model's context window.
    ContextLength,
    /// The provider refused on policy.
    ContentFiltered,
    /// The caller's fault (other 400/422): answered at once.
    InvalidRequest,
    /// The caller went away.
    Cancelled,
    /// The request's overall deadline passed.
    Deadline,
    /// Every target was tried and failed (a nested engine's final error).
    Exhausted,
    /// No target could take the request (all disabled or skipped).
    Unavailable,
}

impl ErrorKind {
    /// Every kind, for tables and metrics.
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::RateLimited,
        ErrorKind::Overloaded,
        ErrorKind::Server,
        ErrorKind::Timeout,
        ErrorKind::Connection,
        ErrorKind::InvalidResponse,
        ErrorKind::Auth,
        ErrorKind::NotFound,
        ErrorKind::ContextLength,
        ErrorKind::ContentFiltered,
        ErrorKind::InvalidRequest,
        ErrorKind::Cancelled,
        ErrorKind::Deadline,
        ErrorKind::Exhausted,
        ErrorKind::Unavailable,
    ];

    /// Whether the same target may be tried again.
    pub fn retries(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Server
                | ErrorKind::Timeout
                | ErrorKind::Connection
                | ErrorKind::InvalidResponse
        )
    }

    /// Whether the next target may be tried (ContextLength: only one with a larger window;
    /// ContentFiltered: only when the route says `on_content_filter = "fallback"`).
    pub fn falls_back(self) -> bool {
        !matches!(self, ErrorKind::InvalidRequest | ErrorKind::Cancelled | ErrorKind::Deadline)
    }

    /// Whether the caller must get this error at once, with no retry and no fallback.
    pub fn fails_fast(self) -> bool {
        !self.falls_back()
    }

    /// The snake_case name used in JSON, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Server => "server",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::Auth => "auth",
            ErrorKind::NotFound => "not_found",
            ErrorKind::ContextLength => "context_length",
            ErrorKind::ContentFiltered => "content_filtered",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Deadline => "deadline",
            ErrorKind::Exhausted => "exhausted",
            ErrorKind::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutPhase {
    /// Opening the connection.
    Connect,
    /// Waiting for the first content chunk (or the whole body when not streaming).
    FirstChunk,
    /// Silence between two chunks.
    Idle,
    /// The attempt as a whole.
    Total,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connect",
            TimeoutPhase::FirstChunk => "first chunk",
            TimeoutPhase::Idle => "idle",
            TimeoutPhase::Total => "total",
        })
    }
}

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 429; `retry_after` is the provider's Retry-After, when it sent one.
    #[error("rate limited{}: {message}", RetryAfter(*retry_after))]
    RateLimited {
        /// What the provider said.
        message: String,
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
    },
    /// 529 or a vendor's "overloaded".
    #[error("provider overloaded (HTTP {status}): {message}; retrying later or another target may help")]
    Overloaded {
        /// HTTP status.
        status: u16,
        /// What the provider said.
        message: String,
    },
    /// 5xx.
    #[error("provider error (HTTP {status}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// What the provider said.
        message: String,
    },
    /// A timeout fired.
    #[error("timed out ({phase} timeout of {}ms)", after.as_millis())]
    Timeout {
        /// Which one.
        phase: TimeoutPhase,
        /// Its length.
        after: Duration,
    },
    /// The connection could not be made or broke.
    #[error("connection failed: {message}")]
    Connection {
        /// What went wrong.
        message: String,
    },
    /// The provider answered with something unusable.
    #[error("invalid response: {message}")]
    InvalidResponse {
        /// What was wrong with it.
        message: String,
    },
    /// 401/403.
    #[error("authentication failed (HTTP {status}): {message}; check the provider's API key")]
    Auth {
        /// HTTP status.
        status: u16,
        /// What the provider said.
        message: String,
    },
    /// 404.
    #[error("not found: {message}; check the model name and base URL")]
    NotFound {
        /// What the provider said.
        message: String,
    },
    /// The prompt is longer than the model's context window.
    #[error("prompt too long for the model's context window: {message}")]
    ContextLength {
        /// What the provider said.
        message: String,
    },
    /// The provider refused on content policy.
    #[error("content filtered by the provider: {message}")]
    ContentFiltered {
        /// What the provider said.
        message: String,
        /// The attempts made before the refusal ended the request (set by the engine; empty from a model).
        attempts: Vec<Attempt>,
    },
    /// The request itself is wrong; fix it and send it again.
    #[error("invalid request{}: {message}", Param(param.as_deref()))]
    InvalidRequest {
        /// HTTP status the provider gave (400 when the engine found the problem itself).
        status: u16,
        /// What is wrong.
        message: String,
        /// The offending field, when known.
        param: Option<String>,
        /// The attempts made (and targets skipped) before the request was refused; empty when no
        /// engine was involved.
        attempts: Vec<Attempt>,
    },
    /// The caller went away.
    #[error("cancelled by the caller")]
    Cancelled,
    /// The request's deadline passed; the attempts made are listed.
    #[error("deadline exceeded after: {}", AttemptList(attempts))]
    DeadlineExceeded {
        /// Every attempt made before the deadline.
        attempts: Vec<Attempt>,
    },
    /// Every target was tried; each attempt is listed.
    #[error("all targets failed: {}", AttemptList(attempts))]
    AllFailed {
        /// Every attempt, in order.
        attempts: Vec<Attempt>,
    },
    /// Every target that could serve is at one of its own limits (`rpm`, `tpm`, `max_concurrency`, or
    /// exhausted by its provider's rate-limit headers): nothing was called. A 429 for clients.
    #[error("every target is at a rate limit; the first frees in {}ms: {}", retry_after.as_millis(), AttemptList(attempts))]
    TargetsLimited {
        /// Until the first target frees.
        retry_after: Duration,
        /// Targets passed over, with their reasons.
        attempts: Vec<Attempt>,
    },
    /// No target could take the request.
    #[error("no target available: {reason}")]
    Unavailable {
        /// Why (e.g. all disabled, and why each was).
        reason: String,
        /// Targets passed over, with their reasons.
        attempts: Vec<Attempt>,
    },
}

impl Error {
    /// The kind that decides what happens next.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::Overloaded { .. } => ErrorKind::Overloaded,
            Error::Server { .. } => ErrorKind::Server,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Connection { .. } => ErrorKind::Connection,
            Error::InvalidResponse { .. } => ErrorKind::InvalidResponse,
            Error::Auth { .. } => ErrorKind::Auth,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::ContextLength { .. } => ErrorKind::ContextLength,
            Error::ContentFiltered { .. } => ErrorKind::ContentFiltered,
            Error::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::DeadlineExceeded { .. } => ErrorKind::Deadline,
            Error::AllFailed { .. } => ErrorKind::Exhausted,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::TargetsLimited { .. } => ErrorKind::RateLimited,
        }
    }

    /// Whether the same target may be tried again.
    pub fn retries(&self) -> bool {
        self.kind().retries()
    }

    /// Whether another target may be tried.
    pub fn falls_back(&self) -> bool {
        self.kind().falls_back()
    }

    /// The provider's Retry-After, for rate limits (for [`Error::TargetsLimited`]: until the first target frees).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            Error::TargetsLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The attempts behind an engine-level error (all failed, deadline, unavailable, a refusal).
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            Error::DeadlineExceeded { attempts }
            | Error::AllFailed { attempts }
            | Error::Unavailable { attempts, .. }
            | Error::TargetsLimited { attempts, .. }
            | Error::InvalidRequest { attempts, .. }
            | Error::ContentFiltered { attempts, .. } => attempts,
            _ => &[],
        }
    }

    /// An InvalidRequest found by the engine itself (status 400), naming the field.
    pub fn invalid_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Error::InvalidRequest {
            status: 400,
            message: message.into(),
            param: param.map(str::to_owned),
            attempts: Vec::new(),
        }
    }

    /// A content-policy refusal with what the provider said.
    pub fn content_filtered(message: impl Into<String>) -> Self {
        Error::ContentFiltered { message: message.into(), attempts: Vec::new() }
    }

    /// The same error carrying the attempts made before it ended the request, where its kind can carry
    /// them (an InvalidRequest or a content-filter refusal answered after upstream calls); other errors
    /// come back unchanged.
    pub fn with_attempts(self, made: Vec<Attempt>) -> Self {
        match self {
            Error::InvalidRequest { status, message, param, .. } => {
                Error::InvalidRequest { status, message, param, attempts: made }
            }
            Error::ContentFiltered { message, .. } => Error::ContentFiltered { message, attempts: made },
            other => other,
        }
    }

    /// An InvalidResponse with this message.
    pub fn invalid_response(message: impl Into<String>) -> Self {
        Error::InvalidResponse { message: message.into() }
    }

    /// A Server error with this status and message.
    pub fn server(status: u16, message: impl Into<String>) -> Self {
        Error::Server { status, message: message.into() }
    }

    /// A rate limit (429), with the provider's Retry-After when it sent one.
    pub fn rate_limited(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Error::RateLimited { message: message.into(), retry_after }
    }

    /// An overloaded provider (529 or the vendor's "overloaded").
    pub fn overloaded(status: u16, message: impl Into<String>) -> Self {
        Error::Overloaded { status, message: message.into() }
    }

    /// A refused key (401/403).
    pub fn auth(status: u16, message: impl Into<String>) -> Self {
        Error::Auth { status, message: message.into() }
    }

    /// A timeout of this phase, after this long.
    pub fn timeout(phase: TimeoutPhase, after: Duration) -> Self {
        Error::Timeout { phase, after }
    }

    /// A connection that could not be made or broke.
    pub fn connection(message: impl Into<String>) -> Self {
        Error::Connection { message: message.into() }
    }
}

struct RetryAfter(Option<Duration>);

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, " (retry after {}ms)", d.as_millis()),
            None => Ok(()),
        }
    }
}

struct Param<'a>(Option<&'a str>);

impl fmt::Display for Param<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, " (field `{p}`)"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_table_holds() {
        use ErrorKind::*;
        for kind in ErrorKind::ALL {
            let expect_retry =
                matches!(kind, RateLimited | Overloaded | Server | Timeout | Connection | InvalidResponse);
            let expect_fallback = !matches!(kind, InvalidRequest | Cancelled | Deadline);
            assert_eq!(kind.retries(), expect_retry, "{kind}");
            assert_eq!(kind.falls_back(), expect_fallback, "{kind}");
        }
    }

    #[test]
    fn retry_after_travels_with_rate_limited() {
        let e = Error::RateLimited { message: "slow down".into(), retry_after: Some(Duration::from_secs(2)) };
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(e.to_string(), "rate limited (retry after 2000ms): slow down");
    }

    #[test]
    fn invalid_request_names_the_field() {
        let e = Error::invalid_request("n > 1 is not supported by this provider", Some("n"));
        assert!(e.to_string().contains("field `n`"));
        assert!(e.kind().fails_fast());
    }
}
