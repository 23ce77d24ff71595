//! OpenAI SSE streams: [`StreamEncoder`] writes them (gateway), [`StreamDecoder`] reads them (client).

use std::borrow::Cow;
use std::sync::LazyLock;

use bytes::Bytes;
use memchr::memmem::Finder;
use serde_json::Value;
use switchyard::{ChatChunk, Error, FinishReason, Usage, types::ToolCallDelta};

use super::chunk_scan::{Learned, scan_after};
use super::error::{error_body, parse_error};
use super::response::{finish_reason_str, parse_finish_reason, wire_usage};
use super::wire::{ChatCompletionChunk, ChunkChoice, Delta, FunctionChunk, ToolCallChunk};
use crate::event_decoder::{Decoded, EventDecoder, bad_event, push_text};
use crate::ids::unix_now;
use crate::json_out;
use crate::sse::SseEventRef;

/// `"error":`, looked for in every chunk: the searcher is built once (building one per chunk cost more than
/// the search).
static ERROR_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"error\":"));

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
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[`: the same in every frame, written once.
    head: Vec<u8>,
}

/// What a text or finish frame's single choice carries.
#[derive(Clone, Copy)]
enum Step<'a> {
    Text(&'a str),
    Finish(&'static str),
}

impl StreamEncoder {
    /// An encoder for response `id` naming `model`; `include_usage` adds the final usage chunk.
    pub fn new(id: impl Into<String>, model: impl Into<String>, include_usage: bool) -> Self {
        let mut encoder = Self {
            id: id.into(),
            model: model.into(),
            created: unix_now(),
            include_usage,
            sent_role: false,
            tool_indexes: Vec::new(),
            usage: Usage::default(),
            request_id: String::new(),
            head: Vec::new(),
        };
        encoder.write_head();
        encoder
    }

    fn write_head(&mut self) {
        let head = &mut self.head;
        head.clear();
        head.reserve(96 + self.id.len() + self.model.len());
        head.extend_from_slice(b"data: {\"id\":");
        json_out::push_str(head, &self.id);
        head.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        json_out::push_u64(head, self.created);
        head.extend_from_slice(b",\"model\":");
        json_out::push_str(head, &self.model);
        head.extend_from_slice(b",\"choices\":[");
    }

    /// Adds `request_id` to error events.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// Names another model in the chunks from now on (another target took over the answer).
    pub fn set_model(&mut self, model: impl Into<String>) {
        self.model = model.into();
        self.write_head();
    }

    /// Appends a text or finish frame, written by hand: the same bytes as [`Self::frame`] writes for it (the
    /// tests compare them), for a fraction of the work. Tool-call frames take the wire type.
    fn step_frame(&mut self, step: Step<'_>, out: &mut Vec<u8>) {
        const CHOICE: &[u8] = b"{\"index\":0,\"delta\":{";
        const ROLE: &[u8] = b"\"role\":\"assistant\"";
        const CONTENT: &[u8] = b"\"content\":";
        const NO_FINISH: &[u8] = b"},\"finish_reason\":null";
        const FINISH: &[u8] = b"},\"finish_reason\":";
        const TAIL: &[u8] = b"}],\"usage\":null}\n\n";
        let role = !self.sent_role;
        self.sent_role = true;
        // Room reserved exactly: `Bytes::from` a vector with spare capacity allocates a header besides (a
        // malloc and a free per frame), and an empty vector grows to exactly what is reserved.
        let body = match step {
            Step::Text(text) => usize::from(role) + CONTENT.len() + json_out::quoted_len(text) + NO_FINISH.len(),
            Step::Finish(reason) => FINISH.len() + json_out::quoted_len(reason),
        };
        let len = self.head.len() + CHOICE.len() + if role { ROLE.len() } else { 0 } + body + TAIL.len();
        out.reserve(len);
        let start = out.len();
        out.extend_from_slice(&self.head);
        out.extend_from_slice(CHOICE);
        if role {
            out.extend_from_slice(ROLE);
        }
        match step {
            Step::Text(text) => {
                if role {
                    out.push(b',');
                }
                out.extend_from_slice(CONTENT);
                json_out::push_str(out, text);
                out.extend_from_slice(NO_FINISH);
            }
            Step::Finish(reason) => {
                out.extend_from_slice(FINISH);
                json_out::push_str(out, reason);
            }
        }
        out.extend_from_slice(TAIL);
        debug_assert_eq!(out.len() - start, len, "the frame's size is computed exactly");
    }

    /// The final usage frame, written by hand like [`Self::step_frame`].
    fn usage_frame(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"],");
        super::response::push_usage(out, self.usage);
        out.extend_from_slice(b"}\n\n");
    }

    /// Appends the frame the wire type writes.
    fn frame(&self, choices: Vec<ChunkChoice<'_>>, usage: Option<Usage>, out: &mut Vec<u8>) {
        let chunk = ChatCompletionChunk {
            id: Cow::Borrowed(&self.id),
            object: Cow::Borrowed("chat.completion.chunk"),
            created: self.created,
            model: Cow::Borrowed(&self.model),
            choices,
            usage: usage.map(wire_usage),
        };
        // Serialized straight into the frame: one buffer per chunk, not a JSON string copied into a second one.
        out.reserve(192);
        out.extend_from_slice(b"data: ");
        let start = out.len();
        if serde_json::to_writer(&mut *out, &chunk).is_err() {
            out.truncate(start);
        }
        out.extend_from_slice(b"\n\n");
    }

    fn delta_frame(&mut self, mut delta: Delta<'_>, out: &mut Vec<u8>) {
        if !self.sent_role {
            self.sent_role = true;
            delta.role = Some(Cow::Borrowed("assistant"));
        }
        self.frame(vec![ChunkChoice { index: 0, delta, finish_reason: None }], None, out)
    }

    /// The frame for one chunk; none for usage, which is held back for the final usage chunk.
    pub fn chunk(&mut self, chunk: &ChatChunk) -> Option<Bytes> {
        let mut out = Vec::new();
        self.chunk_into(chunk, &mut out);
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// Appends the frame for one chunk to `out` (nothing for usage, which is held back for the final usage
    /// chunk): frames that are ready together can go out as one piece.
    pub fn chunk_into(&mut self, chunk: &ChatChunk, out: &mut Vec<u8>) {
        match chunk {
            ChatChunk::Text { text } => self.step_frame(Step::Text(text), out),
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
                self.delta_frame(Delta { tool_calls: Some(vec![call]), ..Delta::default() }, out)
            }
            ChatChunk::Usage(usage) => {
                self.usage.input_tokens = self.usage.input_tokens.max(usage.input_tokens);
                self.usage.output_tokens = self.usage.output_tokens.max(usage.output_tokens);
            }
            ChatChunk::Finish { reason } => self.step_frame(Step::Finish(finish_reason_str(reason)), out),
        }
    }

    /// The end of a successful stream: the usage chunk (when asked for), then `data: [DONE]`.
    pub fn done(&mut self) -> Bytes {
        const DONE: &[u8] = b"data: [DONE]\n\n";
        if !self.include_usage {
            return Bytes::from_static(DONE);
        }
        let mut out = Vec::with_capacity(self.head.len() + 96 + DONE.len());
        self.usage_frame(&mut out);
        out.extend_from_slice(DONE);
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
    /// What the stream's chunks share, read once.
    learned: Learned,
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

    /// Choice 0's text (content, then refusal) and finish reason, from either reading of a chunk.
    fn choice(
        &mut self,
        content: Option<Cow<'_, str>>,
        refusal: Option<Cow<'_, str>>,
        finish_reason: Option<Cow<'_, str>>,
        out: &mut Vec<ChatChunk>,
    ) {
        for text in [content, refusal].into_iter().flatten() {
            if !text.is_empty() {
                self.saw_content = true;
                push_text(out, text);
            }
        }
        if let Some(reason) = finish_reason {
            self.finish = Some(parse_finish_reason(&reason));
        }
    }
}

impl EventDecoder for StreamDecoder {
    fn event(&mut self, event: SseEventRef<'_>, out: &mut Vec<ChatChunk>) -> Result<Decoded, Error> {
        // JSON's whitespace is ASCII: `trim` would test every end byte against Unicode's whitespace too.
        let data = event.data.trim_ascii();
        if data == "[DONE]" {
            self.close(out)?;
            return Ok(Decoded::End);
        }
        if event.event == "error" {
            return Err(parse_error(None, data, None));
        }
        // First the common chunk's own reader: it takes no chunk with a top-level `error` key and only valid
        // JSON, so what it reads is what the checks below would have passed on to the same result.
        if let Some(chunk) = scan_after(data, &mut self.learned) {
            if let Some(usage) = chunk.usage {
                self.usage = Some(usage);
            }
            if let Some(choice) = chunk.choice {
                self.choice(choice.content, choice.refusal, choice.finish_reason, out);
            }
            return Ok(Decoded::More);
        }
        // `"error":` can only appear unescaped as a key, so ordinary chunks skip the generic parse.
        if ERROR_KEY.find(data.as_bytes()).is_some() {
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
            // Texts come before tool calls, the finish after them, as in the fast path's order.
            self.choice(delta.content, delta.refusal, None, out);
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
            self.choice(None, None, choice.finish_reason, out);
        }
        Ok(Decoded::More)
    }

    fn end(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Error> {
        // Some compatible servers omit `[DONE]`; a finish_reason already seen is enough.
        self.close(out)
    }
}

#[cfg(test)]
mod tests {
    //! The hand-written frames against the wire type's serde output: the bytes must not change.

    use std::borrow::Cow;

    use switchyard::{ChatChunk, FinishReason, Usage};

    use super::StreamEncoder;
    use crate::openai::wire::{ChunkChoice, Delta};

    /// What the wire type's serde path (`frame`) writes for the same chunk.
    fn serde_frame(e: &StreamEncoder, choices: Vec<ChunkChoice<'_>>, usage: Option<Usage>) -> Vec<u8> {
        let mut out = Vec::new();
        e.frame(choices, usage, &mut out);
        out
    }

    fn choice<'a>(role: bool, content: Option<&'a str>, finish: Option<&'static str>) -> Vec<ChunkChoice<'a>> {
        let delta = Delta {
            role: role.then_some(Cow::Borrowed("assistant")),
            content: content.map(Cow::Borrowed),
            ..Delta::default()
        };
        vec![ChunkChoice { index: 0, delta, finish_reason: finish.map(Cow::Borrowed) }]
    }

    /// Whitespace around an event's data (some servers pad `[DONE]` or end lines with `\r`) changes nothing.
    #[test]
    fn padded_data_and_a_padded_done_read_as_plain_ones() {
        use crate::event_decoder::{Decoded, EventDecoder};
        use crate::sse::SseEventRef;

        let mut decoder = super::StreamDecoder::new();
        let mut out = Vec::new();
        let event = |data| SseEventRef { event: "", data, id: None };
        let chunk = " \t{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\r\n ";
        assert!(matches!(decoder.event(event(chunk), &mut out), Ok(Decoded::More)));
        assert!(matches!(decoder.event(event(" [DONE]\t\r"), &mut out), Ok(Decoded::End)));
        assert_eq!(out, vec![ChatChunk::text("hi"), ChatChunk::Finish { reason: FinishReason::Stop }]);
    }

    /// Frames appended to one buffer (hand-written and serde-written alike) are the frames one by one, in
    /// order; usage appends nothing.
    #[test]
    fn frames_appended_to_a_buffer_are_the_frames_one_by_one() {
        let call = switchyard::types::ToolCallDelta {
            index: 3,
            id: Some("call_1".into()),
            name: Some("f".into()),
            arguments: "{}".into(),
        };
        let chunks = [
            ChatChunk::text("a"),
            ChatChunk::Usage(Usage { input_tokens: 1, output_tokens: 2 }),
            ChatChunk::ToolCall(call),
            ChatChunk::text("b\""),
            ChatChunk::Finish { reason: FinishReason::Stop },
        ];
        // The same `created` in both, whatever second each was made in.
        let encoder = || {
            let mut e = StreamEncoder::new("c", "m", true);
            e.created = 7;
            e.write_head();
            e
        };
        let (mut one_by_one, mut joined) = (encoder(), encoder());
        let mut expected = Vec::new();
        let mut out = Vec::new();
        for chunk in &chunks {
            if let Some(frame) = one_by_one.chunk(chunk) {
                expected.extend_from_slice(&frame);
            }
            joined.chunk_into(chunk, &mut out);
        }
        assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(expected).unwrap());
        let usage = ChatChunk::Usage(Usage { input_tokens: 1, output_tokens: 3 });
        let mut usage_only = b"before".to_vec();
        joined.chunk_into(&usage, &mut usage_only);
        assert_eq!(usage_only, b"before", "usage writes no frame");
        assert_eq!(one_by_one.chunk(&usage), None);
        assert_eq!(joined.done(), one_by_one.done(), "the usage was kept for the end");
    }

    #[test]
    fn text_finish_and_usage_frames_are_the_wire_types_bytes() {
        for first_is_text in [true, false] {
            let mut e = StreamEncoder::new("chatcmpl-\"1\"", "m\\odel ✓", true);
            if first_is_text {
                let frame = e.chunk(&ChatChunk::text("Hel\"lo\n\u{1}")).unwrap();
                assert_eq!(frame.as_ref(), serde_frame(&e, choice(true, Some("Hel\"lo\n\u{1}"), None), None));
                let frame = e.chunk(&ChatChunk::text("")).unwrap();
                assert_eq!(frame.as_ref(), serde_frame(&e, choice(false, Some(""), None), None));
                e.set_model("other");
            }
            assert_eq!(e.chunk(&ChatChunk::Usage(Usage { input_tokens: 3, output_tokens: 5 })), None);
            let frame = e.chunk(&ChatChunk::Finish { reason: FinishReason::Length }).unwrap();
            let role = !first_is_text;
            assert_eq!(frame.as_ref(), serde_frame(&e, choice(role, None, Some("length")), None));
            let usage = Usage { input_tokens: 3, output_tokens: 5 };
            let mut expected = serde_frame(&e, Vec::new(), Some(usage));
            expected.extend_from_slice(b"data: [DONE]\n\n");
            assert_eq!(e.done().as_ref(), expected);
        }
    }
}
