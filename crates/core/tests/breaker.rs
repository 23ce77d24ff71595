//! Circuit breakers: every transition on paused time, the single half-open probe under concurrency,
//! failback to the primary, and what `list_models` shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MS, SEC, auth_error, server_error, shared};
use futures::StreamExt;
use switchyard::{
    ChatModel, ChatRequest, Error, ErrorKind, FallbackManager, ModelFallback,
    attempt::AttemptOutcome,
    breaker::{BreakerConfig, BreakerState},
};
use switchyard_sim::{Behavior, SimModel};

fn manager(primary: &SimModel, secondary: &SimModel) -> FallbackManager {
    FallbackManager::builder()
        .target(ModelFallback::new("sim", "primary"), shared(primary))
        .target(ModelFallback::new("sim", "secondary"), shared(secondary))
        .build()
        .unwrap()
}

fn state(m: &FallbackManager) -> BreakerState {
    m.list_models().into_iter().find(|t| t.id == "sim/primary").unwrap().breaker
}

async fn ask(m: &FallbackManager) -> switchyard::ChatResponse {
    m.complete(ChatRequest::user("hi")).await.unwrap()
}

/// Opens the primary's breaker with five consecutive 503s.
async fn open_it(m: &FallbackManager, primary: &SimModel) {
    for _ in 0..5 {
        ask(m).await;
    }
    assert_eq!(primary.calls(), 5);
    assert_eq!(state(m), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn five_consecutive_failures_open_it_and_open_targets_are_skipped_without_a_call() {
    let primary = SimModel::failing("primary", server_error());
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary);
    for _ in 0..4 {
        ask(&m).await;
    }
    assert_eq!(state(&m), BreakerState::Closed);
    ask(&m).await;
    assert_eq!(state(&m), BreakerState::Open);
    let info = &m.list_models()[0];
    assert!(info.last_failure.is_some() && info.last_recovery.is_none());
    assert_eq!(info.breaker_opened, 1);

    let r = ask(&m).await;
    assert_eq!(primary.calls(), 5, "an open target is not called");
    assert_eq!(r.served_by.as_deref(), Some("sim/secondary"));
    match &r.attempts[0].outcome {
        AttemptOutcome::Skipped { reason } => assert_eq!(reason.label(), "breaker_open", "{reason}"),
        other => panic!("expected a skip, got {other:?}"),
    }
    assert!(!r.attempts[0].was_called());
}

#[tokio::test(start_paused = true)]
async fn after_the_cooldown_the_next_request_probes_and_a_success_fails_back_to_the_primary() {
    let primary = SimModel::failing("primary", server_error());
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary);
    open_it(&m, &primary).await;

    // Not jittered: still open a moment before 30 s, half-open at 30 s.
    tokio::time::advance(SEC * 30 - MS).await;
    assert_eq!(state(&m), BreakerState::Open);
    ask(&m).await;
    assert_eq!(primary.calls(), 5);
    tokio::time::advance(MS).await;
    assert_eq!(state(&m), BreakerState::HalfOpen);

    primary.set_default(Behavior::Reply("primary is back".into()));
    let r = ask(&m).await;
    assert_eq!(r.served_by.as_deref(), Some("sim/primary"));
    assert_eq!(state(&m), BreakerState::Closed);
    let info = &m.list_models()[0];
    assert!(info.last_recovery.is_some());
    assert!(info.is_current);
    // Failback: traffic stays on the primary.
    for _ in 0..3 {
        assert_eq!(ask(&m).await.served_by.as_deref(), Some("sim/primary"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_it_for_another_full_cooldown() {
    let primary = SimModel::failing("primary", server_error());
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary);
    open_it(&m, &primary).await;
    tokio::time::advance(SEC * 30).await;
    let r = ask(&m).await;
    assert_eq!(primary.calls(), 6, "one probe");
    assert_eq!(r.served_by.as_deref(), Some("sim/secondary"));
    assert_eq!(state(&m), BreakerState::Open);
    tokio::time::advance(SEC * 30 - MS).await;
    assert_eq!(state(&m), BreakerState::Open);
    tokio::time::advance(MS).await;
    assert_eq!(state(&m), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_in_half_open_make_exactly_one_probe() {
    let secondary = SimModel::replying("secondary", "from secondary");
    let slow_primary = SimModel::replying("primary", "primary is back").latency(SEC);
    // The probe takes a second, so the other requests arrive while it runs.
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "primary"), shared(&slow_primary))
        .target(ModelFallback::new("sim", "secondary"), shared(&secondary))
        .build()
        .unwrap();
    for _ in 0..5 {
        slow_primary.push(Behavior::Fail(server_error()));
    }
    for _ in 0..5 {
        m.complete(ChatRequest::user("hi")).await.unwrap();
    }
    assert_eq!(state(&m), BreakerState::Open);
    tokio::time::advance(SEC * 30).await;
    let calls_before = slow_primary.calls();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.complete(ChatRequest::user("hi")).await.unwrap().served_by.unwrap() })
        })
        .collect();
    let mut served = Vec::new();
    for task in tasks {
        served.push(task.await.unwrap());
    }
    assert_eq!(slow_primary.calls() - calls_before, 1, "exactly one probe");
    assert_eq!(served.iter().filter(|s| *s == "sim/primary").count(), 1);
    assert_eq!(served.iter().filter(|s| *s == "sim/secondary").count(), 19);
    assert_eq!(state(&m), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_lets_the_next_request_probe() {
    let primary = SimModel::failing("primary", server_error());
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary);
    open_it(&m, &primary).await;
    tokio::time::advance(SEC * 30).await;
    primary.set_default(Behavior::Hang);
    let probe = tokio::time::timeout(SEC, m.complete(ChatRequest::user("hi"))).await;
    assert!(probe.is_err(), "the probe hangs and the caller gives up");
    assert_eq!(state(&m), BreakerState::HalfOpen);
    primary.set_default(Behavior::Reply("back".into()));
    assert_eq!(ask(&m).await.served_by.as_deref(), Some("sim/primary"));
    assert_eq!(state(&m), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failure_rate_over_the_window_opens_it_without_five_in_a_row() {
    let primary = SimModel::new("primary");
    for _ in 0..15 {
        primary.push(Behavior::Fail(server_error()));
        primary.push(Behavior::Reply("ok".into()));
    }
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary);
    // F S F S …: never two failures in a row. Attempt 21 is the 11th failure: 11/21 ≥ 50%.
    for i in 1..=20 {
        ask(&m).await;
        assert_eq!(state(&m), BreakerState::Closed, "after attempt {i}");
    }
    ask(&m).await;
    assert_eq!(state(&m), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn failures_older_than_the_window_do_not_count_towards_the_rate() {
    let primary = SimModel::new("primary");
    for _ in 0..15 {
        primary.push(Behavior::Fail(server_error()));
        primary.push(Behavior::Reply("ok".into()));
    }
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary);
    for _ in 0..20 {
        ask(&m).await;
    }
    tokio::time::advance(SEC * 61).await;
    ask(&m).await;
    assert_eq!(state(&m), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn retry_after_extends_the_open_period_and_never_shortens_it() {
    let primary = SimModel::failing("primary", server_error());
    for _ in 0..4 {
        primary.push(Behavior::Fail(server_error()));
    }
    primary.push(Behavior::Fail(Error::RateLimited { message: "slow down".into(), retry_after: Some(SEC * 120) }));
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary);
    open_it(&m, &primary).await;
    tokio::time::advance(SEC * 119).await;
    assert_eq!(state(&m), BreakerState::Open);
    tokio::time::advance(SEC).await;
    assert_eq!(state(&m), BreakerState::HalfOpen);

    // A short Retry-After on a failed probe does not shorten the 30 s cooldown.
    primary.push(Behavior::Fail(Error::RateLimited { message: "slow down".into(), retry_after: Some(SEC) }));
    ask(&m).await;
    tokio::time::advance(SEC * 29).await;
    assert_eq!(state(&m), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn an_auth_failure_opens_it_for_long() {
    let primary = SimModel::failing("primary", auth_error());
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary);
    ask(&m).await;
    assert_eq!(state(&m), BreakerState::Open);
    tokio::time::advance(SEC * 599).await;
    assert_eq!(state(&m), BreakerState::Open);
    tokio::time::advance(SEC).await;
    assert_eq!(state(&m), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn invalid_requests_never_count() {
    let primary = SimModel::failing("primary", Error::invalid_request("bad field", Some("temperature")));
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary);
    for _ in 0..30 {
        let err = m.complete(ChatRequest::user("hi")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    }
    assert_eq!(primary.calls(), 30);
    assert_eq!(state(&m), BreakerState::Closed);
    assert!(m.list_models()[0].last_failure.is_none());
}

#[tokio::test(start_paused = true)]
async fn with_every_breaker_open_the_request_still_makes_one_call() {
    let primary = SimModel::failing("primary", server_error());
    let m = FallbackManager::builder().target(ModelFallback::new("sim", "primary"), shared(&primary)).build().unwrap();
    for _ in 0..5 {
        m.complete(ChatRequest::user("hi")).await.unwrap_err();
    }
    assert_eq!(state(&m), BreakerState::Open);
    primary.set_default(Behavior::Reply("still here".into()));
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "still here");
    assert_eq!(primary.calls(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_committed_stream_that_breaks_counts_as_a_failure() {
    let primary = SimModel::new("primary")
        .then_default(Behavior::BreakAfter { chunks: 1, error: Error::Connection { message: "reset".into() } });
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary);
    for _ in 0..5 {
        let mut s = m.stream(ChatRequest::user("hi")).await.unwrap();
        while s.next().await.is_some() {}
    }
    assert_eq!(state(&m), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_can_be_tuned_or_turned_off() {
    let primary = SimModel::failing("primary", server_error());
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "primary"), shared(&primary))
        .target(ModelFallback::new("sim", "secondary"), shared(&secondary))
        .breaker(None)
        .build()
        .unwrap();
    for _ in 0..30 {
        ask(&m).await;
    }
    assert_eq!((primary.calls(), state(&m)), (30, BreakerState::Closed));

    let primary = SimModel::failing("primary", server_error());
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "primary"), shared(&primary))
        .target(ModelFallback::new("sim", "secondary"), shared(&secondary))
        .breaker(Some(BreakerConfig::new(2, SEC * 5)))
        .build()
        .unwrap();
    ask(&m).await;
    ask(&m).await;
    assert_eq!(state(&m), BreakerState::Open);
    tokio::time::advance(SEC * 5).await;
    assert_eq!(state(&m), BreakerState::HalfOpen);
}

/// The README's promise: the breaker cuts a request's own retries short, so `max_retries = 7` against an
/// upstream that always fails makes 5 calls with the default breaker, then the request moves on.
#[tokio::test(start_paused = true)]
async fn the_default_breaker_cuts_a_requests_own_retries_at_five_calls() {
    let primary = SimModel::failing("primary", server_error());
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "primary").with_max_retries(7), shared(&primary))
        .target(ModelFallback::new("sim", "secondary"), shared(&secondary))
        .build()
        .unwrap();
    let r = ask(&m).await;
    assert_eq!(primary.calls(), 5);
    assert_eq!(r.served_by.as_deref(), Some("sim/secondary"));
    assert_eq!(state(&m), BreakerState::Open);
}
