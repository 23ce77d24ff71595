//! A ReAct agent over the Switchyard engine: [`ReactAgent`] calls a model through a chain of
//! model interceptors (retry, fallback, context editing, …), runs the tools it asks for through a
//! chain of tool interceptors, and feeds the results back until the model answers.
//!
//! Tools are [`Tool`]s (or plain async functions via [`fn_tool`]) whose arguments are checked
//! against their JSON Schema before they run.

mod agent;
mod context_editing;
mod error;
mod event;
pub mod schema;
mod tool;
mod tool_error;
mod tool_interceptor;
mod tool_retry;
mod tool_set;

pub use agent::{AgentInput, DEFAULT_MAX_ITERATIONS, ReactAgent, ReactAgentBuilder};
pub use context_editing::{ContextEditingInterceptor, ContextEditingInterceptorBuilder, estimate_tokens};
pub use error::{AgentError, ToolError};
pub use event::{AgentEvent, AgentOutput, StepRecord};
pub use tool::{FnTool, SharedTool, Tool, definition, fn_tool};
pub use tool_error::ToolErrorInterceptor;
pub use tool_interceptor::{ToolCallRequest, ToolCallResponse, ToolInterceptor, ToolNext};
pub use tool_retry::{ToolRetryInterceptor, ToolRetryInterceptorBuilder};
