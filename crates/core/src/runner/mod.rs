//! The one attempt loop behind the manager and both interceptors, for whole answers and streams:
//! targets in order, retries as the error kind allows with backoff, fallback, the deadline, stats.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::attempt::{Attempt, AttemptOutcome};
use crate::backoff::Backoff;
use crate::breaker::{Admission, Breaker, ProbeGuard};
use crate::error::{Error, ErrorKind, TimeoutPhase};
use crate::fit::Unfit;
use crate::health::Health;
use crate::hedge::Hedge;
use crate::limits::{AttemptLimits, within};
use crate::model::{ChatModel, ChatStream};
use crate::plan;
use crate::skip::SkipReason;
use crate::stats::{Outcome, RequestTracker, Stats};
use crate::streaming::{self, Continue, Continuer, Opened};
use crate::types::{ChatRequest, ChatResponse};
use crate::validate::ResponseValidator;

mod race;

use race::Raced;

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

/// What a committed stream does when it breaks (SPEC section 6). Written `error` / `continue` in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterCommit {
    /// End with one typed error (never a clean end). The default.
    #[default]
    Error,
    /// A text-only stream is continued by the next target, from the partial answer, spliced into the
    /// same stream; a stream that carried tool-call fragments still ends with the error.
    Continue,
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
    if let Some(hedge) = &policy.hedge {
        hedge.budget.deposit();
    }
    // Only a declared context window needs the size (it serialises every tool schema).
    let estimate = if targets.iter().any(|t| t.context_window.is_some()) { plan::estimate_tokens(&request) } else { 0 };
    let mut run = Run {
        mode,
        policy,
        request: &request,
        tracker,
        attempts: Vec::new(),
        calls: 0,
        falling_back_from: None,
        carried: None,
        estimate,
        refused: None,
    };
    let mut last_error = None;
    let mut too_long_for: Option<&Target<'_>> = None;
    // The first target passed over only because its breaker is open: the last resort.
    let mut blocked: Option<&Target<'_>> = None;

    for (i, target) in targets.iter().enumerate() {
        let skip = run.unfit(target, too_long_for).or_else(|| match run.fields(target) {
            Ok(_) => None,
            Err(unfit) => {
                run.refused.get_or_insert_with(|| unfit.field().to_owned());
                Some(SkipReason::Field(unfit))
            }
        });
        if let Some(reason) = skip {
            run.tracker.skipped(target.slot);
            run.attempts.push(record(target, 0, AttemptOutcome::Skipped { reason }, Duration::ZERO));
            continue;
        }
        match run.target(target, &targets[i + 1..], false).await {
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
        match run.target(target, &[], true).await {
            TargetEnd::Served(served) => return Ok(served),
            TargetEnd::Answer(error) => return Err(error),
            TargetEnd::Blocked => {}
            TargetEnd::Failed(error) => last_error = Some(error),
        }
    }
    let calls = run.calls;
    Err(exhausted(policy, calls, last_error, run.attempts, run.refused))
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

/// One call under way.
struct InFlight<'a, O> {
    target: &'a Target<'a>,
    retry: u32,
    call: BoxFuture<'a, Result<O, Error>>,
    start: Instant,
    limits: AttemptLimits,
    probe: Option<ProbeGuard<'a>>,
}

/// The state of one request's loop.
struct Run<'a, M> {
    mode: &'a M,
    policy: &'a Policy,
    request: &'a ChatRequest,
    tracker: &'a mut RequestTracker,
    attempts: Vec<Attempt>,
    calls: usize,
    falling_back_from: Option<&'a str>,
    /// A hedged call that failed: it counts as that target's first attempt when its turn comes.
    carried: Option<(usize, Error)>,
    /// The request's size in tokens, roughly (0 when no target declares a context window).
    estimate: u64,
    /// The first field a target was skipped for (it could not honour it): the 400 when none can serve.
    refused: Option<String>,
}

impl<'a, M: Mode> Run<'a, M> {
    /// Why a target cannot take this request, if it cannot.
    fn unfit(&self, target: &Target<'_>, too_long_for: Option<&Target<'_>>) -> Option<SkipReason> {
        skip_reason(target, too_long_for)
            .or_else(|| plan::unfit(self.request, self.estimate, target.context_window, target.supports_tools))
    }

    /// The fields the target drops, or the field it cannot honour (with `strict_fields`, a dropped field
    /// counts as one it cannot honour).
    fn fields(&self, target: &Target<'_>) -> Result<Vec<String>, Unfit> {
        let fit = target.model.fit(self.request, !M::WHOLE);
        if let Some(unfit) = fit.unfit {
            return Err(unfit);
        }
        match fit.dropped.first() {
            Some(field) if self.policy.strict_fields => Err(Unfit::WouldDrop { field: field.clone() }),
            _ => Ok(fit.dropped),
        }
    }

    /// An attempt record for a call to `target`, naming the fields it dropped.
    fn record_call(&self, target: &Target<'_>, retry: u32, outcome: AttemptOutcome, elapsed: Duration) -> Attempt {
        let mut attempt = record(target, retry, outcome, elapsed);
        attempt.dropped = self.fields(target).unwrap_or_default();
        attempt
    }

    /// Calls one target, with its retries. `rest` are the targets after it (for a hedge);
    /// `force` ignores its breaker (the last resort).
    async fn target(&mut self, target: &'a Target<'a>, rest: &'a [Target<'a>], force: bool) -> TargetEnd<M::Output> {
        let deadline = self.request.deadline;
        let mut last: Option<Error> = None;
        let mut retry = 0;
        if let Some((_, error)) = self.carried.take_if(|(slot, _)| *slot == target.slot) {
            match self.after_failure(target, 0, error).await {
                Ok(error) => (retry, last) = (1, Some(error)),
                Err(end) => return end,
            }
        }
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
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
            let hedge = if self.calls == 0 && !force { self.hedge_plan(target, rest) } else { None };
            let mut own = self.start(target, retry, probe);
            let result = match hedge {
                None => (&mut own.call).await,
                Some((partner, after)) => match self.race(&mut own, partner, after).await {
                    Raced::Own(result) => result,
                    Raced::HedgeWon(hedge, output) => {
                        self.cancel(own, hedge.target.id);
                        return TargetEnd::Served(self.succeeded(hedge, output));
                    }
                    Raced::OwnFailed(error, mut hedge) => {
                        self.failed(own, &error);
                        if matches!(decide(self.policy, target, retry, &error, deadline), Step::Answer) {
                            self.cancel(hedge, target.id);
                            return TargetEnd::Answer(answer_at_once(error, std::mem::take(&mut self.attempts)));
                        }
                        // The hedge is this request's next call already: wait for it rather than retrying.
                        self.tracker.fell_back();
                        return match (&mut hedge.call).await {
                            Ok(output) => TargetEnd::Served(self.succeeded(hedge, output)),
                            Err(hedge_error) => {
                                let slot = hedge.target.slot;
                                self.failed(hedge, &hedge_error);
                                self.carried = Some((slot, hedge_error));
                                TargetEnd::Failed(error)
                            }
                        };
                    }
                },
            };
            match result {
                Ok(output) => return TargetEnd::Served(self.succeeded(own, output)),
                Err(error) => {
                    self.failed(own, &error);
                    // The last resort is one call: its breaker says it is sick, so retries would only add load.
                    if force && !error.kind().fails_fast() {
                        return TargetEnd::Failed(error);
                    }
                    match self.after_failure(target, retry, error).await {
                        Ok(error) => (retry, last) = (retry + 1, Some(error)),
                        Err(end) => return end,
                    }
                }
            }
        }
    }

    /// Starts a call to `target`.
    fn start(&mut self, target: &'a Target<'a>, retry: u32, probe: Option<ProbeGuard<'a>>) -> InFlight<'a, M::Output> {
        let start = Instant::now();
        let limits = AttemptLimits::new(start, target.first_chunk_timeout, target.total_timeout, self.request.deadline);
        self.tracker.attempt_started(target.slot);
        self.calls += 1;
        if retry == 0
            && let Some(budget) = target.health.and_then(|h| h.retry_budget.as_ref())
        {
            budget.deposit();
        }
        let (mode, policy): (&'a M, &'a Policy) = (self.mode, self.policy);
        let call = mode.attempt(target.model, self.request.clone(), limits, policy.validator.as_deref());
        InFlight { target, retry, call, start, limits, probe }
    }

    /// Records a call that answered; returns what serves the request.
    fn succeeded(&mut self, call: InFlight<'a, M::Output>, mut output: M::Output) -> Served<M::Output> {
        let InFlight { target, retry, start, limits, probe, .. } = call;
        let elapsed = start.elapsed();
        self.tracker.attempt_succeeded(target.slot, elapsed);
        if let Some(health) = target.health {
            health.latency.of(M::WHOLE).record(elapsed);
            // A stream counts as a success when it ends well; a probe closes the breaker at commit.
            if M::WHOLE || probe.is_some() {
                health.breaker.succeeded(probe);
            }
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
            let attempt = self.record_call(target, retry, AttemptOutcome::Succeeded, elapsed);
            self.attempts.push(attempt);
        } else {
            self.attempts.extend(inner_attempts);
        }
        Served {
            output,
            slot: target.slot,
            id: inner_id.or_else(|| (!target.transparent).then(|| target.id.to_owned())),
            called: target.id.to_owned(),
            attempts: std::mem::take(&mut self.attempts),
            limits,
            health: target.health.cloned(),
        }
    }

    /// Records a call that failed.
    fn failed(&mut self, call: InFlight<'a, M::Output>, error: &Error) {
        let InFlight { target, retry, start, probe, .. } = call;
        let elapsed = start.elapsed();
        let kind = error.kind();
        self.tracker.attempt_failed(target.slot, kind, elapsed);
        if let Some(health) = target.health {
            health.breaker.failed(error, probe);
        }
        tracing::warn!(
            mode = M::NAME, target_id = target.id, retry, max_retries = target.max_retries, %kind, %error,
            "error with model {} (retry {retry}/{}): {error}", target.id, target.max_retries
        );
        if error.attempts().is_empty() {
            let outcome = AttemptOutcome::Failed { kind, message: error.to_string() };
            let mut attempt = self.record_call(target, retry, outcome, elapsed);
            attempt.retry_after_ms = error.retry_after().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            self.attempts.push(attempt);
        } else {
            self.attempts.extend_from_slice(error.attempts());
        }
    }

    /// Drops a call that lost a hedge race (its connection closes with it).
    fn cancel(&mut self, call: InFlight<'a, M::Output>, winner: &str) {
        let InFlight { target, retry, start, call, probe, .. } = call;
        // Dropping the call drops its connection; dropping an unsettled probe lets the next request probe.
        drop((call, probe));
        self.tracker.attempt_cancelled(target.slot);
        tracing::debug!(target_id = target.id, winner, "cancelled the call to {}: {winner} answered first", target.id);
        let outcome = AttemptOutcome::Failed {
            kind: ErrorKind::Cancelled,
            message: format!("cancelled: {winner} answered first (hedged request)"),
        };
        let attempt = self.record_call(target, retry, outcome, start.elapsed());
        self.attempts.push(attempt);
    }

    /// After a failure: `Ok` (with the error back) when the same target is retried, after the wait.
    async fn after_failure(
        &mut self,
        target: &'a Target<'a>,
        retry: u32,
        error: Error,
    ) -> Result<Error, TargetEnd<M::Output>> {
        match decide(self.policy, target, retry, &error, self.request.deadline) {
            Step::Answer => Err(TargetEnd::Answer(answer_at_once(error, std::mem::take(&mut self.attempts)))),
            Step::NextTarget => Err(TargetEnd::Failed(error)),
            Step::RetryRefused => {
                self.tracker.retry_refused(target.slot);
                Err(TargetEnd::Failed(error))
            }
            Step::Retry(delay) => {
                tracing::info!(
                    mode = M::NAME,
                    target_id = target.id,
                    retry = retry + 1,
                    delay_ms = delay.as_millis() as u64,
                    "retry {}/{} for model {}",
                    retry + 1,
                    target.max_retries,
                    target.id
                );
                tokio::time::sleep(delay).await;
                Ok(error)
            }
        }
    }
}

fn record(target: &Target<'_>, retry: u32, outcome: AttemptOutcome, elapsed: Duration) -> Attempt {
    Attempt { target: target.id.to_owned(), retry, outcome, elapsed, retry_after_ms: None, dropped: Vec::new() }
}

fn decide(policy: &Policy, target: &Target<'_>, retry: u32, error: &Error, deadline: Option<Instant>) -> Step {
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

/// Why a target is passed over without a call.
fn skip_reason(target: &Target<'_>, too_long_for: Option<&Target<'_>>) -> Option<SkipReason> {
    if let Some(reason) = &target.skip {
        return Some(reason.clone());
    }
    let failed = too_long_for?;
    match (target.context_window, failed.context_window) {
        (Some(window), Some(theirs)) if window <= theirs => {
            Some(SkipReason::WindowNotLarger { window, than: failed.id.to_owned(), theirs })
        }
        _ => None,
    }
}

/// The error for a failure that ends the request at once.
fn answer_at_once(error: Error, attempts: Vec<Attempt>) -> Error {
    match error.kind() {
        ErrorKind::Deadline => Error::DeadlineExceeded { attempts },
        ErrorKind::Cancelled => Error::Cancelled,
        // The caller's own fault, found upstream: it still learns what was tried (SPEC-2 section 14).
        _ => error.with_attempts(attempts),
    }
}

/// The error when no target answered.
fn exhausted(
    policy: &Policy,
    calls: usize,
    last_error: Option<Error>,
    attempts: Vec<Attempt>,
    refused: Option<String>,
) -> Error {
    if calls == 0
        && let Some(field) = refused
    {
        let each: Vec<String> = attempts.iter().map(ToString::to_string).collect();
        let message = format!(
            "no target of this route can honour field `{field}`; remove it or add a target that takes it ({})",
            each.join("; ")
        );
        return Error::InvalidRequest { status: 400, message, param: Some(field), attempts };
    }
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
