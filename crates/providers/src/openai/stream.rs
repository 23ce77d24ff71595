//! OpenAI SSE streams: [`StreamEncoder`] writes them (gateway), [`StreamDecoder`] reads them (client).

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::Value;
use switchyard::{ChatChunk, Error, FinishReason, Usage, types::ToolCallDelta};

use super::error::{error_body, parse_error};
use super::response::{finish_reason_str, parse_finish_reason, wire_usage};
use super::wire::{ChatCompletionChunk, ChunkChoice, Delta, FunctionChunk, ToolCallChunk};
use crate::event_decoder::{Decoded, EventDecoder, bad_event};
use crate::ids::unix_now;
use crate::sse::SseEvent;

/// Writes neutral chunks as OpenAI `chat.completion.chunk` SSE frames.
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    sent_role: bool,
    // Neutral tool-call indexes in order of appearance; OpenAI wants 0, 1, 2… within the message.
    tool_indexes: Vec<u32>,
    usage: Usage,
    request_id: String,
}

impl StreamEncoder {
    /// An encoder for response `id` naming `model`; `include_usage` adds the final usage chunk.
    pub fn new(id: impl Into<String>, model: impl Into<String>, include_usage: bool) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            created: unix_now(),
            include_usage,
            sent_role: false,
            tool_indexes: Vec::new(),
            usage: Usage::default(),
            request_id: String::new(),
        }
    }

    /// Adds `request_id` to error events.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// Names another model in the chunks from now on (another target took over the answer).
    pub fn set_model(&mut self, model: impl Into<String>) {
        self.model = model.into();
    }

    fn frame(&self, choices: Vec<ChunkChoice<'_>>, usage: Option<Usage>) -> Bytes {
        let chunk = ChatCompletionChunk {
            id: Cow::Borrowed(&self.id),
            object: Cow::Borrowed("chat.completion.chunk"),
            created: self.created,
            model: Cow::Borrowed(&self.model),
            choices,
            usage: usage.map(wire_usage),
        };
        // Serialized straight into the frame: one buffer per chunk, not a JSON string copied into a second one.
        let mut out = Vec::with_capacity(192);
        out.extend_from_slice(b"data: ");
        if serde_json::to_writer(&mut out, &chunk).is_err() {
            out.truncate(b"data: ".len());
        }
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }

    fn delta_frame(&mut self, mut delta: Delta<'_>, finish_reason: Option<&'static str>) -> Bytes {
        if !self.sent_role {
            self.sent_role = true;
            delta.role = Some(Cow::Borrowed("assistant"));
        }
        let finish_reason = finish_reason.map(Cow::Borrowed);
        self.frame(vec![ChunkChoice { index: 0, delta, finish_reason }], None)
    }

    /// The frames for one chunk (usage is held back for the final usage chunk).
    pub fn chunk(&mut self, chunk: &ChatChunk) -> Vec<Bytes> {
        match chunk {
            ChatChunk::Text { text } => {
                vec![self.delta_frame(Delta { content: Some(Cow::Borrowed(text)), ..Delta::default() }, None)]
            }
            ChatChunk::ToolCall(d) => {
                let first = !self.tool_indexes.contains(&d.index);
                if first {
                    self.tool_indexes.push(d.index);
                }
                let position = self.tool_indexes.iter().position(|i| *i == d.index).unwrap_or(0);
                let call = ToolCallChunk {
                    index: u32::try_from(position).unwrap_or(u32::MAX),
                    id: if first { Some(d.id.clone().unwrap_or_default()) } else { None },
                    kind: first.then(|| "function".to_owned()),
                    function: Some(FunctionChunk {
                        name: if first { Some(d.name.clone().unwrap_or_default()) } else { None },
                        arguments: Some(d.arguments.clone()),
                    }),
                };
                vec![self.delta_frame(Delta { tool_calls: Some(vec![call]), ..Delta::default() }, None)]
            }
            ChatChunk::Usage(usage) => {
                self.usage.input_tokens = self.usage.input_tokens.max(usage.input_tokens);
                self.usage.output_tokens = self.usage.output_tokens.max(usage.output_tokens);
                Vec::new()
            }
            ChatChunk::Finish { reason } => {
                vec![self.delta_frame(Delta::default(), Some(finish_reason_str(reason)))]
            }
        }
    }

    /// The end of a successful stream: the usage chunk (when asked for), then `data: [DONE]`.
    pub fn done(&mut self) -> Bytes {
        let mut out = Vec::new();
        if self.include_usage {
            out.extend_from_slice(&self.frame(Vec::new(), Some(self.usage)));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        Bytes::from(out)
    }

    /// An in-stream error event (`data: {"error": …}`); no `[DONE]` follows.
    pub fn error(&mut self, err: &Error) -> Bytes {
        let body = error_body(err, &self.request_id);
        Bytes::from(format!("data: {body}\n\n"))
    }
}

/// Reads an OpenAI(-compatible) SSE stream into neutral chunks.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    saw_content: bool,
}

impl StreamDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn close(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Error> {
        let Some(reason) = self.finish.take() else {
            return Err(Error::invalid_response("the stream ended without a finish_reason"));
        };
        if reason == FinishReason::ContentFilter && !self.saw_content {
            return Err(Error::content_filtered("the provider's content filter stopped the answer"));
        }
        if let Some(usage) = self.usage.take() {
            out.push(ChatChunk::Usage(usage));
        }
        out.push(ChatChunk::Finish { reason });
        Ok(())
    }
}

impl EventDecoder for StreamDecoder {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<ChatChunk>) -> Result<Decoded, Error> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.close(out)?;
            return Ok(Decoded::End);
        }
        if event.event == "error" {
            return Err(parse_error(None, data, None));
        }
        // `"error":` can only appear unescaped as a key, so ordinary chunks skip the generic parse.
        if data.contains("\"error\":") {
            let value: Value = match serde_json::from_str(data) {
                Ok(value) => value,
                Err(e) => return Ok(bad_event(data, &e)),
            };
            if value.get("error").is_some() {
                return Err(parse_error(None, data, None));
            }
        }
        let chunk: ChatCompletionChunk = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => return Ok(bad_event(data, &e)),
        };
        if let Some(usage) = chunk.usage {
            self.usage = Some(Usage { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens });
        }
        // Only the first choice is read: requests never ask for n > 1 through this client.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let delta = choice.delta;
            for text in [delta.content, delta.refusal].into_iter().flatten() {
                if !text.is_empty() {
                    self.saw_content = true;
                    out.push(ChatChunk::Text { text: text.into_owned() });
                }
            }
            for call in delta.tool_calls.unwrap_or_default() {
                self.saw_content = true;
                let function = call.function.unwrap_or_default();
                out.push(ChatChunk::ToolCall(ToolCallDelta {
                    index: call.index,
                    id: call.id,
                    name: function.name,
                    arguments: function.arguments.unwrap_or_default(),
                }));
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(parse_finish_reason(&reason));
            }
        }
        Ok(Decoded::More)
    }

    fn end(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Error> {
        // Some compatible servers omit `[DONE]`; a finish_reason already seen is enough.
        self.close(out)
    }
}
