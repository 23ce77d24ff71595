//! A Responses API request as the neutral [`ChatRequest`]: `input` (text or items), `instructions`, function
//! tools, `tool_choice`, `text.format` (as chat-completions' `response_format`, so every target kind gets the
//! structured-output translation chat has) and the sampling options. The gateway is stateless, so what needs
//! stored state (`previous_response_id`, `store: true`, `conversation`, `item_reference`, …) is refused.

use serde_json::{Map, Value, json};
use switchyard::{
    ChatOptions, ChatRequest, Error, Message, Part, Role, ToolCall, ToolChoice, ToolDefinition, ToolResult,
    types::Extra,
};

use super::wire::{Echo, ResponsesRequest, TextConfig};
use crate::json_error::invalid_body;
use crate::openai::request::{image_source, tool_choice_mode};

/// A decoded request: the neutral request, `stream`, and what the answer repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    /// The neutral request; its vendor fields are chat-completions fields (origin `openai`).
    pub request: ChatRequest,
    /// `stream: true`.
    pub stream: bool,
    /// The parameters the `response` object repeats.
    pub echo: Echo,
}

/// Why a request needs state the gateway does not keep.
const STATELESS: &str = "the gateway is stateless and stores no responses";

/// Decodes a `POST /v1/responses` body; errors are InvalidRequest naming the field.
pub fn decode(body: &[u8]) -> Result<DecodedRequest, Error> {
    let wire: ResponsesRequest =
        crate::json_in::from_body(body).map_err(|e| invalid_body::<ResponsesRequest>(body, &e))?;
    refuse_state(&wire)?;
    let mut system: Vec<String> = wire.instructions.iter().filter(|s| !s.is_empty()).cloned().collect();
    let messages = match &wire.input {
        None | Some(Value::Null) => {
            return Err(Error::invalid_request(
                "missing: send the input as a string or a list of items, e.g. \"Hello\"",
                Some("input"),
            ));
        }
        Some(Value::String(text)) => vec![Message::user(text.clone())],
        Some(Value::Array(items)) => input_items(items, &mut system)?,
        Some(_) => return Err(Error::invalid_request("expected a string or a list of items", Some("input"))),
    };
    if messages.is_empty() {
        return Err(Error::invalid_request("no input items besides instructions: send at least one", Some("input")));
    }
    let tools = wire.tools.as_deref().unwrap_or_default().iter().enumerate().map(tool).collect::<Result<_, _>>()?;
    let tool_choice = wire.tool_choice.as_ref().map(tool_choice).transpose()?;
    let mut extra = Map::new();
    let format = wire.text.as_ref().and_then(|t| t.format.as_ref());
    if let Some(response_format) = format.map(response_format).transpose()?.flatten() {
        extra.insert("response_format".into(), response_format);
    }
    if let Some(verbosity) = wire.text.as_ref().and_then(|t| t.verbosity.clone()) {
        extra.insert("verbosity".into(), verbosity);
    }
    if let Some(effort) = wire.reasoning.as_ref().and_then(|r| r.effort.clone()) {
        extra.insert("reasoning_effort".into(), effort);
    }
    if let Some(n) = wire.max_output_tokens {
        // Chat-completions' name for it, which reasoning models require (as the chat decoder keeps it).
        extra.insert("max_completion_tokens".into(), json!(n));
    }
    let same_name = [
        ("metadata", &wire.metadata),
        ("user", &wire.user),
        ("safety_identifier", &wire.safety_identifier),
        ("prompt_cache_key", &wire.prompt_cache_key),
        ("service_tier", &wire.service_tier),
    ];
    for (key, value) in same_name {
        if let Some(value) = value.clone().filter(|v| !v.is_null()) {
            extra.insert(key.into(), value);
        }
    }
    let echo = Echo {
        instructions: wire.instructions.clone(),
        tools: wire.tools.clone().unwrap_or_default(),
        tool_choice: wire.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        parallel_tool_calls: wire.parallel_tool_calls.unwrap_or(true),
        temperature: wire.temperature,
        top_p: wire.top_p,
        max_output_tokens: wire.max_output_tokens,
        text: echo_text(wire.text.as_ref()),
        metadata: wire.metadata.clone().unwrap_or(json!({})),
    };
    let request = ChatRequest {
        model: wire.model,
        system: if system.is_empty() { None } else { Some(system.join("\n\n")) },
        messages,
        tools,
        tool_choice,
        options: ChatOptions {
            temperature: wire.temperature,
            top_p: wire.top_p,
            max_tokens: wire.max_output_tokens,
            stop: Vec::new(),
            parallel_tool_calls: wire.parallel_tool_calls,
        },
        extra: Extra { origin: Some(crate::openai::ORIGIN.to_owned()), fields: extra },
        deadline: None,
        continuation: None,
    };
    Ok(DecodedRequest { request, stream: wire.stream.unwrap_or(false), echo })
}

/// `text` as the answer repeats it: the format (plain text when none was sent) and the verbosity, if sent.
fn echo_text(text: Option<&TextConfig>) -> Value {
    let format = text.and_then(|t| t.format.clone()).filter(|f| !f.is_null()).unwrap_or(json!({"type": "text"}));
    let mut echo = json!({ "format": format });
    if let Some(verbosity) = text.and_then(|t| t.verbosity.clone()).filter(|v| !v.is_null()) {
        echo["verbosity"] = verbosity;
    }
    echo
}

/// Refuses what needs stored responses, conversations, prompts or background runs.
fn refuse_state(wire: &ResponsesRequest) -> Result<(), Error> {
    let refuse = |field: &str, what: &str| {
        Err(Error::invalid_request(format!("{what} needs server state: {STATELESS}; {}", RESEND), Some(field)))
    };
    if wire.previous_response_id.is_some() {
        return refuse("previous_response_id", "previous_response_id");
    }
    if wire.conversation.as_ref().is_some_and(|c| !c.is_null()) {
        return refuse("conversation", "a conversation");
    }
    if wire.store == Some(true) {
        return refuse("store", "store: true");
    }
    if wire.background == Some(true) {
        return refuse("background", "background: true");
    }
    if wire.prompt.as_ref().is_some_and(|p| !p.is_null()) {
        return refuse("prompt", "a stored prompt");
    }
    Ok(())
}

/// What a stateless client does instead.
const RESEND: &str = "send the whole conversation as `input` items (and leave `store` out or false)";

/// The input items as messages; `system` and `developer` messages join the system prompt.
fn input_items(items: &[Value], system: &mut Vec<String>) -> Result<Vec<Message>, Error> {
    let mut messages: Vec<Message> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
        match kind {
            "message" => {
                let role = item.get("role").and_then(Value::as_str).unwrap_or("");
                let content = item.get("content").unwrap_or(&Value::Null);
                match role {
                    "system" | "developer" => system.push(text_only(content, &at)?),
                    "user" => messages.push(Message { role: Role::User, content: parts(content, &at, true)? }),
                    "assistant" => {
                        let content = parts(content, &at, false)?;
                        assistant(&mut messages).content.extend(content);
                    }
                    other => {
                        return Err(Error::invalid_request(
                            format!("unknown role {other:?}: expected user, assistant, system or developer"),
                            Some(&format!("{at}.role")),
                        ));
                    }
                }
            }
            "function_call" => {
                let call = ToolCall {
                    id: string_field(item, "call_id", &at)?,
                    name: string_field(item, "name", &at)?,
                    arguments: item.get("arguments").and_then(Value::as_str).unwrap_or("{}").to_owned(),
                };
                assistant(&mut messages).content.push(Part::ToolCall(call));
            }
            "function_call_output" => {
                let tool_call_id = string_field(item, "call_id", &at)?;
                let content = match item.get("output") {
                    Some(Value::String(text)) => text.clone(),
                    Some(output @ Value::Array(_)) => text_only(output, &format!("{at}.output"))?,
                    _ => {
                        return Err(Error::invalid_request(
                            "expected a string or a list of input_text parts",
                            Some(&format!("{at}.output")),
                        ));
                    }
                };
                messages.push(Message {
                    role: Role::Tool,
                    content: vec![Part::ToolResult(ToolResult { tool_call_id, content, is_error: false })],
                });
            }
            // A reasoning item carries one vendor's (encrypted) reasoning, which no other model can read; the
            // answer does not depend on it being sent back.
            "reasoning" => {}
            "item_reference" => {
                return Err(Error::invalid_request(
                    format!("an item_reference needs server state: {STATELESS}; {RESEND}"),
                    Some(&format!("{at}.type")),
                ));
            }
            other => {
                return Err(Error::invalid_request(
                    format!(
                        "input items of type {other:?} are not supported: send message, function_call and \
                         function_call_output items"
                    ),
                    Some(&format!("{at}.type")),
                ));
            }
        }
    }
    Ok(messages)
}

/// The assistant message that a function call or assistant text joins: the last message when it is the
/// assistant's (so text and calls of one turn stay one message, as Anthropic requires), else a new one.
fn assistant(messages: &mut Vec<Message>) -> &mut Message {
    if messages.last().is_none_or(|m| m.role != Role::Assistant) {
        messages.push(Message { role: Role::Assistant, content: Vec::new() });
    }
    let last = messages.len() - 1;
    &mut messages[last]
}

fn string_field(item: &Value, key: &str, at: &str) -> Result<String, Error> {
    match item.get(key).and_then(Value::as_str) {
        Some(s) => Ok(s.to_owned()),
        None => Err(Error::invalid_request("missing; this field is required", Some(&format!("{at}.{key}")))),
    }
}

/// A message's content as text (system and developer messages, tool outputs).
fn text_only(content: &Value, at: &str) -> Result<String, Error> {
    let mut out = String::new();
    for part in parts(content, at, false)? {
        if let Part::Text { text } = part {
            out.push_str(&text);
        }
    }
    Ok(out)
}

/// A message's content parts: a string, or `input_text` / `output_text` / `refusal` parts, and `input_image`
/// parts when `images` (user messages).
fn parts(content: &Value, at: &str, images: bool) -> Result<Vec<Part>, Error> {
    let list = match content {
        Value::String(text) => return Ok(vec![Part::Text { text: text.clone() }]),
        Value::Array(list) => list,
        _ => {
            return Err(Error::invalid_request(
                "expected a string or a list of content parts ({\"type\": \"input_text\", \"text\": \"…\"})",
                Some(&format!("{at}.content")),
            ));
        }
    };
    let mut out = Vec::new();
    for (j, part) in list.iter().enumerate() {
        let here = format!("{at}.content[{j}]");
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "input_text" | "output_text" | "text" => out.push(Part::Text { text: string_field(part, "text", &here)? }),
            "refusal" => out.push(Part::Text { text: string_field(part, "refusal", &here)? }),
            "input_image" if images => {
                let Some(url) = part.get("image_url").and_then(Value::as_str) else {
                    return Err(Error::invalid_request(
                        "an input_image needs `image_url` (a URL or a data: URL); file ids need stored files, \
                         which this gateway does not keep",
                        Some(&format!("{here}.image_url")),
                    ));
                };
                out.push(Part::Image {
                    source: image_source(url)
                        .map_err(|m| Error::invalid_request(m, Some(&format!("{here}.image_url"))))?,
                });
            }
            other => {
                return Err(Error::invalid_request(
                    format!("content parts of type {other:?} are not supported here: send input_text parts"),
                    Some(&format!("{here}.type")),
                ));
            }
        }
    }
    Ok(out)
}

/// A Responses tool: flat `{type: "function", name, description, parameters, strict}`.
fn tool((i, t): (usize, &Value)) -> Result<ToolDefinition, Error> {
    let at = format!("tools[{i}]");
    let kind = t.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "function" {
        return Err(Error::invalid_request(
            format!("tool type {kind:?} is not supported: only function tools (built-in tools run at OpenAI)"),
            Some(&format!("{at}.type")),
        ));
    }
    let parameters = match t.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => {
            return Err(Error::invalid_request(
                "not an object: send a JSON Schema object, e.g. {\"type\": \"object\", \"properties\": {}}",
                Some(&format!("{at}.parameters")),
            ));
        }
    };
    Ok(ToolDefinition {
        name: string_field(t, "name", &at)?,
        description: t.get("description").and_then(Value::as_str).map(str::to_owned),
        parameters,
    })
}

fn tool_choice(choice: &Value) -> Result<ToolChoice, Error> {
    let bad = || {
        Error::invalid_request(
            "expected \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"name\": \"…\"}",
            Some("tool_choice"),
        )
    };
    match choice {
        Value::String(mode) => tool_choice_mode(mode).ok_or_else(bad),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            match o.get("name").and_then(Value::as_str) {
                Some(name) => Ok(ToolChoice::Tool { name: name.to_owned() }),
                None => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// `text.format` as chat-completions' `response_format` (`None` for plain text).
fn response_format(format: &Value) -> Result<Option<Value>, Error> {
    if format.is_null() {
        return Ok(None);
    }
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({ "type": "json_object" }))),
        Some("json_schema") => {
            let Some(schema) = format.get("schema").filter(|s| s.is_object()) else {
                return Err(Error::invalid_request(
                    "a json_schema format needs `schema` (a JSON Schema object)",
                    Some("text.format.schema"),
                ));
            };
            let mut json_schema = json!({
                "name": format.get("name").and_then(Value::as_str).unwrap_or("output"),
                "schema": schema,
            });
            for key in ["strict", "description"] {
                if let Some(value) = format.get(key).filter(|v| !v.is_null()) {
                    json_schema[key] = value.clone();
                }
            }
            Ok(Some(json!({ "type": "json_schema", "json_schema": json_schema })))
        }
        _ => Err(Error::invalid_request(
            "expected {\"type\": \"text\"}, {\"type\": \"json_object\"} or {\"type\": \"json_schema\", \"name\": …, \
             \"schema\": {…}}",
            Some("text.format"),
        )),
    }
}
