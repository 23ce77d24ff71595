//! Writes neutral chunks as the Responses API's streaming events: `response.created`, `response.in_progress`,
//! then per output item `response.output_item.added`, its content or argument events and
//! `response.output_item.done`, and last `response.completed` (or `response.incomplete`) with the usage, or
//! `response.failed` when the stream breaks. Every event carries its `sequence_number`.

use bytes::Bytes;
use switchyard::{ChatChunk, Error, ErrorKind, FinishReason, Usage, types::ToolCallDelta};

use super::response::{finish, response_object, usage};
use super::wire::{Echo, Event, Frame, OutputItem, OutputText, ResponseError, ResponseObject, Status};
use crate::ids::new_id;

/// The output item being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// A message, at this place in `output`.
    Text(usize),
    /// A function call, at this place in `output`.
    Call(usize),
}

/// Writes one streamed response.
#[derive(Debug)]
pub struct StreamEncoder {
    /// The response as written so far.
    response: ResponseObject,
    sequence: u64,
    started: bool,
    open: Option<Open>,
    /// Neutral tool-call index → place in `output`.
    calls: Vec<(u32, usize)>,
    usage: Usage,
    finish: Option<FinishReason>,
}

impl StreamEncoder {
    /// An encoder for response `id` naming `model` and repeating `echo`.
    pub fn new(id: impl Into<String>, model: &str, echo: &Echo) -> Self {
        Self {
            response: response_object(id.into(), model, echo),
            sequence: 0,
            started: false,
            open: None,
            calls: Vec::new(),
            usage: Usage::default(),
            finish: None,
        }
    }

    /// Names another model from now on (another target took over the answer).
    pub fn set_model(&mut self, model: &str) {
        model.clone_into(&mut self.response.model);
    }

    /// The events for one chunk.
    pub fn chunk(&mut self, chunk: &ChatChunk) -> Vec<Bytes> {
        let mut out = Vec::new();
        match chunk {
            ChatChunk::Text { text } if !text.is_empty() => {
                self.start(&mut out);
                self.text(text, &mut out);
            }
            ChatChunk::Text { .. } => {}
            ChatChunk::ToolCall(delta) => {
                self.start(&mut out);
                self.call(delta, &mut out);
            }
            ChatChunk::Usage(u) => {
                self.usage.input_tokens = self.usage.input_tokens.max(u.input_tokens);
                self.usage.output_tokens = self.usage.output_tokens.max(u.output_tokens);
            }
            ChatChunk::Finish { reason } => self.finish = Some(reason.clone()),
        }
        out
    }

    /// The end of a successful stream: the open item's closing events, then `response.completed` (or
    /// `response.incomplete` after a token limit or a content filter) with the whole response and its usage.
    pub fn done(&mut self) -> Bytes {
        let mut out = Vec::new();
        self.start(&mut out);
        self.close(&mut out);
        self.response.usage = Some(usage(self.usage));
        finish(&mut self.response, self.finish.as_ref().unwrap_or(&FinishReason::Stop));
        let response = self.response.clone();
        let event = if response.status == Status::Incomplete {
            Event::Incomplete { response }
        } else {
            Event::Completed { response }
        };
        out.push(self.frame(&event));
        join(out)
    }

    /// The end of a failed stream: `response.failed` with the response so far and its `error`; never
    /// `response.completed`.
    pub fn error(&mut self, err: &Error) -> Bytes {
        let mut out = Vec::new();
        self.start(&mut out);
        if let Some(item) = self.open.take().and_then(|open| self.response.output.get_mut(open.index())) {
            set_status(item, Status::Incomplete);
        }
        let code = match err.kind() {
            ErrorKind::RateLimited => "rate_limit_exceeded",
            _ => "server_error",
        };
        self.response.status = Status::Failed;
        self.response.error = Some(ResponseError { code, message: err.to_string() });
        if self.usage != Usage::default() {
            self.response.usage = Some(usage(self.usage));
        }
        let event = Event::Failed { response: self.response.clone() };
        out.push(self.frame(&event));
        join(out)
    }

    /// `response.created` and `response.in_progress`, once.
    fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let created = Event::Created { response: self.response.clone() };
        out.push(self.frame(&created));
        let in_progress = Event::InProgress { response: self.response.clone() };
        out.push(self.frame(&in_progress));
    }

    fn text(&mut self, text: &str, out: &mut Vec<Bytes>) {
        let index = match self.open {
            Some(Open::Text(index)) => index,
            _ => {
                self.close(out);
                let index = self.response.output.len();
                let id = new_id("msg_");
                let item = OutputItem::Message {
                    id: id.clone(),
                    role: "assistant",
                    status: Status::InProgress,
                    content: vec![],
                };
                out.push(self.frame(&Event::OutputItemAdded { output_index: index, item: item.clone() }));
                let part = OutputText::new("");
                let added = Event::ContentPartAdded { item_id: id, output_index: index, content_index: 0, part };
                out.push(self.frame(&added));
                let mut item = item;
                if let OutputItem::Message { content, .. } = &mut item {
                    content.push(OutputText::new(""));
                }
                self.response.output.push(item);
                self.open = Some(Open::Text(index));
                index
            }
        };
        let Some(OutputItem::Message { id, content, .. }) = self.response.output.get_mut(index) else { return };
        let item_id = id.clone();
        if let Some(part) = content.first_mut() {
            part.text.push_str(text);
        }
        let delta = Event::OutputTextDelta {
            item_id,
            output_index: index,
            content_index: 0,
            delta: text.to_owned(),
            logprobs: Vec::new(),
        };
        out.push(self.frame(&delta));
    }

    fn call(&mut self, delta: &ToolCallDelta, out: &mut Vec<Bytes>) {
        let index = match self.calls.iter().find(|(n, _)| *n == delta.index) {
            Some((_, index)) => *index,
            None => {
                self.close(out);
                let index = self.response.output.len();
                let item = OutputItem::FunctionCall {
                    id: new_id("fc_"),
                    call_id: delta.id.clone().unwrap_or_else(|| new_id("call_")),
                    name: delta.name.clone().unwrap_or_default(),
                    arguments: String::new(),
                    status: Status::InProgress,
                };
                out.push(self.frame(&Event::OutputItemAdded { output_index: index, item: item.clone() }));
                self.response.output.push(item);
                self.calls.push((delta.index, index));
                self.open = Some(Open::Call(index));
                index
            }
        };
        if delta.arguments.is_empty() {
            return;
        }
        let Some(OutputItem::FunctionCall { id, arguments, .. }) = self.response.output.get_mut(index) else {
            return;
        };
        arguments.push_str(&delta.arguments);
        let event = Event::FunctionCallArgumentsDelta {
            item_id: id.clone(),
            output_index: index,
            delta: delta.arguments.clone(),
        };
        out.push(self.frame(&event));
    }

    /// The closing events of the open item.
    fn close(&mut self, out: &mut Vec<Bytes>) {
        let Some(open) = self.open.take() else { return };
        let index = open.index();
        let Some(item) = self.response.output.get_mut(index) else { return };
        set_status(item, Status::Completed);
        let item = item.clone();
        match &item {
            OutputItem::Message { id, content, .. } => {
                let part = content.first().cloned().unwrap_or_else(|| OutputText::new(""));
                let done = Event::OutputTextDone {
                    item_id: id.clone(),
                    output_index: index,
                    content_index: 0,
                    text: part.text.clone(),
                    logprobs: Vec::new(),
                };
                out.push(self.frame(&done));
                let done = Event::ContentPartDone { item_id: id.clone(), output_index: index, content_index: 0, part };
                out.push(self.frame(&done));
            }
            OutputItem::FunctionCall { id, name, arguments, .. } => {
                let done = Event::FunctionCallArgumentsDone {
                    item_id: id.clone(),
                    output_index: index,
                    name: name.clone(),
                    arguments: arguments.clone(),
                };
                out.push(self.frame(&done));
            }
        }
        out.push(self.frame(&Event::OutputItemDone { output_index: index, item }));
    }

    /// One SSE frame: `event: <type>` and the event with its sequence number.
    fn frame(&mut self, event: &Event) -> Bytes {
        let sequence_number = self.sequence;
        self.sequence += 1;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.name().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        if serde_json::to_writer(&mut out, &Frame { event, sequence_number }).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }
}

impl Open {
    fn index(self) -> usize {
        match self {
            Open::Text(i) | Open::Call(i) => i,
        }
    }
}

fn set_status(item: &mut OutputItem, to: Status) {
    match item {
        OutputItem::Message { status, .. } | OutputItem::FunctionCall { status, .. } => *status = to,
    }
}

fn join(frames: Vec<Bytes>) -> Bytes {
    let mut out = Vec::with_capacity(frames.iter().map(Bytes::len).sum());
    for f in frames {
        out.extend_from_slice(&f);
    }
    Bytes::from(out)
}
