//! The streaming rule: an attempt is not committed until its first content chunk has arrived (and
//! the validator accepts the start); after that, a failure ends the stream with one typed error.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream;

use crate::attempt::Attempt;
use crate::error::Error;
use crate::health::Health;
use crate::limits::{Limit, within};
use crate::model::{ChatModel, ChatStream, TargetsUsed};
use crate::runner::Served;
use crate::stats::{Outcome, RequestTracker};
use crate::types::{ChatChunk, ChatRequest, Continuation, Message, Usage};
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
                            PrefixVerdict::Reject(reason) => return Err(Error::invalid_response(reason)),
                            // Validators judge text; a tool call is an answer, so it commits.
                            PrefixVerdict::NeedMore if !has_tool_call => {}
                            PrefixVerdict::Accept | PrefixVerdict::NeedMore => {
                                return Ok(Opened { served_by, attempts, buffered, rest: Some(stream) });
                            }
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

/// Asks the remaining targets to continue a broken stream: the continuation request, and the ids
/// of the targets used so far (the next one comes after the last of them).
pub(crate) type Continuer =
    Arc<dyn Fn(ChatRequest, Vec<String>) -> BoxFuture<'static, Result<ChatStream, Error>> + Send + Sync>;

/// What `after_commit = "continue"` needs to splice another target's answer into a broken stream.
pub(crate) struct Continue {
    /// The original request.
    pub(crate) request: ChatRequest,
    pub(crate) continuer: Continuer,
    /// The text the caller has received.
    text: String,
    /// A tool-call fragment was sent: such a stream is never spliced.
    tool_calls: bool,
    /// Usage reported by the streams that broke.
    merged: Usage,
    /// The current stream's latest usage report, held back to be merged.
    latest: Option<Usage>,
    /// The caller's text ends with whitespace that the prefill dropped: trim the continuation's start.
    trim_start: bool,
}

impl Continue {
    pub(crate) fn new(request: ChatRequest, continuer: Continuer) -> Self {
        Self {
            request,
            continuer,
            text: String::new(),
            tool_calls: false,
            merged: Usage::default(),
            latest: None,
            trim_start: false,
        }
    }
}

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
}

impl Tail {
    fn end(&mut self, outcome: Outcome) {
        self.rest = None;
        if let Some(health) = &self.health
            && outcome == Outcome::Success
            && self.counted
        {
            health.breaker.succeeded(None);
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
    };
    let chunks = stream::unfold(tail, |mut tail| async move { tail.next_item().await.map(|item| (item, tail)) });
    let mut out = ChatStream::new(chunks);
    out.served_by = served.id;
    out.attempts = served.attempts;
    out.set_targets_used(targets);
    out
}

/// Whether a continuation may be spliced after the text the caller has.
enum Verdict {
    /// Yes: these chunks (held while checking, a repeated start already dropped) come first.
    Splice(Vec<ChatChunk>),
    /// No, for this reason.
    Reject(&'static str),
}

/// Reads the start of a continuation, holding it back, until it shows whether it continues `delivered`:
/// - it does not begin like the delivered text (its first word differs): a continuation, spliced as it is;
/// - it begins with the whole delivered text (whitespace-normalised): the model restarted its answer the
///   same way (deterministic models do): the repeated part is dropped and only the rest spliced;
/// - it begins like the delivered text but diverges, or ends, or breaks before that is clear: a different
///   restart, which cannot be joined; never spliced.
async fn verify(delivered: &str, stream: &mut ChatStream) -> Verdict {
    let target: Vec<char> = normalized(delivered).map(|(c, _)| c).collect();
    // "Begins like" = its first word matches: a continuation rarely repeats the answer's first word.
    let like = target.iter().position(|c| *c == ' ').unwrap_or(target.len());
    let mut held: Vec<ChatChunk> = Vec::new();
    let mut text = String::new();
    loop {
        match stream.next().await {
            Some(Ok(ChatChunk::Text { text: piece })) => {
                text.push_str(&piece);
                held.push(ChatChunk::Text { text: piece });
            }
            Some(Ok(ChatChunk::ToolCall(_))) => return Verdict::Reject("it answered with a tool call"),
            Some(Ok(ChatChunk::Finish { .. })) | None => {
                return Verdict::Reject("it ended before it could be told from a restart");
            }
            Some(Ok(chunk @ ChatChunk::Usage(_))) => {
                held.push(chunk);
                continue;
            }
            Some(Err(_)) => return Verdict::Reject("it broke before it could be checked"),
        }
        let mut matched = 0;
        let mut cut = None;
        let mut diverged = false;
        for (c, end) in normalized(&text) {
            if matched == target.len() {
                break;
            }
            if c != target[matched] {
                diverged = true;
                break;
            }
            matched += 1;
            if matched == target.len() {
                cut = Some(end);
            }
        }
        if let Some(cut) = cut {
            // A restart with the same text: keep what comes after the repeated part.
            let rest = text[cut..].to_owned();
            held.retain(|c| !matches!(c, ChatChunk::Text { .. }));
            if !rest.is_empty() {
                held.push(ChatChunk::Text { text: rest });
            }
            return Verdict::Splice(held);
        }
        if diverged {
            return if matched >= like {
                Verdict::Reject("it restarted the answer differently")
            } else {
                Verdict::Splice(held)
            };
        }
    }
}

/// The text with leading whitespace dropped and each run of whitespace as one space, each char with the
/// byte offset just after it in the original.
fn normalized(text: &str) -> impl Iterator<Item = (char, usize)> + '_ {
    let mut started = false;
    let mut in_space = false;
    text.char_indices().filter_map(move |(i, c)| {
        let end = i + c.len_utf8();
        if c.is_whitespace() {
            let emit = started && !in_space;
            in_space = true;
            emit.then_some((' ', end))
        } else {
            started = true;
            in_space = false;
            Some((c, end))
        }
    })
}
