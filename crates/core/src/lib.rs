//! Switchyard's engine: provider-neutral chat types, the [`ChatModel`] trait, the error kinds that
//! decide retry and fallback, the [`FallbackManager`] (with circuit breakers, retry budgets, one
//! deadline for the whole chain, hedged requests, per-request planning and continuation of broken
//! streams) and the model-interceptor chain.
//!
//! This crate knows nothing about HTTP or vendors: providers, simulators and the gateway build on it.

mod accumulate;
mod attempt;
mod backoff;
mod breaker;
mod budget;
mod error;
mod health;
mod hedge;
mod interceptor;
mod interceptors;
mod latency;
mod limits;
mod manager;
mod model;
mod plan;
mod runner;
mod stats;
mod streaming;
mod target;
mod types;
mod validate;

pub use accumulate::Accumulator;
pub use attempt::{Attempt, AttemptOutcome};
pub use backoff::Backoff;
pub use breaker::{BreakerConfig, BreakerState};
pub use budget::BudgetConfig;
pub use error::{Error, ErrorKind, TimeoutPhase};
pub use hedge::{HedgeAfter, HedgeConfig};
pub use interceptor::{InterceptorChain, ModelInterceptor, Next};
pub use interceptors::{
    ModelFallbackInterceptor, ModelFallbackInterceptorBuilder, ModelRetryInterceptor, ModelRetryInterceptorBuilder,
};
pub use manager::{FallbackManager, FallbackManagerBuilder};
pub use model::{ChatModel, ChatStream, SharedModel, SkippedEvents, TargetsUsed};
pub use runner::{AfterCommit, OnContentFilter, RetryPredicate};
pub use stats::{StatsSnapshot, TargetStatsSnapshot};
pub use target::{ConfigError, ModelFallback, TargetError, TargetInfo};
pub use types::{
    ChatChunk, ChatOptions, ChatRequest, ChatResponse, Continuation, Extra, FinishReason, ImageSource, Message, Part,
    Role, ToolCall, ToolCallDelta, ToolChoice, ToolDefinition, ToolResult, Usage,
};
pub use validate::{ExceptionMarker, PrefixVerdict, RejectEmpty, ResponseValidator};
