//! Counts the malformed stream events a target's streams skipped, per route, for
//! `switchyard_stream_events_skipped_total{route,target}`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use async_trait::async_trait;
use switchyard::{ChatModel, ChatRequest, ChatResponse, ChatStream, Error, Fit, SharedModel};

/// A target's model on one route: its streams add every event they skip to the route's counter for it.
pub(crate) struct SkipCounting {
    inner: SharedModel,
    counter: Arc<AtomicU64>,
}

impl SkipCounting {
    /// `inner`, reporting skipped events to `counter`.
    pub(crate) fn wrap(inner: SharedModel, counter: Arc<AtomicU64>) -> SharedModel {
        Arc::new(Self { inner, counter })
    }
}

#[async_trait]
impl ChatModel for SkipCounting {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        self.inner.complete(request).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        let stream = self.inner.stream(request).await?;
        stream.skipped_events().report_to(self.counter.clone());
        Ok(stream)
    }

    // A wrapper must pass on every provided method too, or the planner and count_tokens see the defaults.
    fn fit(&self, request: &ChatRequest, stream: bool) -> Fit {
        self.inner.fit(request, stream)
    }

    async fn count_tokens(&self, request: &ChatRequest) -> Result<Option<u64>, Error> {
        self.inner.count_tokens(request).await
    }
}
