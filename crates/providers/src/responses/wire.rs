//! OpenAI Responses API wire types the gateway writes: the `response` object, its output items and the
//! streaming events (names and fields as the OpenAI API reference defines them).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `POST /v1/responses` body. Item-level fields stay JSON values: the decoder walks them to name the
/// exact path of what it cannot take.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponsesRequest {
    /// Route name or target id.
    #[serde(default)]
    pub model: String,
    /// A string, or a list of input items.
    #[serde(default)]
    pub input: Option<Value>,
    /// The system prompt.
    #[serde(default)]
    pub instructions: Option<String>,
    /// Tools; only `function` tools can be served.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    /// `"none" | "auto" | "required"` or `{"type": "function", "name": …}`.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// `{format, verbosity}`.
    #[serde(default)]
    pub text: Option<TextConfig>,
    /// Token limit.
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Stream the answer as SSE events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Whether several tool calls may come in one turn.
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// `{effort, summary}`.
    #[serde(default)]
    pub reasoning: Option<Reasoning>,
    /// Key-value pairs; echoed, and sent as chat `metadata`.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Stored state: refused (the gateway is stateless).
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// Stored conversation: refused.
    #[serde(default)]
    pub conversation: Option<Value>,
    /// `true` asks to store the response: refused.
    #[serde(default)]
    pub store: Option<bool>,
    /// `true` runs the response in the background to poll later: refused.
    #[serde(default)]
    pub background: Option<bool>,
    /// A stored prompt template: refused.
    #[serde(default)]
    pub prompt: Option<Value>,
    /// End-user id (chat's `user`).
    #[serde(default)]
    pub user: Option<Value>,
    /// End-user id for abuse detection.
    #[serde(default)]
    pub safety_identifier: Option<Value>,
    /// Prompt-cache key.
    #[serde(default)]
    pub prompt_cache_key: Option<Value>,
    /// Processing tier.
    #[serde(default)]
    pub service_tier: Option<Value>,
}

/// `text`: the output format and verbosity.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TextConfig {
    /// `{"type": "text" | "json_object" | "json_schema", …}`.
    #[serde(default)]
    pub format: Option<Value>,
    /// `low | medium | high`.
    #[serde(default)]
    pub verbosity: Option<Value>,
}

/// `reasoning`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Reasoning {
    /// `minimal | low | medium | high`.
    #[serde(default)]
    pub effort: Option<Value>,
}

/// The request parameters a `response` object repeats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Echo {
    /// `instructions` as sent.
    pub instructions: Option<String>,
    /// `tools` as sent.
    pub tools: Vec<Value>,
    /// `tool_choice` as sent (`"auto"` when not).
    pub tool_choice: Value,
    /// `parallel_tool_calls` (`true` when not sent).
    pub parallel_tool_calls: bool,
    /// `temperature` as sent.
    pub temperature: Option<f64>,
    /// `top_p` as sent.
    pub top_p: Option<f64>,
    /// `max_output_tokens` as sent.
    pub max_output_tokens: Option<u32>,
    /// `text` (`{"format": {"type": "text"}}` when not sent).
    pub text: Value,
    /// `metadata` (`{}` when not sent).
    pub metadata: Value,
}

impl Default for Echo {
    fn default() -> Self {
        Self {
            instructions: None,
            tools: Vec::new(),
            tool_choice: json!("auto"),
            parallel_tool_calls: true,
            temperature: None,
            top_p: None,
            max_output_tokens: None,
            text: json!({ "format": { "type": "text" } }),
            metadata: json!({}),
        }
    }
}

/// `status` of a response or an output item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Still being written.
    InProgress,
    /// Finished.
    Completed,
    /// Stopped early (token limit, content filter).
    Incomplete,
    /// Ended by an error.
    Failed,
}

/// The `response` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseObject {
    /// `resp_…`.
    pub id: String,
    /// Always `response`.
    pub object: &'static str,
    /// Unix seconds.
    pub created_at: u64,
    /// Where the response stands.
    pub status: Status,
    /// Set when it failed.
    pub error: Option<ResponseError>,
    /// Set when it is incomplete.
    pub incomplete_details: Option<IncompleteDetails>,
    /// The serving target's model.
    pub model: String,
    /// Messages and function calls, in order.
    pub output: Vec<OutputItem>,
    /// Token counts (once known).
    pub usage: Option<ResponseUsage>,
    /// Always null: the gateway keeps no state.
    pub previous_response_id: Option<String>,
    /// Always false: the gateway keeps no state.
    pub store: bool,
    /// The request parameters it repeats.
    #[serde(flatten)]
    pub echo: Echo,
}

/// `error` of a failed response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseError {
    /// `server_error` or `rate_limit_exceeded`.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

/// `incomplete_details`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    pub reason: &'static str,
}

/// `usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ResponseUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Breakdown of the prompt tokens.
    pub input_tokens_details: InputTokensDetails,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Breakdown of the generated tokens.
    pub output_tokens_details: OutputTokensDetails,
    /// Both.
    pub total_tokens: u64,
}

/// `usage.input_tokens_details`: the neutral usage does not split cached tokens out, so 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct InputTokensDetails {
    /// Tokens read from the prompt cache.
    pub cached_tokens: u64,
}

/// `usage.output_tokens_details`: the neutral usage does not split reasoning tokens out, so 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct OutputTokensDetails {
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
}

/// One item of `output`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// An assistant message.
    Message {
        /// `msg_…`.
        id: String,
        /// Always `assistant`.
        role: &'static str,
        /// The item's status.
        status: Status,
        /// Its text parts.
        content: Vec<OutputText>,
    },
    /// A call of a function tool.
    FunctionCall {
        /// `fc_…`.
        id: String,
        /// The id the caller's `function_call_output` names.
        call_id: String,
        /// The function.
        name: String,
        /// Its arguments as JSON text.
        arguments: String,
        /// The item's status.
        status: Status,
    },
}

/// An `output_text` content part.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename = "output_text")]
pub struct OutputText {
    /// The text.
    pub text: String,
    /// Always empty: no citations.
    pub annotations: Vec<Value>,
    /// Always empty: no log probabilities.
    pub logprobs: Vec<Value>,
}

impl OutputText {
    /// A part holding `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), annotations: Vec::new(), logprobs: Vec::new() }
    }
}

/// One streaming event, without its `sequence_number` (see [`Frame`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    /// The response exists, `in_progress`.
    #[serde(rename = "response.created")]
    Created {
        /// The response so far.
        response: ResponseObject,
    },
    /// The model is writing.
    #[serde(rename = "response.in_progress")]
    InProgress {
        /// The response so far.
        response: ResponseObject,
    },
    /// A new output item.
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        /// Its position in `output`.
        output_index: usize,
        /// The item, empty.
        item: OutputItem,
    },
    /// An output item is finished.
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        /// Its position in `output`.
        output_index: usize,
        /// The whole item.
        item: OutputItem,
    },
    /// A new content part of a message.
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        /// The message's id.
        item_id: String,
        /// The message's position in `output`.
        output_index: usize,
        /// The part's position in the message.
        content_index: usize,
        /// The part, empty.
        part: OutputText,
    },
    /// A content part is finished.
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        /// The message's id.
        item_id: String,
        /// The message's position in `output`.
        output_index: usize,
        /// The part's position in the message.
        content_index: usize,
        /// The whole part.
        part: OutputText,
    },
    /// More text.
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        /// The message's id.
        item_id: String,
        /// The message's position in `output`.
        output_index: usize,
        /// The part's position in the message.
        content_index: usize,
        /// The new text.
        delta: String,
        /// Always empty.
        logprobs: Vec<Value>,
    },
    /// The whole text of a part.
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        /// The message's id.
        item_id: String,
        /// The message's position in `output`.
        output_index: usize,
        /// The part's position in the message.
        content_index: usize,
        /// The whole text.
        text: String,
        /// Always empty.
        logprobs: Vec<Value>,
    },
    /// More of a function call's arguments.
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        /// The call item's id.
        item_id: String,
        /// Its position in `output`.
        output_index: usize,
        /// The new JSON text.
        delta: String,
    },
    /// A function call's whole arguments.
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        /// The call item's id.
        item_id: String,
        /// Its position in `output`.
        output_index: usize,
        /// The function's name.
        name: String,
        /// The whole JSON text.
        arguments: String,
    },
    /// The response is finished.
    #[serde(rename = "response.completed")]
    Completed {
        /// The whole response, with usage.
        response: ResponseObject,
    },
    /// The response stopped early (token limit, content filter).
    #[serde(rename = "response.incomplete")]
    Incomplete {
        /// The whole response, with usage.
        response: ResponseObject,
    },
    /// The response failed after the stream began.
    #[serde(rename = "response.failed")]
    Failed {
        /// The response so far, with its `error`.
        response: ResponseObject,
    },
}

/// An event as sent: with its place in the stream.
#[derive(Debug, Serialize)]
pub struct Frame<'a> {
    /// The event.
    #[serde(flatten)]
    pub event: &'a Event,
    /// 0, 1, 2… within the stream.
    pub sequence_number: u64,
}

impl Event {
    /// The event's `type`, also its SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Created { .. } => "response.created",
            Event::InProgress { .. } => "response.in_progress",
            Event::OutputItemAdded { .. } => "response.output_item.added",
            Event::OutputItemDone { .. } => "response.output_item.done",
            Event::ContentPartAdded { .. } => "response.content_part.added",
            Event::ContentPartDone { .. } => "response.content_part.done",
            Event::OutputTextDelta { .. } => "response.output_text.delta",
            Event::OutputTextDone { .. } => "response.output_text.done",
            Event::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Event::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            Event::Completed { .. } => "response.completed",
            Event::Incomplete { .. } => "response.incomplete",
            Event::Failed { .. } => "response.failed",
        }
    }
}
