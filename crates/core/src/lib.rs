//! Switchyard's engine: provider-neutral chat types, the [`ChatModel`] trait, the error kinds that
//! decide retry and fallback, the [`FallbackManager`](crate) and the model-interceptor chain.
//!
//! This crate knows nothing about HTTP or vendors: providers, simulators and the gateway build on it.

mod accumulate;
mod attempt;
mod error;
mod interceptor;
mod model;
mod types;
mod validate;

pub use accumulate::Accumulator;
pub use attempt::{Attempt, AttemptOutcome};
pub use error::{Error, ErrorKind, TimeoutPhase};
pub use interceptor::{InterceptorChain, ModelInterceptor, Next};
pub use model::{ChatModel, ChatStream, SharedModel};
pub use types::{
    ChatChunk, ChatOptions, ChatRequest, ChatResponse, Extra, FinishReason, ImageSource, Message, Part, Role, ToolCall,
    ToolCallDelta, ToolChoice, ToolDefinition, ToolResult, Usage,
};
pub use validate::{ExceptionMarker, PrefixVerdict, RejectEmpty, ResponseValidator};
