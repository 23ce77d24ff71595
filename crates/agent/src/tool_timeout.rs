//! `ToolTimeoutInterceptor`: bounds how long one tool call may run.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::ToolError;
use crate::tool_interceptor::{ToolCallRequest, ToolCallResponse, ToolInterceptor, ToolNext};

/// Fails a tool call that runs longer than its limit with a retryable [`ToolError`], so a hung
/// tool cannot hang the agent. Place it inside a `ToolRetryInterceptor` to bound each attempt, or
/// outside to bound all attempts together.
#[derive(Debug, Clone, Copy)]
pub struct ToolTimeoutInterceptor {
    limit: Duration,
}

impl ToolTimeoutInterceptor {
    /// Calls longer than `limit` fail.
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

#[async_trait]
impl ToolInterceptor for ToolTimeoutInterceptor {
    fn name(&self) -> &str {
        "ToolTimeout"
    }

    async fn intercept(&self, request: ToolCallRequest, next: ToolNext<'_>) -> Result<ToolCallResponse, ToolError> {
        let name = request.name.clone();
        match tokio::time::timeout(self.limit, next.call(request)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                Err(ToolError::failed(format!("tool `{name}` did not finish within {}ms", self.limit.as_millis())))
            }
        }
    }
}
