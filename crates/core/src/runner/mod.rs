//! The one attempt loop behind the manager and both interceptors, for whole answers and streams:
//! targets in order, retries as the error kind allows with backoff, fallback, the deadline, stats.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::health::Health;
use crate::model::{ChatModel, ChatStream};
use crate::skip::SkipReason;
use crate::stats::{Outcome, RequestTracker, Stats};
use crate::streaming::{self, Continue, Continuer};
use crate::types::{ChatRequest, ChatResponse, ContinuationMode};

mod after_commit;
mod attempt_loop;
mod mode;
mod policy;

pub use after_commit::AfterCommit;
pub(crate) use mode::Served;
pub(crate) use policy::Policy;
pub use policy::{OnContentFilter, RetryPredicate};

use attempt_loop::run;
use mode::{Streamed, Whole};

/// One target as the loop sees it for one request.
pub(crate) struct Target<'a> {
    /// Index of its counters in [`Stats`].
    pub(crate) slot: usize,
    pub(crate) id: &'a str,
    pub(crate) model: &'a dyn ChatModel,
    pub(crate) max_retries: u32,
    /// Why it must not be called, when it must not.
    pub(crate) skip: Option<SkipReason>,
    pub(crate) context_window: Option<u64>,
    /// Whether it takes tools, when declared.
    pub(crate) supports_tools: Option<bool>,
    pub(crate) first_chunk_timeout: Option<Duration>,
    pub(crate) total_timeout: Option<Duration>,
    /// Its breaker and other state shared between requests (none in the interceptors).
    pub(crate) health: Option<&'a Arc<Health>>,
    /// Stands for whatever the model it wraps is (the retry interceptor's `next`): it does not name
    /// the target that served.
    pub(crate) transparent: bool,
    /// How it is asked to continue a broken stream, in a run that does (see [`Policy::continuing`]).
    pub(crate) continuation: ContinuationMode,
}

impl<'a> Target<'a> {
    /// A target with no retries, limits or stats slot.
    pub(crate) fn plain(slot: usize, id: &'a str, model: &'a dyn ChatModel) -> Self {
        Self {
            slot,
            id,
            model,
            max_retries: 0,
            skip: None,
            context_window: None,
            supports_tools: None,
            first_chunk_timeout: None,
            total_timeout: None,
            health: None,
            transparent: false,
            continuation: ContinuationMode::default(),
        }
    }
}

/// Serves a whole-answer request.
pub(crate) async fn complete(
    policy: &Policy,
    targets: &[Target<'_>],
    request: ChatRequest,
    stats: Option<Arc<Stats>>,
) -> Result<ChatResponse, Error> {
    let mut tracker = RequestTracker::new(stats);
    match run(&Whole, policy, targets, request, &mut tracker).await {
        Ok(served) => {
            tracker.finish(Outcome::Success);
            let mut response = served.output;
            response.served_by = served.id;
            response.attempts = served.attempts;
            Ok(response)
        }
        Err(error) => {
            tracker.finish(outcome_of(&error));
            Err(error)
        }
    }
}

/// Serves a streaming request; returns once an attempt has committed. With a `continuer` and
/// `after_commit = "continue"`, a text stream that breaks later is continued by the next target.
pub(crate) async fn stream(
    policy: &Policy,
    targets: &[Target<'_>],
    request: ChatRequest,
    stats: Option<Arc<Stats>>,
    continuer: Option<Continuer>,
) -> Result<ChatStream, Error> {
    serve_stream(policy, targets, request, RequestTracker::new(stats), continuer).await
}

/// Serves the continuation of a broken stream: its calls count per target, not as another request.
pub(crate) async fn stream_continuation(
    policy: &Policy,
    targets: &[Target<'_>],
    request: ChatRequest,
    stats: Option<Arc<Stats>>,
) -> Result<ChatStream, Error> {
    serve_stream(policy, targets, request, RequestTracker::nested(stats), None).await
}

async fn serve_stream(
    policy: &Policy,
    targets: &[Target<'_>],
    request: ChatRequest,
    mut tracker: RequestTracker,
    continuer: Option<Continuer>,
) -> Result<ChatStream, Error> {
    let cont = match (policy.after_commit, continuer) {
        (AfterCommit::Continue, Some(continuer)) => Some(Continue::new(request.clone(), continuer)),
        _ => None,
    };
    match run(&Streamed, policy, targets, request, &mut tracker).await {
        Ok(served) => Ok(streaming::committed(served, tracker, cont)),
        Err(error) => {
            tracker.finish(outcome_of(&error));
            Err(error)
        }
    }
}

fn outcome_of(error: &Error) -> Outcome {
    match error.kind() {
        ErrorKind::Cancelled => Outcome::Cancelled,
        _ => Outcome::Failed,
    }
}
