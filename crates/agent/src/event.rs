//! What an agent run reports: events while it runs, and the output at the end.

use switchyard::{Message, ToolCall, ToolResult, Usage, attempt::Attempt};

/// One event of [`ReactAgent::stream`](crate::ReactAgent::stream). Steps count model calls from 1.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AgentEvent {
    /// The target serving this step differs from the one that served the step before
    /// (e.g. the primary failed and a fallback took over).
    ModelSwitched {
        /// The step now being served.
        step: usize,
        /// The target that served the previous step.
        from: String,
        /// The target serving this step.
        to: String,
    },
    /// More answer text from the model.
    TextDelta {
        /// The step producing it.
        step: usize,
        /// The new text.
        text: String,
    },
    /// The model asked for a tool call (complete, arguments assembled).
    ToolCall {
        /// The step that asked.
        step: usize,
        /// The call.
        call: ToolCall,
    },
    /// A tool call finished; its result goes back to the model.
    ToolResult {
        /// The step whose call this answers.
        step: usize,
        /// The tool's name.
        name: String,
        /// The result, as the model will see it.
        result: ToolResult,
    },
    /// The run ended with a final answer. Always the last event of a successful run.
    Done(AgentOutput),
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOutput {
    /// The final answer's text.
    pub text: String,
    /// The whole conversation: the input, then every assistant and tool message.
    pub messages: Vec<Message>,
    /// Tokens used, summed over the steps.
    pub usage: Usage,
    /// One record per model call, in order.
    pub steps: Vec<StepRecord>,
}

/// What happened in one step (one model call).
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// The target that served it, when the model reports one (engines do).
    pub served_by: Option<String>,
    /// Tokens used by this model call.
    pub usage: Usage,
    /// Names of the tools it asked for, in order.
    pub tool_calls: Vec<String>,
    /// The engine's attempts for this call (failed ones first, the serving one last).
    pub attempts: Vec<Attempt>,
}
