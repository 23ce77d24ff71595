//! Cancellation: the caller dropping the future ends the call at once; it counts as cancelled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{SEC, server_error, shared};
use switchyard::{Backoff, ChatModel, ChatRequest, FallbackManager, ModelFallback};
use switchyard_sim::{Behavior, SimModel};

#[tokio::test(start_paused = true)]
async fn cancelling_during_a_backoff_wait_ends_the_call_and_counts_as_cancelled() {
    let a = SimModel::failing("a", server_error());
    let b = SimModel::new("b");
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "a").with_max_retries(3), shared(&a))
        .target(ModelFallback::new("sim", "b"), shared(&b))
        .backoff(Backoff::Constant { delay: SEC * 10 })
        .build()
        .unwrap();
    let call = m.complete(ChatRequest::user("hi"));
    // The first attempt fails at once; the engine then waits 10 s. Give up after 1 s.
    let start = tokio::time::Instant::now();
    assert!(tokio::time::timeout(SEC, call).await.is_err());
    assert_eq!(start.elapsed(), SEC);
    // Nothing more is called, even after the wait would have ended.
    tokio::time::sleep(SEC * 60).await;
    assert_eq!((a.calls(), b.calls()), (1, 0));
    let s = m.stats();
    assert_eq!((s.total, s.cancelled, s.failed, s.success, s.in_flight), (1, 1, 0, 0, 0));
    assert_eq!(s.targets["sim/a"].attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn cancelling_during_a_call_counts_the_call_as_cancelled() {
    let a = SimModel::new("a").then_default(Behavior::Hang);
    let m = FallbackManager::builder().target(ModelFallback::new("sim", "a"), shared(&a)).build().unwrap();
    let task = tokio::spawn({
        let m = m.clone();
        async move { m.complete(ChatRequest::user("hi")).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let s = m.stats();
    assert_eq!((s.total, s.cancelled, s.failed), (1, 1, 0));
    let t = &s.targets["sim/a"];
    assert_eq!((t.attempts, t.cancelled, t.failure_count()), (1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_stream_before_its_first_chunk_counts_as_cancelled() {
    let a = SimModel::new("a").first_chunk_delay(SEC * 100);
    let b = SimModel::new("b");
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "a"), shared(&a))
        .target(ModelFallback::new("sim", "b"), shared(&b))
        .build()
        .unwrap();
    assert!(tokio::time::timeout(SEC, m.stream(ChatRequest::user("hi"))).await.is_err());
    assert_eq!(b.calls(), 0);
    let s = m.stats();
    assert_eq!((s.total, s.cancelled, s.failed), (1, 1, 0));
}
