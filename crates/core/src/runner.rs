//! The one attempt loop behind the manager and both interceptors, for whole answers and streams:
//! targets in order, retries as the error kind allows with backoff, fallback, the deadline, stats.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::attempt::{Attempt, AttemptOutcome};
use crate::backoff::Backoff;
use crate::breaker::{Admission, Breaker};
use crate::error::{Error, ErrorKind};
use crate::health::Health;
use crate::limits::{AttemptLimits, within};
use crate::model::{ChatModel, ChatStream};
use crate::plan;
use crate::stats::{Outcome, RequestTracker, Stats};
use crate::streaming::{self, Opened};
use crate::types::{ChatRequest, ChatResponse};
use crate::validate::ResponseValidator;

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
    pub(crate) fallback_on_content_filter: bool,
    /// With a single call made, answer with its own error rather than an `AllFailed` list.
    pub(crate) pass_through_single_failure: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            max_retry_wait: Some(Duration::from_secs(30)),
            validator: None,
            retry_if: None,
            fallback_on_content_filter: true,
            pass_through_single_failure: false,
        }
    }
}

/// One target as the loop sees it for one request.
pub(crate) struct Target<'a> {
    /// Index of its counters in [`Stats`].
    pub(crate) slot: usize,
    pub(crate) id: &'a str,
    pub(crate) model: &'a dyn ChatModel,
    pub(crate) max_retries: u32,
    /// Why it must not be called, when it must not.
    pub(crate) skip: Option<String>,
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
        }
    }
}

/// What one attempt produces in each mode.
trait Mode: Sync {
    type Output: Send;
    /// For logs: `complete` or `stream`.
    const NAME: &'static str;
    /// Whether an answer is the whole answer (for streams, only the start: health counts the end).
    const WHOLE: bool;

    fn attempt<'a>(
        &'a self,
        model: &'a dyn ChatModel,
        request: ChatRequest,
        limits: AttemptLimits,
        validator: Option<&'a dyn ResponseValidator>,
    ) -> BoxFuture<'a, Result<Self::Output, Error>>;

    /// The target and attempts an inner engine recorded on the output, when the model is one.
    fn inner(output: &mut Self::Output) -> (Option<String>, Vec<Attempt>);
}

struct Whole;

impl Mode for Whole {
    type Output = ChatResponse;
    const NAME: &'static str = "complete";
    const WHOLE: bool = true;

    fn attempt<'a>(
        &'a self,
        model: &'a dyn ChatModel,
        request: ChatRequest,
        limits: AttemptLimits,
        validator: Option<&'a dyn ResponseValidator>,
    ) -> BoxFuture<'a, Result<ChatResponse, Error>> {
        Box::pin(async move {
            let response = within(limits.first, model.complete(request)).await?;
            if let Some(validator) = validator {
                validator.check(&response).map_err(Error::invalid_response)?;
            }
            Ok(response)
        })
    }

    fn inner(output: &mut ChatResponse) -> (Option<String>, Vec<Attempt>) {
        (output.served_by.take(), std::mem::take(&mut output.attempts))
    }
}

struct Streamed;

impl Mode for Streamed {
    type Output = Opened;
    const NAME: &'static str = "stream";
    const WHOLE: bool = false;

    fn attempt<'a>(
        &'a self,
        model: &'a dyn ChatModel,
        request: ChatRequest,
        limits: AttemptLimits,
        validator: Option<&'a dyn ResponseValidator>,
    ) -> BoxFuture<'a, Result<Opened, Error>> {
        Box::pin(streaming::open(model, request, limits.first, validator))
    }

    fn inner(output: &mut Opened) -> (Option<String>, Vec<Attempt>) {
        (output.served_by.take(), std::mem::take(&mut output.attempts))
    }
}

/// The attempt that answered.
pub(crate) struct Served<T> {
    pub(crate) output: T,
    pub(crate) slot: usize,
    /// The target that served, when known (a transparent target without an inner answer: `None`).
    pub(crate) id: Option<String>,
    /// For logs: the target of this loop that answered.
    pub(crate) called: String,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) limits: AttemptLimits,
    pub(crate) health: Option<Arc<Health>>,
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

/// Serves a streaming request; returns once an attempt has committed.
pub(crate) async fn stream(
    policy: &Policy,
    targets: &[Target<'_>],
    request: ChatRequest,
    stats: Option<Arc<Stats>>,
) -> Result<ChatStream, Error> {
    let mut tracker = RequestTracker::new(stats);
    match run(&Streamed, policy, targets, request, &mut tracker).await {
        Ok(served) => Ok(streaming::committed(served, tracker)),
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

/// What to do after a failed attempt.
enum Step {
    Retry(Duration),
    NextTarget,
    /// Retryable, but the target's retry budget is empty.
    RetryRefused,
    Answer,
}

async fn run<M: Mode>(
    mode: &M,
    policy: &Policy,
    targets: &[Target<'_>],
    request: ChatRequest,
    tracker: &mut RequestTracker,
) -> Result<Served<M::Output>, Error> {
    let mut run =
        Run { mode, policy, request: &request, tracker, attempts: Vec::new(), calls: 0, falling_back_from: None };
    let mut last_error = None;
    let mut too_long_for: Option<&Target<'_>> = None;
    // The first target passed over only because its breaker is open: the last resort.
    let mut blocked: Option<&Target<'_>> = None;

    let estimate = plan::estimate_tokens(&request);
    for target in targets {
        let unfit = || plan::unfit(&request, estimate, target.context_window, target.supports_tools);
        if let Some(reason) = skip_reason(target, too_long_for).or_else(unfit) {
            run.tracker.skipped(target.slot);
            run.attempts.push(record(target, 0, AttemptOutcome::Skipped { reason }, Duration::ZERO));
            continue;
        }
        match run.target(target, false).await {
            TargetEnd::Served(served) => return Ok(served),
            TargetEnd::Answer(error) => return Err(error),
            TargetEnd::Blocked => {
                blocked.get_or_insert(target);
            }
            TargetEnd::Failed(error) => {
                if error.kind() == ErrorKind::ContextLength {
                    too_long_for = Some(target);
                }
                last_error = Some(error);
                run.falling_back_from = Some(target.id);
            }
        }
    }
    // Every target that could serve was skipped by its breaker: rather than failing without a call,
    // ask the first of them once (a request is never lost to breakers alone).
    if run.calls == 0
        && let Some(target) = blocked
    {
        tracing::warn!(target_id = target.id, "every breaker is open; calling {} anyway", target.id);
        match run.target(target, true).await {
            TargetEnd::Served(served) => return Ok(served),
            TargetEnd::Answer(error) => return Err(error),
            TargetEnd::Blocked => {}
            TargetEnd::Failed(error) => last_error = Some(error),
        }
    }
    let calls = run.calls;
    Err(exhausted(policy, calls, last_error, run.attempts))
}

/// How one target's turn ended.
enum TargetEnd<T> {
    Served(Served<T>),
    /// End the request with this error.
    Answer(Error),
    /// Not called: its breaker is open.
    Blocked,
    /// Called and failed; move on.
    Failed(Error),
}

/// The state of one request's loop.
struct Run<'r, 't, M> {
    mode: &'r M,
    policy: &'r Policy,
    request: &'r ChatRequest,
    tracker: &'r mut RequestTracker,
    attempts: Vec<Attempt>,
    calls: usize,
    falling_back_from: Option<&'t str>,
}

impl<'t, M: Mode> Run<'_, 't, M> {
    /// Calls one target, with its retries. `force` ignores its breaker (the last resort).
    async fn target(&mut self, target: &'t Target<'t>, force: bool) -> TargetEnd<M::Output> {
        let deadline = self.request.deadline;
        let validator = self.policy.validator.as_deref();
        let mut last: Option<Error> = None;
        let mut retry = 0;
        loop {
            let start = Instant::now();
            if deadline.is_some_and(|d| start >= d) {
                return TargetEnd::Answer(Error::DeadlineExceeded { attempts: std::mem::take(&mut self.attempts) });
            }
            let breaker = target.health.map(|h| &h.breaker).filter(|_| !force);
            let probe = match breaker.map(Breaker::admit) {
                None | Some(Admission::Call) => None,
                Some(Admission::Probe(guard)) => Some(guard),
                Some(Admission::Skip(reason)) => {
                    tracing::info!(target_id = target.id, "skipping {}: {reason}", target.id);
                    self.tracker.skipped(target.slot);
                    self.attempts.push(record(target, retry, AttemptOutcome::Skipped { reason }, Duration::ZERO));
                    return last.map_or(TargetEnd::Blocked, TargetEnd::Failed);
                }
            };
            if retry == 0
                && let Some(from) = self.falling_back_from.take()
            {
                self.tracker.fell_back();
                tracing::warn!(mode = M::NAME, from, to = target.id, "falling back from {from} to {}", target.id);
            }
            let limits = AttemptLimits::new(start, target.first_chunk_timeout, target.total_timeout, deadline);
            self.tracker.attempt_started(target.slot);
            self.calls += 1;
            if retry == 0
                && let Some(budget) = target.health.and_then(|h| h.retry_budget.as_ref())
            {
                budget.deposit();
            }
            let result = self.mode.attempt(target.model, self.request.clone(), limits, validator).await;
            let elapsed = start.elapsed();
            let error = match result {
                Ok(mut output) => {
                    self.tracker.attempt_succeeded(target.slot, elapsed);
                    // A stream counts as a success when it ends well; a probe closes the breaker at commit.
                    if let Some(health) = target.health
                        && (M::WHOLE || probe.is_some())
                    {
                        health.breaker.succeeded(probe);
                    }
                    tracing::debug!(
                        mode = M::NAME,
                        target_id = target.id,
                        retry,
                        "success with model {} (retry {retry})",
                        target.id
                    );
                    // A model that is itself an engine knows better which target served and what it tried.
                    let (inner_id, inner_attempts) = M::inner(&mut output);
                    if inner_attempts.is_empty() {
                        self.attempts.push(record(target, retry, AttemptOutcome::Succeeded, elapsed));
                    } else {
                        self.attempts.extend(inner_attempts);
                    }
                    let id = inner_id.or_else(|| (!target.transparent).then(|| target.id.to_owned()));
                    let attempts = std::mem::take(&mut self.attempts);
                    let health = target.health.cloned();
                    let called = target.id.to_owned();
                    return TargetEnd::Served(Served {
                        output,
                        slot: target.slot,
                        id,
                        called,
                        attempts,
                        limits,
                        health,
                    });
                }
                Err(error) => error,
            };
            let kind = error.kind();
            self.tracker.attempt_failed(target.slot, kind, elapsed);
            if let Some(health) = target.health {
                health.breaker.failed(&error, probe);
            }
            tracing::warn!(
                mode = M::NAME, target_id = target.id, retry, max_retries = target.max_retries, %kind, %error,
                "error with model {} (retry {retry}/{}): {error}", target.id, target.max_retries
            );
            if error.attempts().is_empty() {
                let outcome = AttemptOutcome::Failed { kind, message: error.to_string() };
                self.attempts.push(record(target, retry, outcome, elapsed));
            } else {
                self.attempts.extend_from_slice(error.attempts());
            }
            match decide(self.policy, target, retry, &error, deadline) {
                Step::Answer => return TargetEnd::Answer(answer_at_once(error, std::mem::take(&mut self.attempts))),
                Step::Retry(delay) => {
                    retry += 1;
                    tracing::info!(
                        mode = M::NAME,
                        target_id = target.id,
                        retry,
                        delay_ms = delay.as_millis() as u64,
                        "retry {retry}/{} for model {}",
                        target.max_retries,
                        target.id
                    );
                    tokio::time::sleep(delay).await;
                    last = Some(error);
                }
                Step::NextTarget => return TargetEnd::Failed(error),
                Step::RetryRefused => {
                    self.tracker.retry_refused(target.slot);
                    return TargetEnd::Failed(error);
                }
            }
        }
    }
}

fn record(target: &Target<'_>, retry: u32, outcome: AttemptOutcome, elapsed: Duration) -> Attempt {
    Attempt { target: target.id.to_owned(), retry, outcome, elapsed }
}

fn decide(policy: &Policy, target: &Target<'_>, retry: u32, error: &Error, deadline: Option<Instant>) -> Step {
    let kind = error.kind();
    if kind.fails_fast() || (kind == ErrorKind::ContentFiltered && !policy.fallback_on_content_filter) {
        return Step::Answer;
    }
    let retryable = match &policy.retry_if {
        Some(predicate) => predicate(error),
        None => kind.retries(),
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

/// Why a target is passed over without a call.
fn skip_reason(target: &Target<'_>, too_long_for: Option<&Target<'_>>) -> Option<String> {
    if let Some(reason) = &target.skip {
        return Some(reason.clone());
    }
    let failed = too_long_for?;
    match (target.context_window, failed.context_window) {
        (Some(mine), Some(theirs)) if mine <= theirs => Some(format!(
            "its context window ({mine} tokens) is not larger than that of {} ({theirs}), which found the prompt too long",
            failed.id
        )),
        _ => None,
    }
}

/// The error for a failure that ends the request at once.
fn answer_at_once(error: Error, attempts: Vec<Attempt>) -> Error {
    match error.kind() {
        ErrorKind::Deadline => Error::DeadlineExceeded { attempts },
        ErrorKind::Cancelled => Error::Cancelled,
        _ => error,
    }
}

/// The error when no target answered.
fn exhausted(policy: &Policy, calls: usize, last_error: Option<Error>, attempts: Vec<Attempt>) -> Error {
    if calls == 0 {
        let reason = if attempts.is_empty() {
            "there are no targets".to_owned()
        } else {
            let each: Vec<String> = attempts.iter().map(ToString::to_string).collect();
            format!("every target was passed over: {}", each.join("; "))
        };
        return Error::Unavailable { reason, attempts };
    }
    match last_error {
        Some(error) if calls == 1 && policy.pass_through_single_failure => error,
        _ => Error::AllFailed { attempts },
    }
}
