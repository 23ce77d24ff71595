//! SimModel behaviours, through the `ChatModel` interface.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::Duration;

use futures::StreamExt;
use switchyard::{
    ChatChunk, ChatModel, ChatRequest, Error, ErrorKind, FinishReason, Message, Part, ToolCall, ToolDefinition, Usage,
};
use switchyard_sim::{Behavior, DEFAULT_REPLY, SimModel};
use tokio::time::{Instant, timeout};

fn request() -> ChatRequest {
    ChatRequest::user("what is the weather today").with_system("be brief")
}

async fn items(model: &SimModel) -> Vec<Result<ChatChunk, Error>> {
    model.stream(request()).await.unwrap().collect().await
}

#[tokio::test]
async fn reply_streams_word_chunks_then_usage_then_finish() {
    let model = SimModel::new("anthropic/claude").script([Behavior::Reply("hello there world".into())]);
    let items = items(&model).await;
    let chunks: Vec<ChatChunk> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        chunks,
        vec![
            ChatChunk::text("hello "),
            ChatChunk::text("there "),
            ChatChunk::text("world"),
            ChatChunk::Usage(Usage { input_tokens: 7, output_tokens: 3 }),
            ChatChunk::Finish { reason: FinishReason::Stop },
        ]
    );
}

#[tokio::test]
async fn reply_completes_with_name_text_and_usage() {
    let model = SimModel::replying("anthropic/claude", "hi you");
    let response = model.complete(request()).await.unwrap();
    assert_eq!(response.model, "anthropic/claude");
    assert_eq!(response.message.text(), "hi you");
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(response.usage, Usage { input_tokens: 7, output_tokens: 2 });
    assert!(!response.id.is_empty());
}

#[tokio::test]
async fn default_reply_is_the_fixed_text() {
    let model = SimModel::new("m");
    assert_eq!(model.complete(request()).await.unwrap().message.text(), DEFAULT_REPLY);
    let streamed = model.stream(request()).await.unwrap().collect_response().await.unwrap();
    assert_eq!(streamed.message.text(), DEFAULT_REPLY);
}

#[tokio::test]
async fn tool_calls_stream_as_fragments_that_assemble() {
    let calls = vec![
        ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Paris","unit":"c"}"#.into(),
        },
        ToolCall { id: "call_2".into(), name: "clock".into(), arguments: "{}".into() },
    ];
    let model = SimModel::new("m").script([Behavior::ToolCalls(calls.clone()), Behavior::ToolCalls(calls.clone())]);

    let chunks: Vec<ChatChunk> = items(&model).await.into_iter().map(Result::unwrap).collect();
    let fragments_of_first = chunks.iter().filter(|c| matches!(c, ChatChunk::ToolCall(d) if d.index == 0)).count();
    assert!(fragments_of_first >= 3, "arguments must arrive in several fragments: {chunks:?}");
    let streamed =
        switchyard::ChatStream::from_items(chunks.into_iter().map(Ok).collect()).collect_response().await.unwrap();
    assert_eq!(streamed.message.tool_calls().cloned().collect::<Vec<_>>(), calls);
    assert_eq!(streamed.finish_reason, FinishReason::ToolCalls);

    let complete = model.complete(request()).await.unwrap();
    assert_eq!(complete.message.tool_calls().cloned().collect::<Vec<_>>(), calls);
    assert_eq!(complete.finish_reason, FinishReason::ToolCalls);
    assert!(complete.usage.output_tokens > 0);
}

#[tokio::test]
async fn fail_errs_from_complete_and_from_stream() {
    let error = Error::server(503, "sim");
    let model = SimModel::new("m").script([Behavior::Fail(error.clone()), Behavior::Fail(error.clone())]);
    assert_eq!(model.complete(request()).await.unwrap_err(), error);
    assert_eq!(model.stream(request()).await.unwrap_err(), error);
    assert_eq!(model.calls(), 2);
}

#[tokio::test]
async fn fail_in_stream_opens_the_stream_then_errs_first() {
    let error = Error::Overloaded { status: 529, message: "busy".into() };
    let model =
        SimModel::new("m").script([Behavior::FailInStream(error.clone()), Behavior::FailInStream(error.clone())]);
    let items = items(&model).await;
    assert_eq!(items, vec![Err(error.clone())]);
    assert_eq!(model.complete(request()).await.unwrap_err(), error);
}

#[tokio::test]
async fn break_after_yields_n_content_chunks_then_the_error() {
    let error = Error::Connection { message: "reset".into() };
    let model = SimModel::new("m").script([Behavior::BreakAfter { chunks: 3, error: error.clone() }]);
    let items = items(&model).await;
    assert_eq!(items.len(), 4);
    assert!(items[..3].iter().all(|i| i.as_ref().unwrap().is_content()));
    assert_eq!(items[3], Err(error.clone()));

    model.push(Behavior::BreakAfter { chunks: 3, error: error.clone() });
    assert_eq!(model.complete(request()).await.unwrap_err(), error);
}

#[tokio::test]
async fn end_without_finish_is_a_cut_off_stream() {
    let model = SimModel::new("m").script(std::iter::repeat_n(Behavior::EndWithoutFinish { chunks: 2 }, 3));
    let items = items(&model).await;
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.as_ref().unwrap().is_content()));

    let err = model.stream(request()).await.unwrap().collect_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert_eq!(model.complete(request()).await.unwrap_err().kind(), ErrorKind::InvalidResponse);
}

#[tokio::test(start_paused = true)]
async fn stall_goes_silent_after_n_chunks() {
    let model = SimModel::new("m").script([Behavior::Stall { chunks: 1 }, Behavior::Stall { chunks: 0 }]);
    let mut stream = model.stream(request()).await.unwrap();
    assert!(stream.next().await.unwrap().unwrap().is_content());
    assert!(timeout(Duration::from_secs(3600), stream.next()).await.is_err(), "stalled stream must stay silent");
    let mut empty = model.stream(request()).await.unwrap();
    assert!(timeout(Duration::from_secs(3600), empty.next()).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn hang_never_answers() {
    let model = SimModel::new("m").then_default(Behavior::Hang);
    assert!(timeout(Duration::from_secs(3600), model.complete(request())).await.is_err());
    assert!(timeout(Duration::from_secs(3600), model.stream(request())).await.is_err());
    assert_eq!(model.calls(), 2);
}

#[tokio::test]
async fn script_runs_in_order_then_the_default() {
    let model = SimModel::new("m")
        .script([Behavior::Fail(Error::server(500, "first")), Behavior::Reply("second".into())])
        .then_default(Behavior::Reply("later".into()));
    assert_eq!(model.complete(request()).await.unwrap_err(), Error::server(500, "first"));
    assert_eq!(model.complete(request()).await.unwrap().message.text(), "second");
    for _ in 0..3 {
        assert_eq!(model.complete(request()).await.unwrap().message.text(), "later");
    }
    model.set_default(Behavior::Reply("changed".into()));
    model.push(Behavior::Reply("pushed".into()));
    assert_eq!(model.complete(request()).await.unwrap().message.text(), "pushed");
    assert_eq!(model.complete(request()).await.unwrap().message.text(), "changed");
    assert_eq!(model.calls(), 7);
}

#[tokio::test]
async fn clones_share_counters_and_recorded_requests() {
    let model = SimModel::new("m");
    let handle = model.clone();
    let boxed: switchyard::SharedModel = std::sync::Arc::new(model);
    let mut req = request();
    req.tools.push(ToolDefinition {
        name: "get_weather".into(),
        description: None,
        parameters: serde_json::json!({"type": "object"}),
    });
    boxed.complete(req.clone()).await.unwrap();
    boxed.stream(req.clone()).await.unwrap();
    assert_eq!(handle.calls(), 2);
    assert_eq!(handle.requests(), vec![req.clone(), req.clone()]);
    assert_eq!(handle.last_request().unwrap().system.as_deref(), Some("be brief"));

    let quiet = SimModel::new("q").keep_requests(false);
    quiet.complete(request()).await.unwrap();
    assert_eq!(quiet.calls(), 1);
    assert!(quiet.requests().is_empty());
}

#[tokio::test]
async fn random_faults_are_reproducible_with_a_seed() {
    async fn pattern(seed: u64) -> Vec<bool> {
        let model = SimModel::new("m").fault_rate(0.1, Error::server(503, "sim")).seed(seed).keep_requests(false);
        let mut out = Vec::new();
        for _ in 0..1000 {
            out.push(model.complete(request()).await.is_err());
        }
        out
    }
    let a = pattern(42).await;
    assert_eq!(a, pattern(42).await);
    assert_ne!(a, pattern(43).await);
    let faults = a.iter().filter(|f| **f).count();
    assert!((50..=150).contains(&faults), "about 10% of 1000 calls should fail, got {faults}");

    let never = SimModel::new("m").fault_rate(0.0, Error::server(503, "sim"));
    let always = SimModel::new("m").fault_rate(1.0, Error::server(503, "sim"));
    for _ in 0..50 {
        assert!(never.complete(request()).await.is_ok());
        assert_eq!(always.stream(request()).await.unwrap_err(), Error::server(503, "sim"));
    }
}

#[tokio::test]
async fn scripted_calls_are_not_replaced_by_random_faults() {
    let model = SimModel::new("m").fault_rate(1.0, Error::server(503, "sim")).script([Behavior::Reply("ok".into())]);
    assert_eq!(model.complete(request()).await.unwrap().message.text(), "ok");
    assert!(model.complete(request()).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn stream_delays_follow_the_configuration() {
    let model = SimModel::replying("m", "a b c")
        .latency(Duration::from_millis(100))
        .first_chunk_delay(Duration::from_millis(1000))
        .chunk_delay(Duration::from_millis(10));
    let start = Instant::now();
    let mut stream = model.stream(request()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    stream.next().await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(1100));
    while stream.next().await.is_some() {}
    assert_eq!(start.elapsed(), Duration::from_millis(1120));

    let start = Instant::now();
    model.complete(request()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(1120), "complete takes as long as the whole stream");
}

#[tokio::test(start_paused = true)]
async fn fail_in_stream_arrives_after_the_first_chunk_delay() {
    let model = SimModel::new("m")
        .first_chunk_delay(Duration::from_secs(5))
        .then_default(Behavior::FailInStream(Error::server(500, "x")));
    let mut stream = model.stream(request()).await.unwrap();
    assert!(timeout(Duration::from_secs(4), stream.next()).await.is_err());
    assert!(stream.next().await.unwrap().is_err());
}

#[tokio::test]
async fn echo_quotes_the_last_message_or_tool_result() {
    let model = SimModel::new("m").then_default(Behavior::Echo);
    assert_eq!(model.complete(ChatRequest::user("ping")).await.unwrap().message.text(), "echo: ping");
    let mut req = ChatRequest::user("weather?");
    req.messages.push(Message {
        role: switchyard::Role::Assistant,
        content: vec![Part::ToolCall(ToolCall { id: "c1".into(), name: "w".into(), arguments: "{}".into() })],
    });
    req.messages.push(Message::tool_result("c1", "sunny, 21C", false));
    let streamed = model.stream(req).await.unwrap().collect_response().await.unwrap();
    assert_eq!(streamed.message.text(), "echo: sunny, 21C");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_are_counted_exactly() {
    let model = SimModel::new("m").fault_rate(0.3, Error::server(503, "sim")).seed(7);
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let m = model.clone();
            tokio::spawn(async move {
                if i % 2 == 0 { m.complete(request()).await.is_ok() } else { m.stream(request()).await.is_ok() }
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(model.calls(), 500);
    assert_eq!(model.requests().len(), 500);
    assert!(ok > 0 && ok < 500);
}

#[tokio::test(start_paused = true)]
async fn delayed_slows_one_call_only() {
    let slow = Behavior::Delayed(Duration::from_secs(2), Box::new(Behavior::Reply("late".into())));
    let model = SimModel::replying("m", "fast").latency(Duration::from_millis(10)).script([slow.clone(), slow]);
    let start = Instant::now();
    assert_eq!(model.complete(request()).await.unwrap().message.text(), "late");
    assert_eq!(start.elapsed(), Duration::from_millis(2010));
    let start = Instant::now();
    let streamed = model.stream(request()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(2010), "a stream's headers wait too");
    assert_eq!(streamed.collect_response().await.unwrap().message.text(), "late");
    let start = Instant::now();
    assert_eq!(model.complete(request()).await.unwrap().message.text(), "fast");
    assert_eq!(start.elapsed(), Duration::from_millis(10));
}
