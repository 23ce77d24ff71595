//! The agent over real provider clients talking to the simulated upstream on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use switchyard::{FallbackManager, ModelFallback, SharedModel};
use switchyard_agent::{AgentEvent, ReactAgent};
use switchyard_providers::{ApiKey, ProviderConfig, ProviderError, ProviderKind, build_model};
use switchyard_sim::{DEFAULT_API_KEY, Upstream, UpstreamConfig};

fn client(upstream: &Upstream, kind: ProviderKind, model: &str) -> Result<SharedModel, ProviderError> {
    let mut config = ProviderConfig::new(kind, kind.as_str(), model);
    config.base_url = match kind {
        ProviderKind::OpenAi => upstream.openai_base_url(),
        ProviderKind::Anthropic => upstream.anthropic_base_url(),
    };
    config.api_key = Some(ApiKey::new(DEFAULT_API_KEY));
    build_model(config)
}

#[tokio::test]
async fn a_tool_round_works_over_both_apis_in_both_modes() {
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
        let calls = Arc::new(AtomicUsize::new(0));
        let agent = ReactAgent::builder()
            .model(client(&upstream, kind, "sim-ok").unwrap())
            .tools([calculator(calls.clone()), clock()])
            .build()
            .unwrap();

        // The simulated upstream calls the first tool when asked to use a tool, then quotes its result.
        let out = agent.invoke("Please use a tool.").await.unwrap();
        assert_eq!(out.text, "The tool returned: 2.0", "{kind}");
        assert_eq!(out.steps.len(), 2);
        assert!(out.usage.input_tokens > 0, "{kind}: usage is carried");

        let (events, error) = collect(&agent, "Please use a tool.").await;
        assert!(error.is_none(), "{kind}: {error:?}");
        assert_eq!(labels(&events), ["1:call calculator", "1:result calculator", "2:text", "done"], "{kind}");
        let AgentEvent::ToolCall { call, .. } = &events[0] else { panic!() };
        let args: serde_json::Value = serde_json::from_str(&call.arguments).unwrap();
        assert_eq!(args, serde_json::json!({"op": "add", "a": 1, "b": 1}), "{kind}: fragments assembled");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
    upstream.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_openai_primary_falls_back_to_anthropic() {
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let manager = FallbackManager::builder()
        .target(ModelFallback::new("openai", "sim-503"), client(&upstream, ProviderKind::OpenAi, "sim-503").unwrap())
        .target(
            ModelFallback::new("anthropic", "sim-ok").with_priority(1),
            client(&upstream, ProviderKind::Anthropic, "sim-ok").unwrap(),
        )
        .build()
        .unwrap();
    let agent = ReactAgent::builder().model(Arc::new(manager)).tools([clock()]).build().unwrap();

    let (events, error) = collect(&agent, "Use the tools please").await;

    assert!(error.is_none(), "{error:?}");
    let AgentEvent::Done(out) = events.last().unwrap() else { panic!() };
    assert_eq!(out.text, "The tool returned: 2026-11-22T04:00:00Z");
    assert!(out.steps.iter().all(|s| s.served_by.as_deref() == Some("anthropic/sim-ok")));
    assert_eq!(upstream.calls("sim-503"), 2, "the primary was tried at each step");
    upstream.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_example_question_gets_the_calls_it_asks_for() {
    // react_agent's question: the simulated model reads the calls from it (operator and numbers, the time).
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
        let agent = ReactAgent::builder()
            .model(client(&upstream, kind, "sim-ok").unwrap())
            .tools([calculator(Arc::new(AtomicUsize::new(0))), clock()])
            .build()
            .unwrap();
        let (events, error) = collect(&agent, "Use the tools: what is 12.5 * 8, and what time is it now (UTC)?").await;
        assert!(error.is_none(), "{kind}: {error:?}");
        let calls: Vec<(String, serde_json::Value)> = events
            .iter()
            .filter_map(|e| match e {
                AgentEvent::ToolCall { call, .. } => {
                    Some((call.name.clone(), serde_json::from_str(&call.arguments).unwrap()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            [
                ("calculator".to_owned(), serde_json::json!({"op": "mul", "a": 12.5, "b": 8.0})),
                ("clock".to_owned(), serde_json::json!({})),
            ],
            "{kind}"
        );
        let AgentEvent::Done(out) = events.last().unwrap() else { panic!() };
        assert_eq!(out.text, "The tools returned: 100.0; 2026-11-22T04:00:00Z", "{kind}");
    }
    upstream.shutdown().await.unwrap();
}
