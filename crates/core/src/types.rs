//! Provider-neutral request, response and stream-chunk types.
//!
//! These are the only shapes the engine sees; providers translate their wire formats to and from them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::attempt::Attempt;

/// Who wrote a message. The system prompt is not a message: it lives in [`ChatRequest::system`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// Results of tool calls, fed back to the model.
    Tool,
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageSource {
    /// An `http(s)` or `data:` URL.
    Url {
        /// The URL as the caller sent it.
        url: String,
    },
    /// Inline bytes, base64-encoded.
    Base64 {
        /// MIME type, e.g. `image/png`.
        media_type: String,
        /// Base64 data without a `data:` prefix.
        data: String,
    },
}

/// A call the model asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Id the matching [`ToolResult`] refers to.
    pub id: String,
    /// Name of the tool.
    pub name: String,
    /// Arguments as JSON text, exactly as the model produced them.
    pub arguments: String,
}

/// The outcome of a tool call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    /// Id of the [`ToolCall`] this answers.
    pub tool_call_id: String,
    /// What the tool returned (text, often JSON).
    pub content: String,
    /// True when the tool failed and `content` describes the failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

/// One piece of a message's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// An image (user messages).
    Image {
        /// Where the image is.
        source: ImageSource,
    },
    /// A tool call (assistant messages).
    ToolCall(ToolCall),
    /// A tool result (tool messages).
    ToolResult(ToolResult),
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its parts, in order.
    pub content: Vec<Part>,
}

impl Message {
    /// A user message with one text part.
    pub fn user(text: impl Into<String>) -> Self {
        Self { role: Role::User, content: vec![Part::Text { text: text.into() }] }
    }

    /// An assistant message with one text part.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self { role: Role::Assistant, content: vec![Part::Text { text: text.into() }] }
    }

    /// A tool message carrying one result.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>, is_error: bool) -> Self {
        Self {
            role: Role::Tool,
            content: vec![Part::ToolResult(ToolResult {
                tool_call_id: tool_call_id.into(),
                content: content.into(),
                is_error,
            })],
        }
    }

    /// All text parts joined together.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let Part::Text { text } = part {
                out.push_str(text);
            }
        }
        out
    }

    /// The tool calls in this message, in order.
    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.content.iter().filter_map(|p| match p {
            Part::ToolCall(call) => Some(call),
            _ => None,
        })
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// Name the model uses to call it.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of its arguments (an object schema).
    pub parameters: Value,
}

/// How the model should choose tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This tool.
    Tool {
        /// The tool's name.
        name: String,
    },
}

/// Sampling and length options shared by the APIs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatOptions {
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Upper bound on generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Whether the model may call several tools in one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
}

/// Vendor fields the neutral types do not model, carried through untouched.
///
/// `origin` names the API they came from (e.g. `"openai"`), so a provider for another API can
/// refuse what it cannot express instead of silently dropping it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extra {
    /// The API the fields were written for; `None` when built in code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The fields, by their wire name.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
}

impl Extra {
    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// A chat request in provider-neutral form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model or route the caller named; providers send their own configured model instead.
    #[serde(default)]
    pub model: String,
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    /// How to choose tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Sampling options.
    #[serde(default)]
    pub options: ChatOptions,
    /// Vendor fields passed through.
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
    /// When the whole call (all attempts) must be over; `None`: no overall deadline.
    #[serde(skip)]
    pub deadline: Option<Instant>,
    /// Set when this request continues a partial answer that another target started: the last
    /// message is the assistant's partial text (trailing whitespace trimmed). Providers express it as
    /// its [`Continuation::style`] says: a trailing assistant message (prefill), or that assistant turn
    /// followed by a user message carrying `instruction`.
    #[serde(skip)]
    pub continuation: Option<Continuation>,
}

/// How a target is asked to continue a partial answer another target started (config key
/// `continuation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContinuationMode {
    /// The partial answer as a trailing assistant message, which the model continues, returning only the
    /// rest (Anthropic before Claude 4.6; vLLM, DeepSeek and other OpenAI-compatible servers that take it).
    Prefill,
    /// The partial answer as an assistant turn, then a user turn asking for the rest: every chat API takes
    /// it, but a model may restart its answer instead (the engine checks before splicing). The default.
    #[default]
    Instruction,
    /// Never asked to continue a broken stream.
    None,
}

impl ContinuationMode {
    /// The request style this mode sends; `None` for a target never asked to continue.
    pub fn style(self) -> Option<ContinuationStyle> {
        match self {
            ContinuationMode::Prefill => Some(ContinuationStyle::Prefill),
            ContinuationMode::Instruction => Some(ContinuationStyle::Instruction),
            ContinuationMode::None => None,
        }
    }
}

/// How one continuation request presents the partial answer (see [`ContinuationMode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContinuationStyle {
    /// The partial answer is the last message, an assistant message, for the model to continue.
    Prefill,
    /// The partial answer is an assistant turn, followed by a user message asking for the rest.
    #[default]
    Instruction,
}

/// How to ask a model to continue a partial answer (see [`ChatRequest::continuation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// Prefill or instruction; the engine sets it per target from its [`ContinuationMode`].
    pub style: ContinuationStyle,
    /// With [`ContinuationStyle::Instruction`]: the user message that asks for the rest.
    pub instruction: String,
}

impl Default for Continuation {
    fn default() -> Self {
        Self {
            style: ContinuationStyle::default(),
            instruction: "Your previous answer was cut off. Continue it exactly where it stopped, without repeating \
                          anything and without any preamble."
                .to_owned(),
        }
    }
}

impl ChatRequest {
    /// A request with one user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self { messages: vec![Message::user(text)], ..Self::default() }
    }

    /// A rough count of the prompt's tokens (about four characters per token over the system prompt,
    /// messages and tool definitions), for when no model can count them.
    pub fn estimate_input_tokens(&self) -> u64 {
        crate::plan::estimate_prompt_tokens(self)
    }

    /// The most a call can cost in tokens, roughly: [`Self::estimate_input_tokens`] plus `max_tokens`. What a
    /// target's `tpm` and a client key's `tpm` reserve, and what must fit a context window.
    pub fn estimate_tokens(&self) -> u64 {
        crate::plan::estimate_tokens(self)
    }

    /// Sets the system prompt.
    pub fn with_system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Appends a message to the conversation.
    pub fn with_message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// Adds a tool the model may call.
    pub fn with_tool(mut self, tool: ToolDefinition) -> Self {
        self.tools.push(tool);
        self
    }

    /// Adds tools the model may call, after those already set.
    pub fn with_tools(mut self, tools: impl IntoIterator<Item = ToolDefinition>) -> Self {
        self.tools.extend(tools);
        self
    }

    /// Sets the sampling and length options.
    pub fn with_options(mut self, options: ChatOptions) -> Self {
        self.options = options;
        self
    }

    /// Gives the whole call (every attempt, backoff waits included) this long from now.
    pub fn with_deadline(mut self, within: std::time::Duration) -> Self {
        self.deadline = Some(Instant::now() + within);
        self
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A natural end or a stop sequence.
    Stop,
    /// The token limit.
    Length,
    /// The model wants tool results.
    ToolCalls,
    /// The provider's content filter.
    ContentFilter,
    /// Anything else, by the provider's name for it.
    Other(String),
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, rhs: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + rhs.input_tokens,
            output_tokens: self.output_tokens + rhs.output_tokens,
        }
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Usage) {
        *self = *self + rhs;
    }
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The provider's response id (or one made up when it gave none).
    pub id: String,
    /// The model that answered, as the provider named it.
    pub model: String,
    /// The assistant message.
    pub message: Message,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// Token counts.
    pub usage: Usage,
    /// Id of the target that served it, set by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by: Option<String>,
    /// Every attempt made for this answer, the successful one last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
}

impl ChatResponse {
    /// A response holding one assistant text.
    pub fn text(model: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: String::new(),
            model: model.into(),
            message: Message::assistant(text),
            finish_reason: FinishReason::Stop,
            usage: Usage::default(),
            served_by: None,
            attempts: Vec::new(),
        }
    }
}

/// A fragment of a tool call in a stream; fragments with the same `index` belong together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    /// Position of the call within the message.
    pub index: u32,
    /// The call's id (first fragment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The tool's name (first fragment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The next piece of the arguments' JSON text.
    #[serde(default)]
    pub arguments: String,
}

/// One event of a streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatChunk {
    /// More answer text.
    Text {
        /// The new text.
        text: String,
    },
    /// A piece of a tool call.
    ToolCall(ToolCallDelta),
    /// Token counts so far (providers may send them more than once; the last wins per field).
    Usage(Usage),
    /// The end of the answer.
    Finish {
        /// Why it stopped.
        reason: FinishReason,
    },
}

impl ChatChunk {
    /// A text chunk.
    pub fn text(text: impl Into<String>) -> Self {
        ChatChunk::Text { text: text.into() }
    }

    /// True for the chunks that commit a stream: non-empty text, or a tool-call fragment.
    pub fn is_content(&self) -> bool {
        match self {
            ChatChunk::Text { text } => !text.is_empty(),
            ChatChunk::ToolCall(_) => true,
            ChatChunk::Usage(_) | ChatChunk::Finish { .. } => false,
        }
    }
}
