//! OpenAI request ↔ neutral [`ChatRequest`]: `decode_request` for the gateway, `to_wire` for the client.

use serde_json::{Map, Value, json};
use switchyard::{
    ChatOptions, ChatRequest, Error, Message, Part, Role, ToolCall, ToolChoice, ToolDefinition, ToolResult,
    types::{Continuation, ContinuationStyle, Extra, ImageSource},
};

use super::wire::{
    ChatCompletionRequest, ContentPart, FunctionCall, FunctionDefinition, ImageUrl, MessageContent, NamedFunction,
    NamedToolChoice, RequestMessage, Stop, StreamOptions, Tool, WireRole, WireToolCall, WireToolChoice,
};
use crate::config::ProviderKind;
use crate::fields;
use crate::json_error::invalid_body;

/// The `extra.origin` of requests decoded from the OpenAI shape.
pub const ORIGIN: &str = "openai";

/// A decoded request plus the streaming flags the gateway needs (they are not part of [`ChatRequest`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    /// The neutral request.
    pub request: ChatRequest,
    /// `stream: true`.
    pub stream: bool,
    /// `stream_options.include_usage: true`.
    pub include_usage: bool,
}

/// Decodes an OpenAI chat-completions body; errors are InvalidRequest naming the field.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, Error> {
    decode(body).map(|d| d.request)
}

/// Like [`decode_request`], also returning `stream` and `stream_options.include_usage`.
pub fn decode(body: &[u8]) -> Result<DecodedRequest, Error> {
    // The common request by the quick reader; whatever it leaves, serde reads (errors included).
    let wire = match super::request_scan::scan(body) {
        Some(wire) => wire,
        None => crate::json_in::from_body(body).map_err(|e| invalid_body::<ChatCompletionRequest>(body, &e))?,
    };
    let stream = wire.stream.unwrap_or(false);
    let include_usage = wire.stream_options.as_ref().is_some_and(|o| o.include_usage);
    Ok(DecodedRequest { request: from_wire(wire)?, stream, include_usage })
}

/// `messages[i]`, the path an error names: written only when there is an error (a string per message was a
/// tenth of reading a short request).
struct MessageAt(usize);

impl std::fmt::Display for MessageAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "messages[{}]", self.0)
    }
}

/// Converts a parsed OpenAI request to the neutral form.
pub fn from_wire(wire: ChatCompletionRequest) -> Result<ChatRequest, Error> {
    super::contract::check(&wire)?;
    let mut system: Vec<String> = Vec::new();
    let mut messages = Vec::new();
    for (i, m) in wire.messages.into_iter().enumerate() {
        let at = MessageAt(i);
        match m.role {
            WireRole::System | WireRole::Developer => system.push(text_only(m.content, &at)?),
            WireRole::User => messages.push(Message { role: Role::User, content: parts(m.content, &at)? }),
            WireRole::Assistant => {
                let mut content = match m.content {
                    Some(c) => parts(Some(c), &at)?,
                    None => Vec::new(),
                };
                for call in m.tool_calls.unwrap_or_default() {
                    content.push(Part::ToolCall(ToolCall {
                        id: call.id,
                        name: call.function.name,
                        arguments: call.function.arguments,
                    }));
                }
                messages.push(Message { role: Role::Assistant, content });
            }
            WireRole::Tool => {
                let Some(tool_call_id) = m.tool_call_id else {
                    return Err(Error::invalid_request(
                        "a tool message needs `tool_call_id`",
                        Some(&format!("{at}.tool_call_id")),
                    ));
                };
                let content = text_only(m.content, &at)?;
                messages.push(Message {
                    role: Role::Tool,
                    content: vec![Part::ToolResult(ToolResult { tool_call_id, content, is_error: false })],
                });
            }
        }
    }
    let mut tools = Vec::new();
    for (i, t) in wire.tools.into_iter().enumerate() {
        if t.kind != "function" {
            return Err(Error::invalid_request(
                format!("tool type `{}` is not supported; only `function`", t.kind),
                Some(&format!("tools[{i}].type")),
            ));
        }
        tools.push(ToolDefinition {
            name: t.function.name,
            description: t.function.description,
            parameters: t.function.parameters.unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    let tool_choice = match wire.tool_choice {
        None => None,
        Some(WireToolChoice::Mode(mode)) => Some(tool_choice_mode(&mode).ok_or_else(|| {
            Error::invalid_request(
                format!("unknown tool_choice `{mode}`; expected none, auto, required or a function"),
                Some("tool_choice"),
            )
        })?),
        Some(WireToolChoice::Named(named)) => Some(ToolChoice::Tool { name: named.function.name }),
    };
    let mut extra = wire.extra;
    if let Some(n) = wire.max_completion_tokens {
        // Kept so an OpenAI target gets the same parameter name back (reasoning models reject `max_tokens`).
        extra.insert("max_completion_tokens".into(), json!(n));
    }
    let stop = match wire.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    Ok(ChatRequest {
        model: wire.model,
        system: if system.is_empty() { None } else { Some(system.join("\n\n")) },
        messages,
        tools,
        tool_choice,
        options: ChatOptions {
            temperature: wire.temperature,
            top_p: wire.top_p,
            max_tokens: wire.max_completion_tokens.or(wire.max_tokens),
            stop,
            parallel_tool_calls: wire.parallel_tool_calls,
        },
        extra: Extra { origin: Some(ORIGIN.to_owned()), fields: extra },
        deadline: None,
        continuation: None,
    })
}

fn text_only(content: Option<MessageContent>, at: &MessageAt) -> Result<String, Error> {
    match content {
        None => Ok(String::new()),
        Some(MessageContent::Text(text)) => Ok(text),
        Some(MessageContent::Parts(parts)) => {
            let mut out = String::new();
            for (j, part) in parts.into_iter().enumerate() {
                match part {
                    ContentPart::Text { text } => out.push_str(&text),
                    ContentPart::ImageUrl { .. } => {
                        return Err(Error::invalid_request(
                            "images are only allowed in user messages",
                            Some(&format!("{at}.content[{j}]")),
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

fn parts(content: Option<MessageContent>, at: &MessageAt) -> Result<Vec<Part>, Error> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(vec![Part::Text { text }]),
        Some(MessageContent::Parts(wire_parts)) => {
            let mut out = Vec::new();
            for (j, part) in wire_parts.into_iter().enumerate() {
                out.push(match part {
                    ContentPart::Text { text } => Part::Text { text },
                    ContentPart::ImageUrl { image_url } => Part::Image {
                        source: image_source(&image_url.url).map_err(|m| {
                            Error::invalid_request(m, Some(&format!("{at}.content[{j}].image_url.url")))
                        })?,
                    },
                });
            }
            Ok(out)
        }
    }
}

/// An OpenAI `tool_choice` mode (`auto`, `none`, `required`); `None` for another word. The Responses API
/// uses the same words.
pub(crate) fn tool_choice_mode(mode: &str) -> Option<ToolChoice> {
    match mode {
        "auto" => Some(ToolChoice::Auto),
        "none" => Some(ToolChoice::None),
        "required" => Some(ToolChoice::Required),
        _ => None,
    }
}

/// An OpenAI image URL; `data:<media>;base64,<data>` becomes inline bytes so an Anthropic target can take
/// it. The Responses API takes the same URLs.
pub(crate) fn image_source(url: &str) -> Result<ImageSource, &'static str> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Ok(ImageSource::Url { url: url.to_owned() });
    };
    match rest.split_once(";base64,") {
        Some((media_type, data)) => {
            Ok(ImageSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() })
        }
        None => Err("a data: image URL must be base64 (`data:<type>;base64,<data>`)"),
    }
}

/// Builds the body an OpenAI-compatible provider receives for `model`.
pub fn to_wire(request: &ChatRequest, model: &str, stream: bool) -> Result<ChatCompletionRequest, Error> {
    let mut messages = Vec::new();
    if let Some(system) = &request.system {
        messages.push(RequestMessage {
            role: WireRole::System,
            content: Some(MessageContent::Text(system.clone())),
            tool_calls: None,
            tool_call_id: None,
        });
    }
    for (i, m) in request.messages.iter().enumerate() {
        push_message(&mut messages, m, i)?;
    }
    // A continuation of a partial answer: as a prefill (servers such as vLLM and DeepSeek continue a
    // trailing assistant message), the partial answer is the last message as it is; as an instruction, a
    // user turn after it asks for the rest.
    if let Some(Continuation { style: ContinuationStyle::Instruction, instruction }) = &request.continuation {
        messages.push(RequestMessage {
            role: WireRole::User,
            content: Some(MessageContent::Text(instruction.clone())),
            tool_calls: None,
            tool_call_id: None,
        });
    }
    let tools = request
        .tools
        .iter()
        .map(|t| Tool {
            kind: "function".into(),
            function: FunctionDefinition {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: Some(t.parameters.clone()),
            },
        })
        .collect();
    let tool_choice = request.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Auto => WireToolChoice::Mode("auto".into()),
        ToolChoice::None => WireToolChoice::Mode("none".into()),
        ToolChoice::Required => WireToolChoice::Mode("required".into()),
        ToolChoice::Tool { name } => WireToolChoice::Named(NamedToolChoice {
            kind: "function".into(),
            function: NamedFunction { name: name.clone() },
        }),
    });
    let (extra, max_tokens) = extra_and_max_tokens(request)?;
    let o = &request.options;
    Ok(ChatCompletionRequest {
        model: model.to_owned(),
        messages,
        tools,
        tool_choice,
        temperature: o.temperature,
        top_p: o.top_p,
        max_tokens,
        max_completion_tokens: None,
        stop: if o.stop.is_empty() { None } else { Some(Stop::Many(o.stop.clone())) },
        parallel_tool_calls: o.parallel_tool_calls,
        stream: stream.then_some(true),
        stream_options: stream.then_some(StreamOptions { include_usage: true }),
        extra,
    })
}

/// The extra fields an OpenAI target receives, and the `max_tokens` written beside them: a caller that said
/// `max_completion_tokens` keeps that name (among the extra fields), with the limit as it is now.
pub(super) fn extra_and_max_tokens(request: &ChatRequest) -> Result<(Map<String, Value>, Option<u32>), Error> {
    let mut extra = forwardable_extra(request)?;
    let limit = request.options.max_tokens;
    if let (Some(limit), Some(value)) = (limit, extra.get_mut("max_completion_tokens")) {
        *value = json!(limit);
    }
    let max_tokens = if extra.contains_key("max_completion_tokens") { None } else { limit };
    Ok((extra, max_tokens))
}

fn push_message(out: &mut Vec<RequestMessage>, m: &Message, i: usize) -> Result<(), Error> {
    // The usual message, one text part: its text as it is, without a list of parts to build and join.
    if let [Part::Text { text }] = m.content.as_slice() {
        let role = if m.role == Role::Assistant { WireRole::Assistant } else { WireRole::User };
        out.push(RequestMessage {
            role,
            content: Some(MessageContent::Text(text.clone())),
            tool_calls: None,
            tool_call_id: None,
        });
        return Ok(());
    }
    let at = MessageAt(i);
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    let mut results = Vec::new();
    let mut has_image = false;
    for part in &m.content {
        match part {
            Part::Text { text } => texts.push(ContentPart::Text { text: text.clone() }),
            Part::Image { source } => {
                has_image = true;
                let url = match source {
                    ImageSource::Url { url } => url.clone(),
                    ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
                };
                texts.push(ContentPart::ImageUrl { image_url: ImageUrl { url, detail: None } });
            }
            Part::ToolCall(call) => calls.push(WireToolCall {
                id: call.id.clone(),
                kind: "function".into(),
                function: FunctionCall { name: call.name.clone(), arguments: call.arguments.clone() },
            }),
            // OpenAI has no `is_error`: the content itself describes the failure.
            Part::ToolResult(r) => results.push((r.tool_call_id.clone(), r.content.clone())),
        }
    }
    for (tool_call_id, content) in results {
        out.push(RequestMessage {
            role: WireRole::Tool,
            content: Some(MessageContent::Text(content)),
            tool_calls: None,
            tool_call_id: Some(tool_call_id),
        });
    }
    let role = match m.role {
        Role::Assistant => WireRole::Assistant,
        Role::User | Role::Tool => WireRole::User,
    };
    if role == WireRole::Assistant && has_image {
        return Err(Error::invalid_request("OpenAI assistant messages cannot hold images", Some(&at.to_string())));
    }
    if role == WireRole::User && !calls.is_empty() {
        return Err(Error::invalid_request("tool calls belong in assistant messages", Some(&at.to_string())));
    }
    if texts.is_empty() && calls.is_empty() {
        return Ok(());
    }
    let content = if texts.is_empty() {
        None
    } else if !has_image {
        let joined: String =
            texts.iter().map(|p| if let ContentPart::Text { text } = p { text.as_str() } else { "" }).collect();
        Some(MessageContent::Text(joined))
    } else {
        Some(MessageContent::Parts(texts))
    };
    out.push(RequestMessage {
        role,
        content,
        tool_calls: if calls.is_empty() { None } else { Some(calls) },
        tool_call_id: None,
    });
    Ok(())
}

/// Extra fields an OpenAI target receives ([`fields::forward`]), with the Anthropic fields OpenAI expresses.
fn forwardable_extra(request: &ChatRequest) -> Result<Map<String, Value>, Error> {
    fields::forward(request, ProviderKind::OpenAi, |key, value, out| {
        match key {
            "metadata" => {
                if let Some(user) = value.get("user_id") {
                    out.insert("user".into(), user.clone());
                }
            }
            "output_config" => {
                if let Some(schema) = value.get("format").filter(|f| f["type"] == "json_schema").map(|f| &f["schema"]) {
                    out.insert(
                        "response_format".into(),
                        json!({ "type": "json_schema", "json_schema": { "name": "output", "schema": schema, "strict": true } }),
                    );
                }
                if let Some(effort) = value.get("effort").and_then(Value::as_str) {
                    out.insert("reasoning_effort".into(), json!(openai_effort(effort)));
                }
            }
            "thinking" => {
                if let Some(budget) =
                    value.get("budget_tokens").and_then(Value::as_u64).filter(|_| value["type"] == "enabled")
                {
                    let effort = match budget {
                        ..4096 => "low",
                        4096..16384 => "medium",
                        _ => "high",
                    };
                    out.entry("reasoning_effort").or_insert_with(|| json!(effort));
                }
            }
            _ => {}
        }
        Ok(())
    })
}

/// Anthropic's `output_config.effort` in OpenAI's `reasoning_effort` words.
fn openai_effort(effort: &str) -> &str {
    match effort {
        "max" | "xhigh" => "high",
        other => other,
    }
}
