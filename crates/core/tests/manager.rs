//! FallbackManager: order, retries, error kinds, Retry-After, the all-failed error, runtime control.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{MS, SEC, Timed, auth_error, server_error, shared};
use switchyard::{
    Backoff, ChatModel, ChatRequest, ConfigError, Error, ErrorKind, FallbackManager, ModelFallback, TargetError,
    attempt::{AttemptOutcome, SkipReason},
    manager::OnContentFilter,
    validate::ExceptionMarker,
};
use switchyard_sim::{Behavior, SimModel};

fn target(name: &str) -> ModelFallback {
    ModelFallback::new("sim", name)
}

#[tokio::test]
async fn ties_keep_their_order_and_lower_priority_goes_first() {
    let a = SimModel::replying("a", "from a");
    let b = SimModel::replying("b", "from b");
    let c = SimModel::replying("c", "from c");
    let m = FallbackManager::builder()
        .target(target("a").with_priority(3), shared(&a))
        .target(target("b").with_priority(1), shared(&b))
        .target(target("c").with_priority(1), shared(&c))
        .build()
        .unwrap();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "from b");
    assert_eq!(r.served_by.as_deref(), Some("sim/b"));
    let order: Vec<_> = m.list_models().into_iter().map(|t| t.id).collect();
    assert_eq!(order, ["sim/b", "sim/c", "sim/a"]);

    // b fails: c (the tie inserted later) answers before a.
    b.set_default(Behavior::Fail(server_error()));
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "from c");
    assert_eq!(a.calls(), 0);

    // Priorities change at run time: the next request uses the new order.
    m.set_priority("sim/a", 0).unwrap();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "from a");
}

#[tokio::test]
async fn a_disabled_target_is_never_called() {
    let a = SimModel::replying("a", "from a");
    let b = SimModel::replying("b", "from b");
    let m = FallbackManager::builder()
        .target(target("a").with_enabled(false), shared(&a))
        .target(target("b"), shared(&b))
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = m.complete(ChatRequest::user("hi")).await.unwrap();
        assert_eq!(r.message.text(), "from b");
        assert!(matches!(r.attempts[0].outcome, AttemptOutcome::Skipped { .. }), "{:?}", r.attempts);
    }
    let mut s = m.stream(ChatRequest::user("hi")).await.unwrap();
    while futures::StreamExt::next(&mut s).await.is_some() {}
    assert_eq!(a.calls(), 0);
    // Skipping a disabled target is not a fallback.
    assert_eq!(m.stats().fallbacks, 0);
}

#[tokio::test(start_paused = true)]
async fn max_retries_two_gives_three_attempts_with_the_linear_delays_then_the_next_target() {
    let a = SimModel::failing("a", server_error());
    let timed = Timed::new(&a);
    let b = SimModel::replying("b", "from b");
    let m = FallbackManager::builder()
        .target(target("a").with_max_retries(2), timed.clone())
        .target(target("b"), shared(&b))
        .backoff(Backoff::linear())
        .build()
        .unwrap();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "from b");
    assert_eq!(a.calls(), 3);
    // retry × 500 ms: waits of 500 ms then 1 s.
    assert_eq!(timed.offsets(), [Duration::ZERO, MS * 500, MS * 1500]);
    let retries: Vec<_> = r.attempts.iter().map(|a| (a.target.as_str(), a.retry)).collect();
    assert_eq!(retries, [("sim/a", 0), ("sim/a", 1), ("sim/a", 2), ("sim/b", 0)]);
    let s = m.stats();
    assert_eq!((s.total, s.success, s.fallbacks), (1, 1, 1));
    assert_eq!(s.targets["sim/a"].attempts, 3);
    assert_eq!(s.targets["sim/a"].failures[&ErrorKind::Server], 3);
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_stays_under_its_doubling_cap() {
    let a = SimModel::failing("a", server_error());
    let timed = Timed::new(&a);
    let m = FallbackManager::builder()
        .target(target("a").with_max_retries(3), timed.clone())
        .backoff(Backoff::Exponential { base: SEC, max: SEC * 3 })
        .build()
        .unwrap();
    let err = m.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.attempts().len(), 4);
    let t = timed.offsets();
    let gaps: Vec<_> = t.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, cap) in gaps.iter().zip([SEC, SEC * 2, SEC * 3]) {
        assert!(*gap <= cap, "{gaps:?}");
    }
}

#[tokio::test]
async fn invalid_request_is_answered_at_once_without_retry_or_fallback() {
    let a = SimModel::failing("a", Error::invalid_request("temperature must be at most 2", Some("temperature")));
    let b = SimModel::replying("b", "from b");
    let m = FallbackManager::builder()
        .target(target("a").with_max_retries(3), shared(&a))
        .target(target("b"), shared(&b))
        .build()
        .unwrap();
    let err = m.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.to_string().contains("temperature"), "{err}");
    assert_eq!((a.calls(), b.calls()), (1, 0));
    let s = m.stats();
    assert_eq!((s.failed, s.fallbacks), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn auth_falls_back_without_retry() {
    let a = SimModel::failing("a", auth_error());
    let b = SimModel::replying("b", "from b");
    let m = FallbackManager::builder()
        .target(target("a").with_max_retries(3), shared(&a))
        .target(target("b"), shared(&b))
        .build()
        .unwrap();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "from b");
    assert_eq!(a.calls(), 1);
    assert_eq!(m.stats().fallbacks, 1);
}

fn rate_limited(after: Duration) -> Error {
    Error::RateLimited { message: "slow down".into(), retry_after: Some(after) }
}

#[tokio::test(start_paused = true)]
async fn rate_limited_waits_at_least_retry_after() {
    let a =
        SimModel::new("a").script([Behavior::Fail(rate_limited(SEC * 3))]).then_default(Behavior::Reply("ok".into()));
    let timed = Timed::new(&a);
    let m = FallbackManager::builder()
        .target(target("a").with_max_retries(1), timed.clone())
        .target(target("b"), shared(&SimModel::replying("b", "from b")))
        .backoff(Backoff::linear())
        .build()
        .unwrap();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "ok");
    // The backoff alone would wait 500 ms; Retry-After is the floor.
    assert_eq!(timed.offsets(), [Duration::ZERO, SEC * 3]);
}

#[tokio::test(start_paused = true)]
async fn rate_limited_falls_back_when_retry_after_is_longer_than_allowed() {
    let a = SimModel::failing("a", rate_limited(SEC * 120));
    let b = SimModel::replying("b", "from b");
    let m = FallbackManager::builder()
        .target(target("a").with_max_retries(3), shared(&a))
        .target(target("b"), shared(&b))
        .max_retry_wait(SEC * 10)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "from b");
    assert_eq!(a.calls(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn the_all_failed_error_names_every_attempt() {
    let a = SimModel::failing("a", server_error());
    let b = SimModel::failing("b", auth_error());
    let c = SimModel::failing("c", Error::Timeout { phase: switchyard::TimeoutPhase::Total, after: SEC });
    let m = FallbackManager::builder()
        .target(target("a").with_max_retries(1), shared(&a))
        .target(target("off").with_enabled(false), shared(&SimModel::new("off")))
        .target(target("b"), shared(&b))
        .target(target("c"), shared(&c))
        .build()
        .unwrap();
    let err = m.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exhausted);
    let list: Vec<_> = err.attempts().iter().map(|a| (a.target.as_str(), a.retry, a.error_kind())).collect();
    assert_eq!(
        list,
        [
            ("sim/a", 0, Some(ErrorKind::Server)),
            ("sim/a", 1, Some(ErrorKind::Server)),
            ("sim/off", 0, None),
            ("sim/b", 0, Some(ErrorKind::Auth)),
            ("sim/c", 0, Some(ErrorKind::Timeout)),
        ]
    );
    let text = err.to_string();
    for needle in ["sim/a (retry 0)", "sim/a (retry 1)", "sim/off: skipped", "sim/b (retry 0): auth", "sim/c"] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
    let s = m.stats();
    assert_eq!((s.total, s.failed, s.fallbacks), (1, 1, 1));
}

#[tokio::test]
async fn with_nothing_enabled_the_error_gives_each_reason() {
    let m = FallbackManager::builder()
        .target(target("a").with_enabled(false), shared(&SimModel::new("a")))
        .unavailable_target(ModelFallback::new("openai", "gpt-4o"), "OPENAI_API_KEY is not set")
        .build()
        .unwrap();
    let err = m.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let text = err.to_string();
    assert!(text.contains("sim/a: skipped: disabled"), "{text}");
    assert!(text.contains("openai/gpt-4o: skipped: could not be built: OPENAI_API_KEY is not set"), "{text}");
    assert!(!text.contains("nil"), "{text}");
}

#[tokio::test]
async fn a_target_that_could_not_be_built_is_disabled_and_the_rest_serve() {
    let b = SimModel::replying("b", "from b");
    let m = FallbackManager::builder()
        .unavailable_target(ModelFallback::new("openai", "gpt-4o"), "OPENAI_API_KEY is not set")
        .target(target("b"), shared(&b))
        .build()
        .unwrap();
    assert_eq!(m.complete(ChatRequest::user("hi")).await.unwrap().message.text(), "from b");
    let models = m.list_models();
    assert!(!models[0].enabled);
    assert_eq!(models[0].disabled_reason, Some(SkipReason::NotBuilt { reason: "OPENAI_API_KEY is not set".into() }));
    let err = m.enable_model("openai/gpt-4o").unwrap_err();
    assert!(matches!(err, TargetError::Unavailable { .. }));
    assert!(err.to_string().contains("OPENAI_API_KEY"), "{err}");
}

#[test]
fn configuration_errors_are_clear() {
    let err = FallbackManager::builder().build().unwrap_err();
    assert_eq!(err, ConfigError::NoTargets);
    assert_eq!(err.to_string(), "at least one model fallback is required");
    let m = SimModel::new("a");
    let err = FallbackManager::builder().target(target("a"), shared(&m)).target(target("a"), shared(&m)).build();
    assert!(err.unwrap_err().to_string().contains("duplicate target id `sim/a`"));
    // An explicit id resolves the clash (e.g. the same model behind two base URLs).
    FallbackManager::builder()
        .target(target("a"), shared(&m))
        .target(target("a").with_id("a-east"), shared(&m))
        .build()
        .unwrap();
}

#[tokio::test]
async fn runtime_control_by_id() {
    let a = SimModel::replying("a", "from a");
    let b = SimModel::replying("b", "from b");
    let m = FallbackManager::builder().target(target("a"), shared(&a)).target(target("b"), shared(&b)).build().unwrap();
    assert!(m.list_models().iter().all(|t| !t.is_current));
    assert_eq!(m.current_target(), None);
    assert_eq!(m.complete(ChatRequest::user("1")).await.unwrap().message.text(), "from a");
    assert_eq!(m.current_target(), Some("sim/a"));
    m.disable_model("sim/a").unwrap();
    assert_eq!(m.complete(ChatRequest::user("2")).await.unwrap().message.text(), "from b");
    let models = m.list_models();
    assert_eq!((models[0].enabled, models[0].is_current, models[0].usage_count), (false, false, 1));
    assert_eq!((models[1].is_current, models[1].usage_count), (true, 1));
    assert_eq!(m.current_target(), Some("sim/b"));
    assert_eq!(models[0].disabled_reason, Some(SkipReason::Disabled));
    m.enable_model("sim/a").unwrap();
    assert_eq!(m.complete(ChatRequest::user("3")).await.unwrap().message.text(), "from a");
    assert!(m.list_models()[0].is_current);

    let err = m.disable_model("sim/nope").unwrap_err();
    assert!(err.to_string().contains("model not found: sim/nope"), "{err}");
    assert!(err.to_string().contains("sim/a, sim/b"), "{err}");
    assert!(m.enable_model("nope").is_err());
    assert!(m.set_priority("nope", 1).is_err());
    assert!(m.set_max_retries("nope", 1).is_err());

    m.set_max_retries("sim/a", 4).unwrap();
    assert_eq!(m.list_models()[0].max_retries, 4);
}

#[tokio::test]
async fn stats_are_copies_and_reset_clears_them() {
    let a = SimModel::new("a").script([Behavior::Fail(server_error())]);
    let b = SimModel::new("b");
    let m = FallbackManager::builder().target(target("a"), shared(&a)).target(target("b"), shared(&b)).build().unwrap();
    m.complete(ChatRequest::user("1")).await.unwrap();
    let before = m.stats();
    m.complete(ChatRequest::user("2")).await.unwrap();
    assert_eq!((before.total, before.success, before.fallbacks), (1, 1, 1));
    assert!(before.last_fallback.is_some());
    assert_eq!(m.stats().total, 2);
    m.reset_stats();
    let s = m.stats();
    assert_eq!((s.total, s.success, s.fallbacks, s.last_fallback), (0, 0, 0, None));
    assert_eq!(s.targets["sim/a"].attempts, 0);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_honoured_while_waiting_and_between_targets() {
    let a = SimModel::failing("a", server_error()).latency(SEC);
    let b = SimModel::replying("b", "from b");
    let m = FallbackManager::builder()
        .target(target("a").with_max_retries(5), shared(&a))
        .target(target("b"), shared(&b))
        .backoff(Backoff::Constant { delay: SEC * 2 })
        .build()
        .unwrap();
    // 1 s call, 2 s wait, 1 s call: a third call would start at 6 s, past the 5 s deadline, so
    // the engine does not wait but moves to b at once.
    let mut request = ChatRequest::user("hi");
    request.deadline = Some(tokio::time::Instant::now() + SEC * 5);
    let start = tokio::time::Instant::now();
    let r = m.complete(request).await.unwrap();
    assert_eq!(r.message.text(), "from b");
    assert_eq!(a.calls(), 2);
    assert_eq!(start.elapsed(), SEC * 4);

    // A call that runs past the deadline is cut off, and no further target is called.
    let slow = SimModel::new("slow").then_default(Behavior::Hang);
    let after = SimModel::replying("after", "late");
    let m = FallbackManager::builder()
        .target(target("slow"), shared(&slow))
        .target(target("after"), shared(&after))
        .build()
        .unwrap();
    let mut request = ChatRequest::user("hi");
    request.deadline = Some(tokio::time::Instant::now() + MS * 100);
    let err = m.complete(request).await.unwrap_err();
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err}");
    assert_eq!(err.attempts().len(), 1);
    assert_eq!(after.calls(), 0);
    assert_eq!(m.stats().failed, 1);
}

#[tokio::test(start_paused = true)]
async fn with_retry_timeouts_per_attempt_timeouts_are_retried() {
    let a = SimModel::new("a").script([Behavior::Hang]).then_default(Behavior::Reply("second try".into()));
    let m = FallbackManager::builder()
        .target(target("a").with_max_retries(1).with_total_timeout(SEC * 2), shared(&a))
        .backoff(Backoff::Immediate)
        .retry_timeouts(true)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "second try");
    assert_eq!(start.elapsed(), SEC * 2);
    assert_eq!(r.attempts[0].error_kind(), Some(ErrorKind::Timeout));
}

#[tokio::test]
async fn a_validator_turns_an_error_report_into_a_fallback() {
    let a = SimModel::replying("a", "Exception: I/O error while reading");
    let b = SimModel::replying("b", "An Exception: is a Java thing");
    let m = FallbackManager::builder()
        .target(target("a"), shared(&a))
        .target(target("b"), shared(&b))
        .validator(Arc::new(ExceptionMarker))
        .build()
        .unwrap();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("sim/b"));
    assert_eq!(r.attempts[0].error_kind(), Some(ErrorKind::InvalidResponse));
}

#[tokio::test]
async fn context_length_falls_back_only_to_a_larger_window() {
    let too_long = Error::ContextLength { message: "prompt is 9000 tokens".into() };
    let small = SimModel::failing("small", too_long);
    let same = SimModel::replying("same", "same");
    let large = SimModel::replying("large", "large");
    let m = FallbackManager::builder()
        .target(target("small").with_context_window(8_000), shared(&small))
        .target(target("same").with_context_window(8_000), shared(&same))
        .target(target("large").with_context_window(128_000), shared(&large))
        .build()
        .unwrap();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "large");
    assert_eq!(same.calls(), 0);
    assert!(
        matches!(&r.attempts[1].outcome, AttemptOutcome::Skipped { reason: SkipReason::WindowNotLarger { than, .. } } if than == "sim/small")
    );
}

#[tokio::test]
async fn a_content_filter_refusal_is_answered_at_once_unless_the_route_falls_back() {
    let filtered = Error::content_filtered("policy");
    let a = SimModel::failing("a", filtered);
    let b = SimModel::replying("b", "from b");
    let m = FallbackManager::builder()
        .target(target("a").with_max_retries(2), shared(&a))
        .target(target("b"), shared(&b))
        .build()
        .unwrap();
    let err = m.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert!(
        matches!(&err, Error::ContentFiltered { message, .. } if message == "policy"),
        "the refusal itself: {err:?}"
    );
    assert_eq!(err.attempts().len(), 1, "it carries the attempt it ended: {err:?}");
    assert_eq!((a.calls(), b.calls()), (1, 0));
    let m = FallbackManager::builder()
        .target(target("a"), shared(&a))
        .target(target("b"), shared(&b))
        .on_content_filter(OnContentFilter::Fallback)
        .build()
        .unwrap();
    assert_eq!(m.complete(ChatRequest::user("hi")).await.unwrap().message.text(), "from b");
}

#[tokio::test]
async fn a_rate_limited_attempt_records_the_providers_retry_after() {
    let limited = Error::RateLimited { message: "slow down".into(), retry_after: Some(Duration::from_millis(2500)) };
    let a = SimModel::failing("a", limited);
    let b = SimModel::replying("b", "from b");
    let m = FallbackManager::builder().target(target("a"), shared(&a)).target(target("b"), shared(&b)).build().unwrap();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "from b");
    assert_eq!(r.attempts[0].error_kind(), Some(ErrorKind::RateLimited));
    assert_eq!(r.attempts[0].retry_after_ms, Some(2500));
    assert_eq!(r.attempts[1].retry_after_ms, None);
}
