//! The Anthropic Messages shapes: `POST /v1/messages` with `x-api-key`, `anthropic-version` and `max_tokens`.

use axum::http::HeaderMap;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use super::conversation::{Answer, Conversation, Last, Tool, text_of, words_in};
use super::wire::{Failure, Frames, Parsed, StreamOptions, Wire, json_string, named_event};

/// The Anthropic Messages API.
pub(crate) struct Anthropic;

static NO_SCHEMA: Value = Value::Null;

fn error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// The last message: a user turn carrying `tool_result` blocks is a tool result.
fn last_of(message: &Value) -> Last {
    if message.get("role").and_then(Value::as_str) != Some("user") {
        return Last::Other;
    }
    let content = message.get("content").unwrap_or(&Value::Null);
    if let Some(blocks) = content.as_array() {
        let results: Vec<&Value> =
            blocks.iter().filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result")).collect();
        if !results.is_empty() {
            let text = results.iter().filter_map(|b| b.get("content")).map(text_of).collect::<Vec<_>>().join("\n");
            return Last::ToolResult(text);
        }
    }
    Last::User(text_of(content))
}

impl Wire for Anthropic {
    const REQUEST_ID_HEADER: &'static str = "request-id";

    fn sent_key(headers: &HeaderMap) -> Option<&str> {
        headers.get("x-api-key").and_then(|v| v.to_str().ok())
    }

    fn read<'a>(request: &'a Value, headers: &HeaderMap) -> Result<Parsed<'a>, Failure> {
        if !headers.contains_key("anthropic-version") {
            return Err(Failure::bad_request("anthropic-version: header is required", None));
        }
        let Some(model) = request.get("model").and_then(Value::as_str) else {
            return Err(Failure::bad_request("model: Field required", Some("model")));
        };
        match request.get("max_tokens").and_then(Value::as_u64) {
            None => return Err(Failure::bad_request("max_tokens: Field required", Some("max_tokens"))),
            Some(0) => {
                return Err(Failure::bad_request(
                    "max_tokens: Input should be greater than or equal to 1",
                    Some("max_tokens"),
                ));
            }
            Some(_) => {}
        }
        let Some(messages) = request.get("messages").and_then(Value::as_array) else {
            return Err(Failure::bad_request("messages: Field required", Some("messages")));
        };
        if messages.is_empty() {
            return Err(Failure::bad_request("messages: at least one message is required", Some("messages")));
        }
        let mut input_tokens = request.get("system").map_or(0, words_in);
        for message in messages {
            input_tokens += message.get("content").map_or(0, words_in);
        }
        let last = messages.last().map_or(Last::Other, last_of);
        let tool_choice = request.get("tool_choice");
        let choice_type = tool_choice.and_then(|c| c.get("type")).and_then(Value::as_str);
        let tools: Vec<Tool<'_>> = request
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some(Tool {
                    name: t.get("name")?.as_str()?,
                    description: t.get("description").and_then(Value::as_str).unwrap_or(""),
                    schema: t.get("input_schema").unwrap_or(&NO_SCHEMA),
                })
            })
            .filter(|_| choice_type != Some("none"))
            .collect();
        // The question is the last user turn that is not a tool result; what followed it are the calls made for
        // it and their results.
        let asked = messages.iter().rposition(|m| matches!(last_of(m), Last::User(_)));
        let question = match asked.map(|i| last_of(&messages[i])) {
            Some(Last::User(text)) => text,
            _ => String::new(),
        };
        let (mut called, mut results) = (Vec::new(), Vec::new());
        for m in &messages[asked.map_or(0, |i| i + 1)..] {
            for block in m.get("content").and_then(Value::as_array).into_iter().flatten() {
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => called.extend(block.get("name").and_then(Value::as_str).map(str::to_owned)),
                    Some("tool_result") => results.push(text_of(block.get("content").unwrap_or(&Value::Null))),
                    _ => {}
                }
            }
        }
        let forced_tool = match choice_type {
            Some("any") => Some(None),
            Some("tool") => Some(tool_choice.and_then(|c| c.get("name")).and_then(Value::as_str)),
            _ => None,
        };
        let output_schema = request
            .pointer("/output_config/format")
            .filter(|f| f["type"] == "json_schema")
            .and_then(|f| f.get("schema"));
        Ok(Parsed {
            model,
            stream: request.get("stream").and_then(Value::as_bool).unwrap_or(false),
            stream_options: StreamOptions { include_usage: true, include_obfuscation: false },
            conversation: Conversation {
                input_tokens,
                last,
                question,
                tools,
                forced_tool,
                called,
                results,
                output_schema,
            },
        })
    }

    fn error_body(failure: &Failure) -> Value {
        match failure {
            Failure::Status(429) => {
                error("rate_limit_error", "Number of requests has exceeded your rate limit (simulated 429).")
            }
            Failure::Status(529) => error("overloaded_error", "Overloaded"),
            Failure::Status(401) => error("authentication_error", "invalid x-api-key (simulated 401)"),
            Failure::Status(400) => error("invalid_request_error", "Invalid request (simulated 400)."),
            Failure::Status(503) => error("api_error", "Service unavailable (simulated 503)."),
            Failure::Status(_) => error("api_error", "Internal server error"),
            Failure::ContextLength => {
                error("invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum")
            }
            Failure::ContentFilter => error("invalid_request_error", "Output blocked by content filtering policy"),
            Failure::MissingKey => error("authentication_error", "x-api-key header is required"),
            Failure::WrongKey => error("authentication_error", "invalid x-api-key"),
            Failure::BadRequest { message, .. } => error("invalid_request_error", message),
        }
    }

    fn complete(id: u64, model: &str, answer: &Answer, input_tokens: u64) -> Vec<u8> {
        let tool_id;
        let (content, stop_reason) = match answer {
            Answer::Text(text) if text.is_empty() => (Vec::new(), "end_turn"),
            Answer::Text(text) => (vec![Block::Text { text }], "end_turn"),
            Answer::ToolCall { name, arguments } => {
                tool_id = format!("toolu_sim{id}");
                let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
                (vec![Block::ToolUse { id: &tool_id, name, input }], "tool_use")
            }
        };
        let message = WireMessage {
            id: format!("msg_sim{id}"),
            kind: "message",
            role: "assistant",
            model,
            content,
            stop_reason,
            stop_sequence: None,
            usage: WireUsage { input_tokens, output_tokens: answer.output_tokens() },
        };
        serde_json::to_vec(&message).unwrap_or_default()
    }

    fn stream(id: u64, model: &str, answer: &Answer, input_tokens: u64, _options: StreamOptions) -> Frames {
        let mut frames = Frames::default();
        frames.head.push(named_event(
            "message_start",
            &json!({
                "type": "message_start",
                "message": {
                    "id": format!("msg_sim{id}"),
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                },
            }),
        ));
        let block = match answer {
            Answer::Text(text) if text.is_empty() => None,
            Answer::Text(_) => Some(json!({"type": "text", "text": ""})),
            Answer::ToolCall { name, .. } => {
                Some(json!({"type": "tool_use", "id": format!("toolu_sim{id}"), "name": name, "input": {}}))
            }
        };
        let ping = named_event("ping", &json!({"type": "ping"}));
        let stop = match answer {
            Answer::Text(_) => "end_turn",
            Answer::ToolCall { .. } => "tool_use",
        };
        if let Some(block) = block {
            frames.head.push(named_event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0, "content_block": block}),
            ));
            frames.head.push(ping);
            // Deltas are written by hand around serde-escaped pieces: a stream has many, and a `Value` per
            // delta would dominate the simulator's cost.
            let (kind, field) = match answer {
                Answer::Text(_) => ("text_delta", "text"),
                Answer::ToolCall { .. } => ("input_json_delta", "partial_json"),
            };
            for piece in answer.pieces() {
                frames.content.push(Bytes::from(format!(
                    "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"{kind}\",\"{field}\":{}}}}}\n\n",
                    json_string(piece)
                )));
            }
            frames.tail.push(named_event("content_block_stop", &json!({"type": "content_block_stop", "index": 0})));
        } else {
            frames.head.push(ping);
        }
        frames.tail.push(named_event(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": {"output_tokens": answer.output_tokens()},
            }),
        ));
        frames.tail.push(named_event("message_stop", &json!({"type": "message_stop"})));
        frames
    }

    fn stream_error_event() -> Bytes {
        named_event("error", &Self::stream_error_body())
    }

    fn stream_error_body() -> Value {
        error("overloaded_error", "Overloaded")
    }

    fn bad_json_event() -> Bytes {
        Bytes::from_static(b"event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\n\n")
    }

    fn refusal(id: u64, model: &str, stream: bool) -> Result<Vec<u8>, Failure> {
        // Claude's way: a 200 with no content and `stop_reason: "refusal"`.
        let message = json!({
            "id": format!("msg_sim{id}"), "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": if stream { Value::Null } else { json!("refusal") }, "stop_sequence": null,
            "usage": {"input_tokens": 1, "output_tokens": 0},
        });
        if !stream {
            return Ok(serde_json::to_vec(&message).unwrap_or_default());
        }
        let events = [
            named_event("message_start", &json!({"type": "message_start", "message": message})),
            named_event(
                "message_delta",
                &json!({"type": "message_delta", "delta": {"stop_reason": "refusal", "stop_sequence": null},
                        "usage": {"output_tokens": 0}}),
            ),
            named_event("message_stop", &json!({"type": "message_stop"})),
        ];
        Ok(events.concat())
    }

    fn malformed_event() -> Bytes {
        Bytes::from_static(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_del\n\n")
    }
}

#[derive(Serialize)]
struct WireMessage<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<()>,
    usage: WireUsage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: &'a str },
    ToolUse { id: &'a str, name: &'a str, input: Value },
}

#[derive(Serialize)]
struct WireUsage {
    input_tokens: u64,
    output_tokens: u64,
}
