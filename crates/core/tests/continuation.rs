//! `after_commit = "continue"`: a text stream that breaks after commit is continued by the next target
//! from the partial answer, spliced into the same stream with usage merged; tool-call streams never are.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::shared;
use futures::StreamExt;
use switchyard::{
    ChatChunk, ChatModel, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, FallbackManager, FinishReason,
    ModelFallback, Role, Usage,
    manager::AfterCommit,
    types::{ContinuationMode, ContinuationStyle, ToolCallDelta},
};
use switchyard_sim::SimModel;

/// Streams these items, whatever the request.
struct Scripted(Vec<Result<ChatChunk, Error>>);

#[async_trait]
impl ChatModel for Scripted {
    async fn complete(&self, _request: ChatRequest) -> Result<ChatResponse, Error> {
        Err(Error::server(500, "stream only"))
    }

    async fn stream(&self, _request: ChatRequest) -> Result<ChatStream, Error> {
        Ok(ChatStream::from_items(self.0.clone()))
    }
}

fn reset() -> Error {
    Error::Connection { message: "connection reset".into() }
}

fn broken_text() -> Arc<Scripted> {
    Arc::new(Scripted(vec![
        Ok(ChatChunk::text("Once upon ")),
        Ok(ChatChunk::text("a time ")),
        Ok(ChatChunk::Usage(Usage { input_tokens: 10, output_tokens: 4 })),
        Err(reset()),
    ]))
}

fn manager(targets: Vec<(&str, Arc<dyn ChatModel>)>, after_commit: AfterCommit) -> FallbackManager {
    let mut b = FallbackManager::builder().after_commit(after_commit);
    for (name, model) in targets {
        b = b.target(ModelFallback::new("sim", name), model);
    }
    b.build().unwrap()
}

/// (text, usage, finished, error)
async fn drain(mut stream: ChatStream) -> (String, Option<Usage>, bool, Option<Error>) {
    let (mut text, mut usage, mut finished, mut error) = (String::new(), None, false, None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(ChatChunk::Text { text: t }) => text.push_str(&t),
            Ok(ChatChunk::Usage(u)) => usage = Some(u),
            Ok(ChatChunk::Finish { .. }) => finished = true,
            Ok(ChatChunk::ToolCall(_)) => {}
            Err(e) => error = Some(e),
        }
    }
    (text, usage, finished, error)
}

#[tokio::test]
async fn a_broken_text_stream_is_continued_by_the_next_target_in_the_same_stream() {
    let secondary = SimModel::replying("secondary", "there lived a fox.");
    let m = manager(vec![("primary", broken_text()), ("secondary", shared(&secondary))], AfterCommit::Continue);
    let stream = m.stream(ChatRequest::user("Tell me a story.")).await.unwrap();
    let targets = stream.targets_used();
    assert_eq!(stream.served_by.as_deref(), Some("sim/primary"));
    let (text, usage, finished, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert!(finished);
    assert_eq!(text, "Once upon a time there lived a fox.");
    assert_eq!(targets.get(), ["sim/primary", "sim/secondary"]);

    // The next target got the partial answer as the last, assistant, message, trimmed, and the marker.
    let asked = secondary.last_request().unwrap();
    let last = asked.messages.last().unwrap();
    assert_eq!((last.role, last.text().as_str()), (Role::Assistant, "Once upon a time"));
    assert!(asked.continuation.is_some());
    assert_eq!(asked.messages[0].text(), "Tell me a story.");

    // Usage is merged over both streams.
    let sim_usage = SimModel::replying("x", "there lived a fox.").stream(asked.clone()).await;
    let (_, sim_usage, _, _) = drain(sim_usage.unwrap()).await;
    let expected = Usage { input_tokens: 10, output_tokens: 4 } + sim_usage.unwrap();
    assert_eq!(usage, Some(expected));

    // One request, a success; the break is on the primary's record.
    let s = m.stats();
    assert_eq!((s.total, s.success, s.failed, s.in_flight), (1, 1, 0, 0));
    assert_eq!(s.targets["sim/primary"].stream_failures, 1);
    assert_eq!(s.targets["sim/secondary"].successes, 1);
}

#[tokio::test]
async fn a_stream_that_carried_tool_call_fragments_is_never_spliced() {
    let delta =
        ToolCallDelta { index: 0, id: Some("c1".into()), name: Some("clock".into()), arguments: "{\"tz".into() };
    let primary = Arc::new(Scripted(vec![Ok(ChatChunk::ToolCall(delta)), Err(reset())]));
    let secondary = SimModel::replying("secondary", "never");
    let m = manager(vec![("primary", primary), ("secondary", shared(&secondary))], AfterCommit::Continue);
    let (_, _, finished, error) = drain(m.stream(ChatRequest::user("time?")).await.unwrap()).await;
    assert!(!finished);
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::Connection));
    assert_eq!(secondary.calls(), 0);
    assert_eq!(m.stats().failed, 1);
}

#[tokio::test]
async fn by_default_a_break_after_commit_ends_with_the_typed_error() {
    let secondary = SimModel::replying("secondary", "never");
    let m = manager(vec![("primary", broken_text()), ("secondary", shared(&secondary))], AfterCommit::Error);
    let (text, _, finished, error) = drain(m.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert_eq!(text, "Once upon a time ");
    assert!(!finished);
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::Connection));
    assert_eq!(secondary.calls(), 0);
}

#[tokio::test]
async fn a_continuation_that_breaks_too_is_continued_by_the_target_after_it() {
    let second = Arc::new(Scripted(vec![Ok(ChatChunk::text("there lived")), Err(reset())]));
    let third =
        Arc::new(Scripted(vec![Ok(ChatChunk::text(" a fox.")), Ok(ChatChunk::Finish { reason: FinishReason::Stop })]));
    let m = manager(vec![("first", broken_text()), ("second", second), ("third", third)], AfterCommit::Continue);
    let stream = m.stream(ChatRequest::user("Tell me a story.")).await.unwrap();
    let targets = stream.targets_used();
    let (text, _, finished, error) = drain(stream).await;
    assert!(error.is_none() && finished, "{error:?}");
    assert_eq!(text, "Once upon a time there lived a fox.");
    assert_eq!(targets.get(), ["sim/first", "sim/second", "sim/third"]);
    let s = m.stats();
    assert_eq!((s.total, s.success), (1, 1));
}

#[tokio::test]
async fn with_no_target_left_the_original_error_ends_the_stream() {
    let m = manager(vec![("primary", broken_text())], AfterCommit::Continue);
    let (text, _, finished, error) = drain(m.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert_eq!(text, "Once upon a time ");
    assert!(!finished);
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::Connection));
    let s = m.stats();
    assert_eq!((s.total, s.failed, s.in_flight), (1, 1, 0));
}

fn text_then_finish(pieces: &[&str]) -> Arc<Scripted> {
    let mut items: Vec<Result<ChatChunk, Error>> = pieces.iter().map(|p| Ok(ChatChunk::text(*p))).collect();
    items.push(Ok(ChatChunk::Finish { reason: FinishReason::Stop }));
    Arc::new(Scripted(items))
}

#[tokio::test]
async fn a_continuation_that_restarts_with_the_same_text_has_the_repeat_dropped() {
    // Whitespace differs, the words do not: a deterministic restart.
    let restart = text_then_finish(&["Once  upon a", "\ntime there ", "lived a fox."]);
    let m = manager(vec![("primary", broken_text()), ("secondary", restart)], AfterCommit::Continue);
    let stream = m.stream(ChatRequest::user("Tell me a story.")).await.unwrap();
    let targets = stream.targets_used();
    let (text, _, finished, error) = drain(stream).await;
    assert!(error.is_none() && finished, "{error:?}");
    assert_eq!(text, "Once upon a time there lived a fox.");
    assert_eq!(targets.get(), ["sim/primary", "sim/secondary"]);
}

#[tokio::test]
async fn a_continuation_that_restarts_differently_is_never_spliced_and_the_original_error_ends_the_stream() {
    let different = text_then_finish(&["Once upon a midnight dreary, ", "while I pondered."]);
    let m = manager(vec![("primary", broken_text()), ("secondary", different.clone())], AfterCommit::Continue);
    let (text, _, finished, error) = drain(m.stream(ChatRequest::user("Tell me a story.")).await.unwrap()).await;
    assert_eq!(text, "Once upon a time ", "nothing of the divergent restart reached the caller");
    assert!(!finished);
    assert_eq!(error, Some(reset()), "the original break, typed");

    // With a target after it that does continue, that one is spliced instead.
    let good = SimModel::replying("third", "there lived a fox.");
    let m = manager(
        vec![("primary", broken_text()), ("secondary", different), ("third", shared(&good))],
        AfterCommit::Continue,
    );
    let stream = m.stream(ChatRequest::user("Tell me a story.")).await.unwrap();
    let targets = stream.targets_used();
    let (text, _, finished, error) = drain(stream).await;
    assert!(error.is_none() && finished, "{error:?}");
    assert_eq!(text, "Once upon a time there lived a fox.");
    assert_eq!(targets.get(), ["sim/primary", "sim/third"]);
}

#[tokio::test]
async fn a_target_that_refuses_the_continuation_is_skipped_and_its_error_never_reaches_the_caller() {
    let refusal = Error::InvalidRequest {
        status: 400,
        message: "This model does not support assistant message prefill.".into(),
        param: None,
        attempts: Vec::new(),
    };
    let refusing = SimModel::failing("secondary", refusal);
    let good = SimModel::replying("third", "there lived a fox.");
    let m = manager(
        vec![("primary", broken_text()), ("secondary", shared(&refusing)), ("third", shared(&good))],
        AfterCommit::Continue,
    );
    let (text, _, finished, error) = drain(m.stream(ChatRequest::user("Tell me a story.")).await.unwrap()).await;
    assert!(error.is_none() && finished, "{error:?}");
    assert_eq!(text, "Once upon a time there lived a fox.");
    assert_eq!((refusing.calls(), good.calls()), (1, 1));

    let m = manager(vec![("primary", broken_text()), ("secondary", shared(&refusing))], AfterCommit::Continue);
    let (_, _, finished, error) = drain(m.stream(ChatRequest::user("Tell me a story.")).await.unwrap()).await;
    assert!(!finished);
    assert_eq!(error, Some(reset()), "the original break, not the refusal");
}

#[tokio::test]
async fn each_target_is_asked_to_continue_its_own_way_and_a_none_target_never_is() {
    let never = SimModel::replying("never", "never");
    let prefill = SimModel::failing("prefill", Error::server(500, "down"));
    let instruction = SimModel::replying("instruction", "there lived a fox.");
    let m = FallbackManager::builder()
        .after_commit(AfterCommit::Continue)
        .target(ModelFallback::new("sim", "primary"), broken_text())
        .target(ModelFallback::new("sim", "never").with_continuation(ContinuationMode::None), shared(&never))
        .target(ModelFallback::new("sim", "prefill").with_continuation(ContinuationMode::Prefill), shared(&prefill))
        .target(ModelFallback::new("sim", "instruction"), shared(&instruction))
        .build()
        .unwrap();
    let stream = m.stream(ChatRequest::user("Tell me a story.")).await.unwrap();
    let targets = stream.targets_used();
    let (text, _, finished, error) = drain(stream).await;
    assert!(error.is_none() && finished, "{error:?}");
    assert_eq!(text, "Once upon a time there lived a fox.");
    assert_eq!(targets.get(), ["sim/primary", "sim/instruction"]);

    assert_eq!(never.calls(), 0, "a `none` target is never asked to continue");
    let style = |model: &SimModel| model.last_request().unwrap().continuation.map(|c| c.style);
    assert_eq!(style(&prefill), Some(ContinuationStyle::Prefill));
    // The default mode, and a prefill is never sent to a target not set to take one.
    assert_eq!(style(&instruction), Some(ContinuationStyle::Instruction));
    for model in [&prefill, &instruction] {
        let asked = model.last_request().unwrap();
        let last = asked.messages.last().unwrap();
        assert_eq!((last.role, last.text().as_str()), (Role::Assistant, "Once upon a time"));
    }

    // A `none` target still serves as an ordinary fallback.
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "down"), Arc::new(SimModel::failing("down", Error::server(503, "down"))))
        .target(ModelFallback::new("sim", "never").with_continuation(ContinuationMode::None), shared(&never))
        .build()
        .unwrap();
    let (text, _, finished, _) = drain(m.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert!(finished);
    assert_eq!((text.as_str(), never.calls()), ("never", 1));
}
