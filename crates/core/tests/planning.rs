//! Per-request planning: targets that cannot take the request are skipped before any call, and the attempts say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::shared;
use serde_json::json;
use switchyard::{
    ChatModel, ChatRequest, ErrorKind, FallbackManager, ModelFallback, ToolDefinition, attempt::AttemptOutcome,
};
use switchyard_sim::SimModel;

fn skip_reason(outcome: &AttemptOutcome) -> String {
    match outcome {
        AttemptOutcome::Skipped { reason } => reason.to_string(),
        other => panic!("expected a skip, got {other:?}"),
    }
}

fn with_tool(mut request: ChatRequest) -> ChatRequest {
    request.tools = vec![ToolDefinition {
        name: "clock".into(),
        description: None,
        parameters: json!({"type": "object", "properties": {}}),
    }];
    request
}

#[tokio::test]
async fn a_request_with_tools_skips_targets_that_cannot_take_them() {
    let no_tools = SimModel::replying("plain", "from plain");
    let tools = SimModel::replying("tools", "from tools");
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "plain").with_supports_tools(false), shared(&no_tools))
        .target(ModelFallback::new("sim", "tools").with_supports_tools(true), shared(&tools))
        .build()
        .unwrap();
    let r = m.complete(with_tool(ChatRequest::user("time?"))).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("sim/tools"));
    assert_eq!(no_tools.calls(), 0);
    assert!(skip_reason(&r.attempts[0].outcome).contains("does not support tools"), "{:?}", r.attempts);
    assert_eq!(m.stats().targets["sim/plain"].skipped, 1);
    // Not a fallback: no call failed.
    assert_eq!(m.stats().fallbacks, 0);

    // Without tools the first target serves; streams plan the same way.
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("sim/plain"));
    let s = m.stream(with_tool(ChatRequest::user("time?"))).await.unwrap();
    assert_eq!(s.served_by.as_deref(), Some("sim/tools"));
}

#[tokio::test]
async fn a_prompt_too_large_for_a_window_skips_that_target() {
    let small = SimModel::replying("small", "from small");
    let large = SimModel::replying("large", "from large");
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "small").with_context_window(1_000), shared(&small))
        .target(ModelFallback::new("sim", "large").with_context_window(100_000), shared(&large))
        .build()
        .unwrap();
    let r = m.complete(ChatRequest::user("word ".repeat(2_000))).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("sim/large"));
    assert_eq!(small.calls(), 0);
    let reason = skip_reason(&r.attempts[0].outcome);
    assert!(reason.contains("2500 tokens") && reason.contains("context window of 1000"), "{reason}");

    // max_tokens counts too.
    let mut request = ChatRequest::user("short");
    request.options.max_tokens = Some(4_000);
    assert_eq!(m.complete(request).await.unwrap().served_by.as_deref(), Some("sim/large"));
    assert_eq!(m.complete(ChatRequest::user("short")).await.unwrap().served_by.as_deref(), Some("sim/small"));
}

#[tokio::test]
async fn when_no_target_can_serve_the_error_lists_why_and_nothing_is_called() {
    let small = SimModel::replying("small", "from small");
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "small").with_context_window(10).with_supports_tools(false), shared(&small))
        .build()
        .unwrap();
    let err = m.complete(ChatRequest::user("word ".repeat(100))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("context window of 10"), "{err}");
    assert_eq!(small.calls(), 0);
}
