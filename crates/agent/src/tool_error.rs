//! `ToolErrorInterceptor`: turns a failing tool into a result the model can read.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::ToolError;
use crate::tool_interceptor::{ToolCallRequest, ToolCallResponse, ToolInterceptor, ToolNext};

type Formatter = Arc<dyn Fn(&ToolCallRequest, &ToolError) -> String + Send + Sync>;

/// Converts a tool's `Err` into an error result (`is_error = true`), so the run goes on and the
/// model decides what to do. Without it a failing tool ends the run with `AgentError::Tool`.
#[derive(Clone)]
pub struct ToolErrorInterceptor {
    format: Formatter,
}

impl ToolErrorInterceptor {
    /// The default message: `Error: tool `NAME` failed: MESSAGE`.
    pub fn new() -> Self {
        Self { format: Arc::new(|request, error| format!("Error: tool `{}` failed: {error}", request.name)) }
    }

    /// Uses `format` to write the text the model reads.
    pub fn with_formatter(format: impl Fn(&ToolCallRequest, &ToolError) -> String + Send + Sync + 'static) -> Self {
        Self { format: Arc::new(format) }
    }
}

impl Default for ToolErrorInterceptor {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ToolErrorInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolErrorInterceptor").finish_non_exhaustive()
    }
}

#[async_trait]
impl ToolInterceptor for ToolErrorInterceptor {
    fn name(&self) -> &str {
        "ToolError"
    }

    async fn intercept(&self, request: ToolCallRequest, next: ToolNext<'_>) -> Result<ToolCallResponse, ToolError> {
        match next.call(request.clone()).await {
            Ok(response) => Ok(response),
            Err(error) => {
                tracing::debug!(tool = %request.name, %error, "tool failed; handing the error to the model");
                Ok(ToolCallResponse::error((self.format)(&request, &error)))
            }
        }
    }
}
