//! Folds stream chunks into a complete response.

use futures::StreamExt;

use crate::error::Error;
use crate::model::ChatStream;
use crate::types::{ChatChunk, ChatResponse, FinishReason, Message, Part, Role, ToolCall, Usage};

/// Builds a [`ChatResponse`] from chunks as they arrive.
#[derive(Debug, Default)]
pub struct Accumulator {
    text: String,
    tool_calls: Vec<ToolCall>,
    tool_indexes: Vec<u32>,
    usage: Usage,
    finish: Option<FinishReason>,
}

impl Accumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one chunk.
    pub fn push(&mut self, chunk: &ChatChunk) {
        match chunk {
            ChatChunk::Text { text } => self.text.push_str(text),
            ChatChunk::ToolCall(delta) => {
                let slot = match self.tool_indexes.iter().position(|i| *i == delta.index) {
                    Some(slot) => slot,
                    None => {
                        self.tool_indexes.push(delta.index);
                        self.tool_calls.push(ToolCall {
                            id: String::new(),
                            name: String::new(),
                            arguments: String::new(),
                        });
                        self.tool_calls.len() - 1
                    }
                };
                let call = &mut self.tool_calls[slot];
                if let Some(id) = &delta.id {
                    call.id.clone_from(id);
                }
                if let Some(name) = &delta.name {
                    call.name.push_str(name);
                }
                call.arguments.push_str(&delta.arguments);
            }
            ChatChunk::Usage(usage) => {
                // Providers report running totals; keep the largest seen for each side.
                self.usage.input_tokens = self.usage.input_tokens.max(usage.input_tokens);
                self.usage.output_tokens = self.usage.output_tokens.max(usage.output_tokens);
            }
            ChatChunk::Finish { reason } => self.finish = Some(reason.clone()),
        }
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True once any tool-call fragment arrived.
    pub fn has_tool_calls(&self) -> bool {
        !self.tool_calls.is_empty()
    }

    /// True once the finish chunk arrived.
    pub fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// Usage so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The response; an InvalidResponse when the stream never finished.
    pub fn finish(self, model: &str) -> Result<ChatResponse, Error> {
        let Some(finish_reason) = self.finish else {
            return Err(Error::invalid_response("stream ended without a finish event"));
        };
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(Part::Text { text: self.text });
        }
        content.extend(self.tool_calls.into_iter().map(Part::ToolCall));
        Ok(ChatResponse {
            id: String::new(),
            model: model.to_owned(),
            message: Message { role: Role::Assistant, content },
            finish_reason,
            usage: self.usage,
            served_by: None,
            attempts: Vec::new(),
        })
    }
}

impl ChatStream {
    /// Reads the whole stream into one response, keeping `served_by` and `attempts`.
    pub async fn collect_response(mut self) -> Result<ChatResponse, Error> {
        let mut acc = Accumulator::new();
        while let Some(item) = self.next().await {
            acc.push(&item?);
        }
        let mut response = acc.finish("")?;
        response.served_by = self.served_by.take();
        response.attempts = std::mem::take(&mut self.attempts);
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ToolCallDelta;

    #[tokio::test]
    async fn fragments_of_several_tool_calls_assemble() {
        let delta = |index, id: Option<&str>, name: Option<&str>, args: &str| {
            Ok(ChatChunk::ToolCall(ToolCallDelta {
                index,
                id: id.map(str::to_owned),
                name: name.map(str::to_owned),
                arguments: args.to_owned(),
            }))
        };
        let stream = ChatStream::from_items(vec![
            Ok(ChatChunk::text("Let me check.")),
            delta(0, Some("a"), Some("clock"), ""),
            delta(1, Some("b"), Some("calc"), "{\"x\":"),
            delta(0, None, None, "{}"),
            delta(1, None, None, "1}"),
            Ok(ChatChunk::Usage(Usage { input_tokens: 5, output_tokens: 2 })),
            Ok(ChatChunk::Finish { reason: FinishReason::ToolCalls }),
        ]);
        let response = stream.collect_response().await.unwrap();
        let calls: Vec<_> = response.message.tool_calls().cloned().collect();
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0].id.as_str(), calls[0].name.as_str(), calls[0].arguments.as_str()), ("a", "clock", "{}"));
        assert_eq!(calls[1].arguments, "{\"x\":1}");
        assert_eq!(response.message.text(), "Let me check.");
        assert_eq!(response.usage.output_tokens, 2);
    }

    #[tokio::test]
    async fn a_stream_without_finish_is_invalid() {
        let stream = ChatStream::from_items(vec![Ok(ChatChunk::text("half"))]);
        let err = stream.collect_response().await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidResponse);
    }
}
