//! Turns a streaming HTTP response into a [`ChatStream`]: SSE parsing, the vendor decoder, and the idle
//! limit once content has started (the engine owns the first-chunk and total limits). Dropping the stream drops the response, closing the connection.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::{FutureExt, Stream, StreamExt};
use http_body_util::BodyDataStream;
use switchyard::{
    ChatChunk, ChatResponse, ChatStream, Error, ErrorKind, Part, TimeoutPhase, model::SkippedEvents,
    types::ToolCallDelta,
};
use tokio::time::{Instant, Sleep};

use crate::event_decoder::{Decoded, EventDecoder};
use crate::http::{HttpClient, Stage};
use crate::sse::{SseEventRef, SseParser};
use crate::transport::{Body, Response};

/// Malformed events in a row that fail a stream: one is noise in a healthy stream, ten is a broken one.
const MAX_MALFORMED_IN_A_ROW: u32 = 10;

struct State<D> {
    // None once the body has been handed to `release`.
    body: Option<BodyDataStream<Body>>,
    parser: SseParser,
    /// Read and not parsed yet. Events are parsed as they are taken, so a read of many events holds their
    /// bytes, not all their chunks at once in a queue grown for them.
    unread: Bytes,
    decoding: Decoding<D>,
    idle: IdleTimer,
}

/// What the events have made so far: the vendor decoder and what waits to be taken.
struct Decoding<D> {
    http: HttpClient,
    decoder: D,
    /// The chunks of the event read last, the next one last (taken with `pop`). Events are read only once it
    /// is empty, so it holds one event's chunks, usually one; reused for every event.
    chunks: Vec<ChatChunk>,
    /// What ended the stream, taken after the chunks before it.
    failure: Option<Error>,
    saw_content: bool,
    finished: bool,
    // The end marker arrived; what is left of the body is only its terminator.
    ended_cleanly: bool,
    skipped: SkippedEvents,
    // Malformed events since the last good one, and the latest of them.
    malformed_in_a_row: u32,
    last_malformed: Option<Error>,
}

impl<D: EventDecoder> Decoding<D> {
    /// How long the next read may be silent: the idle limit, once content has started. Before that the
    /// engine's first-chunk limit is the one that applies.
    fn idle_limit(&self) -> Option<Duration> {
        if self.saw_content { self.http.timeouts().idle } else { None }
    }

    fn fail(&mut self, error: Error) {
        self.failure = Some(error);
        self.finished = true;
    }

    /// What waits to be taken, in order: the chunks, then the failure.
    fn take(&mut self) -> Option<Result<ChatChunk, Error>> {
        match self.chunks.pop() {
            Some(chunk) => Some(Ok(chunk)),
            None => self.failure.take().map(Err),
        }
    }

    /// Reads one event; those after the stream's end or failure are ignored. Breaks once there is something
    /// to hand over, but for text: the text of the events after it in the same read joins it (decoders add
    /// text to a text chunk at the end of `chunks`). It arrived at the same time, so one delta carries it, not
    /// one chunk each, each a trip through every layer above and a frame to the client. Nothing waits for
    /// more bytes: the text is handed over when the read's bytes run out.
    fn event(&mut self, event: SseEventRef<'_>) -> ControlFlow<()> {
        if self.finished {
            return ControlFlow::Break(());
        }
        // Events are read only once the last one's chunks are taken, but for the text being joined
        // (`read_chunks` turns the chunks around only when the reading breaks).
        debug_assert!(self.joining(), "an event read before the last one's chunks were taken");
        let fatal = match self.decoder.event(event, &mut self.chunks) {
            Ok(Decoded::More) => {
                self.malformed_in_a_row = 0;
                None
            }
            Ok(Decoded::End) => {
                self.finished = true;
                self.ended_cleanly = true;
                None
            }
            Ok(Decoded::Malformed(e)) => self.skip(e),
            Err(e) => Some(self.cause(e)),
        };
        if let Some(fatal) = fatal {
            let e = self.http.redact_error(fatal);
            self.fail(e);
        }
        if self.finished || !self.joining() {
            self.read_chunks();
            return ControlFlow::Break(());
        }
        self.saw_content |= self.chunks.iter().any(ChatChunk::is_content);
        ControlFlow::Continue(())
    }

    /// Whether the next event's text may join what waits: nothing, or one text chunk.
    fn joining(&self) -> bool {
        matches!(self.chunks.as_slice(), [] | [ChatChunk::Text { .. }])
    }

    /// Skips a malformed event (counted, logged); `Some` when it is one too many in a row.
    fn skip(&mut self, error: Error) -> Option<Error> {
        self.malformed_in_a_row += 1;
        if self.malformed_in_a_row >= MAX_MALFORMED_IN_A_ROW {
            return Some(error);
        }
        self.skipped.record();
        let error = self.http.redact_error(error);
        tracing::warn!(url = %self.http.shown_url(), in_a_row = self.malformed_in_a_row, "skipped a malformed stream event: {error}");
        self.last_malformed = Some(error);
        None
    }

    /// The error to report for a stream that fails at its end: when malformed events came just before, the
    /// finish was likely in one of them, so the malformed event is the cause.
    fn cause(&mut self, error: Error) -> Error {
        match self.last_malformed.take() {
            Some(malformed) if self.malformed_in_a_row > 0 && error.kind() == ErrorKind::InvalidResponse => malformed,
            _ => error,
        }
    }

    /// The decoder has written the chunks of one event (after the text of those before it, when joined), first
    /// first: they are turned around to be taken with `pop`.
    fn read_chunks(&mut self) {
        self.saw_content |= self.chunks.iter().any(ChatChunk::is_content);
        self.chunks.reverse();
    }

    /// The byte stream ended: the decoder completes the answer or says why it cannot.
    fn end(&mut self) {
        let ended = self.decoder.end(&mut self.chunks);
        self.read_chunks();
        match ended {
            Ok(()) => self.finished = true,
            Err(e) => {
                let e = self.cause(e);
                let e = self.http.redact_error(e);
                self.fail(e);
            }
        }
    }
}

/// The idle limit's one timer for a stream, moved only when it fires early: a timer a read cost a timer made and
/// dropped for every chunk.
#[derive(Default)]
struct IdleTimer {
    timer: Option<Pin<Box<Sleep>>>,
    /// When the read being waited for times out; `None` until it first waits.
    until: Option<Instant>,
}

impl IdleTimer {
    /// Ready when the read being waited for has been silent for `after`.
    fn poll(&mut self, after: Duration, cx: &mut Context<'_>) -> Poll<()> {
        let until = *self.until.get_or_insert_with(|| Instant::now() + after);
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
        loop {
            ready!(timer.as_mut().poll(cx));
            // Set for an earlier read: move it on to this one's time.
            if timer.deadline() >= until {
                return Poll::Ready(());
            }
            timer.as_mut().reset(until);
        }
    }

    /// A read completed: the next one gets its own time.
    fn read(&mut self) {
        self.until = None;
    }
}

impl<D: EventDecoder + Unpin> Stream for State<D> {
    type Item = Result<ChatChunk, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let d = &mut this.decoding;
            if let Some(item) = d.take() {
                return Poll::Ready(Some(item));
            }
            if d.finished {
                return Poll::Ready(None);
            }
            if !this.unread.is_empty() {
                let parsed = this.parser.feed_until(&this.unread, |event| d.event(event));
                match parsed {
                    // All read: the read's buffer is let go now, not at the next read.
                    Ok(read) if read == this.unread.len() => this.unread = Bytes::new(),
                    Ok(read) => this.unread.advance(read),
                    Err(too_long) => {
                        this.unread.clear();
                        if !d.finished {
                            d.fail(Error::invalid_response(too_long.to_string()));
                        }
                    }
                }
                if d.ended_cleanly
                    && let Some(body) = this.body.take()
                {
                    release(body);
                }
                continue;
            }
            let idle = d.idle_limit();
            let Some(body) = this.body.as_mut() else {
                this.decoding.finished = true;
                continue;
            };
            // The body first, then the limit: bytes that are here are read even at the limit.
            let read = match body.poll_next_unpin(cx) {
                Poll::Ready(read) => read,
                Poll::Pending => {
                    let Some(after) = idle else { return Poll::Pending };
                    ready!(this.idle.poll(after, cx));
                    this.idle.read();
                    this.decoding.fail(Error::Timeout { phase: TimeoutPhase::Idle, after });
                    continue;
                }
            };
            this.idle.read();
            let d = &mut this.decoding;
            match read {
                Some(Ok(bytes)) => this.unread = bytes,
                Some(Err(e)) => {
                    let error = d.http.transport_error(Stage::Body, &*e);
                    d.fail(error);
                }
                None => d.end(),
            }
        }
    }
}

/// Reads what follows a stream's end marker (usually only the body's terminator) so the connection goes back
/// to the pool instead of being closed: at once when it is already here, else in the background, bounded in
/// time and size.
fn release(mut body: BodyDataStream<Body>) {
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

/// Reads `response` (a 2xx SSE response) with `decoder`, under the client's idle limit.
pub(crate) fn chunk_stream<D: EventDecoder + Unpin>(response: Response, http: HttpClient, decoder: D) -> ChatStream {
    let skipped = SkippedEvents::default();
    let decoding = Decoding {
        http,
        decoder,
        chunks: Vec::new(),
        failure: None,
        saw_content: false,
        finished: false,
        ended_cleanly: false,
        skipped: skipped.clone(),
        malformed_in_a_row: 0,
        last_malformed: None,
    };
    let state = State {
        body: Some(BodyDataStream::new(response.into_body())),
        parser: SseParser::default(),
        unread: Bytes::new(),
        decoding,
        idle: IdleTimer::default(),
    };
    ChatStream::new(state).with_skipped_events(skipped)
}

/// True when a response says its body is JSON (not an event stream).
pub(crate) fn is_json(response: &Response) -> bool {
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

#[cfg(test)]
mod tests {
    //! The limits, on tokio's paused clock: a synthetic body (no socket) makes every timing exact.

    use std::time::Duration;

    use futures::StreamExt;
    use http_body_util::{BodyExt, StreamBody};
    use switchyard::{Error, TimeoutPhase};
    use tokio::time::Instant;

    use super::chunk_stream;
    use crate::config::{ProviderConfig, ProviderKind, Timeouts};
    use crate::http::{Auth, HttpClient};
    use crate::{anthropic, openai};

    const TEXT: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
    const PING: &str = "event: ping\ndata: {\"type\": \"ping\"}\n\n";

    /// A body that sends `pieces` (each after its delay) and then, unless `end`, stays silent forever.
    fn response(pieces: Vec<(u64, &'static str)>, end: bool) -> crate::transport::Response {
        let body = futures::stream::iter(pieces)
            .then(|(delay, piece)| async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                Ok::<_, crate::transport::BoxError>(http_body::Frame::data(bytes::Bytes::from_static(piece.as_bytes())))
            })
            .chain(futures::stream::once(async move {
                if !end {
                    std::future::pending::<()>().await;
                }
                Ok(http_body::Frame::data(bytes::Bytes::new()))
            }));
        http::Response::new(StreamBody::new(body).boxed_unsync())
    }

    fn http(idle: Option<u64>) -> HttpClient {
        let mut config = ProviderConfig::new(ProviderKind::OpenAi, "t", "m");
        config.timeouts = Timeouts { connect: None, idle: idle.map(Duration::from_millis) };
        HttpClient::new(&config, "/chat/completions", Auth::Bearer, &[]).unwrap()
    }

    async fn run_openai(
        pieces: Vec<(u64, &'static str)>,
        end: bool,
        http: HttpClient,
    ) -> (usize, Option<Error>, Duration) {
        let start = Instant::now();
        let mut stream = chunk_stream(response(pieces, end), http, openai::StreamDecoder::new());
        let mut content = 0;
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => content += usize::from(chunk.is_content()),
                Err(e) => return (content, Some(e), start.elapsed()),
            }
        }
        (content, None, start.elapsed())
    }

    fn timeout(phase: TimeoutPhase, ms: u64) -> Option<Error> {
        Some(Error::Timeout { phase, after: Duration::from_millis(ms) })
    }

    #[tokio::test(start_paused = true)]
    async fn silence_after_content_is_an_idle_timeout_counted_from_the_last_read() {
        let pieces = vec![(100, TEXT), (300, TEXT)];
        let (content, error, elapsed) = run_openai(pieces, false, http(Some(1_000))).await;
        assert_eq!((content, error), (2, timeout(TimeoutPhase::Idle, 1_000)));
        assert_eq!(elapsed, Duration::from_millis(1_400));
    }

    #[tokio::test(start_paused = true)]
    async fn chunks_within_the_idle_limit_arrive_whatever_the_gaps() {
        let done = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let pieces = vec![(1_900, TEXT), (900, TEXT), (900, TEXT), (900, done)];
        let (content, error, _) = run_openai(pieces, true, http(Some(1_000))).await;
        assert_eq!((content, error), (3, None));
    }

    /// Before content the engine's first-chunk limit applies, not the client's idle limit: the wait for
    /// the first chunk, and pings or malformed events during it, never end the stream here.
    #[tokio::test(start_paused = true)]
    async fn before_content_the_idle_limit_does_not_apply() {
        let (content, error, elapsed) = run_openai(vec![(5_000, TEXT)], true, http(Some(1_000))).await;
        assert_eq!((content, error.map(|e| e.kind())), (1, Some(switchyard::ErrorKind::InvalidResponse)));
        assert_eq!(elapsed, Duration::from_secs(5), "the late first chunk arrived and the stream then ended");
        let start = Instant::now();
        let pings = (0..20).map(|_| (2_000, PING)).collect();
        let stream = chunk_stream(response(pings, true), http(Some(500)), anthropic::StreamDecoder::new());
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 1, "one item: the error of a stream that ended without content");
        assert_eq!(start.elapsed(), Duration::from_secs(40), "20 pings 2 s apart, none cut off by idle");
        assert!(items.iter().all(|i| i.as_ref().is_err_and(|e| e.kind() != switchyard::ErrorKind::Timeout)));
    }

    const BAD: &str = "data: {\"choices\":[{\"index\":0,\"delta\":\n\n";
    const DONE: &str =
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

    /// (text, error, events skipped)
    async fn read_text(pieces: Vec<(u64, &'static str)>, end: bool) -> (String, Option<Error>, u64) {
        let stream = chunk_stream(response(pieces, end), http(None), openai::StreamDecoder::new());
        let skipped = stream.skipped_events();
        let mut stream = stream;
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(switchyard::ChatChunk::Text { text: t }) => text.push_str(&t),
                Ok(_) => {}
                Err(e) => return (text, Some(e), skipped.count()),
            }
        }
        (text, None, skipped.count())
    }

    #[tokio::test(start_paused = true)]
    async fn a_malformed_event_inside_a_healthy_stream_is_skipped_and_counted() {
        let (text, error, skipped) = read_text(vec![(0, TEXT), (0, BAD), (0, TEXT), (0, DONE)], true).await;
        assert_eq!((text.as_str(), error, skipped), ("xx", None, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn ten_malformed_events_in_a_row_fail_the_stream() {
        let mut pieces = vec![(0, TEXT)];
        pieces.extend((0..10).map(|_| (0, BAD)));
        pieces.extend([(0, TEXT), (0, DONE)]);
        let (text, error, skipped) = read_text(pieces, true).await;
        assert_eq!((text.as_str(), skipped), ("x", 9));
        assert_eq!(error.map(|e| e.kind()), Some(switchyard::ErrorKind::InvalidResponse));
        // Nine, with good events between runs, do not.
        let mut pieces = vec![(0, TEXT)];
        for _ in 0..3 {
            pieces.extend((0..9).map(|_| (0, BAD)));
            pieces.push((0, TEXT));
        }
        pieces.push((0, DONE));
        let (text, error, skipped) = read_text(pieces, true).await;
        assert_eq!((text.as_str(), error, skipped), ("xxxx", None, 27));
    }

    /// The items a stream of `sse` makes: the reference reads every event at once with the SSE parser and
    /// the decoder, as the wire fixtures' tests do, each event's chunks apart (`join`: consecutive texts
    /// joined); the stream reads `sse` in pieces of `piece` bytes.
    async fn items_of<D: crate::EventDecoder + Unpin + Default>(
        sse: &str,
        piece: usize,
        join: bool,
    ) -> [Vec<String>; 2] {
        let mut events = Vec::new();
        crate::sse::SseParser::default().push(sse.as_bytes(), &mut events).unwrap();
        let mut reference = Vec::new();
        let mut reader = D::default();
        let mut ended = false;
        // The text joined so far, as its chunk.
        let mut text = String::new();
        let flush = |text: &mut String, reference: &mut Vec<String>| {
            if !text.is_empty() {
                reference.push(format!("{:?}", switchyard::ChatChunk::text(std::mem::take(text))));
            }
        };
        for event in &events {
            let mut chunks = Vec::new();
            let result = reader.event(event.view(), &mut chunks);
            for chunk in chunks {
                match chunk {
                    switchyard::ChatChunk::Text { text: more } if join => text.push_str(&more),
                    chunk => {
                        flush(&mut text, &mut reference);
                        reference.push(format!("{chunk:?}"));
                    }
                }
            }
            if !matches!(result, Ok(crate::Decoded::More | crate::Decoded::Malformed(_))) {
                flush(&mut text, &mut reference);
            }
            match result {
                Ok(crate::Decoded::End) => {
                    ended = true;
                    break;
                }
                Err(e) => {
                    reference.push(format!("error {:?}", e.kind()));
                    ended = true;
                    break;
                }
                Ok(_) => {}
            }
        }
        flush(&mut text, &mut reference);
        if !ended {
            let mut chunks = Vec::new();
            let result = reader.end(&mut chunks);
            reference.extend(chunks.iter().map(|c| format!("{c:?}")));
            if let Err(e) = result {
                reference.push(format!("error {:?}", e.kind()));
            }
        }
        let pieces = sse.as_bytes().chunks(piece).map(|p| Ok(http_body::Frame::data(bytes::Bytes::copy_from_slice(p))));
        let body =
            StreamBody::new(futures::stream::iter(pieces.collect::<Vec<Result<_, crate::transport::BoxError>>>()));
        let stream = chunk_stream(http::Response::new(body.boxed_unsync()), http(None), D::default());
        let read = stream
            .map(|item| match item {
                Ok(c) => format!("{c:?}"),
                Err(e) => format!("error {:?}", e.kind()),
            })
            .collect()
            .await;
        [reference, read]
    }

    /// A read holding many events hands their chunks over one event at a time, in order, as the decoder makes
    /// them, but for text: the texts of consecutive events in one read are one chunk. In pieces of 7 bytes no
    /// two events end in one read, so every text is its own chunk.
    #[tokio::test]
    async fn the_chunks_of_a_read_of_many_events_come_in_order() {
        let fixtures: [(&str, bool); 6] = [
            (include_str!("../tests/fixtures/openai_text_stream.sse"), true),
            (include_str!("../tests/fixtures/openai_tool_stream.sse"), true),
            (include_str!("../tests/fixtures/openai_error_in_stream.sse"), true),
            (include_str!("../tests/fixtures/anthropic_tool_stream.sse"), false),
            (include_str!("../tests/fixtures/anthropic_error_after_content.sse"), false),
            (include_str!("../tests/fixtures/anthropic_cut_off.sse"), false),
        ];
        for (sse, is_openai) in fixtures {
            for piece in [sse.len(), 7] {
                let join = piece == sse.len();
                let [reference, read] = if is_openai {
                    items_of::<openai::StreamDecoder>(sse, piece, join).await
                } else {
                    items_of::<anthropic::StreamDecoder>(sse, piece, join).await
                };
                assert!(!reference.is_empty());
                assert_eq!(read, reference, "pieces of {piece} bytes");
            }
        }
    }

    /// Texts that come in one read leave as one chunk at once, before the stream waits for more; a text in a
    /// later read is a chunk of its own.
    #[tokio::test(start_paused = true)]
    async fn texts_read_together_are_one_chunk_handed_over_without_waiting() {
        const TWO: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n\
                           data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n";
        let mut stream =
            chunk_stream(response(vec![(0, TWO), (500, TEXT)], false), http(None), openai::StreamDecoder::new());
        let start = Instant::now();
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!((first, start.elapsed()), (switchyard::ChatChunk::text("ab"), Duration::ZERO));
        let second = stream.next().await.unwrap().unwrap();
        assert_eq!((second, start.elapsed()), (switchyard::ChatChunk::text("x"), Duration::from_millis(500)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_malformed_event_that_leaves_the_stream_without_a_finish_fails_it_with_that_event() {
        let (text, error, _) = read_text(vec![(0, TEXT), (0, BAD)], true).await;
        assert_eq!(text, "x");
        let error = error.unwrap();
        assert!(error.to_string().contains("unexpected stream event"), "{error}");
    }
}
