//! Per-target limits (`rpm`, `tpm`, `max_concurrency`): exact under concurrency, every call counted,
//! a target at a limit skipped without a call, and every target at one → a typed 429-style error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MS, SEC, server_error, shared};
use futures::StreamExt;
use switchyard::{
    Backoff, ChatModel, ChatRequest, Error, ErrorKind, FallbackManager, ModelFallback,
    attempt::{AttemptOutcome, SkipReason},
    breaker::{BreakerConfig, BreakerState},
    health::HealthRegistry,
    limits::TargetLimits,
};
use switchyard_sim::{Behavior, SimModel};

fn limited(name: &str, limits: TargetLimits) -> ModelFallback {
    ModelFallback::new("sim", name).with_limits(limits)
}

fn with_max_tokens(mut request: ChatRequest, max_tokens: u32) -> ChatRequest {
    request.options.max_tokens = Some(max_tokens);
    request
}

fn rpm(n: u64) -> TargetLimits {
    TargetLimits { rpm: Some(n), ..TargetLimits::default() }
}

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_requests_at_rpm_twenty_make_exactly_twenty_calls() {
    let model = SimModel::replying("a", "ok").latency(10 * MS);
    let m = FallbackManager::builder().target(limited("a", rpm(20)), shared(&model)).build().unwrap();
    let results = futures::future::join_all((0..50).map(|_| m.complete(ChatRequest::user("hi")))).await;
    assert_eq!(model.calls(), 20);
    let refused: Vec<Error> = results.into_iter().filter_map(Result::err).collect();
    assert_eq!(refused.len(), 30);
    let Error::TargetsLimited { retry_after, attempts } = &refused[0] else { panic!("{:?}", refused[0]) };
    assert_eq!(refused[0].kind(), ErrorKind::RateLimited);
    // A call counts until 60 s after the end of its quarter-second slot.
    assert!(*retry_after > 59 * SEC && *retry_after <= 60 * SEC + 250 * MS, "{retry_after:?}");
    let AttemptOutcome::Skipped { reason } = &attempts[0].outcome else { panic!("{attempts:?}") };
    assert_eq!(reason.to_string(), "rpm limit 20 reached");
    assert_eq!(reason.label(), "rate_limited");
    assert!(!attempts[0].was_called());

    tokio::time::advance(60 * SEC).await;
    assert!(m.complete(ChatRequest::user("hi")).await.is_err(), "the slot of the calls has not left yet");
    tokio::time::advance(250 * MS).await;
    m.complete(ChatRequest::user("hi")).await.expect("the window moved on");
}

#[tokio::test(start_paused = true)]
async fn max_concurrency_is_exact_and_the_rest_fall_back_to_the_next_target() {
    let a = SimModel::replying("a", "ok").latency(100 * MS);
    let b = SimModel::replying("b", "ok").latency(100 * MS);
    let two = TargetLimits { max_concurrency: Some(2), ..TargetLimits::default() };
    let m = FallbackManager::builder()
        .target(limited("a", two), shared(&a))
        .target(ModelFallback::new("sim", "b").with_priority(1), shared(&b))
        .build()
        .unwrap();
    let results = futures::future::join_all((0..10).map(|_| m.complete(ChatRequest::user("hi")))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!((a.calls(), b.calls()), (2, 8));
    let skipped = results.iter().flatten().find(|r| r.served_by.as_deref() == Some("sim/b")).unwrap();
    assert!(skipped.attempts[0].to_string().contains("max_concurrency limit 2 reached"), "{skipped:?}");
    // The places are free again once the calls ended.
    let again = futures::future::join_all((0..2).map(|_| m.complete(ChatRequest::user("hi")))).await;
    assert!(again.iter().all(|r| r.as_ref().unwrap().served_by.as_deref() == Some("sim/a")));
}

#[tokio::test(start_paused = true)]
async fn a_stream_holds_its_place_until_it_ends() {
    let a = SimModel::replying("a", "one two three").chunk_delay(100 * MS);
    let one = TargetLimits { max_concurrency: Some(1), ..TargetLimits::default() };
    let m = FallbackManager::builder().target(limited("a", one), shared(&a)).build().unwrap();
    let mut first = m.stream(ChatRequest::user("hi")).await.unwrap();
    let Err(busy) = m.stream(ChatRequest::user("hi")).await else { panic!("the only place is taken") };
    assert_eq!(busy.kind(), ErrorKind::RateLimited);
    while first.next().await.is_some() {}
    drop(first);
    m.stream(ChatRequest::user("hi")).await.expect("the stream ended and gave its place back");
}

#[tokio::test(start_paused = true)]
async fn tpm_reserves_the_estimate_up_front_and_settles_from_usage() {
    // Each request: 2 prompt tokens + max_tokens 300 reserved; the simulated answers use ~2 tokens.
    let model = SimModel::replying("a", "ok").latency(100 * MS);
    let tpm = TargetLimits { tpm: Some(1000), ..TargetLimits::default() };
    let m = FallbackManager::builder().target(limited("a", tpm), shared(&model)).build().unwrap();
    let request = || with_max_tokens(ChatRequest::user("hello"), 300);
    let results = futures::future::join_all((0..10).map(|_| m.complete(request()))).await;
    assert_eq!(model.calls(), 3, "three reservations of ~302 fit in 1000, a fourth does not");
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 7);
    // Settled from usage, the three calls hold a few tokens: three more fit at once.
    let results = futures::future::join_all((0..3).map(|_| m.complete(request()))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let too_big = m.complete(with_max_tokens(ChatRequest::user("hi"), 2000)).await.unwrap_err();
    assert_eq!(too_big.kind(), ErrorKind::Unavailable, "a request that can never fit is not told to retry: {too_big}");
}

#[tokio::test(start_paused = true)]
async fn a_streams_final_usage_settles_its_reservation() {
    let model = SimModel::replying("a", "ok");
    let tpm = TargetLimits { tpm: Some(1000), ..TargetLimits::default() };
    let m = FallbackManager::builder().target(limited("a", tpm), shared(&model)).build().unwrap();
    for _ in 0..10 {
        // Each reserves ~602 tokens: two at once would not fit, so each must have settled to its usage.
        let mut stream = m.stream(with_max_tokens(ChatRequest::user("hello"), 600)).await.unwrap();
        while stream.next().await.is_some() {}
    }
    assert_eq!(model.calls(), 10);
}

#[tokio::test(start_paused = true)]
async fn retries_count_against_rpm() {
    let model = SimModel::failing("a", server_error());
    let backup = SimModel::replying("b", "ok");
    let m = FallbackManager::builder()
        .backoff(Backoff::linear())
        .breaker(None)
        .target(limited("a", rpm(3)).with_max_retries(5), shared(&model))
        .target(ModelFallback::new("sim", "b").with_priority(1), shared(&backup))
        .build()
        .unwrap();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(model.calls(), 3);
    assert_eq!(r.served_by.as_deref(), Some("sim/b"));
    let last_of_a = r.attempts.iter().rfind(|a| a.target == "sim/a").unwrap();
    assert!(matches!(&last_of_a.outcome, AttemptOutcome::Skipped { reason: SkipReason::RateLimited(_) }));
}

#[tokio::test(start_paused = true)]
async fn two_managers_sharing_a_registry_share_a_targets_limits() {
    let model = SimModel::replying("a", "ok");
    let registry = HealthRegistry::new();
    let build = || {
        FallbackManager::builder()
            .health(registry.clone())
            .target(limited("a", rpm(4)), shared(&model))
            .build()
            .unwrap()
    };
    let (one, two) = (build(), build());
    for _ in 0..2 {
        one.complete(ChatRequest::user("hi")).await.unwrap();
        two.complete(ChatRequest::user("hi")).await.unwrap();
    }
    assert!(one.complete(ChatRequest::user("hi")).await.is_err());
    assert!(two.complete(ChatRequest::user("hi")).await.is_err());
    assert_eq!(model.calls(), 4);
    let other =
        FallbackManager::builder().health(registry.clone()).target(limited("a", rpm(5)), shared(&model)).build();
    assert!(other.is_err(), "one target, one set of limits");
}

/// A model whose provider says, with each answer, that its quota is used up for `reset`.
struct Exhausting {
    inner: SimModel,
    reset: std::time::Duration,
    until: std::sync::Mutex<Option<tokio::time::Instant>>,
}

#[switchyard::async_trait]
impl ChatModel for Exhausting {
    async fn complete(&self, request: ChatRequest) -> Result<switchyard::ChatResponse, Error> {
        let answer = self.inner.complete(request).await;
        *self.until.lock().unwrap() = Some(tokio::time::Instant::now() + self.reset);
        answer
    }

    fn exhausted_until(&self) -> Option<tokio::time::Instant> {
        *self.until.lock().unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn a_target_its_provider_says_is_exhausted_is_skipped_until_the_reset_then_called_again() {
    let sim = SimModel::replying("a", "ok");
    let model = std::sync::Arc::new(Exhausting { inner: sim.clone(), reset: 2 * SEC, until: Default::default() });
    let m = FallbackManager::builder().target(ModelFallback::new("sim", "a"), model).build().unwrap();
    m.complete(ChatRequest::user("hi")).await.unwrap();
    let refused = m.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(sim.calls(), 1, "skipped without a call");
    let Error::TargetsLimited { retry_after, attempts } = &refused else { panic!("{refused:?}") };
    assert_eq!(*retry_after, 2 * SEC);
    let AttemptOutcome::Skipped { reason } = &attempts[0].outcome else { panic!("{attempts:?}") };
    assert_eq!(reason.label(), "upstream_exhausted");
    tokio::time::advance(1999 * MS).await;
    assert!(m.complete(ChatRequest::user("hi")).await.is_err(), "still before the reset");
    tokio::time::advance(MS).await;
    m.complete(ChatRequest::user("hi")).await.expect("called again after the reset");
    assert_eq!(sim.calls(), 2);
}

/// Target `a` (its breaker opens at its first failure, for 10 s; its `rpm` is `limit`) failing its first call,
/// then answering, and an answering backup `b`; both in `registry`.
fn breaker_and_rpm(a: &SimModel, b: &SimModel, limit: u64, registry: &HealthRegistry) -> FallbackManager {
    FallbackManager::builder()
        .health(registry.clone())
        .breaker(Some(BreakerConfig::new(1, 10 * SEC)))
        .target(limited("a", rpm(limit)).with_max_retries(0), shared(a))
        .target(ModelFallback::new("sim", "b").with_priority(1), shared(b))
        .build()
        .unwrap()
}

fn served_by(r: &switchyard::ChatResponse) -> &str {
    r.served_by.as_deref().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_target_at_its_rpm_keeps_its_breaker_open_and_its_probe_for_a_call_that_is_made() {
    let a = SimModel::replying("a", "ok").script([Behavior::Fail(server_error())]);
    let b = SimModel::replying("b", "ok");
    let registry = HealthRegistry::new();
    let m = breaker_and_rpm(&a, &b, 1, &registry);
    assert_eq!(served_by(&m.complete(ChatRequest::user("hi")).await.unwrap()), "sim/b");
    let health = registry.get("sim/a").unwrap();
    assert_eq!(health.breaker_state(), BreakerState::Open);
    let opened = health.breaker_since().unwrap();
    let mut changes = registry.subscribe();

    // The cooldown is over but a's one call still fills its rpm window.
    tokio::time::advance(11 * SEC).await;
    for _ in 0..3 {
        let r = m.complete(ChatRequest::user("hi")).await.unwrap();
        assert_eq!(served_by(&r), "sim/b");
        let AttemptOutcome::Skipped { reason } = &r.attempts[0].outcome else { panic!("{:?}", r.attempts) };
        assert_eq!(reason.label(), "rate_limited", "{reason}");
    }
    assert_eq!(a.calls(), 1);
    assert!(changes.try_recv().is_err(), "no half-open for a call that was not made");
    assert_eq!(health.breaker_since(), Some(opened + 10 * SEC), "half-open since the cooldown ended, untouched");

    // Once the window frees, the probe goes to a real call, which closes the breaker.
    tokio::time::advance(50 * SEC).await;
    assert_eq!(served_by(&m.complete(ChatRequest::user("hi")).await.unwrap()), "sim/a");
    assert_eq!(health.breaker_state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_target_skipped_by_its_breaker_keeps_its_rpm_units() {
    let a = SimModel::replying("a", "ok").script([Behavior::Fail(server_error())]);
    let b = SimModel::replying("b", "ok");
    let registry = HealthRegistry::new();
    let m = breaker_and_rpm(&a, &b, 2, &registry);
    m.complete(ChatRequest::user("hi")).await.unwrap();
    for _ in 0..3 {
        let r = m.complete(ChatRequest::user("hi")).await.unwrap();
        let AttemptOutcome::Skipped { reason } = &r.attempts[0].outcome else { panic!("{:?}", r.attempts) };
        assert_eq!(reason.label(), "breaker_open", "{reason}");
    }
    // One of a's two calls a minute is used: the probe after the cooldown still fits.
    tokio::time::advance(10 * SEC).await;
    assert_eq!(served_by(&m.complete(ChatRequest::user("hi")).await.unwrap()), "sim/a");
    assert_eq!(a.calls(), 2);
}

fn tpm(n: u64) -> TargetLimits {
    TargetLimits { tpm: Some(n), ..TargetLimits::default() }
}

#[tokio::test(start_paused = true)]
async fn a_failed_call_gives_its_token_estimate_back() {
    // Each request reserves ~602 tokens: two do not fit in 1000 at once.
    let a = SimModel::replying("a", "ok").script([Behavior::Fail(server_error())]);
    let m = FallbackManager::builder()
        .breaker(None)
        .target(limited("a", tpm(1000)).with_max_retries(0), shared(&a))
        .build()
        .unwrap();
    let request = || with_max_tokens(ChatRequest::user("hello"), 600);
    assert!(m.complete(request()).await.is_err());
    m.complete(request()).await.expect("the failed call holds no tokens");
    assert_eq!(a.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_before_its_usage_gives_its_token_estimate_back() {
    let a = SimModel::replying("a", "one two three four").chunk_delay(100 * MS);
    let m = FallbackManager::builder().target(limited("a", tpm(1000)), shared(&a)).build().unwrap();
    let request = || with_max_tokens(ChatRequest::user("hello"), 600);
    let mut left = m.stream(request()).await.unwrap();
    left.next().await.unwrap().unwrap();
    drop(left);
    let mut whole = m.stream(request()).await.expect("the dropped stream holds no tokens");
    while whole.next().await.is_some() {}
    assert_eq!(a.calls(), 2);
}

/// A model whose answers report no usage.
struct NoUsage(SimModel);

#[switchyard::async_trait]
impl ChatModel for NoUsage {
    async fn complete(&self, request: ChatRequest) -> Result<switchyard::ChatResponse, Error> {
        let mut answer = self.0.complete(request).await?;
        answer.usage = Default::default();
        Ok(answer)
    }
}

#[tokio::test(start_paused = true)]
async fn an_answer_without_usage_keeps_its_token_estimate() {
    let m = FallbackManager::builder()
        .target(limited("a", tpm(1000)), std::sync::Arc::new(NoUsage(SimModel::replying("a", "ok"))))
        .build()
        .unwrap();
    let request = || with_max_tokens(ChatRequest::user("hello"), 600);
    m.complete(request()).await.unwrap();
    let refused = m.complete(request()).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::RateLimited, "it used tokens, how many is unknown: {refused}");
}
