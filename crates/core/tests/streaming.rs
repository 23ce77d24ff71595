//! The streaming rule: failures before the first content chunk are retried or fall back invisibly;
//! after it, a failure ends the stream with one typed error, never a clean end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{SEC, server_error, shared};
use futures::StreamExt;
use switchyard::{
    ChatChunk, ChatModel, ChatRequest, ChatStream, Error, ErrorKind, FallbackManager, ModelFallback,
    validate::ExceptionMarker,
};
use switchyard_sim::{Behavior, SimModel};

fn manager(
    primary: &SimModel,
    secondary: &SimModel,
    configure: impl Fn(ModelFallback) -> ModelFallback,
) -> FallbackManager {
    FallbackManager::builder()
        .target(configure(ModelFallback::new("sim", "primary")), shared(primary))
        .target(ModelFallback::new("sim", "secondary"), shared(secondary))
        .build()
        .unwrap()
}

async fn drain(mut stream: ChatStream) -> (String, Option<Error>, bool) {
    let mut text = String::new();
    let mut error = None;
    let mut finished = false;
    while let Some(item) = stream.next().await {
        assert!(error.is_none(), "an item came after the error");
        match item {
            Ok(ChatChunk::Text { text: t }) => text.push_str(&t),
            Ok(ChatChunk::Finish { .. }) => finished = true,
            Ok(_) => {}
            Err(e) => error = Some(e),
        }
    }
    (text, error, finished)
}

async fn replaced_invisibly(primary: SimModel, configure: impl Fn(ModelFallback) -> ModelFallback, kind: ErrorKind) {
    let secondary = SimModel::replying("secondary", "all good here");
    let m = manager(&primary, &secondary, configure);
    let stream = m.stream(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(stream.served_by.as_deref(), Some("sim/secondary"));
    assert_eq!(stream.attempts[0].error_kind(), Some(kind), "{:?}", stream.attempts);
    let (text, error, finished) = drain(stream).await;
    assert_eq!(text, "all good here");
    assert!(error.is_none() && finished);
    assert_eq!(primary.calls(), 1);
    let s = m.stats();
    assert_eq!((s.total, s.success, s.failed, s.fallbacks), (1, 1, 0, 1));
}

#[tokio::test]
async fn an_error_opening_the_stream_falls_back() {
    replaced_invisibly(SimModel::failing("p", server_error()), |t| t, ErrorKind::Server).await;
}

#[tokio::test]
async fn an_error_inside_the_stream_before_content_falls_back() {
    let primary = SimModel::new("p").then_default(Behavior::FailInStream(server_error()));
    replaced_invisibly(primary, |t| t, ErrorKind::Server).await;
}

#[tokio::test(start_paused = true)]
async fn a_first_chunk_timeout_falls_back() {
    let primary = SimModel::new("p").first_chunk_delay(SEC * 30);
    replaced_invisibly(primary, |t| t.with_first_chunk_timeout(SEC * 2), ErrorKind::Timeout).await;
}

#[tokio::test]
async fn a_stream_that_ends_without_content_falls_back() {
    let primary = SimModel::new("p").then_default(Behavior::EndWithoutFinish { chunks: 0 });
    replaced_invisibly(primary, |t| t, ErrorKind::InvalidResponse).await;
}

#[tokio::test]
async fn a_validator_rejection_of_the_first_text_falls_back() {
    let primary = SimModel::replying("p", "Exception: connection reset");
    let secondary = SimModel::replying("secondary", "fine");
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "primary"), shared(&primary))
        .target(ModelFallback::new("sim", "secondary"), shared(&secondary))
        .validator(Arc::new(ExceptionMarker))
        .build()
        .unwrap();
    let (text, error, _) = drain(m.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert_eq!((text.as_str(), error), ("fine", None));
}

#[tokio::test]
async fn a_failure_before_content_is_retried_on_the_same_target() {
    let primary = SimModel::new("p")
        .script([Behavior::FailInStream(server_error())])
        .then_default(Behavior::Reply("second attempt".into()));
    let secondary = SimModel::new("secondary");
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "primary").with_max_retries(1), shared(&primary))
        .target(ModelFallback::new("sim", "secondary"), shared(&secondary))
        .backoff(switchyard::Backoff::Immediate)
        .build()
        .unwrap();
    let (text, error, _) = drain(m.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert_eq!((text.as_str(), error), ("second attempt", None));
    assert_eq!((primary.calls(), secondary.calls()), (2, 0));
}

#[tokio::test]
async fn a_break_after_the_first_chunk_ends_with_a_typed_error() {
    let primary = SimModel::new("p").then_default(Behavior::BreakAfter { chunks: 2, error: server_error() });
    let secondary = SimModel::new("secondary");
    let m = manager(&primary, &secondary, |t| t);
    let stream = m.stream(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(stream.served_by.as_deref(), Some("sim/primary"));
    let (text, error, finished) = drain(stream).await;
    assert!(!text.is_empty());
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::Server));
    assert!(!finished);
    assert_eq!(secondary.calls(), 0);
    let s = m.stats();
    assert_eq!((s.total, s.success, s.failed), (1, 0, 1));
    assert_eq!(s.targets["sim/primary"].stream_failures, 1);
}

#[tokio::test]
async fn a_stream_cut_off_after_commit_ends_with_invalid_response() {
    let primary = SimModel::new("p").then_default(Behavior::EndWithoutFinish { chunks: 3 });
    let m = manager(&primary, &SimModel::new("secondary"), |t| t);
    let (text, error, finished) = drain(m.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert!(!text.is_empty() && !finished);
    let error = error.expect("a cut-off stream must end with an error");
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    assert!(error.to_string().contains("without a finish"), "{error}");
    assert_eq!(m.stats().failed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_stall_after_commit_is_cut_by_the_total_timeout() {
    let primary = SimModel::new("p").then_default(Behavior::Stall { chunks: 1 });
    let m = manager(&primary, &SimModel::new("secondary"), |t| t.with_total_timeout(SEC * 5));
    let (_, error, _) = drain(m.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::Timeout));
}

/// The total limit is one point in time: chunks that keep coming do not move it, and the cut comes at it.
#[tokio::test(start_paused = true)]
async fn steady_chunks_after_commit_are_cut_at_the_total_timeout() {
    let words = vec!["w"; 20].join(" ");
    let primary = SimModel::new("p").chunk_delay(SEC).then_default(Behavior::Reply(words));
    let m = manager(&primary, &SimModel::new("secondary"), |t| t.with_total_timeout(SEC * 5 + SEC / 2));
    let start = tokio::time::Instant::now();
    let (text, error, finished) = drain(m.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::Timeout));
    assert_eq!((text.split_whitespace().count(), finished), (6, false), "the first chunk at once, then one a second");
    assert_eq!(start.elapsed(), SEC * 5 + SEC / 2);
}

#[tokio::test]
async fn stream_stats_settle_when_the_stream_ends_or_is_dropped() {
    let primary = SimModel::new("p");
    let m = manager(&primary, &SimModel::new("secondary"), |t| t);
    let stream = m.stream(ChatRequest::user("hi")).await.unwrap();
    let s = m.stats();
    assert_eq!((s.total, s.in_flight, s.targets["sim/primary"].successes), (0, 1, 1));
    drain(stream).await;
    let s = m.stats();
    assert_eq!((s.total, s.success, s.in_flight), (1, 1, 0));

    let mut stream = m.stream(ChatRequest::user("hi")).await.unwrap();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let s = m.stats();
    assert_eq!((s.total, s.success, s.cancelled, s.in_flight), (2, 1, 1, 0));
}

#[tokio::test]
async fn tool_call_streams_commit_and_collect() {
    let call = switchyard::ToolCall { id: "c1".into(), name: "clock".into(), arguments: "{\"tz\":\"UTC\"}".into() };
    let primary = SimModel::new("p").then_default(Behavior::ToolCalls(vec![call.clone()]));
    let m = manager(&primary, &SimModel::new("secondary"), |t| t);
    let response = m.stream(ChatRequest::user("time?")).await.unwrap().collect_response().await.unwrap();
    assert_eq!(response.message.tool_calls().cloned().collect::<Vec<_>>(), [call]);
    assert_eq!(response.served_by.as_deref(), Some("sim/primary"));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_also_bounds_a_committed_stream() {
    let primary = SimModel::new("p").then_default(Behavior::Stall { chunks: 2 });
    let m = manager(&primary, &SimModel::new("secondary"), |t| t);
    let mut request = ChatRequest::user("hi");
    request.deadline = Some(tokio::time::Instant::now() + SEC * 3);
    let start = tokio::time::Instant::now();
    let (text, error, _) = drain(m.stream(request).await.unwrap()).await;
    assert!(!text.is_empty());
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::Deadline));
    assert_eq!(start.elapsed(), SEC * 3);
}

/// Streams one tool-call fragment, then stays silent.
struct ToolCallThenSilence;

#[async_trait::async_trait]
impl ChatModel for ToolCallThenSilence {
    async fn complete(&self, _request: ChatRequest) -> Result<switchyard::ChatResponse, Error> {
        Err(server_error())
    }

    async fn stream(&self, _request: ChatRequest) -> Result<ChatStream, Error> {
        let delta = switchyard::types::ToolCallDelta {
            index: 0,
            id: Some("c1".into()),
            name: Some("clock".into()),
            arguments: "{".into(),
        };
        let first = futures::stream::iter([Ok(ChatChunk::ToolCall(delta))]);
        Ok(ChatStream::new(first.chain(futures::stream::pending())))
    }
}

#[tokio::test(start_paused = true)]
async fn a_tool_call_commits_even_when_the_validator_waits_for_text() {
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "primary").with_first_chunk_timeout(SEC * 5), Arc::new(ToolCallThenSilence))
        .target(ModelFallback::new("sim", "secondary"), shared(&secondary))
        .validator(Arc::new(ExceptionMarker))
        .build()
        .unwrap();
    let mut stream = m.stream(ChatRequest::user("time?")).await.unwrap();
    assert_eq!(stream.served_by.as_deref(), Some("sim/primary"));
    assert!(matches!(stream.next().await, Some(Ok(ChatChunk::ToolCall(_)))));
    assert_eq!(secondary.calls(), 0);
}
