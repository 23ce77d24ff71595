//! Anthropic request ↔ neutral [`ChatRequest`]: `decode_request` for the gateway, `to_wire` for the client.

use serde_json::{Map, Value, json};
use switchyard::{
    ChatOptions, ChatRequest, Error, Message, Part, Role, ToolCall, ToolChoice, ToolDefinition, ToolResult,
    types::{Continuation, ContinuationStyle, Extra, ImageSource},
};

use super::wire::{
    Block, MessagesRequest, SystemPrompt, Tool, ToolResultContent, WireContent, WireImageSource, WireMessage, WireRole,
    WireToolChoice,
};
use crate::config::ProviderKind;
use crate::fields;
use crate::json_error::invalid_body;

/// The `extra.origin` of requests decoded from the Anthropic shape.
pub const ORIGIN: &str = "anthropic";

/// A decoded request plus the streaming flag the gateway needs (it is not part of [`ChatRequest`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    /// The neutral request.
    pub request: ChatRequest,
    /// `stream: true`.
    pub stream: bool,
}

/// Decodes an Anthropic Messages body; errors are InvalidRequest naming the field.
///
/// `max_tokens` may be absent here: the target's configured value fills it in when the request is sent.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, Error> {
    decode(body).map(|d| d.request)
}

/// Like [`decode_request`], also returning `stream`.
pub fn decode(body: &[u8]) -> Result<DecodedRequest, Error> {
    // The common request by the quick reader; whatever it leaves, serde reads (errors included).
    let wire = match super::request_scan::scan(body) {
        Some(wire) => wire,
        None => crate::json_in::from_body(body).map_err(|e| invalid_body::<MessagesRequest>(body, &e))?,
    };
    let stream = wire.stream.unwrap_or(false);
    Ok(DecodedRequest { request: from_wire(wire)?, stream })
}

/// Converts a parsed Anthropic request to the neutral form.
pub fn from_wire(wire: MessagesRequest) -> Result<ChatRequest, Error> {
    super::contract::check(&wire)?;
    let system = match wire.system {
        None => None,
        Some(SystemPrompt::Text(text)) => Some(text),
        Some(SystemPrompt::Blocks(blocks)) => Some(blocks.into_iter().map(|b| b.text).collect::<Vec<_>>().join("\n\n")),
    };
    let mut messages = Vec::new();
    for (i, m) in wire.messages.into_iter().enumerate() {
        let at = format!("messages[{i}]");
        let blocks = match m.content {
            WireContent::Text(text) => vec![Block::Text { text }],
            WireContent::Blocks(blocks) => blocks,
        };
        let mut results = Vec::new();
        let mut content = Vec::new();
        for (j, block) in blocks.into_iter().enumerate() {
            let at = format!("{at}.content[{j}]");
            match block {
                Block::Text { text } => content.push(Part::Text { text }),
                Block::Image { source } => content.push(Part::Image { source: neutral_image(source) }),
                Block::ToolUse { id, name, input } => {
                    if m.role == WireRole::User {
                        return Err(Error::invalid_request("tool_use blocks belong in assistant turns", Some(&at)));
                    }
                    content.push(Part::ToolCall(ToolCall { id, name, arguments: input.to_string() }));
                }
                Block::ToolResult { tool_use_id, content: result, is_error } => {
                    if m.role == WireRole::Assistant {
                        return Err(Error::invalid_request("tool_result blocks belong in user turns", Some(&at)));
                    }
                    results.push(Part::ToolResult(ToolResult {
                        tool_call_id: tool_use_id,
                        content: tool_result_text(result, &at)?,
                        is_error: is_error.unwrap_or(false),
                    }));
                }
                Block::Thinking { .. } | Block::RedactedThinking {} | Block::Unsupported => {
                    return Err(Error::invalid_request(
                        "this content block type cannot be carried through the gateway (supported: text, image, \
                         tool_use, tool_result)",
                        Some(&format!("{at}.type")),
                    ));
                }
            }
        }
        if !results.is_empty() {
            messages.push(Message { role: Role::Tool, content: results });
        }
        if !content.is_empty() || m.role == WireRole::Assistant {
            let role = if m.role == WireRole::User { Role::User } else { Role::Assistant };
            messages.push(Message { role, content });
        }
    }
    let tools = wire
        .tools
        .into_iter()
        .map(|t| ToolDefinition { name: t.name, description: t.description, parameters: t.input_schema })
        .collect();
    let (tool_choice, parallel_tool_calls) = match wire.tool_choice {
        None => (None, None),
        Some(WireToolChoice::Auto { disable_parallel_tool_use: d }) => (Some(ToolChoice::Auto), d.map(|d| !d)),
        Some(WireToolChoice::Any { disable_parallel_tool_use: d }) => (Some(ToolChoice::Required), d.map(|d| !d)),
        Some(WireToolChoice::Tool { name, disable_parallel_tool_use: d }) => {
            (Some(ToolChoice::Tool { name }), d.map(|d| !d))
        }
        Some(WireToolChoice::None {}) => (Some(ToolChoice::None), None),
    };
    Ok(ChatRequest {
        model: wire.model,
        system,
        messages,
        tools,
        tool_choice,
        options: ChatOptions {
            temperature: wire.temperature,
            top_p: wire.top_p,
            max_tokens: wire.max_tokens,
            stop: wire.stop_sequences.unwrap_or_default(),
            parallel_tool_calls,
        },
        extra: Extra { origin: Some(ORIGIN.to_owned()), fields: wire.extra },
        deadline: None,
        continuation: None,
    })
}

fn neutral_image(source: WireImageSource) -> ImageSource {
    match source {
        WireImageSource::Base64 { media_type, data } => ImageSource::Base64 { media_type, data },
        WireImageSource::Url { url } => ImageSource::Url { url },
    }
}

fn tool_result_text(content: Option<ToolResultContent>, at: &str) -> Result<String, Error> {
    match content {
        None => Ok(String::new()),
        Some(ToolResultContent::Text(text)) => Ok(text),
        Some(ToolResultContent::Blocks(blocks)) => {
            let mut out = String::new();
            for (k, block) in blocks.into_iter().enumerate() {
                match block {
                    Block::Text { text } => out.push_str(&text),
                    _ => {
                        return Err(Error::invalid_request(
                            "only text is supported inside tool_result content",
                            Some(&format!("{at}.content[{k}]")),
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// Builds the body an Anthropic provider receives for `model`; `max_tokens` fills in a missing limit.
pub fn to_wire(request: &ChatRequest, model: &str, max_tokens: u32, stream: bool) -> Result<MessagesRequest, Error> {
    let mut messages: Vec<WireMessage> = Vec::new();
    for (i, m) in request.messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let mut blocks = Vec::new();
        for (j, part) in m.content.iter().enumerate() {
            match part {
                Part::Text { text } if text.is_empty() => {} // the API rejects empty text blocks
                Part::Text { text } => blocks.push(Block::Text { text: text.clone() }),
                Part::Image { source } => blocks.push(Block::Image { source: wire_image(source) }),
                Part::ToolCall(call) => {
                    let input: Value = if call.arguments.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&call.arguments).map_err(|e| {
                            Error::invalid_request(
                                format!("tool call arguments are not valid JSON: {e}"),
                                Some(&format!("{at}.content[{j}].arguments")),
                            )
                        })?
                    };
                    blocks.push(Block::ToolUse { id: call.id.clone(), name: call.name.clone(), input });
                }
                Part::ToolResult(r) => blocks.push(Block::ToolResult {
                    tool_use_id: r.tool_call_id.clone(),
                    content: Some(ToolResultContent::Text(r.content.clone())),
                    is_error: r.is_error.then_some(true),
                }),
            }
        }
        let role = if m.role == Role::Assistant { WireRole::Assistant } else { WireRole::User };
        if blocks.is_empty() {
            continue;
        }
        // Tool results and the user's next words share one user turn, results first, as the API requires.
        match messages.last_mut() {
            Some(WireMessage { role: last, content: WireContent::Blocks(prev) }) if *last == role => {
                prev.extend(blocks);
            }
            _ => messages.push(WireMessage { role, content: WireContent::Blocks(blocks) }),
        }
    }
    // A continuation of a partial answer: as a prefill, the last (assistant) turn as it is, which the API
    // accepts only without trailing whitespace; as an instruction, a user turn after it asks for the rest.
    match &request.continuation {
        Some(Continuation { style: ContinuationStyle::Prefill, .. }) => {
            if let Some(WireMessage { role: WireRole::Assistant, content: WireContent::Blocks(blocks) }) =
                messages.last_mut()
                && let Some(Block::Text { text }) = blocks.last_mut()
            {
                text.truncate(text.trim_end().len());
            }
        }
        Some(Continuation { style: ContinuationStyle::Instruction, instruction }) => messages.push(WireMessage {
            role: WireRole::User,
            content: WireContent::Blocks(vec![Block::Text { text: instruction.clone() }]),
        }),
        None => {}
    }
    let tools = request
        .tools
        .iter()
        .map(|t| Tool { name: t.name.clone(), description: t.description.clone(), input_schema: t.parameters.clone() })
        .collect::<Vec<_>>();
    let disable = request.options.parallel_tool_calls.map(|p| !p);
    let tool_choice = match &request.tool_choice {
        Some(ToolChoice::Auto) => Some(WireToolChoice::Auto { disable_parallel_tool_use: disable }),
        Some(ToolChoice::Required) => Some(WireToolChoice::Any { disable_parallel_tool_use: disable }),
        Some(ToolChoice::Tool { name }) => {
            Some(WireToolChoice::Tool { name: name.clone(), disable_parallel_tool_use: disable })
        }
        Some(ToolChoice::None) => Some(WireToolChoice::None {}),
        None if disable == Some(true) && !tools.is_empty() => {
            Some(WireToolChoice::Auto { disable_parallel_tool_use: Some(true) })
        }
        None => None,
    };
    let o = &request.options;
    let mut system = request.system.clone();
    let extra = forwardable_extra(request, max_tokens, &mut system)?;
    // Thinking takes no sampling changes (the API refuses a temperature other than 1 with it).
    let thinking = extra.contains_key("thinking") && fields::origin(request) != Some(ProviderKind::Anthropic);
    Ok(MessagesRequest {
        model: model.to_owned(),
        max_tokens: Some(o.max_tokens.unwrap_or(max_tokens)),
        messages,
        system: system.map(SystemPrompt::Text),
        tools,
        tool_choice,
        temperature: if thinking { None } else { o.temperature },
        top_p: if thinking { None } else { o.top_p },
        stop_sequences: if o.stop.is_empty() { None } else { Some(o.stop.clone()) },
        stream: stream.then_some(true),
        extra,
    })
}

fn wire_image(source: &ImageSource) -> WireImageSource {
    match source {
        ImageSource::Base64 { media_type, data } => {
            WireImageSource::Base64 { media_type: media_type.clone(), data: data.clone() }
        }
        ImageSource::Url { url } => match url.strip_prefix("data:").and_then(|rest| rest.split_once(";base64,")) {
            Some((media_type, data)) => {
                WireImageSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() }
            }
            None => WireImageSource::Url { url: url.clone() },
        },
    }
}

/// Extra fields an Anthropic target receives ([`fields::forward`]), with the OpenAI fields Anthropic
/// expresses. `system` takes what has no field of its own (JSON mode as an instruction).
fn forwardable_extra(
    request: &ChatRequest,
    max_tokens: u32,
    system: &mut Option<String>,
) -> Result<Map<String, Value>, Error> {
    fields::forward(request, ProviderKind::Anthropic, |key, value, out| {
        match key {
            "user" => {
                out.insert("metadata".into(), json!({ "user_id": value }));
            }
            "response_format" => structured_output(value, out, system)?,
            "reasoning_effort" => {
                if let Some(thinking) = thinking_for(value, request, max_tokens) {
                    out.insert("thinking".into(), thinking);
                }
            }
            // `max_completion_tokens` is already carried by `options.max_tokens`.
            _ => {}
        }
        Ok(())
    })
}

/// OpenAI `response_format` as Anthropic structured output: `json_schema` becomes `output_config.format`;
/// `json_object` (JSON without a schema, which the Messages API has no mode for) becomes an instruction.
fn structured_output(value: &Value, out: &mut Map<String, Value>, system: &mut Option<String>) -> Result<(), Error> {
    match value.get("type").and_then(Value::as_str) {
        Some("json_schema") => {
            let Some(schema) = value.pointer("/json_schema/schema") else {
                return Err(Error::invalid_request(
                    "a json_schema response_format needs `json_schema.schema`",
                    Some("response_format.json_schema.schema"),
                ));
            };
            out.insert("output_config".into(), json!({ "format": { "type": "json_schema", "schema": schema } }));
        }
        Some("json_object") => {
            let note = "Answer with one JSON object and nothing else.";
            *system = Some(match system.take() {
                Some(text) => format!("{text}\n\n{note}"),
                None => note.to_owned(),
            });
        }
        _ => {}
    }
    Ok(())
}

/// `reasoning_effort` as a thinking budget that fits under `max_tokens` (the API needs at least 1024
/// tokens and a budget below `max_tokens`, and no forced tool choice); `None` when there is no room.
fn thinking_for(value: &Value, request: &ChatRequest, max_tokens: u32) -> Option<Value> {
    let budget: u32 = match value.as_str()? {
        "low" => 1024,
        "medium" => 4096,
        "high" | "xhigh" => 16384,
        _ => return None,
    };
    let limit = request.options.max_tokens.unwrap_or(max_tokens);
    let budget = budget.min(limit.saturating_sub(1));
    let forced = matches!(request.tool_choice, Some(ToolChoice::Required | ToolChoice::Tool { .. }));
    (budget >= 1024 && !forced).then(|| json!({ "type": "enabled", "budget_tokens": budget }))
}
