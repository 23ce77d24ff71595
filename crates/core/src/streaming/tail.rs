//! The caller's side of a committed stream: the buffered chunks, then the rest; a break becomes one typed
//! error, or, with `after_commit = "continue"`, a verified continuation by the next target.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream;
use tokio::time::Instant;

use crate::error::Error;
use crate::gate::CallPermit;
use crate::health::Health;
use crate::model::{ChatStream, TargetsUsed};
use crate::runner::Served;
use crate::stats::{Outcome, RequestTracker};
use crate::time_limits::{Limit, within};
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

    async fn raw(&mut self) -> Raw {
        if let Some(chunk) = self.buffered.pop_front() {
            self.finished |= matches!(chunk, ChatChunk::Finish { .. });
            return Raw::Chunk(chunk);
        }
        let Some(rest) = self.rest.as_mut() else {
            // Ended while being checked (with or without its finish), or after an error item.
            return match (self.tracker.is_some(), self.finished) {
                (false, _) => Raw::Done,
                (true, true) => Raw::End,
                (true, false) => Raw::Break(self.cut_off()),
            };
        };
        match within(self.limit, async { Ok(rest.next().await) }).await {
            Ok(Some(Ok(chunk))) => {
                self.finished |= matches!(chunk, ChatChunk::Finish { .. });
                Raw::Chunk(chunk)
            }
            Ok(Some(Err(error))) | Err(error) => Raw::Break(error),
            Ok(None) if self.finished => Raw::End,
            Ok(None) => Raw::Break(self.cut_off()),
        }
    }

    async fn next_item(&mut self) -> Option<Result<ChatChunk, Error>> {
        loop {
            match self.raw().await {
                Raw::Chunk(chunk) => {
                    if let (ChatChunk::Usage(usage), Some(permit)) = (&chunk, self.permit.as_mut()) {
                        permit.settle(usage.input_tokens + usage.output_tokens);
                    }
                    if let Some(chunk) = self.observe(chunk) {
                        return Some(Ok(chunk));
                    }
                }
                Raw::End => {
                    self.end(Outcome::Success);
                    return None;
                }
                Raw::Done => return None,
                Raw::Break(error) => {
                    if self.splice(&error).await {
                        continue;
                    }
                    return self.fail(error);
                }
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

    /// `after_commit = "continue"`: asks the next targets, in turn, to continue the text; true when one's
    /// stream verifiably continues it and now feeds this one (see [`verify`]).
    async fn splice(&mut self, error: &Error) -> bool {
        let Some(cont) = self.cont.as_ref() else { return false };
        if cont.tool_calls || cont.text.trim().is_empty() || !error.kind().falls_back() {
            return false;
        }
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
    // Boxed: the stream moves its state in and out of each step's future, a pointer instead of the whole tail.
    let chunks =
        stream::unfold(Box::new(tail), |mut tail| async move { tail.next_item().await.map(|item| (item, tail)) });
    let mut out = ChatStream::new(chunks);
    out.served_by = served.id;
    out.attempts = served.attempts;
    out.set_targets_used(targets);
    out
}
