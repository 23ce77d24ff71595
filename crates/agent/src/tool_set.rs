//! The agent's tools by name, and the innermost step of every tool call: look the tool up,
//! check the arguments, run it.

use std::collections::HashMap;

use serde_json::Value;
use switchyard::ToolDefinition;

use crate::error::{AgentError, ToolError};
use crate::schema;
use crate::tool::{SharedTool, definition};
use crate::tool_interceptor::{ToolCallRequest, ToolCallResponse};

/// Tools with their definitions, validated once when the agent is built.
pub(crate) struct ToolSet {
    tools: HashMap<String, (SharedTool, ToolDefinition)>,
    definitions: Vec<ToolDefinition>,
}

impl ToolSet {
    /// Checks names and schemas; a duplicate or malformed tool is a configuration error naming it.
    pub(crate) fn new(tools: Vec<SharedTool>) -> Result<Self, AgentError> {
        let mut by_name = HashMap::new();
        let mut definitions = Vec::new();
        for tool in tools {
            let def = definition(tool.as_ref());
            check_name(&def.name)?;
            schema::check_parameters_schema(&def.parameters)
                .map_err(|e| AgentError::Config(format!("tool `{}`: {e}", def.name)))?;
            if by_name.contains_key(&def.name) {
                return Err(AgentError::Config(format!(
                    "two tools are named `{}`; tool names must be unique",
                    def.name
                )));
            }
            definitions.push(def.clone());
            by_name.insert(def.name.clone(), (tool, def));
        }
        Ok(Self { tools: by_name, definitions })
    }

    /// The definitions sent to the model, in registration order.
    pub(crate) fn definitions(&self) -> &[ToolDefinition] {
        &self.definitions
    }

    /// Runs one call. Unknown tools and bad arguments become error results for the model;
    /// only a failure of the tool itself is an `Err`.
    pub(crate) async fn execute(&self, request: &ToolCallRequest) -> Result<ToolCallResponse, ToolError> {
        let Some((tool, def)) = self.tools.get(&request.name) else {
            return Ok(ToolCallResponse::error(format!("Tool not available: {}", request.name)));
        };
        let arguments = match parse_arguments(&request.arguments) {
            Ok(arguments) => arguments,
            Err(message) => return Ok(invalid_arguments(&request.name, &message)),
        };
        if let Err(violations) = schema::validate(&def.parameters, &arguments) {
            let message = violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            return Ok(invalid_arguments(&request.name, &message));
        }
        match tool.call(arguments).await {
            Ok(content) => Ok(ToolCallResponse::ok(content)),
            Err(ToolError::InvalidArguments(message)) => Ok(invalid_arguments(&request.name, &message)),
            Err(e) => Err(e),
        }
    }
}

/// Models sometimes send an empty string for a tool without parameters.
fn parse_arguments(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(text).map_err(|e| format!("the arguments are not valid JSON ({e})"))
}

fn invalid_arguments(tool: &str, message: &str) -> ToolCallResponse {
    ToolCallResponse::error(format!(
        "Invalid arguments for tool `{tool}`: {message}. Fix the arguments and call the tool again."
    ))
}

/// The rule OpenAI enforces, which also suits every other provider.
fn check_name(name: &str) -> Result<(), AgentError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(AgentError::Config(format!("tool name `{name}` is not allowed: use 1 to 64 letters, digits, `_` or `-`")))
    }
}
