//! Anthropic SSE streams: [`StreamEncoder`] writes them (gateway), [`StreamDecoder`] reads them (client).

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchyard::{ChatChunk, Error, FinishReason, Usage, types::ToolCallDelta};

use super::error::{error_body, parse_error};
use super::response::{parse_stop_reason, stop_reason_str};
use super::wire::{Block, BlockDelta, DeltaUsage, MessageDeltaBody, MessagesResponse, StreamEvent, WireUsage};
use crate::borrowed::opt_cow;
use crate::event_decoder::{Decoded, EventDecoder, bad_event, push_text};
use crate::sse::SseEventRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text(u32),
    Tool { neutral: u32, block: u32 },
}

/// Writes neutral chunks as Anthropic Messages SSE events.
///
/// `message_start` and `message_delta` always carry `usage` (0 when unknown).
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    started: bool,
    usage: Usage,
    next_block: u32,
    open: Option<OpenBlock>,
    // (neutral tool index, block index) of every tool block opened so far.
    tool_blocks: Vec<(u32, u32)>,
    finish: Option<FinishReason>,
    request_id: String,
}

fn frame(event: &StreamEvent) -> Vec<u8> {
    let name = match event {
        StreamEvent::MessageStart { .. } => "message_start",
        StreamEvent::ContentBlockStart { .. } => "content_block_start",
        StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
        StreamEvent::ContentBlockStop { .. } => "content_block_stop",
        StreamEvent::MessageDelta { .. } => "message_delta",
        StreamEvent::MessageStop => "message_stop",
        StreamEvent::Ping => "ping",
        StreamEvent::Error { .. } => "error",
        StreamEvent::Unknown => "unknown",
    };
    named_frame(name, event)
}

fn named_frame(name: &str, data: &impl Serialize) -> Vec<u8> {
    // Serialized straight into the frame: one buffer per event, not a JSON string copied into a second one.
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let json_at = out.len();
    if serde_json::to_writer(&mut out, data).is_err() {
        out.truncate(json_at);
    }
    out.extend_from_slice(b"\n\n");
    out
}

impl StreamEncoder {
    /// An encoder for message `id` naming `model`.
    pub fn new(id: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            started: false,
            usage: Usage::default(),
            next_block: 0,
            open: None,
            tool_blocks: Vec::new(),
            finish: None,
            request_id: String::new(),
        }
    }

    /// Adds `request_id` to error events.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// Names another model in `message_start`, when it has not been sent yet.
    pub fn set_model(&mut self, model: impl Into<String>) {
        self.model = model.into();
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = MessagesResponse {
            id: self.id.clone(),
            kind: "message".into(),
            role: "assistant".into(),
            model: self.model.clone(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: WireUsage {
                input_tokens: self.usage.input_tokens,
                output_tokens: self.usage.output_tokens,
                ..WireUsage::default()
            },
        };
        out.push(Bytes::from(frame(&StreamEvent::MessageStart { message })));
    }

    fn close_open(&mut self, out: &mut Vec<Bytes>) {
        if let Some(open) = self.open.take() {
            let index = match open {
                OpenBlock::Text(index) | OpenBlock::Tool { block: index, .. } => index,
            };
            out.push(Bytes::from(frame(&StreamEvent::ContentBlockStop { index })));
        }
    }

    fn open_block(&mut self, block: Block, out: &mut Vec<Bytes>) -> u32 {
        self.close_open(out);
        let index = self.next_block;
        self.next_block += 1;
        out.push(Bytes::from(frame(&StreamEvent::ContentBlockStart { index, content_block: block })));
        index
    }

    /// The events for one chunk (`message_start` comes with the first content; usage is held for `message_delta`).
    pub fn chunk(&mut self, chunk: &ChatChunk) -> Vec<Bytes> {
        let mut out = Vec::new();
        match chunk {
            ChatChunk::Usage(usage) => {
                self.usage.input_tokens = self.usage.input_tokens.max(usage.input_tokens);
                self.usage.output_tokens = self.usage.output_tokens.max(usage.output_tokens);
            }
            ChatChunk::Finish { reason } => {
                self.start(&mut out);
                self.finish = Some(reason.clone());
            }
            ChatChunk::Text { text } => {
                if text.is_empty() {
                    return out;
                }
                self.start(&mut out);
                let index = match self.open {
                    Some(OpenBlock::Text(index)) => index,
                    _ => {
                        let index = self.open_block(Block::Text { text: String::new() }, &mut out);
                        self.open = Some(OpenBlock::Text(index));
                        index
                    }
                };
                let delta = BlockDelta::TextDelta { text: text.clone() };
                out.push(Bytes::from(frame(&StreamEvent::ContentBlockDelta { index, delta })));
            }
            ChatChunk::ToolCall(d) => {
                self.start(&mut out);
                let known = self.tool_blocks.iter().find(|(n, _)| *n == d.index).map(|(_, b)| *b);
                let index = match known {
                    Some(block) => block,
                    None => {
                        let block = Block::ToolUse {
                            id: d.id.clone().unwrap_or_default(),
                            name: d.name.clone().unwrap_or_default(),
                            input: json!({}),
                        };
                        let index = self.open_block(block, &mut out);
                        self.open = Some(OpenBlock::Tool { neutral: d.index, block: index });
                        self.tool_blocks.push((d.index, index));
                        index
                    }
                };
                if !d.arguments.is_empty() {
                    let delta = BlockDelta::InputJsonDelta { partial_json: d.arguments.clone() };
                    out.push(Bytes::from(frame(&StreamEvent::ContentBlockDelta { index, delta })));
                }
            }
        }
        out
    }

    /// The end of a successful stream: `content_block_stop`, `message_delta` (stop reason, usage), `message_stop`.
    pub fn done(&mut self) -> Bytes {
        let mut out = Vec::new();
        self.start(&mut out);
        self.close_open(&mut out);
        let reason = self.finish.take().unwrap_or(FinishReason::Stop);
        out.push(Bytes::from(frame(&StreamEvent::MessageDelta {
            delta: MessageDeltaBody { stop_reason: Some(stop_reason_str(&reason)), stop_sequence: None },
            usage: Some(DeltaUsage {
                input_tokens: Some(self.usage.input_tokens),
                output_tokens: self.usage.output_tokens,
            }),
        })));
        out.push(Bytes::from(frame(&StreamEvent::MessageStop)));
        Bytes::from(out.concat())
    }

    /// An `event: error` (no `message_stop` follows).
    pub fn error(&mut self, err: &Error) -> Bytes {
        Bytes::from(named_frame("error", &error_body(err, &self.request_id)))
    }
}

/// A `content_block_delta` event, the bulk of a stream, read into borrowed fields: [`StreamEvent`] is a tagged
/// enum, which buffers the whole event before reading it a second time (twice as long).
#[derive(Deserialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    index: u32,
    #[serde(borrow)]
    delta: DeltaFields<'a>,
}

/// `content_block_delta.delta`, the fields of a text and of a tool-input delta.
#[derive(Deserialize)]
struct DeltaFields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    partial_json: Option<Cow<'a, str>>,
}

/// A text or tool-input delta read the quick way, when the event is one (its `type` first, as the API sends
/// it) and fits the shape; anything else is `None` and takes the general path, which reads it as before.
fn text_or_input_delta(data: &str) -> Option<(u32, BlockDelta)> {
    if !data.starts_with(r#"{"type":"content_block_delta""#) {
        return None;
    }
    let event: DeltaEvent<'_> = serde_json::from_str(data).ok()?;
    if event.kind != "content_block_delta" {
        return None;
    }
    let delta = match (&*event.delta.kind, event.delta.text, event.delta.partial_json) {
        ("text_delta", Some(text), _) => BlockDelta::TextDelta { text: text.into_owned() },
        ("input_json_delta", _, Some(partial_json)) => {
            BlockDelta::InputJsonDelta { partial_json: partial_json.into_owned() }
        }
        _ => return None,
    };
    Some((event.index, delta))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Tool { ordinal: u32, has_input: bool },
    Other,
}

/// Reads an Anthropic SSE stream into neutral chunks (tool calls are numbered 0, 1, 2… in order).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    blocks: Vec<(u32, BlockKind)>,
    tools: u32,
    stop: Option<FinishReason>,
    saw_content: bool,
}

impl StreamDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn kind_mut(&mut self, index: u32) -> Option<&mut BlockKind> {
        self.blocks.iter_mut().find(|(i, _)| *i == index).map(|(_, k)| k)
    }

    /// A `content_block_delta` for block `index`.
    fn block_delta(&mut self, index: u32, delta: BlockDelta, out: &mut Vec<ChatChunk>) -> Decoded {
        match (self.kind_mut(index), delta) {
            (Some(BlockKind::Text), BlockDelta::TextDelta { text }) if !text.is_empty() => {
                self.saw_content = true;
                push_text(out, Cow::Owned(text));
            }
            (Some(BlockKind::Tool { ordinal, has_input }), BlockDelta::InputJsonDelta { partial_json })
                if !partial_json.is_empty() =>
            {
                *has_input = true;
                let index = *ordinal;
                out.push(ChatChunk::ToolCall(ToolCallDelta { index, id: None, name: None, arguments: partial_json }));
            }
            (None, _) => {
                let message = format!("content_block_delta for unknown block {index}");
                return Decoded::Malformed(Error::invalid_response(message));
            }
            _ => {}
        }
        Decoded::More
    }

    fn close(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Error> {
        let Some(reason) = self.stop.take() else {
            return Err(Error::invalid_response("the stream ended without a stop_reason"));
        };
        if reason == FinishReason::ContentFilter && !self.saw_content {
            return Err(Error::content_filtered("the model refused to answer (stop_reason `refusal`)"));
        }
        out.push(ChatChunk::Finish { reason });
        Ok(())
    }
}

impl EventDecoder for StreamDecoder {
    fn event(&mut self, event: SseEventRef<'_>, out: &mut Vec<ChatChunk>) -> Result<Decoded, Error> {
        if event.event == "error" {
            return Err(parse_error(None, event.data, None));
        }
        if let Some((index, delta)) = text_or_input_delta(event.data) {
            return Ok(self.block_delta(index, delta, out));
        }
        let parsed: StreamEvent = match serde_json::from_str(event.data) {
            Ok(parsed) => parsed,
            Err(e) => return Ok(bad_event(event.data, &e)),
        };
        match parsed {
            StreamEvent::MessageStart { message } => {
                let usage = message.usage;
                out.push(ChatChunk::Usage(Usage {
                    input_tokens: usage.total_input(),
                    output_tokens: usage.output_tokens,
                }));
            }
            StreamEvent::ContentBlockStart { index, content_block } => {
                let kind = match content_block {
                    Block::Text { text } => {
                        if !text.is_empty() {
                            self.saw_content = true;
                            push_text(out, Cow::Owned(text));
                        }
                        BlockKind::Text
                    }
                    Block::ToolUse { id, name, input } => {
                        let ordinal = self.tools;
                        self.tools += 1;
                        self.saw_content = true;
                        let preset = input.as_object().is_some_and(|o| !o.is_empty());
                        let arguments = if preset { input.to_string() } else { String::new() };
                        out.push(ChatChunk::ToolCall(ToolCallDelta {
                            index: ordinal,
                            id: Some(id),
                            name: Some(name),
                            arguments,
                        }));
                        BlockKind::Tool { ordinal, has_input: preset }
                    }
                    _ => BlockKind::Other,
                };
                self.blocks.push((index, kind));
            }
            StreamEvent::ContentBlockDelta { index, delta } => return Ok(self.block_delta(index, delta, out)),
            StreamEvent::ContentBlockStop { index } => {
                if let Some(BlockKind::Tool { ordinal, has_input: false }) = self.kind_mut(index).copied() {
                    // A tool called with no arguments: say `{}` so every consumer sees valid JSON.
                    out.push(ChatChunk::ToolCall(ToolCallDelta {
                        index: ordinal,
                        id: None,
                        name: None,
                        arguments: "{}".into(),
                    }));
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.stop = Some(parse_stop_reason(&reason));
                }
                if let Some(usage) = usage {
                    out.push(ChatChunk::Usage(Usage {
                        input_tokens: usage.input_tokens.unwrap_or(0),
                        output_tokens: usage.output_tokens,
                    }));
                }
            }
            StreamEvent::MessageStop => {
                self.close(out)?;
                return Ok(Decoded::End);
            }
            StreamEvent::Error { .. } => return Err(parse_error(None, event.data, None)),
            StreamEvent::Ping | StreamEvent::Unknown => {}
        }
        Ok(Decoded::More)
    }

    fn end(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Error> {
        self.close(out)
    }
}

#[cfg(test)]
mod tests {
    //! The quick read of a delta against the general one: whenever it answers, it answers the same.

    use super::text_or_input_delta;
    use crate::anthropic::wire::{BlockDelta, StreamEvent};

    #[test]
    fn a_delta_read_the_quick_way_is_the_delta_the_general_read_gives() {
        let quick = [
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"a\"b\n\u00e9"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"text":"x","type":"text_delta"},"extra":[1]}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x","partial_json":"y"}}"#,
        ];
        for data in quick {
            let general: StreamEvent = serde_json::from_str(data).unwrap();
            let (index, delta) = text_or_input_delta(data).unwrap();
            assert_eq!(general, StreamEvent::ContentBlockDelta { index, delta }, "{data}");
        }
        let general_only = [
            r#"{"index":0,"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"x"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":null}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x","partial_json":1}}"#,
            r#"{"type":"content_block_delta","type":"ping","index":0,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"message_stop"}"#,
        ];
        for data in general_only {
            assert_eq!(text_or_input_delta(data), None, "{data}");
        }
        assert!(matches!(
            serde_json::from_str::<StreamEvent>(general_only[1]).unwrap(),
            StreamEvent::ContentBlockDelta { delta: BlockDelta::Other, .. }
        ));
    }
}
