//! OpenAI response ↔ neutral [`ChatResponse`]: `encode_response` for the gateway, `from_wire` for the client.

use std::borrow::Cow;

use switchyard::{ChatResponse, Error, FinishReason, Message, Part, Role, ToolCall, Usage};

use super::wire::{ChatCompletion, Choice, FunctionCall, ResponseMessage, WireToolCall, WireUsage};
use crate::ids::{new_id, unix_now};

/// The OpenAI name of a finish reason (a vendor-specific one becomes `stop`).
pub fn finish_reason_str(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::Other(_) => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// Reads an OpenAI finish reason.
pub fn parse_finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Usage in OpenAI's shape.
pub fn wire_usage(usage: Usage) -> WireUsage {
    WireUsage {
        prompt_tokens: usage.input_tokens,
        completion_tokens: usage.output_tokens,
        total_tokens: usage.input_tokens + usage.output_tokens,
    }
}

/// The OpenAI body for a neutral response, naming `model` (the name the caller asked for). It borrows from
/// `response`: writing it copies each string once, into the output.
pub fn encode_response<'a>(response: &'a ChatResponse, model: &'a str) -> ChatCompletion<'a> {
    let text = text_of(&response.message);
    let calls: Vec<WireToolCall> = response
        .message
        .tool_calls()
        .map(|c| WireToolCall {
            id: c.id.clone(),
            kind: "function".into(),
            function: FunctionCall { name: c.name.clone(), arguments: c.arguments.clone() },
        })
        .collect();
    ChatCompletion {
        id: if response.id.is_empty() { Cow::Owned(new_id("chatcmpl-")) } else { Cow::Borrowed(&response.id) },
        object: Cow::Borrowed("chat.completion"),
        created: unix_now(),
        model: Cow::Borrowed(model),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: Cow::Borrowed("assistant"),
                content: if text.is_empty() && !calls.is_empty() { None } else { Some(text) },
                tool_calls: if calls.is_empty() { None } else { Some(calls) },
                refusal: None,
            },
            finish_reason: Some(Cow::Borrowed(finish_reason_str(&response.finish_reason))),
            logprobs: None,
        }],
        usage: Some(wire_usage(response.usage)),
    }
}

/// The message's text parts joined; borrowed when there is one (the usual answer), so it is not copied.
fn text_of(message: &Message) -> Cow<'_, str> {
    let mut texts = message.content.iter().filter_map(|p| match p {
        Part::Text { text } => Some(text.as_str()),
        _ => None,
    });
    match (texts.next(), texts.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(only), None) => Cow::Borrowed(only),
        (Some(_), Some(_)) => Cow::Owned(message.text()),
    }
}

/// Reads an upstream OpenAI answer. A refusal or content-filter stop with no content is ContentFiltered.
pub fn from_wire(wire: ChatCompletion<'_>) -> Result<ChatResponse, Error> {
    let Some(choice) = wire.choices.into_iter().next() else {
        return Err(Error::invalid_response("the response has no choices"));
    };
    let mut content = Vec::new();
    if let Some(text) = choice.message.content.filter(|t| !t.is_empty()) {
        content.push(Part::Text { text: text.into_owned() });
    }
    for call in choice.message.tool_calls.unwrap_or_default() {
        content.push(Part::ToolCall(ToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        }));
    }
    let finish_reason = match choice.finish_reason.as_deref() {
        Some(reason) => parse_finish_reason(reason),
        None => return Err(Error::invalid_response("the response's choice has no finish_reason")),
    };
    if content.is_empty() && (finish_reason == FinishReason::ContentFilter || choice.message.refusal.is_some()) {
        let message = choice
            .message
            .refusal
            .map_or_else(|| "the provider's content filter stopped the answer".into(), Cow::into_owned);
        return Err(Error::content_filtered(message));
    }
    let usage = wire.usage.unwrap_or_default();
    Ok(ChatResponse {
        id: wire.id.into_owned(),
        model: wire.model.into_owned(),
        message: Message { role: Role::Assistant, content },
        finish_reason,
        usage: Usage { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens },
        served_by: None,
        attempts: Vec::new(),
    })
}
