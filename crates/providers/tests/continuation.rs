//! A continuation request (ChatRequest::continuation): Anthropic receives an assistant prefill without
//! trailing whitespace; OpenAI-compatible targets keep the assistant turn and get a user turn asking for the rest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use switchyard::{ChatRequest, Continuation, Message};
use switchyard_providers::{anthropic, openai};

fn continuation() -> ChatRequest {
    let mut request = ChatRequest::user("Tell me a story.");
    request.messages.push(Message::assistant("Once upon a time, there was a "));
    request.continuation = Some(Continuation::default());
    request
}

#[test]
fn anthropic_gets_the_partial_answer_as_a_prefill_with_trailing_whitespace_trimmed() {
    let wire = anthropic::request_to_wire(&continuation(), "claude", 1024, true).unwrap();
    let body: Value = serde_json::to_value(&wire).unwrap();
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"], json!([{"type": "text", "text": "Once upon a time, there was a"}]));
}

#[test]
fn openai_keeps_the_assistant_turn_and_adds_an_instruction_to_continue() {
    let wire = openai::request_to_wire(&continuation(), "gpt-4o", true).unwrap();
    let body: Value = serde_json::to_value(&wire).unwrap();
    let messages = body["messages"].as_array().unwrap();
    let roles: Vec<_> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert!(messages[2]["content"].as_str().unwrap().contains("Continue it exactly where it stopped"));
}

#[test]
fn without_the_marker_nothing_is_added() {
    let mut request = continuation();
    request.continuation = None;
    let wire = openai::request_to_wire(&request, "gpt-4o", true).unwrap();
    assert_eq!(serde_json::to_value(&wire).unwrap()["messages"].as_array().unwrap().len(), 2);
}
