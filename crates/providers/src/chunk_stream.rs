//! Turns a streaming HTTP response into a [`ChatStream`]: SSE parsing, the vendor decoder, and the
//! first-chunk, idle and total limits. Dropping the stream drops the response, closing the connection.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use switchyard::{ChatChunk, ChatResponse, ChatStream, Error, Part, TimeoutPhase, ToolCallDelta};
use tokio::time::Instant;

use crate::event_decoder::EventDecoder;
use crate::http::{HttpClient, Limit};
use crate::sse::{SseEvent, SseParser};

struct State<D> {
    body: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    http: HttpClient,
    parser: SseParser,
    decoder: D,
    start: Instant,
    pending: VecDeque<Result<ChatChunk, Error>>,
    saw_content: bool,
    finished: bool,
    // The end marker arrived; what is left of the body is only its terminator.
    ended_cleanly: bool,
}

impl<D: EventDecoder> State<D> {
    /// Before content: first-chunk (or, without one, idle) and total. After: idle and total.
    fn limit(&self) -> Limit {
        let t = self.http.timeouts();
        let limit = Limit::none().or(self.start, TimeoutPhase::Total, t.total);
        if self.saw_content || t.first_chunk.is_none() {
            limit.or(Instant::now(), TimeoutPhase::Idle, t.idle)
        } else {
            limit.or(self.start, TimeoutPhase::FirstChunk, t.first_chunk)
        }
    }

    fn fail(&mut self, error: Error) {
        self.pending.push_back(Err(error));
        self.finished = true;
    }

    fn decode(&mut self, events: Vec<SseEvent>) {
        let mut chunks = Vec::new();
        for mut event in events {
            event.data = self.http.redact(&event.data);
            match self.decoder.event(&event, &mut chunks) {
                Ok(false) => {}
                Ok(true) => {
                    self.finished = true;
                    self.ended_cleanly = true;
                    break;
                }
                Err(e) => {
                    self.push_chunks(chunks);
                    self.fail(e);
                    return;
                }
            }
        }
        self.push_chunks(chunks);
    }

    fn push_chunks(&mut self, chunks: Vec<ChatChunk>) {
        for chunk in chunks {
            self.saw_content |= chunk.is_content();
            self.pending.push_back(Ok(chunk));
        }
    }

    async fn next(mut self) -> Option<(Result<ChatChunk, Error>, Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            if self.finished {
                return None;
            }
            let limit = self.limit();
            let read = match limit.run(self.body.next()).await {
                Ok(read) => read,
                Err(timeout) => {
                    self.fail(timeout);
                    continue;
                }
            };
            match read {
                Some(Ok(bytes)) => {
                    let mut events = Vec::new();
                    let parsed = self.parser.push(&bytes, &mut events);
                    self.decode(events);
                    if self.ended_cleanly {
                        release(std::mem::replace(&mut self.body, futures::stream::empty().boxed()));
                    }
                    if let Err(too_long) = parsed
                        && !self.finished
                    {
                        self.fail(Error::invalid_response(too_long.to_string()));
                    }
                }
                Some(Err(e)) => {
                    let error = self.http.transport_error(&e);
                    self.fail(error);
                }
                None => {
                    let mut chunks = Vec::new();
                    let ended = self.decoder.end(&mut chunks);
                    self.push_chunks(chunks);
                    match ended {
                        Ok(()) => self.finished = true,
                        Err(e) => self.fail(e),
                    }
                }
            }
        }
    }
}

/// Reads what follows a stream's end marker (usually only the body's terminator) so the connection goes back
/// to the pool instead of being closed: at once when it is already here, else in the background, bounded in
/// time and size.
fn release(mut body: BoxStream<'static, Result<Bytes, reqwest::Error>>) {
    const LIMIT: Duration = Duration::from_secs(5);
    const MAX: usize = 64 * 1024;
    let mut read = 0;
    loop {
        match body.next().now_or_never() {
            Some(Some(Ok(bytes))) if read + bytes.len() <= MAX => read += bytes.len(),
            Some(_) => return, // the end (connection reusable), an error, or too much: nothing more to do
            None => break,
        }
    }
    tokio::spawn(async move {
        let drain = async {
            while let Some(Ok(bytes)) = body.next().await {
                read += bytes.len();
                if read > MAX {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LIMIT, drain).await;
    });
}

/// Reads `response` (a 2xx SSE response) with `decoder`, under the client's limits counted from `start`.
pub(crate) fn chunk_stream<D: EventDecoder>(
    response: reqwest::Response,
    http: HttpClient,
    decoder: D,
    start: Instant,
) -> ChatStream {
    let state = State {
        body: response.bytes_stream().boxed(),
        http,
        parser: SseParser::default(),
        decoder,
        start,
        pending: VecDeque::new(),
        saw_content: false,
        finished: false,
        ended_cleanly: false,
    };
    ChatStream::new(futures::stream::unfold(state, State::next))
}

/// True when a response says its body is JSON (not an event stream).
pub(crate) fn is_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// A whole answer as the chunks a stream of it would have carried.
pub(crate) fn answer_chunks(answer: ChatResponse) -> Vec<Result<ChatChunk, Error>> {
    let mut chunks = Vec::new();
    let mut tool_index = 0;
    for part in answer.message.content {
        match part {
            Part::Text { text } => chunks.push(Ok(ChatChunk::Text { text })),
            Part::ToolCall(call) => {
                chunks.push(Ok(ChatChunk::ToolCall(ToolCallDelta {
                    index: tool_index,
                    id: Some(call.id),
                    name: Some(call.name),
                    arguments: call.arguments,
                })));
                tool_index += 1;
            }
            Part::Image { .. } | Part::ToolResult(_) => {}
        }
    }
    chunks.push(Ok(ChatChunk::Usage(answer.usage)));
    chunks.push(Ok(ChatChunk::Finish { reason: answer.finish_reason }));
    chunks
}
