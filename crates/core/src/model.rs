//! The `ChatModel` trait every provider, simulator, manager and interceptor chain implements.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::Stream;
use futures::stream::BoxStream;

use crate::attempt::Attempt;
use crate::error::Error;
use crate::types::{ChatChunk, ChatRequest, ChatResponse, ToolCallDelta};

pub use crate::accumulate::Accumulator;
pub use crate::fit::{Fit, Unfit};

/// A model that answers chat requests, whole or streamed. Object-safe, so models nest.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Answers with one complete response.
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error>;

    /// Answers with a stream of chunks. An `Err` here means nothing was streamed.
    ///
    /// The stream must end with a [`ChatChunk::Finish`]; one that ends without it was cut off. The
    /// default answers with [`complete`](Self::complete) and streams the whole answer at once
    /// ([`ChatStream::from_response`]); implement it for real streaming.
    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        Ok(ChatStream::from_response(self.complete(request).await?))
    }

    /// What this model can make of the request's fields (`stream`: it would be streamed), decided
    /// before a call: the planner skips a model that cannot honour one. Default: every field as it is.
    fn fit(&self, _request: &ChatRequest, _stream: bool) -> Fit {
        Fit::serves()
    }

    /// The request's input tokens as the model's API counts them, when its API has a way to count them
    /// without answering (`None`: it has not). Default: `None`.
    async fn count_tokens(&self, _request: &ChatRequest) -> Result<Option<u64>, Error> {
        Ok(None)
    }

    /// Until when the model's provider said its quota is used up (its last answer's rate-limit headers
    /// gave 0 remaining requests or tokens, and when they reset): the engine skips the target until then
    /// without calling it. Default: `None` (never).
    fn exhausted_until(&self) -> Option<tokio::time::Instant> {
        None
    }
}

#[async_trait]
impl<M: ChatModel + ?Sized> ChatModel for Arc<M> {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        (**self).complete(request).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        (**self).stream(request).await
    }

    fn fit(&self, request: &ChatRequest, stream: bool) -> Fit {
        (**self).fit(request, stream)
    }

    async fn count_tokens(&self, request: &ChatRequest) -> Result<Option<u64>, Error> {
        (**self).count_tokens(request).await
    }

    fn exhausted_until(&self) -> Option<tokio::time::Instant> {
        (**self).exhausted_until()
    }
}

#[async_trait]
impl<M: ChatModel + ?Sized> ChatModel for Box<M> {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        (**self).complete(request).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        (**self).stream(request).await
    }

    fn fit(&self, request: &ChatRequest, stream: bool) -> Fit {
        (**self).fit(request, stream)
    }

    async fn count_tokens(&self, request: &ChatRequest) -> Result<Option<u64>, Error> {
        (**self).count_tokens(request).await
    }

    fn exhausted_until(&self) -> Option<tokio::time::Instant> {
        (**self).exhausted_until()
    }
}

/// A shared, dynamically typed model.
pub type SharedModel = Arc<dyn ChatModel>;

/// A streamed answer: chunks, then the end of the stream or one error.
///
/// After an error item the stream yields nothing more. A stream that ends without a
/// [`ChatChunk::Finish`] was cut off; consumers treat that as a failure.
///
/// What is settled when the stream is handed over is a field (`served_by`, `attempts`, as on
/// [`ChatResponse`]); what changes while it runs is a handle from a method
/// ([`targets_used`](Self::targets_used), [`skipped_events`](Self::skipped_events)).
pub struct ChatStream {
    inner: BoxStream<'static, Result<ChatChunk, Error>>,
    /// Id of the target that serves this stream, set by the engine.
    pub served_by: Option<String>,
    /// The attempts made before this stream was committed, the serving one last.
    pub attempts: Vec<Attempt>,
    targets: TargetsUsed,
    skipped: SkippedEvents,
}

/// The malformed events a stream skipped (an event that is not valid JSON, or not a shape its format
/// knows, inside an otherwise healthy stream). The model reading the stream records them; whoever holds
/// the stream can read the count, or have each one added to a counter of its own as it happens.
#[derive(Debug, Clone, Default)]
pub struct SkippedEvents(Arc<Skipped>);

#[derive(Debug, Default)]
struct Skipped {
    count: AtomicU64,
    also: OnceLock<Arc<AtomicU64>>,
}

impl SkippedEvents {
    /// One more event skipped.
    pub fn record(&self) {
        self.0.count.fetch_add(1, Relaxed);
        if let Some(counter) = self.0.also.get() {
            counter.fetch_add(1, Relaxed);
        }
    }

    /// Events skipped so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Relaxed)
    }

    /// Also adds every later skip to `counter` (e.g. a metric); only the first counter given is kept.
    pub fn report_to(&self, counter: Arc<AtomicU64>) {
        let _ = self.0.also.set(counter);
    }
}

/// The targets that served a stream, in order, as it goes: more than one when a broken stream was
/// continued by another target (`after_commit = "continue"`). Complete once the stream has ended.
#[derive(Debug, Clone, Default)]
pub struct TargetsUsed(Arc<Used>);

/// The list, and its length readable without the lock (the gateway checks it on every chunk).
#[derive(Debug, Default)]
struct Used {
    list: Mutex<Vec<String>>,
    count: AtomicUsize,
}

impl TargetsUsed {
    /// The targets so far.
    pub fn get(&self) -> Vec<String> {
        self.0.list.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How many targets have served so far (no lock).
    pub fn len(&self) -> usize {
        self.0.count.load(Ordering::Acquire)
    }

    /// True before any target served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The target serving now (the last one).
    pub fn last(&self) -> Option<String> {
        self.0.list.lock().unwrap_or_else(PoisonError::into_inner).last().cloned()
    }

    pub(crate) fn push(&self, id: String) {
        let mut list = self.0.list.lock().unwrap_or_else(PoisonError::into_inner);
        list.push(id);
        self.0.count.store(list.len(), Ordering::Release);
    }
}

impl ChatStream {
    /// Wraps any stream of chunks.
    pub fn new(inner: impl Stream<Item = Result<ChatChunk, Error>> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(inner),
            served_by: None,
            attempts: Vec::new(),
            targets: TargetsUsed::default(),
            skipped: SkippedEvents::default(),
        }
    }

    /// A stream of one whole answer: its text, its tool calls, its usage and its finish, keeping
    /// `served_by` and the attempts.
    pub fn from_response(response: ChatResponse) -> Self {
        let mut chunks = Vec::new();
        let text = response.message.text();
        if !text.is_empty() {
            chunks.push(Ok(ChatChunk::Text { text }));
        }
        for (index, call) in (0u32..).zip(response.message.tool_calls()) {
            chunks.push(Ok(ChatChunk::ToolCall(ToolCallDelta {
                index,
                id: Some(call.id.clone()),
                name: Some(call.name.clone()),
                arguments: call.arguments.clone(),
            })));
        }
        chunks.push(Ok(ChatChunk::Usage(response.usage)));
        chunks.push(Ok(ChatChunk::Finish { reason: response.finish_reason }));
        let mut stream = Self::from_items(chunks);
        stream.served_by = response.served_by;
        stream.attempts = response.attempts;
        stream
    }

    /// A stream that yields these items, then ends.
    pub fn from_items(items: Vec<Result<ChatChunk, Error>>) -> Self {
        Self::new(futures::stream::iter(items))
    }

    /// Replaces the chunks, keeping the metadata.
    pub fn map_inner(
        self,
        f: impl FnOnce(BoxStream<'static, Result<ChatChunk, Error>>) -> BoxStream<'static, Result<ChatChunk, Error>>,
    ) -> Self {
        Self {
            inner: f(self.inner),
            served_by: self.served_by,
            attempts: self.attempts,
            targets: self.targets,
            skipped: self.skipped,
        }
    }

    /// A handle on the targets that serve this stream (read it after the stream ended for the full list).
    pub fn targets_used(&self) -> TargetsUsed {
        self.targets.clone()
    }

    /// A handle on the malformed events this stream skipped.
    pub fn skipped_events(&self) -> SkippedEvents {
        self.skipped.clone()
    }

    /// Uses `skipped` as this stream's handle (the model that reads the stream records into it).
    pub fn with_skipped_events(mut self, skipped: SkippedEvents) -> Self {
        self.skipped = skipped;
        self
    }

    pub(crate) fn set_targets_used(&mut self, targets: TargetsUsed) {
        self.targets = targets;
    }

    /// Takes the chunk stream out, dropping the metadata.
    pub fn into_inner(self) -> BoxStream<'static, Result<ChatChunk, Error>> {
        self.inner
    }
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("served_by", &self.served_by)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatChunk, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
