//! A continuation request (ChatRequest::continuation), as each vendor receives it: a prefill is the partial
//! answer as the last, assistant, message (Anthropic: without trailing whitespace); an instruction keeps
//! that assistant turn and adds a user turn asking for the rest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use switchyard::{
    ChatRequest, Message,
    types::{Continuation, ContinuationStyle},
};
use switchyard_providers::{anthropic, openai};

fn continuation(style: ContinuationStyle) -> ChatRequest {
    let mut request = ChatRequest::user("Tell me a story.");
    request.messages.push(Message::assistant("Once upon a time, there was a "));
    request.continuation = Some(Continuation { style, ..Continuation::default() });
    request
}

fn anthropic_messages(style: ContinuationStyle) -> Vec<Value> {
    let wire = anthropic::request_to_wire(&continuation(style), "claude", 1024, true).unwrap();
    serde_json::to_value(&wire).unwrap()["messages"].as_array().unwrap().clone()
}

fn openai_messages(style: ContinuationStyle) -> Vec<Value> {
    let wire = openai::request_to_wire(&continuation(style), "gpt-4o", true).unwrap();
    serde_json::to_value(&wire).unwrap()["messages"].as_array().unwrap().clone()
}

fn roles(messages: &[Value]) -> Vec<&str> {
    messages.iter().map(|m| m["role"].as_str().unwrap()).collect()
}

#[test]
fn anthropic_gets_a_prefill_with_trailing_whitespace_trimmed() {
    let messages = anthropic_messages(ContinuationStyle::Prefill);
    assert_eq!(roles(&messages), ["user", "assistant"]);
    assert_eq!(messages[1]["content"], json!([{"type": "text", "text": "Once upon a time, there was a"}]));
}

#[test]
fn anthropic_gets_an_instruction_as_a_user_turn_after_the_partial_answer() {
    let messages = anthropic_messages(ContinuationStyle::Instruction);
    assert_eq!(roles(&messages), ["user", "assistant", "user"]);
    let instruction = messages[2]["content"][0]["text"].as_str().unwrap();
    assert!(instruction.contains("Continue it exactly where it stopped"), "{instruction}");
}

#[test]
fn openai_gets_a_prefill_as_a_trailing_assistant_message() {
    let messages = openai_messages(ContinuationStyle::Prefill);
    assert_eq!(roles(&messages), ["user", "assistant"]);
    assert_eq!(messages[1]["content"], "Once upon a time, there was a ");
}

#[test]
fn openai_keeps_the_assistant_turn_and_adds_an_instruction_to_continue() {
    let messages = openai_messages(ContinuationStyle::Instruction);
    assert_eq!(roles(&messages), ["user", "assistant", "user"]);
    assert!(messages[2]["content"].as_str().unwrap().contains("Continue it exactly where it stopped"));
}

#[test]
fn without_the_marker_nothing_is_added() {
    let mut request = continuation(ContinuationStyle::Instruction);
    request.continuation = None;
    let wire = openai::request_to_wire(&request, "gpt-4o", true).unwrap();
    assert_eq!(serde_json::to_value(&wire).unwrap()["messages"].as_array().unwrap().len(), 2);
    let wire = anthropic::request_to_wire(&request, "claude", 1024, true).unwrap();
    assert_eq!(serde_json::to_value(&wire).unwrap()["messages"].as_array().unwrap().len(), 2);
}
