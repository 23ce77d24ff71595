//! OpenAI chat-completions wire types, for both directions (client and server).
//!
//! Unknown top-level fields land in `extra` so they can be passed through.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::borrowed::opt_cow;

/// `POST /chat/completions` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// Model or route name.
    #[serde(default)]
    pub model: String,
    /// The conversation, system messages included.
    pub messages: Vec<RequestMessage>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// `"none" | "auto" | "required"` or a named function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<WireToolChoice>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Token limit (older name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Token limit (newer name; reasoning models need it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Whether several tool calls may come in one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Stream the answer as SSE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `stop`: one string or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One sequence.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// A message's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireRole {
    /// System prompt.
    System,
    /// System prompt (newer name).
    Developer,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
}

/// One request message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestMessage {
    /// Who wrote it.
    pub role: WireRole,
    /// Text or parts; `null` for an assistant message with only tool calls.
    #[serde(default)]
    pub content: Option<MessageContent>,
    /// Tool calls (assistant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<WireToolCall>>,
    /// The call answered (tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// Message content: a string or a list of parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Typed parts.
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image by URL (`https:` or `data:`).
    ImageUrl {
        /// The image.
        image_url: ImageUrl,
    },
}

/// `image_url` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// `https:` or `data:` URL.
    pub url: String,
    /// `low | high | auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A tool call in a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireToolCall {
    /// Call id.
    pub id: String,
    /// Always `"function"`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function and its arguments.
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".to_owned()
}

/// Function name and JSON-text arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Function name.
    pub name: String,
    /// Arguments as JSON text.
    #[serde(default)]
    pub arguments: String,
}

/// A tool definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Always `"function"`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function.
    pub function: FunctionDefinition,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WireToolChoice {
    /// `"none" | "auto" | "required"`.
    Mode(String),
    /// `{"type":"function","function":{"name":…}}`.
    Named(NamedToolChoice),
}

/// A forced function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedToolChoice {
    /// Always `"function"`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function.
    pub function: NamedFunction,
}

/// A function by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedFunction {
    /// Its name.
    pub name: String,
}

/// A non-streamed answer. Its strings borrow from the body they were read from where they can (no escapes),
/// and the gateway's answer borrows from the neutral response: neither side copies a field to write or read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion<'a> {
    /// Response id.
    #[serde(default, borrow)]
    pub id: Cow<'a, str>,
    /// `"chat.completion"`.
    #[serde(default, borrow)]
    pub object: Cow<'a, str>,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// The model that answered.
    #[serde(default, borrow)]
    pub model: Cow<'a, str>,
    /// The choices (one unless `n > 1`).
    #[serde(borrow)]
    pub choices: Vec<Choice<'a>>,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<WireUsage>,
}

/// One choice of a non-streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice<'a> {
    /// Position.
    #[serde(default)]
    pub index: u32,
    /// The assistant message.
    #[serde(borrow)]
    pub message: ResponseMessage<'a>,
    /// `stop | length | tool_calls | content_filter | function_call`.
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub finish_reason: Option<Cow<'a, str>>,
    /// Always `null` here.
    #[serde(default)]
    pub logprobs: Option<Value>,
}

/// The assistant message of a choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage<'a> {
    /// `"assistant"`.
    #[serde(default = "assistant_role", borrow)]
    pub role: Cow<'a, str>,
    /// The text, or `null`.
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub content: Option<Cow<'a, str>>,
    /// Tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<WireToolCall>>,
    /// The model's refusal text.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow, deserialize_with = "opt_cow")]
    pub refusal: Option<Cow<'a, str>>,
}

fn assistant_role() -> Cow<'static, str> {
    Cow::Borrowed("assistant")
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireUsage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Generated tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: u64,
}

/// One streamed chunk; its strings borrow like [`ChatCompletion`]'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk<'a> {
    /// Response id (the same in every chunk).
    #[serde(default, borrow)]
    pub id: Cow<'a, str>,
    /// `"chat.completion.chunk"`.
    #[serde(default, borrow)]
    pub object: Cow<'a, str>,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// The model.
    #[serde(default, borrow)]
    pub model: Cow<'a, str>,
    /// Deltas (empty in the final usage chunk).
    #[serde(default, borrow)]
    pub choices: Vec<ChunkChoice<'a>>,
    /// Token counts (final chunk with `include_usage`; `null` before it).
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

/// One choice's delta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice<'a> {
    /// Position.
    #[serde(default)]
    pub index: u32,
    /// What is new.
    #[serde(default, borrow)]
    pub delta: Delta<'a>,
    /// Set on the last delta of the choice.
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub finish_reason: Option<Cow<'a, str>>,
}

/// A streamed delta.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta<'a> {
    /// `"assistant"` in the first delta.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow, deserialize_with = "opt_cow")]
    pub role: Option<Cow<'a, str>>,
    /// More text.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow, deserialize_with = "opt_cow")]
    pub content: Option<Cow<'a, str>>,
    /// Tool-call fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallChunk>>,
    /// Refusal text.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow, deserialize_with = "opt_cow")]
    pub refusal: Option<Cow<'a, str>>,
}

/// A tool-call fragment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallChunk {
    /// Which call (0-based within the message).
    pub index: u32,
    /// Call id (first fragment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `"function"` (first fragment).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name and argument text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionChunk>,
}

/// A function fragment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionChunk {
    /// Name (first fragment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The next piece of argument text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// OpenAI's error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// What went wrong.
    #[serde(default)]
    pub message: String,
    /// e.g. `invalid_request_error`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The offending field.
    #[serde(default)]
    pub param: Option<String>,
    /// e.g. `context_length_exceeded` (some compatible servers send a number).
    #[serde(default)]
    pub code: Option<Value>,
}
