//! Anthropic response ↔ neutral [`ChatResponse`]: `encode_response` for the gateway, `from_wire` for the client.

use switchyard::{ChatResponse, Error, FinishReason, Message, Part, Role, ToolCall, Usage};
use tracing::debug;

use super::wire::{Block, MessagesResponse, WireUsage};
use crate::ids::new_id;

/// The Anthropic `stop_reason` for a finish reason.
pub fn stop_reason_str(reason: &FinishReason) -> String {
    match reason {
        FinishReason::Stop => "end_turn".into(),
        FinishReason::Length => "max_tokens".into(),
        FinishReason::ToolCalls => "tool_use".into(),
        FinishReason::ContentFilter => "refusal".into(),
        FinishReason::Other(other) if other == "pause_turn" || other == "stop_sequence" => other.clone(),
        FinishReason::Other(_) => "end_turn".into(),
    }
}

/// Reads an Anthropic `stop_reason`.
pub fn parse_stop_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Usage in Anthropic's shape.
pub fn wire_usage(usage: Usage) -> WireUsage {
    WireUsage { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, ..WireUsage::default() }
}

/// A message's text and tool calls as Anthropic blocks.
pub(crate) fn blocks(message: &Message) -> Vec<Block> {
    let mut out = Vec::new();
    for part in &message.content {
        match part {
            Part::Text { text } if !text.is_empty() => out.push(Block::Text { text: text.clone() }),
            Part::ToolCall(call) => out.push(Block::ToolUse {
                id: call.id.clone(),
                name: call.name.clone(),
                input: tool_input(&call.arguments),
            }),
            _ => {}
        }
    }
    out
}

/// A tool call's arguments as the JSON `input` Anthropic expects (`{}` when empty; the raw text as a
/// string when the model produced invalid JSON, so nothing is lost).
pub(crate) fn tool_input(arguments: &str) -> serde_json::Value {
    if arguments.trim().is_empty() {
        return serde_json::json!({});
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| serde_json::Value::String(arguments.to_owned()))
}

/// The Anthropic body for a neutral response, naming `model` (the name the caller asked for).
pub fn encode_response(response: &ChatResponse, model: &str) -> MessagesResponse {
    MessagesResponse {
        id: if response.id.is_empty() { new_id("msg_") } else { response.id.clone() },
        kind: "message".into(),
        role: "assistant".into(),
        model: model.to_owned(),
        content: blocks(&response.message),
        stop_reason: Some(stop_reason_str(&response.finish_reason)),
        stop_sequence: None,
        usage: wire_usage(response.usage),
    }
}

/// Reads an upstream Anthropic answer. A refusal with no content is ContentFiltered.
pub fn from_wire(wire: MessagesResponse) -> Result<ChatResponse, Error> {
    let mut content = Vec::new();
    for block in wire.content {
        match block {
            Block::Text { text } => content.push(Part::Text { text }),
            Block::ToolUse { id, name, input } => {
                content.push(Part::ToolCall(ToolCall { id, name, arguments: input.to_string() }));
            }
            // Thinking and server-tool blocks have no neutral form; the answer itself is kept.
            other => {
                debug!(block = ?std::mem::discriminant(&other), "skipping an Anthropic block with no neutral form")
            }
        }
    }
    let Some(stop_reason) = wire.stop_reason else {
        return Err(Error::invalid_response("the message has no stop_reason"));
    };
    let finish_reason = parse_stop_reason(&stop_reason);
    if finish_reason == FinishReason::ContentFilter && content.is_empty() {
        return Err(Error::content_filtered("the model refused to answer (stop_reason `refusal`)"));
    }
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        message: Message { role: Role::Assistant, content },
        finish_reason,
        usage: Usage { input_tokens: wire.usage.total_input(), output_tokens: wire.usage.output_tokens },
        served_by: None,
        attempts: Vec::new(),
    })
}
