//! A ReAct agent over the Switchyard engine: [`ReactAgent`] calls a model through a chain of
//! model interceptors (retry, fallback, context editing, …), runs the tools it asks for through a
//! chain of tool interceptors, and feeds the results back until the model answers.
//!
//! Tools are [`Tool`]s (or plain async functions via [`fn_tool`]) whose arguments are checked
//! against their JSON Schema before they run.
//!
//! ```
//! use std::sync::Arc;
//!
//! use serde::Deserialize;
//! use serde_json::json;
//! use switchyard::ToolCall;
//! use switchyard_agent::{ReactAgent, ToolError, fn_tool};
//! use switchyard_sim::{Behavior, SimModel};
//!
//! #[derive(Deserialize)]
//! struct Add { a: f64, b: f64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let add = fn_tool(
//!     "add",
//!     "Adds two numbers",
//!     json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}),
//!     |args: Add| async move { Ok::<_, ToolError>(args.a + args.b) },
//! );
//! // A scripted model: it asks for `add`, then answers.
//! let model = SimModel::new("sim").script([
//!     Behavior::ToolCalls(vec![ToolCall { id: "1".into(), name: "add".into(), arguments: r#"{"a":2,"b":3}"#.into() }]),
//!     Behavior::Reply("2 + 3 = 5".into()),
//! ]);
//! let agent = ReactAgent::builder().model(Arc::new(model)).tools([add]).max_iterations(5).build().unwrap();
//! let output = agent.invoke("What is 2 + 3?").await.unwrap();
//! assert_eq!(output.text, "2 + 3 = 5");
//! assert_eq!(output.steps.len(), 2);
//! # }
//! ```

mod agent;
mod builder;
mod context_editing;
mod error;
mod event;
pub mod schema;
mod tool;
mod tool_error;
mod tool_interceptor;
mod tool_retry;
mod tool_set;
mod tool_timeout;

pub use agent::{AgentInput, ReactAgent};
pub use builder::{DEFAULT_MAX_ITERATIONS, ReactAgentBuilder};
pub use context_editing::{ContextEditingInterceptor, ContextEditingInterceptorBuilder, estimate_tokens};
pub use error::{AgentError, ToolError};
pub use event::{AgentEvent, AgentOutput, StepRecord};
pub use tool::{FnTool, SharedTool, Tool, definition, fn_tool};
pub use tool_error::ToolErrorInterceptor;
pub use tool_interceptor::{ToolCallRequest, ToolCallResponse, ToolInterceptor, ToolNext};
pub use tool_retry::{ToolRetryInterceptor, ToolRetryInterceptorBuilder};
pub use tool_timeout::ToolTimeoutInterceptor;
