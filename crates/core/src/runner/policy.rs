//! How the loop treats a failed attempt: retry the same target (after a wait), move to the next, or answer
//! at once; and the settings that decide it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::error::{Error, ErrorKind, TimeoutPhase};
use crate::hedge::Hedge;
use crate::validate::ResponseValidator;

use super::AfterCommit;

use super::Target;

/// Decides whether an error may be retried on the same target (replaces the kind's own rule).
pub type RetryPredicate = Arc<dyn Fn(&Error) -> bool + Send + Sync>;

/// How the loop treats failures.
#[derive(Clone)]
pub(crate) struct Policy {
    pub(crate) backoff: Backoff,
    /// A Retry-After longer than this falls back instead of waiting.
    pub(crate) max_retry_wait: Option<Duration>,
    pub(crate) validator: Option<Arc<dyn ResponseValidator>>,
    pub(crate) retry_if: Option<RetryPredicate>,
    pub(crate) on_content_filter: OnContentFilter,
    /// Whether a first-chunk or total timeout is retried on the same target (else it falls back at once).
    pub(crate) retry_timeouts: bool,
    /// With a single call made, answer with its own error rather than an `AllFailed` list.
    pub(crate) pass_through_single_failure: bool,
    /// Hedged calls to the next target, when set.
    pub(crate) hedge: Option<Hedge>,
    /// What a committed stream that breaks does.
    pub(crate) after_commit: AfterCommit,
    /// A target that would drop a request field is skipped instead (SPEC-2 section 14).
    pub(crate) strict_fields: bool,
    /// This run continues a broken stream: a target that refuses the continuation request (e.g. a 400 to
    /// an assistant prefill) is passed over for the next, and its error never reaches the caller.
    pub(crate) continuing: bool,
}

/// What a content-filter refusal does (SPEC-2 section 15). Written `error` / `fallback` in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnContentFilter {
    /// The refusal is the answer: the caller gets it at once, with no retry and no fallback. The default:
    /// another model asked the same thing mostly refuses too, and routing around a policy is the operator's
    /// choice to make, not the gateway's.
    #[default]
    Error,
    /// Try the next target, as for other failures.
    Fallback,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            max_retry_wait: Some(Duration::from_secs(30)),
            validator: None,
            retry_if: None,
            on_content_filter: OnContentFilter::Error,
            retry_timeouts: false,
            pass_through_single_failure: false,
            hedge: None,
            after_commit: AfterCommit::Error,
            strict_fields: false,
            continuing: false,
        }
    }
}

/// What to do after a failed attempt.
pub(super) enum Step {
    Retry(Duration),
    NextTarget,
    /// Retryable, but the target's retry budget is empty.
    RetryRefused,
    Answer,
}

pub(super) fn decide(
    policy: &Policy,
    target: &Target<'_>,
    retry: u32,
    error: &Error,
    deadline: Option<Instant>,
) -> Step {
    let kind = error.kind();
    if policy.continuing && kind == ErrorKind::InvalidRequest {
        return Step::NextTarget;
    }
    if kind.fails_fast() || (kind == ErrorKind::ContentFiltered && policy.on_content_filter == OnContentFilter::Error) {
        return Step::Answer;
    }
    let retryable = match &policy.retry_if {
        Some(predicate) => predicate(error),
        None => kind.retries() && (policy.retry_timeouts || !went_silent(error)),
    };
    if retry >= target.max_retries || !retryable {
        return Step::NextTarget;
    }
    let mut delay = policy.backoff.delay(retry + 1);
    if let Some(asked) = error.retry_after() {
        if policy.max_retry_wait.is_some_and(|max| asked > max) {
            tracing::info!(target_id = target.id, "Retry-After of {asked:?} from {} is longer than allowed", target.id);
            return Step::NextTarget;
        }
        delay = delay.max(asked);
    }
    if deadline.is_some_and(|d| Instant::now() + delay >= d) {
        tracing::info!(target_id = target.id, "no time left before the deadline to retry {}", target.id);
        return Step::NextTarget;
    }
    if let Some(budget) = target.health.and_then(|h| h.retry_budget.as_ref())
        && !budget.try_withdraw()
    {
        tracing::info!(target_id = target.id, "retry budget of {} is empty: falling back without retrying", target.id);
        return Step::RetryRefused;
    }
    Step::Retry(delay)
}

/// A first-chunk or total timeout: the target did not answer in time. Retrying it mostly multiplies the
/// wait; the next target is the better bet. (A connect timeout or a reset is often transient: retried.)
fn went_silent(error: &Error) -> bool {
    matches!(error, Error::Timeout { phase: TimeoutPhase::FirstChunk | TimeoutPhase::Total, .. })
}
