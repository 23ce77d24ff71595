//! Turns a committed [`ChatStream`] into the SSE body in the caller's API.
//!
//! Dropping the body (the client went away) drops the upstream stream, which cancels the call.
//! A failure after commit ends with the API's typed error event, never with a clean finish; so does a stream
//! still open at the server's drain deadline.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use switchyard::{ChatChunk, ChatStream, Error, Usage, model::TargetsUsed};

use crate::codec::StreamEncoder;
use crate::conn::DrainDeadline;
use crate::frame_batch::FrameBatch;
use crate::metrics::InFlight;
use crate::request_log::Recording;
use crate::state::Route;

/// Records the request's end in the metrics when the body finishes or is dropped.
struct EndGuard {
    in_flight: Option<InFlight>,
    target: String,
    started: Instant,
    usage: Usage,
    /// `None` while running; the HTTP-ish status of the end otherwise.
    status: Option<u16>,
    /// The error that ended the stream, whole: for the log line and the request log row (clients get a
    /// redacted one).
    failure: Option<Error>,
    request_id: String,
    /// The request's log row, finished here.
    recording: Option<Recording>,
    /// The SSE text sent, when the log keeps bodies (up to its limit).
    sent: Option<Vec<u8>>,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.record();
        let Some(in_flight) = self.in_flight.take() else { return };
        match self.status {
            Some(200) => in_flight.route().served(&self.target, self.usage, self.started.elapsed()),
            Some(status) => {
                let error = self.failure.as_ref().map(ToString::to_string).unwrap_or_default();
                tracing::warn!(request_id = %self.request_id, target_id = %self.target, status, "stream failed after commit: {error}")
            }
            None => {
                tracing::info!(request_id = %self.request_id, target_id = %self.target, "client went away mid-stream; upstream call cancelled")
            }
        }
        // 499: the client closed the connection (nginx's convention).
        in_flight.finish(self.status.unwrap_or(499));
    }
}

impl EndGuard {
    /// Finishes the log row: the end status decides the outcome.
    fn record(&mut self) {
        let Some(mut recording) = self.recording.take() else { return };
        if let Some(sent) = &self.sent {
            recording.response_body(sent);
        }
        match (self.status, &self.failure) {
            (Some(200), _) => recording.success(self.usage),
            (Some(status), Some(e)) => {
                recording.failed(status, e, crate::client_error::for_client(e).to_string(), self.usage)
            }
            _ => recording.cancelled(self.usage),
        }
    }
}

struct State {
    upstream: ChatStream,
    /// Every target that served the stream (more than one after a continuation).
    targets: TargetsUsed,
    /// How many of them the chunks have named so far; the route knows their model names.
    named: usize,
    route: Arc<Route>,
    encoder: StreamEncoder,
    guard: EndGuard,
    finished: bool,
    ended: bool,
    deadline: Option<DrainDeadline>,
}

/// The SSE frames of `upstream`.
// Each argument is a separate fact of this one request; a struct holding them would only be unpacked here.
#[allow(clippy::too_many_arguments)]
pub fn body(
    upstream: ChatStream,
    encoder: StreamEncoder,
    in_flight: InFlight,
    route: &Arc<Route>,
    target: String,
    started: Instant,
    request_id: String,
    deadline: Option<DrainDeadline>,
    recording: Option<Recording>,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    let guard = EndGuard {
        in_flight: Some(in_flight),
        target,
        started,
        usage: Usage::default(),
        status: None,
        failure: None,
        request_id,
        sent: recording.as_ref().filter(|r| r.wants_bodies()).map(|_| Vec::new()),
        recording,
    };
    let targets = upstream.targets_used();
    let named = targets.len();
    let route = route.clone();
    // Not boxed here: the response body boxes it.
    State { upstream, targets, named, route, encoder, guard, finished: false, ended: false, deadline }
}

/// At most this many bytes of frames go out as one body frame: a long burst is sent on its way, not gathered whole.
const BATCH_LIMIT: usize = 32 * 1024;

/// Written by hand rather than with `stream::unfold`: an unfold builds and moves a future for every frame.
/// The chunks that are ready together go out as one body frame; nothing waits for a chunk not yet here.
impl Stream for State {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let s = self.get_mut();
        if s.ended {
            return Poll::Ready(None);
        }
        let mut batch = FrameBatch::default();
        loop {
            // The upstream first, then the drain deadline: a chunk that is here is sent even at the deadline.
            let next = match s.upstream.poll_next_unpin(cx) {
                Poll::Ready(next) => next,
                Poll::Pending if batch.len() > 0 => return s.out(batch),
                Poll::Pending => {
                    if s.deadline.as_ref().is_some_and(|deadline| deadline.poll_reached(cx).is_ready()) {
                        s.fail(&crate::conn::shutting_down(), &mut batch);
                        return s.out(batch);
                    }
                    return Poll::Pending;
                }
            };
            match next {
                Some(Ok(chunk)) => {
                    s.name_new_target();
                    match &chunk {
                        ChatChunk::Usage(u) => {
                            s.guard.usage.input_tokens = s.guard.usage.input_tokens.max(u.input_tokens);
                            s.guard.usage.output_tokens = s.guard.usage.output_tokens.max(u.output_tokens);
                        }
                        ChatChunk::Finish { .. } => s.finished = true,
                        _ => {}
                    }
                    s.encoder.chunk_into(&chunk, &mut batch);
                    if batch.len() >= BATCH_LIMIT {
                        return s.out(batch);
                    }
                }
                Some(Err(e)) => {
                    s.fail(&e, &mut batch);
                    return s.out(batch);
                }
                None if s.finished => {
                    s.ended = true;
                    s.guard.status = Some(200);
                    // A stream continued by other targets (after_commit = "continue") names them all.
                    let targets = s.targets.get();
                    if targets.len() > 1 {
                        batch.push(Bytes::from(format!(": x-switchyard-targets: {}\n\n", targets.join(", "))));
                    }
                    batch.push(s.encoder.done());
                    return s.out(batch);
                }
                None => {
                    let e = Error::invalid_response("the upstream stream ended without a finish event");
                    s.fail(&e, &mut batch);
                    return s.out(batch);
                }
            }
        }
    }
}

impl EndGuard {
    /// Keeps a copy of `frame` for the log, up to its body limit.
    fn keep(&mut self, frame: &Bytes) {
        if let Some(sent) = &mut self.sent {
            let room = crate::request_log::BODY_LIMIT.saturating_sub(sent.len());
            sent.extend_from_slice(&frame[..frame.len().min(room)]);
        }
    }
}

impl State {
    /// After a continuation by another target, the chunks name that target's model. Checked on every chunk:
    /// the count is read without a lock, and the list is read only when it grew.
    fn name_new_target(&mut self) {
        let used = self.targets.len();
        if used == self.named {
            return;
        }
        self.named = used;
        if let Some(id) = self.targets.last()
            && let Some(model) = self.route.model_of(&id)
        {
            self.encoder.set_model(model);
        }
    }
}

impl State {
    /// The batch's frames as the next body frame, kept for the log when it keeps bodies; the end when the
    /// stream has ended with nothing more to send.
    fn out(&mut self, batch: FrameBatch) -> Poll<Option<Result<Bytes, std::convert::Infallible>>> {
        let Some(frame) = batch.into_bytes() else { return Poll::Ready(None) };
        self.guard.keep(&frame);
        Poll::Ready(Some(Ok(frame)))
    }

    /// Ends the stream with the error event, after what `batch` holds.
    fn fail(&mut self, e: &Error, batch: &mut FrameBatch) {
        self.ended = true;
        self.guard.status = Some(crate::error::status_of(e).0.as_u16());
        self.guard.failure = Some(e.clone());
        batch.push(self.encoder.error(e));
    }
}
