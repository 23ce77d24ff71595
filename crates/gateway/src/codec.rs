//! The client APIs, side by side: decode a body, encode an answer, encode a stream.
//! The wire work is `switchyard-providers`' server-side codecs; this file only picks one.

use bytes::Bytes;
use switchyard::{ChatChunk, ChatRequest, ChatResponse, Error};
use switchyard_providers::{anthropic, openai, responses};

use crate::error::Api;
use crate::frame_batch::FrameBatch;

/// A decoded request, whether it streams, and how its answer is written.
#[derive(Debug)]
pub struct Decoded {
    /// The neutral request.
    pub request: ChatRequest,
    /// Whether the caller asked for SSE.
    pub stream: bool,
    /// What the answer's shape depends on besides the API.
    pub shape: Shape,
}

/// What the answer's shape depends on besides the API.
#[derive(Debug, Default)]
pub struct Shape {
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// Responses API: the request parameters its answer repeats.
    pub echo: Option<Box<responses::Echo>>,
}

impl Shape {
    fn echo(&self) -> &responses::Echo {
        static DEFAULT: std::sync::LazyLock<responses::Echo> = std::sync::LazyLock::new(responses::Echo::default);
        self.echo.as_deref().unwrap_or(&DEFAULT)
    }
}

/// Decodes a request body in the caller's API.
pub fn decode(api: Api, body: &[u8]) -> Result<Decoded, Error> {
    match api {
        Api::OpenAi => openai::decode(body).map(|d| Decoded {
            request: d.request,
            stream: d.stream,
            shape: Shape { include_usage: d.include_usage, echo: None },
        }),
        Api::Anthropic => anthropic::decode(body).map(|d| Decoded {
            request: d.request,
            stream: d.stream,
            shape: Shape { include_usage: true, echo: None },
        }),
        Api::Responses => responses::decode(body).map(|d| Decoded {
            request: d.request,
            stream: d.stream,
            shape: Shape { include_usage: true, echo: Some(Box::new(d.echo)) },
        }),
    }
}

/// Encodes a complete answer as JSON bytes naming `model`.
pub fn encode_response(
    api: Api,
    response: &ChatResponse,
    model: &str,
    shape: &Shape,
) -> Result<Vec<u8>, serde_json::Error> {
    // Room for the envelope up front: growing from serde_json's default 128 bytes reallocates and copies.
    let mut out = Vec::with_capacity(1024);
    match api {
        Api::OpenAi => openai::write_response(response, model, &mut out)?,
        Api::Anthropic => serde_json::to_writer(&mut out, &anthropic::encode_response(response, model))?,
        Api::Responses => serde_json::to_writer(&mut out, &responses::encode_response(response, model, shape.echo()))?,
    }
    Ok(out)
}

/// Writes a stream in the caller's API.
#[derive(Debug)]
pub enum StreamEncoder {
    /// OpenAI `chat.completion.chunk` frames.
    OpenAi(openai::StreamEncoder),
    /// Anthropic message events.
    Anthropic(anthropic::StreamEncoder),
    /// Responses API events (boxed: it holds the whole response so far).
    Responses(Box<responses::StreamEncoder>),
}

impl StreamEncoder {
    /// An encoder for one response in this shape. (The ids are joined with `concat`: `format!` cost about
    /// 500 instructions a stream for the same string.)
    pub fn new(api: Api, request_id: &str, model: &str, shape: &Shape) -> Self {
        match api {
            Api::OpenAi => StreamEncoder::OpenAi(
                openai::StreamEncoder::new(["chatcmpl-", request_id].concat(), model, shape.include_usage)
                    .with_request_id(request_id),
            ),
            Api::Anthropic => StreamEncoder::Anthropic(
                anthropic::StreamEncoder::new(["msg_", request_id].concat(), model).with_request_id(request_id),
            ),
            Api::Responses => StreamEncoder::Responses(Box::new(responses::StreamEncoder::new(
                ["resp_", request_id].concat(),
                model,
                shape.echo(),
            ))),
        }
    }

    /// Names the model that writes the answer from now on (OpenAI: every later chunk; Anthropic:
    /// `message_start`, when not sent yet).
    pub fn set_model(&mut self, model: &str) {
        match self {
            StreamEncoder::OpenAi(e) => e.set_model(model),
            StreamEncoder::Anthropic(e) => e.set_model(model),
            StreamEncoder::Responses(e) => e.set_model(model),
        }
    }

    /// What one chunk writes to the stream, its frames in one piece; none when it writes nothing.
    pub fn chunk(&mut self, chunk: &ChatChunk) -> Option<Bytes> {
        let mut batch = FrameBatch::default();
        self.chunk_into(chunk, &mut batch);
        batch.into_bytes()
    }

    /// Adds what one chunk writes to the stream to `batch`.
    pub(crate) fn chunk_into(&mut self, chunk: &ChatChunk, batch: &mut FrameBatch) {
        match self {
            StreamEncoder::OpenAi(e) => e.chunk_into(chunk, batch.buffer()),
            StreamEncoder::Anthropic(e) => e.chunk(chunk).into_iter().for_each(|f| batch.push(f)),
            StreamEncoder::Responses(e) => e.chunk(chunk).into_iter().for_each(|f| batch.push(f)),
        }
    }

    /// The clean end of the stream.
    pub fn done(&mut self) -> Bytes {
        match self {
            StreamEncoder::OpenAi(e) => e.done(),
            StreamEncoder::Anthropic(e) => e.done(),
            StreamEncoder::Responses(e) => e.done(),
        }
    }

    /// The typed error event that ends a failed stream, with what clients may see of the error.
    pub fn error(&mut self, err: &Error) -> Bytes {
        let err = &crate::client_error::for_client(err);
        match self {
            StreamEncoder::OpenAi(e) => e.error(err),
            StreamEncoder::Anthropic(e) => e.error(err),
            StreamEncoder::Responses(e) => e.error(err),
        }
    }
}
