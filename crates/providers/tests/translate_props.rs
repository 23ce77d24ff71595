//! Property: any conversation the neutral types can hold survives a trip through either wire format.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::json;
use switchyard::{ChatOptions, ChatRequest, Message, Part, Role, ToolCall, ToolChoice, ToolDefinition, ToolResult};
use switchyard_providers::{anthropic, openai};

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?é\"\\\\{}:]{1,24}"
}

/// One exchange: a user message, then an assistant reply that may call tools, then their results.
fn exchange() -> impl Strategy<Value = Vec<Message>> {
    (text(), proptest::option::of(text()), proptest::collection::vec((0u32..1000, text()), 0..3), any::<bool>())
        .prop_map(|(question, answer, calls, error)| {
            let mut messages = vec![Message::user(question)];
            let mut content = Vec::new();
            if let Some(answer) = answer {
                content.push(Part::Text { text: answer });
            }
            let calls: Vec<ToolCall> = calls
                .into_iter()
                .enumerate()
                .map(|(i, (n, s))| ToolCall {
                    id: format!("call_{i}_{n}"),
                    name: format!("tool_{}", n % 3),
                    // serde_json's own compact form, so a trip through a JSON value changes nothing.
                    arguments: json!({"n": n, "s": s}).to_string(),
                })
                .collect();
            content.extend(calls.iter().cloned().map(Part::ToolCall));
            if content.is_empty() {
                content.push(Part::Text { text: "ok".into() });
            }
            messages.push(Message { role: Role::Assistant, content });
            if !calls.is_empty() {
                messages.push(Message {
                    role: Role::Tool,
                    content: calls
                        .iter()
                        .map(|c| {
                            Part::ToolResult(ToolResult {
                                tool_call_id: c.id.clone(),
                                content: format!("result of {}", c.name),
                                is_error: error,
                            })
                        })
                        .collect(),
                });
            }
            messages
        })
}

fn request() -> impl Strategy<Value = ChatRequest> {
    (
        proptest::option::of(text()),
        proptest::collection::vec(exchange(), 1..4),
        // Two decimals, as callers write them (serde_json without `float_roundtrip` may move the 17th digit).
        proptest::option::of((0u32..=200).prop_map(|t| f64::from(t) / 100.0)),
        proptest::option::of(1u32..100_000),
        proptest::collection::vec("[a-z]{1,5}", 0..3),
        any::<bool>(),
    )
        .prop_map(|(system, exchanges, temperature, max_tokens, stop, with_tools)| {
            let mut messages: Vec<Message> = exchanges.into_iter().flatten().collect();
            messages.push(Message::user("and now?"));
            let tools = if with_tools {
                (0..3)
                    .map(|i| ToolDefinition {
                        name: format!("tool_{i}"),
                        description: Some(format!("tool number {i}")),
                        parameters: json!({"type": "object", "properties": {"n": {"type": "integer"}}}),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            ChatRequest {
                model: "route".into(),
                system,
                messages,
                tool_choice: with_tools.then_some(ToolChoice::Auto),
                tools,
                options: ChatOptions { temperature, top_p: None, max_tokens, stop, parallel_tool_calls: None },
                ..ChatRequest::default()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn openai_wire_round_trip(mut original in request()) {
        // OpenAI has no `is_error` on tool results.
        for m in &mut original.messages {
            for p in &mut m.content {
                if let Part::ToolResult(r) = p {
                    r.is_error = false;
                }
            }
        }
        let wire = openai::request_to_wire(&original, "route", false).unwrap();
        let body = serde_json::to_vec(&wire).unwrap();
        let mut back = openai::decode_request(&body).unwrap();
        back.extra = original.extra.clone();
        // OpenAI sends each tool result as its own message.
        prop_assert_eq!(merge_tool_messages(back), original);
    }

    #[test]
    fn anthropic_wire_round_trip(original in request()) {
        let wire = anthropic::request_to_wire(&original, "route", 4096, false).unwrap();
        let body = serde_json::to_vec(&wire).unwrap();
        let mut back = anthropic::decode_request(&body).unwrap();
        back.extra = original.extra.clone();
        let mut expected = original;
        expected.options.max_tokens = Some(expected.options.max_tokens.unwrap_or(4096));
        prop_assert_eq!(back, expected);
    }
}

/// Joins consecutive tool messages into one, as the generator builds them.
fn merge_tool_messages(mut request: ChatRequest) -> ChatRequest {
    let mut merged: Vec<Message> = Vec::new();
    for m in request.messages {
        match merged.last_mut() {
            Some(last) if last.role == Role::Tool && m.role == Role::Tool => last.content.extend(m.content),
            _ => merged.push(m),
        }
    }
    request.messages = merged;
    request
}
