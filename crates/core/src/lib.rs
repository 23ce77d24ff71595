//! Switchyard's engine: provider-neutral chat types, the [`ChatModel`] trait, the error kinds that
//! decide retry and fallback, the [`FallbackManager`] (with circuit breakers, retry budgets, one
//! deadline for the whole chain, hedged requests, per-request planning and continuation of broken
//! streams) and the model-interceptor chain.
//!
//! This crate knows nothing about HTTP or vendors: providers, simulators and the gateway build on it.
//!
//! A model of your own is a [`ChatModel`]: `complete` is enough (streaming then sends the whole
//! answer at once), and the manager retries and falls back over it like any provider:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use switchyard::{async_trait, ChatModel, ChatRequest, ChatResponse, Error, FallbackManager, ModelFallback};
//!
//! struct Echo;
//!
//! #[async_trait]
//! impl ChatModel for Echo {
//!     async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
//!         let last = request.messages.last().map(|m| m.text()).unwrap_or_default();
//!         Ok(ChatResponse::text("echo", format!("you said: {last}")))
//!     }
//! }
//!
//! struct Down;
//!
//! #[async_trait]
//! impl ChatModel for Down {
//!     async fn complete(&self, _: ChatRequest) -> Result<ChatResponse, Error> {
//!         Err(Error::server(503, "down for maintenance"))
//!     }
//! }
//!
//! # tokio_test_runtime(async {
//! let manager = FallbackManager::builder()
//!     .target(ModelFallback::new("acme", "down").with_priority(1), Arc::new(Down))
//!     .target(ModelFallback::new("local", "echo").with_priority(2), Arc::new(Echo))
//!     .build()
//!     .expect("two targets");
//! let request = ChatRequest::user("hello").with_system("Be brief.").with_deadline(Duration::from_secs(30));
//! let answer = manager.complete(request).await.expect("the echo model answers");
//! assert_eq!(answer.message.text(), "you said: hello");
//! assert_eq!(answer.served_by.as_deref(), Some("local/echo"));
//! # });
//! # fn tokio_test_runtime(f: impl std::future::Future<Output = ()>) {
//! #     tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! The crate root holds what most users touch: the chat types, [`ChatModel`], [`Error`], the
//! [`FallbackManager`] and its [`ModelFallback`] targets, [`Backoff`]. The rest is grouped by concern:
//! [`breaker`], [`budget`], [`hedge`], [`limits`] and [`health`] (the settings and shared record of one
//! target), [`manager`] (the manager's other options), [`interceptors`], [`validate`], [`stats`],
//! [`attempt`] (what a request tried), [`model`] (stream helpers, [`model::Fit`]) and [`types`] (every
//! chat type, including the rarer ones).

mod accumulate;
pub mod attempt;
mod backoff;
mod balance;
pub mod breaker;
pub mod budget;
mod error;
mod fit;
mod gate;
pub mod health;
mod health_registry;
pub mod hedge;
mod interceptor;
pub mod interceptors;
mod latency;
mod lease;
pub mod limits;
pub mod manager;
pub mod model;
mod peak_ewma;
mod plan;
mod rate_window;
mod runner;
mod skip;
pub mod stats;
mod streaming;
mod target;
mod time_limits;
pub mod types;
pub mod validate;

// The root holds what most users touch; the rest lives in the public modules above, one per concern.
/// Implementing [`ChatModel`] needs this attribute; re-exported so a model needs no extra dependency.
pub use async_trait::async_trait;
pub use backoff::Backoff;
pub use error::{Error, ErrorKind, TimeoutPhase};
pub use manager::{FallbackManager, FallbackManagerBuilder};
pub use model::{ChatModel, ChatStream, SharedModel};
pub use target::{ConfigError, ModelFallback, TargetError, TargetInfo};
pub use types::{
    ChatChunk, ChatOptions, ChatRequest, ChatResponse, FinishReason, Message, Part, Role, ToolCall, ToolChoice,
    ToolDefinition, ToolResult, Usage,
};
