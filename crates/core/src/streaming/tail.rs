//! The caller's side of a committed stream: the buffered chunks, then the rest; a break becomes one typed
//! error, or, with `after_commit = "continue"`, a verified continuation by the next target.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use crate::error::Error;
use crate::gate::CallPermit;
use crate::health::Health;
use crate::model::{ChatStream, TargetsUsed};
use crate::runner::Served;
use crate::stats::{Outcome, RequestTracker};
use crate::time_limits::Limit;
use crate::types::{ChatChunk, Continuation, Message, Usage};

use super::commit::Opened;
use super::continuation::{Continue, Verdict, verify};

/// One step of the underlying stream.
enum Raw {
    Chunk(ChatChunk),
    /// Ended with its finish.
    End,
    /// Broke: an error, a cut-off, the limit.
    Break(Error),
    /// Already settled.
    Done,
}

/// The caller's side of a committed stream: it replays the buffered chunks, passes the rest
/// through, and turns a break (an error, a cut-off, the limit) into one error item, or, with
/// `after_commit = "continue"`, into a continuation by the next target.
struct Tail {
    buffered: VecDeque<ChatChunk>,
    rest: Option<ChatStream>,
    limit: Option<Limit>,
    /// The limit's timer, made when a read first waits and kept for the rest: one timer a stream, not one a chunk.
    timer: Option<Pin<Box<Sleep>>>,
    finished: bool,
    tracker: Option<RequestTracker>,
    slot: usize,
    served_by: String,
    health: Option<Arc<Health>>,
    /// Whether `slot` and `health` still describe the stream being read (not after a splice: the
    /// continuation's own engine counts its target).
    counted: bool,
    cont: Option<Continue>,
    targets: TargetsUsed,
    /// The serving call's place at its target, until the stream ends, breaks or is dropped.
    permit: Option<CallPermit>,
}

impl Tail {
    fn end(&mut self, outcome: Outcome) {
        self.rest = None;
        if outcome == Outcome::Success
            && let Some(permit) = self.permit.as_mut()
        {
            permit.answered();
        }
        self.permit = None;
        if let Some(health) = &self.health
            && outcome == Outcome::Success
            && self.counted
        {
            health.breaker.succeeded(None, Instant::now());
        }
        if let Some(tracker) = self.tracker.take() {
            tracker.finish(outcome);
        }
    }

    /// The stream being read broke: it counts against its target.
    fn count_break(&mut self, error: &Error) {
        if !self.counted {
            return;
        }
        self.counted = false;
        self.permit = None;
        if let Some(health) = &self.health {
            health.breaker.failed(error, None);
        }
        if let Some(tracker) = self.tracker.as_mut() {
            tracker.stream_failed(self.slot);
        }
    }

    fn fail(&mut self, error: Error) -> Option<Result<ChatChunk, Error>> {
        self.count_break(&error);
        tracing::warn!(target_id = %self.served_by, %error, "stream from {} failed after its first chunk", self.served_by);
        self.end(Outcome::Failed);
        Some(Err(error))
    }

    fn poll_raw(&mut self, cx: &mut Context<'_>) -> Poll<Raw> {
        if let Some(chunk) = self.buffered.pop_front() {
            self.finished |= matches!(chunk, ChatChunk::Finish { .. });
            return Poll::Ready(Raw::Chunk(chunk));
        }
        let Some(rest) = self.rest.as_mut() else {
            // Ended while being checked (with or without its finish), or after an error item.
            return Poll::Ready(match (self.tracker.is_some(), self.finished) {
                (false, _) => Raw::Done,
                (true, true) => Raw::End,
                (true, false) => Raw::Break(self.cut_off()),
            });
        };
        // The stream first, then the limit: a chunk that is ready is taken even at the limit.
        let next = match rest.poll_next_unpin(cx) {
            Poll::Ready(next) => next,
            Poll::Pending => {
                let Some(limit) = self.limit else { return Poll::Pending };
                let timer = self.timer.get_or_insert_with(|| Box::pin(limit.timer()));
                ready!(timer.as_mut().poll(cx));
                return Poll::Ready(Raw::Break(limit.error()));
            }
        };
        Poll::Ready(match next {
            Some(Ok(chunk)) => {
                self.finished |= matches!(chunk, ChatChunk::Finish { .. });
                Raw::Chunk(chunk)
            }
            Some(Err(error)) => Raw::Break(error),
            None if self.finished => Raw::End,
            None => Raw::Break(self.cut_off()),
        })
    }

    /// The next item, or `Err` with a break that a continuation may mend (see [`Self::may_splice`]).
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Result<ChatChunk, Error>>, Error>> {
        loop {
            match ready!(self.poll_raw(cx)) {
                Raw::Chunk(chunk) => {
                    if let (ChatChunk::Usage(usage), Some(permit)) = (&chunk, self.permit.as_mut()) {
                        permit.settle(usage.input_tokens + usage.output_tokens);
                    }
                    if let Some(chunk) = self.observe(chunk) {
                        return Poll::Ready(Ok(Some(Ok(chunk))));
                    }
                }
                Raw::End => {
                    self.end(Outcome::Success);
                    return Poll::Ready(Ok(None));
                }
                Raw::Done => return Poll::Ready(Ok(None)),
                Raw::Break(error) if self.may_splice(&error) => return Poll::Ready(Err(error)),
                Raw::Break(error) => return Poll::Ready(Ok(self.fail(error))),
            }
        }
    }

    /// Tracks what the caller received, for a continuation; `None` holds the chunk back.
    fn observe(&mut self, chunk: ChatChunk) -> Option<ChatChunk> {
        let Some(cont) = self.cont.as_mut() else { return Some(chunk) };
        match chunk {
            ChatChunk::Text { text } if cont.trim_start => {
                let text = text.trim_start();
                if text.is_empty() {
                    return None;
                }
                cont.trim_start = false;
                cont.text.push_str(text);
                Some(ChatChunk::text(text))
            }
            ChatChunk::Text { text } => {
                cont.text.push_str(&text);
                Some(ChatChunk::Text { text })
            }
            ChatChunk::ToolCall(delta) => {
                cont.tool_calls = true;
                Some(ChatChunk::ToolCall(delta))
            }
            ChatChunk::Usage(usage) => {
                cont.latest = Some(usage);
                None
            }
            finish @ ChatChunk::Finish { .. } => {
                // Usage, merged over every stream spliced, comes just before the finish (once: the
                // finish is read again after it).
                let total = cont.merged + cont.latest.take().unwrap_or_default();
                cont.merged = Usage::default();
                if total == Usage::default() {
                    return Some(finish);
                }
                self.buffered.push_front(finish);
                Some(ChatChunk::Usage(total))
            }
        }
    }

    /// Whether a continuation may mend `error`: `after_commit = "continue"`, only text so far, and an error
    /// that falls back.
    fn may_splice(&self, error: &Error) -> bool {
        self.cont.as_ref().is_some_and(|cont| !cont.tool_calls && !cont.text.trim().is_empty())
            && error.kind().falls_back()
    }

    /// `after_commit = "continue"`: asks the next targets, in turn, to continue the text; true when one's
    /// stream verifiably continues it and now feeds this one (see [`verify`]). Called only when
    /// [`Self::may_splice`].
    async fn splice(&mut self, error: &Error) -> bool {
        self.count_break(error);
        let Some(cont) = self.cont.as_mut() else { return false };
        let mut request = cont.request.clone();
        request.messages.push(Message::assistant(cont.text.trim_end()));
        request.continuation = Some(Continuation::default());
        // The targets asked so far: the next continuation comes from a target after the last of them.
        let mut asked = self.targets.get();
        tracing::warn!(target_id = %self.served_by, %error, "stream from {} broke after its first chunk; continuing it with the next target", self.served_by);
        loop {
            let mut stream = match (cont.continuer)(request.clone(), asked.clone()).await {
                Ok(stream) => stream,
                Err(continuation_error) => {
                    tracing::warn!(%continuation_error, "no target could continue the stream: {continuation_error}");
                    return false;
                }
            };
            let id = stream.served_by.clone();
            match verify(&cont.text, &mut stream).await {
                Verdict::Splice(held) => {
                    cont.merged += cont.latest.take().unwrap_or_default();
                    cont.trim_start = cont.text.ends_with(char::is_whitespace);
                    if let Some(id) = id {
                        self.targets.push(id.clone());
                        self.served_by = id;
                    }
                    self.buffered.extend(held);
                    self.rest = Some(stream);
                    self.limit = None; // the continuation's engine applies its own limits and the deadline
                    self.timer = None;
                    self.finished = false;
                    return true;
                }
                Verdict::Reject(reason) => {
                    let target = id.unwrap_or_default();
                    tracing::warn!(target_id = %target, "not splicing the continuation from {target}: {reason}");
                    if target.is_empty() {
                        return false;
                    }
                    asked.push(target);
                }
            }
        }
    }

    fn cut_off(&self) -> Error {
        Error::invalid_response(format!("the stream from {} ended without a finish event", self.served_by))
    }
}

/// Builds the committed stream. The tracker settles when it ends, fails, or is dropped (cancelled).
pub(crate) fn committed(served: Served<Opened>, tracker: RequestTracker, cont: Option<Continue>) -> ChatStream {
    let targets = TargetsUsed::default();
    if let Some(id) = &served.id {
        targets.push(id.clone());
    }
    let tail = Tail {
        buffered: served.output.buffered.into(),
        rest: served.output.rest,
        limit: served.limits.after_commit,
        timer: None,
        finished: false,
        tracker: Some(tracker),
        slot: served.slot,
        served_by: served.called,
        health: served.health,
        counted: true,
        cont,
        targets: targets.clone(),
        permit: served.permit,
    };
    let mut out = ChatStream::new(Committed::Reading(Box::new(tail)));
    out.served_by = served.id;
    out.attempts = served.attempts;
    out.set_targets_used(targets);
    out
}

/// The committed stream as its caller polls it. Written by hand rather than with `stream::unfold`: each step of an
/// unfold builds a future sized for the rare continuation and moves it in; here a chunk costs a poll, and only a
/// continuation is boxed.
enum Committed {
    /// Boxed: the tail is ~700 bytes, and a continuation moves it into its future.
    Reading(Box<Tail>),
    /// Asking the next targets to continue the text; the tail and the break it mends come back with the verdict.
    Splicing(BoxFuture<'static, (Box<Tail>, Error, bool)>),
    /// Only while moving from one state to the other.
    Moving,
}

impl Stream for Committed {
    type Item = Result<ChatChunk, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this {
                Committed::Reading(tail) => match ready!(tail.poll_item(cx)) {
                    Ok(item) => return Poll::Ready(item),
                    Err(error) => {
                        let Committed::Reading(mut tail) = std::mem::replace(this, Committed::Moving) else {
                            return Poll::Ready(None);
                        };
                        *this = Committed::Splicing(
                            async move {
                                let spliced = tail.splice(&error).await;
                                (tail, error, spliced)
                            }
                            .boxed(),
                        );
                    }
                },
                Committed::Splicing(splicing) => {
                    let (mut tail, error, spliced) = ready!(splicing.as_mut().poll(cx));
                    let failed = (!spliced).then(|| tail.fail(error));
                    *this = Committed::Reading(tail);
                    if let Some(item) = failed {
                        return Poll::Ready(item);
                    }
                }
                Committed::Moving => return Poll::Ready(None),
            }
        }
    }
}
