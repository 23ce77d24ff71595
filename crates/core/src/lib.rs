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

mod accumulate;
mod attempt;
mod backoff;
mod balance;
mod breaker;
mod budget;
mod error;
mod fit;
mod gate;
mod health;
mod health_registry;
mod hedge;
mod interceptor;
mod interceptors;
mod latency;
mod lease;
mod limits;
mod manager;
mod model;
mod peak_ewma;
mod plan;
mod rate_window;
mod runner;
mod skip;
mod stats;
mod streaming;
mod target;
mod types;
mod validate;

pub use accumulate::Accumulator;
/// Implementing [`ChatModel`] needs this attribute; re-exported so a model needs no extra dependency.
pub use async_trait::async_trait;
pub use attempt::{Attempt, AttemptOutcome};
pub use backoff::Backoff;
pub use balance::Balance;
pub use breaker::{BreakerChange, BreakerConfig, BreakerState};
pub use budget::BudgetConfig;
pub use error::{Error, ErrorKind, TimeoutPhase};
pub use fit::{Fit, Unfit};
pub use gate::TargetLimits;
pub use health::HealthSettings;
pub use health_registry::{HealthConflict, HealthRegistry, TargetHealth};
pub use hedge::{HedgeAfter, HedgeConfig};
pub use interceptor::{InterceptorChain, ModelInterceptor, Next};
pub use interceptors::{
    ModelFallbackInterceptor, ModelFallbackInterceptorBuilder, ModelRetryInterceptor, ModelRetryInterceptorBuilder,
};
pub use lease::{LEASE_TTL, LeaseAsk, LeaseBoard, LeaseGrant, LimitScope};
pub use manager::{FallbackManager, FallbackManagerBuilder};
pub use model::{ChatModel, ChatStream, SharedModel, SkippedEvents, TargetsUsed};
pub use rate_window::{RATE_WINDOW, RateDenied, RateLimitKind, RateRemaining, RateReservation, RateWindow};
pub use runner::{AfterCommit, OnContentFilter, RetryPredicate};
pub use skip::SkipReason;
pub use stats::{StatsSnapshot, TargetStatsSnapshot};
pub use target::{ConfigError, ModelFallback, TargetError, TargetInfo};
pub use types::{
    ChatChunk, ChatOptions, ChatRequest, ChatResponse, Continuation, ContinuationMode, ContinuationStyle, Extra,
    FinishReason, ImageSource, Message, Part, Role, ToolCall, ToolCallDelta, ToolChoice, ToolDefinition, ToolResult,
    Usage,
};
pub use validate::{AllOf, ExceptionMarker, PrefixVerdict, RejectEmpty, ResponseValidator};
