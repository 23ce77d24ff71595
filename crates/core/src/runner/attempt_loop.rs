//! The attempt loop: targets in order, each with its retries and backoff, skips, a hedge on the first call,
//! the deadline, the breaker's last resort, and the error when no target answered.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::attempt::{Attempt, AttemptOutcome};
use crate::breaker::{Admission, Breaker, ProbeGuard};
use crate::error::{Error, ErrorKind};
use crate::fit::Unfit;
use crate::gate::{self, CallPermit};
use crate::plan;
use crate::skip::SkipReason;
use crate::stats::RequestTracker;
use crate::time_limits::AttemptLimits;
use crate::types::ChatRequest;

use super::Target;
use super::mode::{Mode, Served};
use super::policy::{Policy, Step, decide};

mod race;

use race::Raced;

pub(super) async fn run<M: Mode>(
    mode: &M,
    policy: &Policy,
    targets: &[Target<'_>],
    request: ChatRequest,
    tracker: &mut RequestTracker,
) -> Result<Served<M::Output>, Error> {
    if let Some(hedge) = &policy.hedge {
        hedge.budget.deposit(Instant::now());
    }
    // Only a declared context window or a `tpm` needs the size (it serialises every tool schema).
    let sized = |t: &Target<'_>| t.context_window.is_some() || t.health.is_some_and(|h| h.gate.counts_tokens());
    let estimate = if targets.iter().any(sized) { plan::estimate_tokens(&request) } else { 0 };
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
        limited: None,
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
            TargetEnd::Limited => {}
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
            TargetEnd::Blocked | TargetEnd::Limited => {}
            TargetEnd::Failed(error) => last_error = Some(error),
        }
    }
    if run.calls == 0
        && let Some(retry_after) = run.limited
    {
        return Err(Error::TargetsLimited { retry_after, attempts: run.attempts });
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
    /// Not called: it is at one of its limits.
    Limited,
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
    /// A hedged call, started while another target was still working on the request.
    hedge: bool,
    /// Its place at the target (counted in flight until the call ends).
    permit: Option<CallPermit>,
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
    /// Targets were skipped at their limits: the soonest one frees (the 429's Retry-After if none is called).
    limited: Option<Duration>,
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

    /// An attempt record for a call to `target`, naming the fields it dropped and whether it was a hedge.
    fn record_call(
        &self,
        target: &Target<'_>,
        retry: u32,
        outcome: AttemptOutcome,
        elapsed: Duration,
        hedge: bool,
    ) -> Attempt {
        let mut attempt = record(target, retry, outcome, elapsed);
        attempt.dropped = self.fields(target).unwrap_or_default();
        attempt.hedge = hedge;
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
            // One clock reading for the deadline, the limits and the call's start (nothing waits between).
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return TargetEnd::Answer(Error::DeadlineExceeded { attempts: std::mem::take(&mut self.attempts) });
            }
            // The limits first: the breaker's half-open probe must go only to a call that will be made.
            let permit = match self.admit(target, now) {
                Ok(permit) => permit,
                Err(reason) => {
                    tracing::info!(target_id = target.id, "skipping {}: {reason}", target.id);
                    self.tracker.skipped(target.slot);
                    self.attempts.push(record(target, retry, AttemptOutcome::Skipped { reason }, Duration::ZERO));
                    return last.map_or(TargetEnd::Limited, TargetEnd::Failed);
                }
            };
            let breaker = target.health.map(|h| &h.breaker).filter(|_| !force);
            let probe = match breaker.map(Breaker::admit) {
                None | Some(Admission::Call) => None,
                Some(Admission::Probe(guard)) => Some(guard),
                Some(Admission::Skip(reason)) => {
                    // Not called: the place at the target's limits goes back.
                    if let Some(permit) = permit {
                        permit.cancel();
                    }
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
            let mut own = self.start(target, retry, probe, permit, now);
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

    /// A place for one call at `target` within its limits at `now`, or why there is none (noted for the 429).
    pub(super) fn admit(&mut self, target: &Target<'_>, now: Instant) -> Result<Option<CallPermit>, SkipReason> {
        let admitted = match target.model.exhausted_until().filter(|until| *until > now) {
            Some(until) => Err(SkipReason::UpstreamExhausted { remaining: until - now }),
            None => target.health.map(|health| CallPermit::enter(health, self.estimate, now)).transpose(),
        };
        admitted.inspect_err(|reason| {
            if let Some(wait) = gate::frees_in(reason) {
                self.limited = Some(self.limited.map_or(wait, |soonest| soonest.min(wait)));
            }
        })
    }

    /// Starts a call to `target` at `start`.
    fn start(
        &mut self,
        target: &'a Target<'a>,
        retry: u32,
        probe: Option<ProbeGuard<'a>>,
        permit: Option<CallPermit>,
        start: Instant,
    ) -> InFlight<'a, M::Output> {
        let limits = AttemptLimits::new(start, target.first_chunk_timeout, target.total_timeout, self.request.deadline);
        self.tracker.attempt_started(target.slot);
        self.calls += 1;
        if retry == 0
            && let Some(budget) = target.health.and_then(|h| h.retry_budget.as_ref())
        {
            budget.deposit(start);
        }
        let (mode, policy): (&'a M, &'a Policy) = (self.mode, self.policy);
        let mut request = self.request.clone();
        // Each target is asked to continue its own way; a prefill never goes to a target not set to take one.
        if policy.continuing
            && let Some(continuation) = request.continuation.as_mut()
        {
            continuation.style = target.continuation.style().unwrap_or_default();
        }
        let events_skipped = self.tracker.events_skipped(target.slot);
        let call = mode.attempt(target.model, request, limits, policy.validator.as_deref(), events_skipped);
        InFlight { target, retry, call, start, limits, probe, hedge: false, permit }
    }

    /// Records a call that answered; returns what serves the request.
    fn succeeded(&mut self, call: InFlight<'a, M::Output>, mut output: M::Output) -> Served<M::Output> {
        let InFlight { target, retry, start, limits, probe, hedge, mut permit, .. } = call;
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(start);
        if let Some(permit) = permit.as_mut() {
            match M::tokens_used(&output) {
                Some(used) => permit.settle_at(used, now),
                // A whole answer without usage keeps its estimate; a stream has only started.
                None if M::WHOLE => permit.answered(),
                None => {}
            }
        }
        self.tracker.attempt_succeeded(target.slot, elapsed);
        if let Some(health) = target.health {
            health.latency.of(M::WHOLE).record(elapsed, now);
            // A stream counts as a success when it ends well; a probe closes the breaker at commit.
            if M::WHOLE || probe.is_some() {
                health.breaker.succeeded(probe, now);
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
            let attempt = self.record_call(target, retry, AttemptOutcome::Succeeded, elapsed, hedge);
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
            permit,
        }
    }

    /// Records a call that failed.
    fn failed(&mut self, call: InFlight<'a, M::Output>, error: &Error) {
        let InFlight { target, retry, start, probe, hedge, .. } = call;
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
            let mut attempt = self.record_call(target, retry, outcome, elapsed, hedge);
            attempt.retry_after_ms = error.retry_after().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            self.attempts.push(attempt);
        } else {
            self.attempts.extend_from_slice(error.attempts());
        }
    }

    /// Drops a call that lost a hedge race (its connection closes with it).
    fn cancel(&mut self, call: InFlight<'a, M::Output>, winner: &str) {
        let InFlight { target, retry, start, call, probe, hedge, .. } = call;
        // Dropping the call drops its connection; dropping an unsettled probe lets the next request probe.
        drop((call, probe));
        self.tracker.attempt_cancelled(target.slot);
        tracing::debug!(target_id = target.id, winner, "cancelled the call to {}: {winner} answered first", target.id);
        let outcome = AttemptOutcome::Failed {
            kind: ErrorKind::Cancelled,
            message: format!("cancelled: {winner} answered first (hedged request)"),
        };
        let attempt = self.record_call(target, retry, outcome, start.elapsed(), hedge);
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
    Attempt {
        target: target.id.to_owned(),
        retry,
        outcome,
        elapsed,
        retry_after_ms: None,
        dropped: Vec::new(),
        hedge: false,
    }
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
