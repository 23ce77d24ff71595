//! Both clients against the simulated upstream: every fault word, what the client returns, and how
//! many calls the upstream saw.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use switchyard::{
    ChatChunk, ChatModel, Error, ErrorKind, FallbackManager, FinishReason, Message, ModelFallback, Part, Role,
    TimeoutPhase, ToolCall,
    attempt::{Attempt, AttemptOutcome},
};
use switchyard_providers::{ApiKey, ProviderKind, Timeouts, build_model};
use switchyard_sim::Upstream;

#[tokio::test]
async fn ok_answers_whole_and_streamed_with_usage() {
    let up = upstream().await;
    for kind in KINDS {
        let model = format!("{kind}-ok");
        let client = client(&up, kind, &model);
        let response = client.complete(hello()).await.unwrap();
        assert!(!response.message.text().is_empty(), "{kind}");
        assert_eq!(response.finish_reason, FinishReason::Stop);
        assert!(response.usage.input_tokens > 0 && response.usage.output_tokens > 0, "{kind}: {:?}", response.usage);
        let (chunks, error) = drain(&*client, hello()).await;
        assert!(error.is_none(), "{kind}: {error:?}");
        assert_eq!(text_of(&chunks), response.message.text(), "{kind}");
        assert!(chunks.iter().any(|c| matches!(c, ChatChunk::Usage(u) if u.output_tokens > 0)), "{kind}: usage");
        assert_eq!(chunks.last(), Some(&ChatChunk::Finish { reason: FinishReason::Stop }), "{kind}");
        assert_eq!(up.calls(&model), 2, "{kind}");
    }
}

#[tokio::test]
async fn tool_calls_arrive_whole_and_from_fragments_and_tool_results_go_back() {
    let up = upstream().await;
    for kind in KINDS {
        let model = format!("{kind}-ok");
        let client = client(&up, kind, &model);
        let response = client.complete(tool_request()).await.unwrap();
        assert_eq!(response.finish_reason, FinishReason::ToolCalls, "{kind}");
        let call = response.message.tool_calls().next().unwrap().clone();
        assert_eq!(call.name, "get_weather");
        let args: serde_json::Value = serde_json::from_str(&call.arguments).unwrap();
        assert!(args.get("city").is_some(), "{kind}: {args}");

        let (chunks, error) = drain(&*client, tool_request()).await;
        assert!(error.is_none(), "{kind}: {error:?}");
        let fragments = chunks.iter().filter(|c| matches!(c, ChatChunk::ToolCall(_))).count();
        assert!(fragments > 1, "{kind}: arguments should stream in fragments, got {fragments}");
        let streamed =
            switchyard::ChatStream::from_items(chunks.into_iter().map(Ok).collect()).collect_response().await.unwrap();
        let streamed_call = streamed.message.tool_calls().next().unwrap();
        let streamed_args: serde_json::Value = serde_json::from_str(&streamed_call.arguments).unwrap();
        assert_eq!(streamed_args, args, "{kind}");
        assert_eq!(streamed.finish_reason, FinishReason::ToolCalls);

        // The next turn carries the call and its result back in the vendor's shape.
        let mut next = tool_request();
        next.messages.push(Message {
            role: Role::Assistant,
            content: vec![Part::ToolCall(ToolCall { id: call.id.clone(), ..call.clone() })],
        });
        next.messages.push(Message::tool_result(&call.id, "18C and sunny", false));
        let answer = client.complete(next).await.unwrap();
        assert!(answer.message.text().contains("18C and sunny"), "{kind}: {}", answer.message.text());
        assert_eq!(up.calls(&model), 3, "{kind}");
    }
}

#[tokio::test]
async fn error_statuses_map_to_kinds_in_both_modes_with_one_call_each() {
    let up = upstream().await;
    let cases = [
        ("500", ErrorKind::Server),
        ("503", ErrorKind::Server),
        ("529", ErrorKind::Overloaded),
        ("429", ErrorKind::RateLimited),
        ("401", ErrorKind::Auth),
        ("400", ErrorKind::InvalidRequest),
        ("ctxlen", ErrorKind::ContextLength),
    ];
    for kind in KINDS {
        for (word, expected) in cases {
            let model = format!("{kind}-{word}");
            let client = client(&up, kind, &model);
            let error = client.complete(hello()).await.unwrap_err();
            assert_eq!(error.kind(), expected, "{model}: {error}");
            let (chunks, error) = drain(&*client, hello()).await;
            assert!(chunks.is_empty());
            assert_eq!(error.unwrap().kind(), expected, "{model} streamed");
            assert_eq!(up.calls(&model), 2, "{model}");
        }
        let error = client(&up, kind, &format!("{kind}-429")).complete(hello()).await.unwrap_err();
        assert_eq!(error.retry_after(), Some(Duration::from_secs(1)), "{kind}");
        let error = client(&up, kind, &format!("{kind}-400")).complete(hello()).await.unwrap_err();
        assert!(matches!(error, Error::InvalidRequest { status: 400, .. }), "{error}");
    }
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_error_and_never_reaches_the_model() {
    let up = upstream().await;
    for kind in KINDS {
        let model = format!("{kind}-ok");
        let mut config = config(&up, kind, &model);
        config.api_key = Some(ApiKey::new("not-the-key"));
        let client = build_model(config).unwrap();
        assert_eq!(client.complete(hello()).await.unwrap_err().kind(), ErrorKind::Auth);
        let mut config = common::config(&up, kind, &model);
        config.api_key = None;
        let client = build_model(config).unwrap();
        assert_eq!(client.complete(hello()).await.unwrap_err().kind(), ErrorKind::Auth);
        assert_eq!(up.calls(&model), 0, "{kind}");
    }
}

#[tokio::test]
async fn flaky_fails_the_first_n_calls_then_answers() {
    let up = upstream().await;
    for kind in KINDS {
        let model = format!("{kind}-flaky2");
        let client = client(&up, kind, &model);
        assert_eq!(client.complete(hello()).await.unwrap_err().kind(), ErrorKind::Server);
        let (_, error) = drain(&*client, hello()).await;
        assert_eq!(error.unwrap().kind(), ErrorKind::Server);
        assert!(client.complete(hello()).await.is_ok());
        let (_, error) = drain(&*client, hello()).await;
        assert!(error.is_none());
        assert_eq!(up.calls(&model), 4, "{kind}");
    }
}

#[tokio::test]
async fn sseerr_is_the_vendors_error_whole_or_as_the_first_event() {
    let up = upstream().await;
    for (kind, expected) in
        [(ProviderKind::OpenAi, ErrorKind::Server), (ProviderKind::Anthropic, ErrorKind::Overloaded)]
    {
        let model = format!("{kind}-sseerr");
        let client = client(&up, kind, &model);
        let (chunks, error) = drain(&*client, hello()).await;
        assert_eq!(content_count(&chunks), 0, "{kind}");
        assert_eq!(error.unwrap().kind(), expected, "{kind}");
        assert_eq!(client.complete(hello()).await.unwrap_err().kind(), expected, "{kind}");
        assert_eq!(up.calls(&model), 2, "{kind}");
    }
}

#[tokio::test]
async fn errtext_and_empty_are_answers_the_validators_judge() {
    let up = upstream().await;
    for kind in KINDS {
        let errtext = client(&up, kind, &format!("{kind}-errtext"));
        let response = errtext.complete(hello()).await.unwrap();
        assert!(response.message.text().starts_with("Exception:"), "{kind}");
        let (chunks, error) = drain(&*errtext, hello()).await;
        assert!(error.is_none());
        assert!(text_of(&chunks).starts_with("Exception:"));

        let empty = client(&up, kind, &format!("{kind}-empty"));
        let response = empty.complete(hello()).await.unwrap();
        assert_eq!(response.message.text(), "", "{kind}");
        let (chunks, error) = drain(&*empty, hello()).await;
        assert!(error.is_none(), "{kind}: {error:?}");
        assert_eq!(content_count(&chunks), 0);
        assert!(matches!(chunks.last(), Some(ChatChunk::Finish { .. })));
        assert_eq!(up.calls(&format!("{kind}-errtext")) + up.calls(&format!("{kind}-empty")), 4);
    }
}

#[tokio::test]
async fn badjson_is_an_invalid_response() {
    let up = upstream().await;
    for kind in KINDS {
        let model = format!("{kind}-badjson");
        let client = client(&up, kind, &model);
        let error = client.complete(hello()).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{kind}: {error}");
        let (_, error) = drain(&*client, hello()).await;
        assert_eq!(error.unwrap().kind(), ErrorKind::InvalidResponse, "{kind}");
        assert_eq!(up.calls(&model), 2);
    }
}

#[tokio::test]
async fn break_cuts_the_stream_after_n_chunks_and_the_body_when_whole() {
    let up = upstream().await;
    for kind in KINDS {
        let model = format!("{kind}-break2");
        let client = client(&up, kind, &model);
        let (chunks, error) = drain(&*client, hello()).await;
        assert_eq!(words(&chunks), 2, "{kind}: {chunks:?}");
        assert!(!chunks.iter().any(|c| matches!(c, ChatChunk::Finish { .. })));
        let error = error.expect("a cut stream must end in an error");
        assert!(matches!(error.kind(), ErrorKind::Connection | ErrorKind::InvalidResponse), "{kind}: {error}");
        let error = client.complete(hello()).await.unwrap_err();
        assert!(matches!(error.kind(), ErrorKind::Connection | ErrorKind::InvalidResponse), "{kind}: {error}");
        assert_eq!(up.calls(&model), 2);
    }
}

/// The model for `model` under the engine, as the gateway runs it: the engine owns the first-chunk and total
/// limits, the client the idle limit (after content).
fn guarded(up: &Upstream, kind: ProviderKind, model: &str, limits: Limits) -> FallbackManager {
    let ms = |v: Option<u64>| v.map(Duration::from_millis);
    let client = client_with(up, kind, model, Timeouts { connect: None, idle: ms(limits.idle) });
    let mut target = ModelFallback::new(kind_name(kind), model);
    target.first_chunk_timeout = ms(limits.first_chunk);
    target.total_timeout = ms(limits.total);
    FallbackManager::builder().target(target, client).breaker(None).hedge(None).build().unwrap()
}

#[derive(Default, Clone, Copy)]
struct Limits {
    first_chunk: Option<u64>,
    idle: Option<u64>,
    total: Option<u64>,
}

fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "openai",
        ProviderKind::Anthropic => "anthropic",
    }
}

/// The timeout that ended the request, as its message: the error itself for a committed stream, else the
/// one attempt's failure (the engine answers `AllFailed` once its only target failed).
fn timed_out(error: Option<Error>) -> String {
    match error {
        Some(e @ Error::Timeout { .. }) => e.to_string(),
        Some(Error::AllFailed { attempts }) => match &attempts[..] {
            [Attempt { outcome: AttemptOutcome::Failed { kind: ErrorKind::Timeout, message }, .. }] => message.clone(),
            other => panic!("expected one timed-out attempt, got {other:?}"),
        },
        other => panic!("expected a timeout, got {other:?}"),
    }
}

fn timeout(phase: TimeoutPhase, ms: u64) -> String {
    Error::Timeout { phase, after: Duration::from_millis(ms) }.to_string()
}

// These use real time with short limits: tokio's paused clock jumps to the next timer whenever the runtime
// waits on a real socket, so with a live HTTP exchange it could fire a limit before bytes already sent arrive.
// No assertion is about speed; the limits are far apart from the upstream's delays.

#[tokio::test]
async fn hang_hits_the_first_chunk_or_total_timeout() {
    let up = upstream().await;
    for kind in KINDS {
        let model = format!("{kind}-hang");
        let engine = guarded(&up, kind, &model, Limits { first_chunk: Some(200), total: Some(5_000), idle: None });
        let error = engine.complete(hello()).await.err();
        assert_eq!(timed_out(error), timeout(TimeoutPhase::FirstChunk, 200));
        let (_, error) = drain(&engine, hello()).await;
        assert_eq!(timed_out(error), timeout(TimeoutPhase::FirstChunk, 200));
        let engine = guarded(&up, kind, &model, Limits { total: Some(300), ..Limits::default() });
        let error = engine.complete(hello()).await.err();
        assert_eq!(timed_out(error), timeout(TimeoutPhase::Total, 300));
        assert_eq!(up.calls(&model), 3);
    }
}

#[tokio::test]
async fn slow_and_ttfb_time_out_past_the_first_chunk_limit() {
    let up = upstream().await;
    for kind in KINDS {
        for word in ["slow5000", "ttfb5000"] {
            let model = format!("{kind}-{word}");
            let hasty = guarded(&up, kind, &model, Limits { first_chunk: Some(200), ..Limits::default() });
            let error = hasty.complete(hello()).await.err();
            assert_eq!(timed_out(error), timeout(TimeoutPhase::FirstChunk, 200), "{model}");
            let (chunks, error) = drain(&hasty, hello()).await;
            assert_eq!(content_count(&chunks), 0);
            assert_eq!(timed_out(error), timeout(TimeoutPhase::FirstChunk, 200), "{model}");
            assert_eq!(up.calls(&model), 2, "{model}");
        }
    }
}

#[tokio::test]
async fn slow_and_ttfb_answer_within_the_limits() {
    let up = upstream().await;
    for kind in KINDS {
        for word in ["slow100", "ttfb100"] {
            let model = format!("{kind}-{word}");
            let limits = Limits { first_chunk: Some(10_000), idle: Some(10_000), total: Some(20_000) };
            let patient = guarded(&up, kind, &model, limits);
            assert!(patient.complete(hello()).await.is_ok(), "{model}");
            let (chunks, error) = drain(&patient, hello()).await;
            assert!(error.is_none() && content_count(&chunks) > 0, "{model}: {error:?}");
            assert_eq!(up.calls(&model), 2, "{model}");
        }
    }
}

#[tokio::test]
async fn stall_yields_n_chunks_then_an_idle_timeout() {
    let up = upstream().await;
    for kind in KINDS {
        let model = format!("{kind}-stall2");
        let engine = guarded(&up, kind, &model, Limits { first_chunk: Some(10_000), idle: Some(300), total: None });
        let (chunks, error) = drain(&engine, hello()).await;
        assert_eq!(words(&chunks), 2, "{kind}: {chunks:?}");
        assert_eq!(timed_out(error), timeout(TimeoutPhase::Idle, 300), "{kind}");
        // Whole answers never finish: the first-chunk limit covers the body.
        let engine = guarded(&up, kind, &model, Limits { first_chunk: Some(300), ..Limits::default() });
        let error = engine.complete(hello()).await.err();
        assert_eq!(timed_out(error), timeout(TimeoutPhase::FirstChunk, 300), "{kind}");
        // Only the total limit set: it ends the stalled stream.
        let engine = guarded(&up, kind, &model, Limits { total: Some(400), ..Limits::default() });
        let (chunks, error) = drain(&engine, hello()).await;
        assert_eq!(words(&chunks), 2, "{kind}: {chunks:?}");
        assert_eq!(timed_out(error), timeout(TimeoutPhase::Total, 400), "{kind}");
        assert_eq!(up.calls(&model), 3);
    }
}

#[tokio::test]
async fn concurrent_requests_share_one_client() {
    let up = upstream().await;
    for kind in KINDS {
        let model = format!("{kind}-ok");
        let client = client(&up, kind, &model);
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        client.complete(hello()).await.map(|_| ())
                    } else {
                        drain(&*client, hello()).await.1.map_or(Ok(()), Err)
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(up.calls(&model), 20, "{kind}");
    }
}

#[tokio::test]
async fn rate_limit_headers_with_nothing_remaining_mark_the_model_exhausted_until_the_reset() {
    use switchyard::{ChatModel, ChatRequest, FallbackManager, ModelFallback};
    let up = upstream().await;
    for kind in KINDS {
        let model = format!("{kind}-quota");
        let healthy = client(&up, kind, &model);
        healthy.complete(hello()).await.unwrap();
        assert_eq!(healthy.exhausted_until(), None, "{kind}: requests remain");

        let mut config = config(&up, kind, &model);
        config.headers.push((switchyard_sim::EXHAUSTED_HEADER.to_owned(), "30000".to_owned()));
        let exhausted = build_model(config).unwrap();
        let before = tokio::time::Instant::now();
        exhausted.complete(hello()).await.unwrap();
        let until = exhausted.exhausted_until().expect("remaining 0");
        let wait = until - before;
        assert!(wait > Duration::from_secs(28) && wait <= Duration::from_secs(31), "{kind}: {wait:?}");

        // The engine skips it without a call until then.
        let manager =
            FallbackManager::builder().target(ModelFallback::new("sim", model.as_str()), exhausted).build().unwrap();
        let calls = up.calls(&model);
        let refused = manager.complete(ChatRequest::user("hi")).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::RateLimited, "{kind}: {refused}");
        assert_eq!(up.calls(&model), calls, "{kind}: no call while exhausted");
    }
}
