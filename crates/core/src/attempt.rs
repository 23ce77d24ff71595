//! The record of one attempt (or one skipped target) made while serving a request.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;

pub use crate::skip::SkipReason;

/// What happened to one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The target answered (for streams: its first content chunk arrived).
    Succeeded,
    /// The call failed.
    Failed {
        /// What kind of failure it was.
        kind: ErrorKind,
        /// The failure, as text.
        message: String,
    },
    /// The target was not called (disabled, breaker open, cannot serve this request…).
    Skipped {
        /// Why.
        reason: SkipReason,
    },
}

/// One attempt at one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Target id (`provider/model` unless set).
    pub target: String,
    /// 0 for the first call to this target, 1 for the first retry, …
    pub retry: u32,
    /// What happened.
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
    /// How long the call took (zero when skipped).
    #[serde(with = "millis")]
    pub elapsed: Duration,
    /// For a rate-limited failure: the provider's Retry-After, in milliseconds, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Request fields the target dropped (its API has no equivalent; SPEC-2 section 14), by wire name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// A hedged call: started to this target while another was still working on the request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hedge: bool,
}

impl Attempt {
    /// True when an upstream call was made (skips are not calls).
    pub fn was_called(&self) -> bool {
        !matches!(self.outcome, AttemptOutcome::Skipped { .. })
    }

    /// The failure kind, when the attempt failed.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        match &self.outcome {
            AttemptOutcome::Failed { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            AttemptOutcome::Succeeded => write!(f, "{} (retry {}): ok", self.target, self.retry),
            AttemptOutcome::Failed { kind, message } => {
                write!(f, "{} (retry {}): {kind}: {message}", self.target, self.retry)
            }
            AttemptOutcome::Skipped { reason } => write!(f, "{}: skipped: {reason}", self.target),
        }
    }
}

/// Writes attempts as `a; b; c` for error messages.
pub(crate) struct AttemptList<'a>(pub(crate) &'a [Attempt]);

impl fmt::Display for AttemptList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no attempt was made");
        }
        for (i, attempt) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{attempt}")?;
        }
        Ok(())
    }
}

mod millis {
    //! Durations as whole milliseconds in JSON.
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
