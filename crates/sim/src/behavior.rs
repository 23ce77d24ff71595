//! What a simulated model does on one call, and how that plays out as a response or a stream.

use std::time::Duration;

use switchyard::{
    ChatChunk, ChatRequest, Error, FinishReason, Message, Part, Role, ToolCall, Usage, types::ToolCallDelta,
};

/// The reply a [`SimModel`](crate::SimModel) gives when nothing else was configured.
pub const DEFAULT_REPLY: &str = "This is a simulated answer from a model that works as intended.";

/// What a simulated model does on one call.
///
/// Each variant says what `complete` returns and what `stream` yields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Behavior {
    /// Answers with this text. Streamed as one chunk per word, then [`ChatChunk::Usage`] and a
    /// [`ChatChunk::Finish`] with [`FinishReason::Stop`].
    Reply(String),
    /// Answers with the last message's text (or tool result) quoted: `echo: …`. Handy for multi-turn tests.
    Echo,
    /// Asks for these tool calls. Streamed as fragments (id and name first, then the arguments in
    /// several pieces), then usage and a finish with [`FinishReason::ToolCalls`].
    ToolCalls(Vec<ToolCall>),
    /// `complete` returns this error; `stream` returns it before any chunk (`Err` from `stream()`).
    Fail(Error),
    /// `stream` returns `Ok`, and the stream's first item is this error; `complete` returns it.
    FailInStream(Error),
    /// `stream` yields this many content chunks, then this error; `complete` returns the error.
    BreakAfter {
        /// Content chunks before the error.
        chunks: usize,
        /// The error that ends the stream.
        error: Error,
    },
    /// `stream` yields this many content chunks, then ends with no usage and no finish (a cut-off stream);
    /// `complete` returns an [`Error::InvalidResponse`] saying so.
    EndWithoutFinish {
        /// Content chunks before the end.
        chunks: usize,
    },
    /// `stream` returns `Ok` and yields this many content chunks, then nothing more, ever (a silent
    /// connection); `complete` never answers.
    Stall {
        /// Content chunks before the silence.
        chunks: usize,
    },
    /// Never answers: neither `complete` nor `stream` returns.
    Hang,
    /// Waits this long (on top of the model's latency), then behaves as the inner behaviour; for one slow call.
    Delayed(Duration, Box<Behavior>),
}

/// One item of a planned stream.
#[derive(Debug)]
pub(crate) enum Step {
    /// A chunk.
    Chunk(ChatChunk),
    /// The error that ends the stream.
    Fail(Error),
    /// Silence forever.
    Stall,
}

/// How one call plays out.
#[derive(Debug)]
pub(crate) enum Plan {
    /// `stream()` itself fails.
    Refuse(Error),
    /// `stream()` never returns.
    Hang,
    /// `stream()` returns these steps.
    Steps(Vec<Step>),
}

impl Behavior {
    /// The extra wait of [`Behavior::Delayed`] layers, summed.
    pub(crate) fn delay(&self) -> Duration {
        match self {
            Behavior::Delayed(delay, inner) => delay.saturating_add(inner.delay()),
            _ => Duration::ZERO,
        }
    }

    /// Plans the stream for this behaviour answering `request`.
    pub(crate) fn plan(&self, request: &ChatRequest) -> Plan {
        match self {
            Behavior::Reply(text) => Plan::Steps(text_steps(text, request)),
            Behavior::Echo => Plan::Steps(text_steps(&echo_text(request), request)),
            Behavior::ToolCalls(calls) => Plan::Steps(tool_steps(calls, request)),
            Behavior::Fail(error) => Plan::Refuse(error.clone()),
            Behavior::FailInStream(error) => Plan::Steps(vec![Step::Fail(error.clone())]),
            Behavior::BreakAfter { chunks, error } => {
                let mut steps = filler_chunks(*chunks);
                steps.push(Step::Fail(error.clone()));
                Plan::Steps(steps)
            }
            Behavior::EndWithoutFinish { chunks } => Plan::Steps(filler_chunks(*chunks)),
            Behavior::Stall { chunks } => {
                let mut steps = filler_chunks(*chunks);
                steps.push(Step::Stall);
                Plan::Steps(steps)
            }
            Behavior::Hang => Plan::Hang,
            Behavior::Delayed(_, inner) => inner.plan(request),
        }
    }
}

/// The text [`Behavior::Echo`] answers with.
fn echo_text(request: &ChatRequest) -> String {
    let last = request.messages.last().map(quote).unwrap_or_default();
    format!("echo: {last}")
}

fn quote(message: &Message) -> String {
    let mut out = String::new();
    for part in &message.content {
        match part {
            Part::Text { text } => out.push_str(text),
            Part::ToolResult(result) => out.push_str(&result.content),
            Part::ToolCall(_) | Part::Image { .. } => {}
        }
    }
    out
}

/// Splits text into word chunks whose concatenation is the text.
pub(crate) fn words(text: &str) -> impl Iterator<Item = &str> + Clone {
    text.split_inclusive(' ')
}

/// Token counts the simulation reports: words in, words out.
pub(crate) fn usage(request: &ChatRequest, output_words: usize) -> Usage {
    Usage { input_tokens: input_words(request) as u64, output_tokens: output_words as u64 }
}

/// Words in the system prompt and every message (text, tool calls and tool results).
pub(crate) fn input_words(request: &ChatRequest) -> usize {
    let count = |s: &str| s.split_whitespace().count();
    let mut n = request.system.as_deref().map_or(0, count);
    for message in &request.messages {
        for part in &message.content {
            n += match part {
                Part::Text { text } => count(text),
                Part::ToolCall(call) => 1 + count(&call.arguments),
                Part::ToolResult(result) => count(&result.content),
                Part::Image { .. } => 1,
            };
        }
    }
    n
}

fn text_steps(text: &str, request: &ChatRequest) -> Vec<Step> {
    let mut steps: Vec<Step> = words(text).map(|w| Step::Chunk(ChatChunk::text(w))).collect();
    let out = steps.len();
    steps.push(Step::Chunk(ChatChunk::Usage(usage(request, out))));
    steps.push(Step::Chunk(ChatChunk::Finish { reason: FinishReason::Stop }));
    steps
}

/// Output words of one tool call: its name, then the words of its arguments.
fn call_words(call: &ToolCall) -> usize {
    1 + call.arguments.split_whitespace().count()
}

fn tool_steps(calls: &[ToolCall], request: &ChatRequest) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut out = 0;
    for (index, call) in calls.iter().enumerate() {
        let index = index as u32;
        out += call_words(call);
        steps.push(Step::Chunk(ChatChunk::ToolCall(ToolCallDelta {
            index,
            id: Some(call.id.clone()),
            name: Some(call.name.clone()),
            arguments: String::new(),
        })));
        for piece in fragments(&call.arguments, 3) {
            steps.push(Step::Chunk(ChatChunk::ToolCall(ToolCallDelta {
                index,
                id: None,
                name: None,
                arguments: piece.to_owned(),
            })));
        }
    }
    steps.push(Step::Chunk(ChatChunk::Usage(usage(request, out))));
    steps.push(Step::Chunk(ChatChunk::Finish { reason: FinishReason::ToolCalls }));
    steps
}

/// Cuts text into at most `parts` non-empty pieces on char boundaries.
pub(crate) fn fragments(text: &str, parts: usize) -> Vec<&str> {
    let len = text.len();
    if len == 0 {
        return Vec::new();
    }
    let step = len.div_ceil(parts.max(1));
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    while start < len {
        let mut end = (start + step).min(len);
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

/// Content chunks for the broken-stream behaviours: words of [`DEFAULT_REPLY`], cycling.
fn filler_chunks(n: usize) -> Vec<Step> {
    words(DEFAULT_REPLY).cycle().take(n).map(|w| Step::Chunk(ChatChunk::text(w))).collect()
}

/// How a non-streaming call ends.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A response: the message, why it stopped, usage, and how many content chunks a stream would have had.
    Answer { message: Message, finish: FinishReason, usage: Usage, chunks: usize },
    /// An error.
    Fail(Error),
    /// No answer, ever.
    Hang,
}

impl Behavior {
    /// What `complete` does for this behaviour answering `request`.
    pub(crate) fn outcome(&self, request: &ChatRequest) -> Outcome {
        let text_answer = |text: String| {
            let chunks = words(&text).count();
            Outcome::Answer {
                usage: usage(request, chunks),
                message: Message::assistant(text),
                finish: FinishReason::Stop,
                chunks,
            }
        };
        match self {
            Behavior::Reply(text) => text_answer(text.clone()),
            Behavior::Echo => text_answer(echo_text(request)),
            Behavior::ToolCalls(calls) => {
                let out: usize = calls.iter().map(call_words).sum();
                let chunks = calls.iter().map(|c| 1 + fragments(&c.arguments, 3).len()).sum();
                Outcome::Answer {
                    message: Message {
                        role: Role::Assistant,
                        content: calls.iter().cloned().map(Part::ToolCall).collect(),
                    },
                    finish: FinishReason::ToolCalls,
                    usage: usage(request, out),
                    chunks,
                }
            }
            Behavior::Fail(error) | Behavior::FailInStream(error) | Behavior::BreakAfter { error, .. } => {
                Outcome::Fail(error.clone())
            }
            Behavior::EndWithoutFinish { .. } => {
                Outcome::Fail(Error::invalid_response("simulated stream ended without a finish event"))
            }
            Behavior::Stall { .. } | Behavior::Hang => Outcome::Hang,
            Behavior::Delayed(_, inner) => inner.outcome(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_cover_the_text_on_char_boundaries() {
        let text = r#"{"city":"Zürich","unit":"°C"}"#;
        let parts = fragments(text, 3);
        assert!(parts.len() >= 2 && parts.len() <= 4, "{parts:?}");
        assert_eq!(parts.concat(), text);
        assert!(fragments("", 3).is_empty());
        assert_eq!(fragments("ab", 5), vec!["a", "b"]);
    }

    #[test]
    fn words_rebuild_the_text() {
        assert_eq!(words("a b  c").collect::<Vec<_>>(), vec!["a ", "b ", " ", "c"]);
        assert_eq!(words(DEFAULT_REPLY).collect::<String>(), DEFAULT_REPLY);
    }
}
