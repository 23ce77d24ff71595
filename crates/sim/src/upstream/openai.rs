//! The OpenAI chat-completions shapes: `POST /v1/chat/completions` with `Authorization: Bearer KEY`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use super::conversation::{Answer, Conversation, Last, Tool, text_of, words_in};
use super::wire::{Failure, Frames, Parsed, StreamOptions, Wire, bearer, data_event, json_string};

/// The OpenAI API.
pub(crate) struct OpenAi;

static NO_SCHEMA: Value = Value::Null;
/// The schema of JSON mode (`response_format: json_object`): any object.
static ANY_OBJECT: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| serde_json::json!({"type": "object"}));

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Appends a chunk's `obfuscation` text: OpenAI's is random, of a length that evens out the chunks' sizes; this
/// one is letters and digits picked by the chunk's place, 1 to 16 of them (a delta of `len` bytes and its
/// padding together come to a multiple of 16).
fn padding(chunk: usize, len: usize, out: &mut String) {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for i in 0..16 - len % 16 {
        out.push(char::from(ALPHABET[(chunk * 7 + i * 13) % ALPHABET.len()]));
    }
}

fn error(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

impl Wire for OpenAi {
    const REQUEST_ID_HEADER: &'static str = "x-request-id";

    fn sent_key(headers: &HeaderMap) -> Option<&str> {
        bearer(headers)
    }

    fn read<'a>(request: &'a Value, _headers: &HeaderMap) -> Result<Parsed<'a>, Failure> {
        let Some(model) = request.get("model").and_then(Value::as_str) else {
            return Err(Failure::bad_request("you must provide a model parameter", Some("model")));
        };
        let Some(messages) = request.get("messages").and_then(Value::as_array) else {
            return Err(Failure::bad_request("Missing required parameter: 'messages'.", Some("messages")));
        };
        if messages.is_empty() {
            return Err(Failure::bad_request(
                "Invalid 'messages': empty array. Expected at least 1 message.",
                Some("messages"),
            ));
        }
        let mut input_tokens = 0;
        for message in messages {
            input_tokens += message.get("content").map_or(0, words_in);
            if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
                input_tokens += calls.len() as u64;
            }
        }
        let last = messages.last().map_or(Last::Other, |m| {
            let content = m.get("content").unwrap_or(&Value::Null);
            match m.get("role").and_then(Value::as_str) {
                Some("tool") => Last::ToolResult(text_of(content)),
                Some("user") => Last::User(text_of(content)),
                _ => Last::Other,
            }
        });
        let tool_choice = request.get("tool_choice");
        let tools: Vec<Tool<'_>> = request
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|tool| tool.get("function"))
            .filter_map(|f| {
                Some(Tool {
                    name: f.get("name")?.as_str()?,
                    description: f.get("description").and_then(Value::as_str).unwrap_or(""),
                    schema: f.get("parameters").unwrap_or(&NO_SCHEMA),
                })
            })
            .filter(|_| tool_choice.and_then(Value::as_str) != Some("none"))
            .collect();
        // The question is the last user message; what followed it are the calls made for it and their results.
        let asked = messages.iter().rposition(|m| m.get("role").and_then(Value::as_str) == Some("user"));
        let question = asked.map_or_else(String::new, |i| text_of(messages[i].get("content").unwrap_or(&Value::Null)));
        let (mut called, mut results) = (Vec::new(), Vec::new());
        for m in &messages[asked.map_or(0, |i| i + 1)..] {
            for call in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                called.extend(
                    call.get("function").and_then(|f| f.get("name")).and_then(Value::as_str).map(str::to_owned),
                );
            }
            if m.get("role").and_then(Value::as_str) == Some("tool") {
                results.push(text_of(m.get("content").unwrap_or(&Value::Null)));
            }
        }
        let forced_tool = match tool_choice {
            Some(Value::String(s)) if s == "required" => Some(None),
            Some(choice @ Value::Object(_)) => {
                Some(choice.get("function").and_then(|f| f.get("name")).and_then(Value::as_str))
            }
            _ => None,
        };
        let output_schema = match request.pointer("/response_format/type").and_then(Value::as_str) {
            Some("json_schema") => request.pointer("/response_format/json_schema/schema"),
            Some("json_object") => Some(&*ANY_OBJECT),
            _ => None,
        };
        let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let option = |name: &str| request.get("stream_options").and_then(|o| o.get(name)).and_then(Value::as_bool);
        let stream_options = StreamOptions {
            include_usage: option("include_usage").unwrap_or(false),
            include_obfuscation: option("include_obfuscation").unwrap_or(true),
        };
        Ok(Parsed {
            model,
            stream,
            stream_options,
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
            Failure::Status(429) => error(
                "Rate limit reached for requests (simulated). Please try again in 1s.",
                "requests",
                None,
                Some("rate_limit_exceeded"),
            ),
            Failure::Status(401) => error(
                "Incorrect API key provided (simulated 401).",
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
            ),
            Failure::Status(400) => error("Invalid request (simulated 400).", "invalid_request_error", None, None),
            Failure::Status(503) => {
                error("The engine is currently overloaded, please try again later.", "server_error", None, None)
            }
            Failure::Status(529) => error("The server is overloaded (simulated 529).", "server_error", None, None),
            Failure::Status(_) => error(
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
                None,
            ),
            Failure::ContextLength => error(
                "This model's maximum context length is 128000 tokens. However, your messages resulted in 200000 \
                 tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                Some("messages"),
                Some("context_length_exceeded"),
            ),
            Failure::ContentFilter => error(
                "The response was filtered due to the prompt triggering Azure OpenAI's content management policy \
                 (simulated).",
                "invalid_request_error",
                Some("prompt"),
                Some("content_filter"),
            ),
            Failure::MissingKey => error(
                "You didn't provide an API key. You need to provide your API key in an Authorization header using \
                 Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
                None,
            ),
            Failure::WrongKey => error(
                "Incorrect API key provided. Check the key the simulated upstream was started with.",
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
            ),
            Failure::BadRequest { message, param } => error(message, "invalid_request_error", *param, None),
        }
    }

    fn complete(id: u64, model: &str, answer: &Answer, input_tokens: u64) -> Vec<u8> {
        let call_id;
        let (content, tool_calls, finish_reason) = match answer {
            Answer::Text(text) => (Some(text.as_str()), None, "stop"),
            Answer::ToolCall { name, arguments } => {
                call_id = format!("call_sim{id}");
                let call = WireToolCall { id: &call_id, kind: "function", function: WireFunction { name, arguments } };
                (None, Some([call]), "tool_calls")
            }
        };
        let output = answer.output_tokens();
        let completion = Completion {
            id: format!("chatcmpl-sim{id}"),
            object: "chat.completion",
            created: now(),
            model,
            choices: [Choice {
                index: 0,
                message: WireMessage { role: "assistant", content, tool_calls, refusal: None },
                logprobs: None,
                finish_reason,
            }],
            usage: WireUsage::new(input_tokens, output),
            system_fingerprint: None,
        };
        serde_json::to_vec(&completion).unwrap_or_default()
    }

    fn stream(id: u64, model: &str, answer: &Answer, input_tokens: u64, options: StreamOptions) -> Frames {
        let StreamOptions { include_usage, include_obfuscation } = options;
        let chunk_id = format!("chatcmpl-sim{id}");
        let created = now();
        // Chunks are written by hand around serde-escaped pieces: a stream has many, and a `Value` per chunk
        // would dominate the simulator's cost. The field order is OpenAI's.
        let prefix = format!(
            r#"data: {{"id":"{chunk_id}","object":"chat.completion.chunk","created":{created},"model":{},"system_fingerprint":null,"choices":[{{"index":0,"delta":"#,
            json_string(model)
        );
        let mut count = 0;
        let mut chunk = |delta: &str, finish: &str| {
            let mut out = String::with_capacity(prefix.len() + delta.len() + 100);
            out.push_str(&prefix);
            out.push_str(delta);
            out.push_str(r#","logprobs":null,"finish_reason":"#);
            out.push_str(finish);
            out.push_str("}]");
            if include_usage {
                out.push_str(r#","usage":null"#);
            }
            if include_obfuscation {
                out.push_str(r#","obfuscation":""#);
                padding(count, delta.len(), &mut out);
                out.push('"');
            }
            out.push_str("}\n\n");
            count += 1;
            Bytes::from(out)
        };
        let mut frames = Frames::default();
        let finish = match answer {
            Answer::Text(_) => {
                frames.head.push(chunk(r#"{"role":"assistant","content":"","refusal":null}"#, "null"));
                for piece in answer.pieces() {
                    frames.content.push(chunk(&format!(r#"{{"content":{}}}"#, json_string(piece)), "null"));
                }
                r#""stop""#
            }
            Answer::ToolCall { name, .. } => {
                let header = json!({
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "index": 0,
                        "id": format!("call_sim{id}"),
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }],
                    "refusal": null,
                });
                frames.content.push(chunk(&header.to_string(), "null"));
                for piece in answer.pieces() {
                    let delta = format!(
                        r#"{{"tool_calls":[{{"index":0,"function":{{"arguments":{}}}}}]}}"#,
                        json_string(piece)
                    );
                    frames.content.push(chunk(&delta, "null"));
                }
                r#""tool_calls""#
            }
        };
        frames.tail.push(chunk("{}", finish));
        if include_usage {
            // A struct, not `json!`: a `Value`'s keys come out sorted, and OpenAI's come in this order.
            frames.tail.push(data_event(&UsageChunk {
                id: &chunk_id,
                object: "chat.completion.chunk",
                created,
                model,
                system_fingerprint: None,
                choices: [],
                usage: WireUsage::new(input_tokens, answer.output_tokens()),
            }));
        }
        frames.tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
        frames
    }

    fn stream_error_event() -> Bytes {
        data_event(&Self::stream_error_body())
    }

    fn stream_error_body() -> Value {
        error("The server is overloaded (simulated in-stream error).", "server_error", None, None)
    }

    fn bad_json_event() -> Bytes {
        Bytes::from_static(b"data: {\"id\": \"chatcmpl-sim\", \"choices\": [{\"delta\": \n\ndata: [DONE]\n\n")
    }

    fn refusal(_id: u64, _model: &str, _stream: bool) -> Result<Vec<u8>, Failure> {
        // Azure OpenAI's way: a 400 whose code is `content_filter`.
        Err(Failure::ContentFilter)
    }

    fn malformed_event() -> Bytes {
        Bytes::from_static(b"data: {\"id\":\"chatcmpl-sim\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"cont\n\n")
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: WireUsage,
    system_fingerprint: Option<()>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: WireMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[WireToolCall<'a>; 1]>,
    refusal: Option<()>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// A stream's last chunk, with the usage, in OpenAI's field order.
#[derive(Serialize)]
struct UsageChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: Option<()>,
    choices: [(); 0],
    usage: WireUsage,
}

#[derive(Serialize)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl WireUsage {
    fn new(input: u64, output: u64) -> Self {
        WireUsage { prompt_tokens: input, completion_tokens: output, total_tokens: input + output }
    }
}
