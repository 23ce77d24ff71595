//! Errors of an agent run, and of a tool call.

use switchyard::Error as ModelError;

/// Why an agent run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The builder was given something unusable.
    #[error("invalid agent configuration: {0}")]
    Config(String),
    /// A model call failed after every interceptor (retry, fallback, …) had its turn.
    #[error("model call failed at step {step}: {source}")]
    Model {
        /// The step (1-based model call) that failed.
        step: usize,
        /// The engine's error.
        #[source]
        source: ModelError,
    },
    /// A tool failed and no interceptor turned the failure into a result.
    #[error(
        "tool `{name}` failed at step {step}: {source}; add ToolErrorInterceptor to let the model read tool failures"
    )]
    Tool {
        /// The step whose tool call failed.
        step: usize,
        /// The tool's name.
        name: String,
        /// What the tool said.
        #[source]
        source: ToolError,
    },
    /// The model still asked for tools when the iteration limit was reached.
    #[error(
        "no final answer after {limit} iterations (max_iterations = {limit}): the model still asked for tools; \
         raise the limit with ReactAgentBuilder::max_iterations or check the tools"
    )]
    MaxIterations {
        /// The configured limit.
        limit: usize,
    },
}

impl AgentError {
    /// The model error behind this failure, if a model call failed.
    pub fn model_error(&self) -> Option<&ModelError> {
        match self {
            AgentError::Model { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a tool call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The arguments are wrong. The agent always hands this to the model as a tool result, so it
    /// can correct itself; it never aborts a run and is never retried.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool failed while running.
    #[error("{message}")]
    Failed {
        /// What went wrong.
        message: String,
        /// Whether trying again may help (ToolRetryInterceptor's default predicate).
        retryable: bool,
    },
}

impl ToolError {
    /// A failure that trying again may fix (network, busy backend, …).
    pub fn failed(message: impl Into<String>) -> Self {
        ToolError::Failed { message: message.into(), retryable: true }
    }

    /// A failure that trying again will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        ToolError::Failed { message: message.into(), retryable: false }
    }

    /// Wrong arguments; the model gets the message and may call again.
    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        ToolError::InvalidArguments(message.into())
    }

    /// Whether trying the same call again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ToolError::Failed { retryable: true, .. })
    }
}

impl From<String> for ToolError {
    fn from(message: String) -> Self {
        ToolError::failed(message)
    }
}

impl From<&str> for ToolError {
    fn from(message: &str) -> Self {
        ToolError::failed(message)
    }
}
