//! Helpers shared by the engine's integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use switchyard::{ChatModel, ChatRequest, ChatResponse, ChatStream, Error, SharedModel};
use switchyard_sim::SimModel;
use tokio::time::Instant;

/// A shared handle to a simulated model.
pub fn shared(model: &SimModel) -> SharedModel {
    Arc::new(model.clone())
}

/// A 503.
pub fn server_error() -> Error {
    Error::server(503, "service unavailable")
}

/// A 401.
pub fn auth_error() -> Error {
    Error::Auth { status: 401, message: "invalid api key".into() }
}

/// Records when each call started (tokio time, so paused-time tests see exact delays).
pub struct Timed {
    inner: SimModel,
    starts: Mutex<Vec<Instant>>,
    origin: Instant,
}

impl Timed {
    pub fn new(inner: &SimModel) -> Arc<Self> {
        Arc::new(Self { inner: inner.clone(), starts: Mutex::new(Vec::new()), origin: Instant::now() })
    }

    /// Offsets of the call starts from the moment this wrapper was made.
    pub fn offsets(&self) -> Vec<Duration> {
        self.starts.lock().unwrap().iter().map(|t| *t - self.origin).collect()
    }
}

#[async_trait]
impl ChatModel for Timed {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        self.starts.lock().unwrap().push(Instant::now());
        self.inner.complete(request).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        self.starts.lock().unwrap().push(Instant::now());
        self.inner.stream(request).await
    }
}

pub const MS: Duration = Duration::from_millis(1);
pub const SEC: Duration = Duration::from_secs(1);
