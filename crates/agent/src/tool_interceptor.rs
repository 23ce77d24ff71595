//! Tool interceptors: they wrap every tool call the agent makes. The first registered is the
//! outermost, as with model interceptors.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::ToolError;
use crate::tool_set::ToolSet;

/// One tool call on its way to the tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallRequest {
    /// The call's id (answers refer to it).
    pub id: String,
    /// The tool the model asked for.
    pub name: String,
    /// The arguments as JSON text, as the model wrote them.
    pub arguments: String,
    /// The agent step (1-based model call) that asked for it.
    pub step: usize,
}

/// What goes back to the model for one tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallResponse {
    /// The text the model reads.
    pub content: String,
    /// True when `content` describes a failure (unknown tool, bad arguments, a converted error).
    pub is_error: bool,
}

impl ToolCallResponse {
    /// A successful result.
    pub fn ok(content: impl Into<String>) -> Self {
        Self { content: content.into(), is_error: false }
    }

    /// A failure the model can read.
    pub fn error(content: impl Into<String>) -> Self {
        Self { content: content.into(), is_error: true }
    }
}

/// Wraps every tool call: it may change the request, call `next` any number of times (or not at
/// all), and change the answer.
#[async_trait]
pub trait ToolInterceptor: Send + Sync {
    /// A short name for logs (e.g. `ToolRetry`).
    fn name(&self) -> &str;

    /// Intercepts one tool call.
    async fn intercept(&self, request: ToolCallRequest, next: ToolNext<'_>) -> Result<ToolCallResponse, ToolError>;
}

/// The rest of the tool chain after one interceptor; `Copy`, so it can be called again.
#[derive(Clone, Copy)]
pub struct ToolNext<'a> {
    interceptors: &'a [Arc<dyn ToolInterceptor>],
    tools: &'a ToolSet,
}

impl<'a> ToolNext<'a> {
    pub(crate) fn new(interceptors: &'a [Arc<dyn ToolInterceptor>], tools: &'a ToolSet) -> Self {
        Self { interceptors, tools }
    }

    /// Calls the rest of the chain, and finally the tool.
    pub async fn call(self, request: ToolCallRequest) -> Result<ToolCallResponse, ToolError> {
        match self.interceptors.split_first() {
            Some((first, rest)) => first.intercept(request, ToolNext { interceptors: rest, tools: self.tools }).await,
            None => self.tools.execute(&request).await,
        }
    }
}
