//! The streaming rule: an attempt is not committed until its first content chunk has arrived (and
//! the validator accepts the start); after that, a failure ends the stream with one typed error.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream;

use crate::attempt::Attempt;
use crate::error::Error;
use crate::health::Health;
use crate::limits::{Limit, within};
use crate::model::{ChatModel, ChatStream};
use crate::runner::Served;
use crate::stats::{Outcome, RequestTracker};
use crate::types::{ChatChunk, ChatRequest};
use crate::validate::{PrefixVerdict, ResponseValidator};

/// A stream that reached its first content chunk: the chunks read so far, and the rest.
pub(crate) struct Opened {
    /// The target an inner engine chose, when the model is itself an engine.
    pub(crate) served_by: Option<String>,
    /// The attempts an inner engine made.
    pub(crate) attempts: Vec<Attempt>,
    buffered: Vec<ChatChunk>,
    /// `None` when the stream already ended (with its finish) while being checked.
    rest: Option<ChatStream>,
}

/// Opens a stream and reads it up to its first content chunk; every failure before that
/// (including an error item, an end without content, and the limit) is an `Err`.
pub(crate) async fn open(
    model: &dyn ChatModel,
    request: ChatRequest,
    limit: Option<Limit>,
    validator: Option<&dyn ResponseValidator>,
) -> Result<Opened, Error> {
    within(limit, async move {
        let mut stream = model.stream(request).await?;
        let served_by = stream.served_by.take();
        let attempts = std::mem::take(&mut stream.attempts);
        let mut buffered = Vec::new();
        let mut text = String::new();
        let mut has_content = false;
        let mut has_tool_call = false;
        loop {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    if let ChatChunk::Text { text: piece } = &chunk {
                        text.push_str(piece);
                    }
                    has_content |= chunk.is_content();
                    has_tool_call |= matches!(chunk, ChatChunk::ToolCall(_));
                    buffered.push(chunk);
                    if has_content {
                        match validator.map_or(PrefixVerdict::Accept, |v| v.check_prefix(&text, false)) {
                            PrefixVerdict::Accept => {
                                return Ok(Opened { served_by, attempts, buffered, rest: Some(stream) });
                            }
                            // Validators judge text; a tool call is an answer, so it commits.
                            PrefixVerdict::NeedMore if has_tool_call => {
                                return Ok(Opened { served_by, attempts, buffered, rest: Some(stream) });
                            }
                            PrefixVerdict::NeedMore => {}
                            PrefixVerdict::Reject(reason) => return Err(Error::invalid_response(reason)),
                        }
                    }
                }
                Some(Err(error)) => return Err(error),
                None if !has_content => {
                    return Err(Error::invalid_response("the stream ended before any content"));
                }
                None => {
                    return match validator.map_or(PrefixVerdict::Accept, |v| v.check_prefix(&text, true)) {
                        PrefixVerdict::Reject(reason) => Err(Error::invalid_response(reason)),
                        _ => Ok(Opened { served_by, attempts, buffered, rest: None }),
                    };
                }
            }
        }
    })
    .await
}

/// The caller's side of a committed stream: it replays the buffered chunks, passes the rest
/// through, and turns a break (an error, a cut-off, the limit) into one error item.
struct Tail {
    buffered: VecDeque<ChatChunk>,
    rest: Option<ChatStream>,
    limit: Option<Limit>,
    finished: bool,
    tracker: Option<RequestTracker>,
    slot: usize,
    served_by: String,
    health: Option<Arc<Health>>,
}

impl Tail {
    fn end(&mut self, outcome: Outcome) {
        self.rest = None;
        if let Some(health) = &self.health
            && outcome == Outcome::Success
        {
            health.breaker.succeeded(None);
        }
        if let Some(tracker) = self.tracker.as_mut()
            && outcome == Outcome::Failed
        {
            tracker.stream_failed(self.slot);
        }
        if let Some(tracker) = self.tracker.take() {
            tracker.finish(outcome);
        }
    }

    fn fail(&mut self, error: Error) -> Option<Result<ChatChunk, Error>> {
        if let Some(health) = &self.health {
            health.breaker.failed(&error, None);
        }
        tracing::warn!(target_id = %self.served_by, %error, "stream from {} failed after its first chunk", self.served_by);
        self.end(Outcome::Failed);
        Some(Err(error))
    }

    async fn next_item(&mut self) -> Option<Result<ChatChunk, Error>> {
        if let Some(chunk) = self.buffered.pop_front() {
            self.finished |= matches!(chunk, ChatChunk::Finish { .. });
            return Some(Ok(chunk));
        }
        let Some(rest) = self.rest.as_mut() else {
            // Ended while being checked (with or without its finish), or after an error item.
            if self.tracker.is_some() {
                if self.finished {
                    self.end(Outcome::Success);
                } else {
                    let error = self.cut_off();
                    return self.fail(error);
                }
            }
            return None;
        };
        let next = within(self.limit, async { Ok(rest.next().await) }).await;
        match next {
            Ok(Some(Ok(chunk))) => {
                self.finished |= matches!(chunk, ChatChunk::Finish { .. });
                Some(Ok(chunk))
            }
            Ok(Some(Err(error))) | Err(error) => self.fail(error),
            Ok(None) if self.finished => {
                self.end(Outcome::Success);
                None
            }
            Ok(None) => {
                let error = self.cut_off();
                self.fail(error)
            }
        }
    }

    fn cut_off(&self) -> Error {
        Error::invalid_response(format!("the stream from {} ended without a finish event", self.served_by))
    }
}

/// Builds the committed stream. The tracker settles when it ends, fails, or is dropped (cancelled).
pub(crate) fn committed(served: Served<Opened>, tracker: RequestTracker) -> ChatStream {
    let tail = Tail {
        buffered: served.output.buffered.into(),
        rest: served.output.rest,
        limit: served.limits.after_commit,
        finished: false,
        tracker: Some(tracker),
        slot: served.slot,
        served_by: served.called,
        health: served.health,
    };
    let chunks = stream::unfold(tail, |mut tail| async move { tail.next_item().await.map(|item| (item, tail)) });
    let mut out = ChatStream::new(chunks);
    out.served_by = served.id;
    out.attempts = served.attempts;
    out
}
