//! A silent target is not retried (issue 11): a first-chunk or total timeout falls back at once, unless the
//! route asks for `retry_timeouts`; connect timeouts and broken connections are still retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SEC, shared};
use switchyard::{Backoff, ChatModel, ChatRequest, Error, FallbackManager, ModelFallback, TimeoutPhase};
use switchyard_sim::{Behavior, SimModel};
use tokio::time::Instant;

fn manager(primary: &SimModel, fallback: &SimModel, retry_timeouts: bool) -> FallbackManager {
    FallbackManager::builder()
        .target(
            ModelFallback::new("sim", "primary").with_max_retries(2).with_first_chunk_timeout(SEC * 2),
            shared(primary),
        )
        .target(ModelFallback::new("sim", "fallback"), shared(fallback))
        .backoff(Backoff::Immediate)
        .retry_timeouts(retry_timeouts)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_hanging_primary_is_called_once_before_the_fallback() {
    for streaming in [false, true] {
        let primary = SimModel::new("primary").then_default(Behavior::Hang);
        let fallback = SimModel::replying("fallback", "from the fallback");
        let m = manager(&primary, &fallback, false);
        let start = Instant::now();
        let served_by = if streaming {
            m.stream(ChatRequest::user("hi")).await.unwrap().served_by
        } else {
            m.complete(ChatRequest::user("hi")).await.unwrap().served_by
        };
        assert_eq!(served_by.as_deref(), Some("sim/fallback"));
        assert_eq!((primary.calls(), fallback.calls()), (1, 1), "streaming: {streaming}");
        assert_eq!(start.elapsed(), SEC * 2, "one first-chunk timeout, then the fallback");
    }
}

#[tokio::test(start_paused = true)]
async fn with_retry_timeouts_the_hanging_primary_is_called_three_times() {
    for streaming in [false, true] {
        let primary = SimModel::new("primary").then_default(Behavior::Hang);
        let fallback = SimModel::replying("fallback", "from the fallback");
        let m = manager(&primary, &fallback, true);
        let start = Instant::now();
        if streaming {
            m.stream(ChatRequest::user("hi")).await.unwrap();
        } else {
            m.complete(ChatRequest::user("hi")).await.unwrap();
        }
        assert_eq!((primary.calls(), fallback.calls()), (3, 1), "streaming: {streaming}");
        assert_eq!(start.elapsed(), SEC * 6);
    }
}

#[tokio::test(start_paused = true)]
async fn a_total_timeout_reported_by_the_provider_falls_back_too_but_connect_timeouts_and_resets_retry() {
    let total = Error::Timeout { phase: TimeoutPhase::Total, after: SEC * 30 };
    let connect = Error::Timeout { phase: TimeoutPhase::Connect, after: SEC * 5 };
    let reset = Error::Connection { message: "connection reset by peer".into() };
    for (error, calls) in [(total, 1), (connect, 3), (reset, 3)] {
        let primary = SimModel::failing("primary", error.clone());
        let fallback = SimModel::replying("fallback", "from the fallback");
        let m = manager(&primary, &fallback, false);
        m.complete(ChatRequest::user("hi")).await.unwrap();
        assert_eq!(primary.calls(), calls, "{error}");
    }
}
