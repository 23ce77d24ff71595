//! ContextEditingInterceptor: which tool results are cleared, and that pairs stay whole.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;
use switchyard::{ChatRequest, Message, Part, Role, ToolCall, interceptors::ModelInterceptor};
use switchyard_agent::{ContextEditingInterceptor, ReactAgent, estimate_tokens};
use switchyard_sim::SimModel;

/// A conversation with `n` tool rounds; round `i` calls `names[i % names.len()]` with id `c{i}`
/// and gets a long result `result {i} …`.
fn conversation(n: usize, names: &[&str]) -> ChatRequest {
    let mut messages = vec![Message::user("start")];
    for i in 0..n {
        let name = names[i % names.len()];
        messages.push(Message {
            role: Role::Assistant,
            content: vec![Part::ToolCall(ToolCall {
                id: format!("c{i}"),
                name: name.to_owned(),
                arguments: format!("{{\"q\":\"question {i}\"}}"),
            })],
        });
        messages.push(Message::tool_result(format!("c{i}"), format!("result {i} {}", "x".repeat(400)), false));
    }
    ChatRequest { messages, ..ChatRequest::default() }
}

/// (call id, call arguments, result content) per round.
fn rounds(request: &ChatRequest) -> Vec<(String, String, String)> {
    let mut calls = Vec::new();
    let mut results = std::collections::HashMap::new();
    for part in request.messages.iter().flat_map(|m| &m.content) {
        match part {
            Part::ToolCall(c) => calls.push((c.id.clone(), c.arguments.clone())),
            Part::ToolResult(r) => {
                results.insert(r.tool_call_id.clone(), r.content.clone());
            }
            _ => {}
        }
    }
    calls.into_iter().map(|(id, args)| (id.clone(), args, results[&id].clone())).collect()
}

#[test]
fn clears_the_oldest_results_keeping_the_newest_pairs_and_excluded_tools() {
    let editor = ContextEditingInterceptor::builder()
        .trigger_tokens(500)
        .keep(2)
        .exclude_tools(["memory"])
        .clear_tool_inputs(true)
        .build();
    let mut request = conversation(6, &["search", "memory"]);
    assert!(estimate_tokens(&request) > 500);

    let cleared = editor.edit(&mut request);

    let r = rounds(&request);
    // Rounds 0, 2 (search) are old and cleared, call input and result together; 1, 3 are memory
    // (excluded); 4 and 5 are the newest two pairs and stay whole.
    assert_eq!(cleared, 2);
    for i in [0, 2] {
        assert_eq!((r[i].1.as_str(), r[i].2.as_str()), ("{}", "[cleared]"), "round {i}");
    }
    for i in [1, 3, 4, 5] {
        assert!(r[i].2.starts_with(&format!("result {i} ")), "round {i} kept: {:?}", r[i].2);
        assert_eq!(r[i].1, format!("{{\"q\":\"question {i}\"}}"), "round {i} input kept");
    }
    assert_eq!(request.messages.len(), 13, "messages are edited, never removed");
}

#[test]
fn below_the_trigger_nothing_changes_and_clear_at_least_stops_early() {
    let original = conversation(6, &["search"]);
    let mut request = original.clone();
    assert_eq!(ContextEditingInterceptor::builder().trigger_tokens(100_000).build().edit(&mut request), 0);
    assert_eq!(request, original);

    // Each result is ~100 tokens: reclaiming at least 150 needs two results, oldest first.
    let editor = ContextEditingInterceptor::builder().trigger_tokens(100).keep(1).clear_at_least(150).build();
    assert_eq!(editor.edit(&mut request), 2);
    let r = rounds(&request);
    assert_eq!(r[0].2, "[cleared]");
    assert_eq!(r[1].2, "[cleared]");
    assert!(r[2].2.starts_with("result 2"));
    assert_eq!(r[0].1, "{\"q\":\"question 0\"}", "inputs are kept unless asked");
}

#[test]
fn the_defaults_clear_something_once_past_the_trigger() {
    let mut request = conversation(300, &["search"]);
    let mut bigger = conversation(1_000, &["search"]);
    assert!(estimate_tokens(&request) < 100_000 && estimate_tokens(&bigger) > 100_000);
    let editor = ContextEditingInterceptor::default();
    assert_eq!(editor.edit(&mut request), 0, "under 100k tokens nothing happens");
    assert_eq!(editor.edit(&mut bigger), 997, "all but the newest 3 pairs");
}

#[tokio::test]
async fn in_the_loop_the_model_sees_cleared_results_and_the_history_keeps_them() {
    let script = (0..4)
        .map(|i| asks(vec![call(&format!("c{i}"), "calculator", json!({"op": "add", "a": i, "b": 1}))]))
        .chain([reply("done")]);
    let model = SimModel::new("m").script(script);
    let editor = ContextEditingInterceptor::builder().trigger_tokens(0).keep(1).placeholder("[old result]").build();
    let agent = ReactAgent::builder()
        .model(shared(&model))
        .tools([calculator(Arc::default())])
        .interceptors([Arc::new(editor) as Arc<dyn ModelInterceptor>])
        .build()
        .unwrap();

    let (events, error) = collect(&agent, "count").await;
    assert!(error.is_none());

    let last = model.last_request().unwrap();
    let r = rounds(&last);
    let results: Vec<&str> = r.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(results, ["[old result]", "[old result]", "[old result]", "4.0"]);
    // Only the outgoing requests were edited: the run's own history has every result.
    let Some(switchyard_agent::AgentEvent::Done(out)) = events.last() else { panic!("{events:?}") };
    let kept: Vec<String> = rounds(&ChatRequest { messages: out.messages.clone(), ..ChatRequest::default() })
        .into_iter()
        .map(|x| x.2)
        .collect();
    assert_eq!(kept, ["1.0", "2.0", "3.0", "4.0"]);
}
