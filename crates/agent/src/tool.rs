//! The `Tool` trait, and a helper that makes a tool from a plain async function.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchyard::ToolDefinition;

use crate::error::ToolError;

/// Something the model can call. The agent validates the arguments against [`Tool::parameters`]
/// before [`Tool::call`] runs, so `call` sees only arguments that fit the schema.
#[async_trait]
pub trait Tool: Send + Sync {
    /// The name the model calls it by (letters, digits, `_` and `-`; at most 64).
    fn name(&self) -> &str;

    /// What it does, for the model.
    fn description(&self) -> &str;

    /// JSON Schema of the arguments; an object schema.
    fn parameters(&self) -> Value;

    /// Runs the tool; the text it returns goes back to the model.
    async fn call(&self, arguments: Value) -> Result<String, ToolError>;
}

/// A shared, dynamically typed tool.
pub type SharedTool = Arc<dyn Tool>;

/// The definition the model sees for `tool`.
pub fn definition(tool: &dyn Tool) -> ToolDefinition {
    let description = tool.description();
    ToolDefinition {
        name: tool.name().to_owned(),
        description: (!description.is_empty()).then(|| description.to_owned()),
        parameters: tool.parameters(),
    }
}

/// A tool made from an async function taking deserialized arguments; made by [`fn_tool`].
pub struct FnTool<A, F> {
    name: String,
    description: String,
    parameters: Value,
    func: F,
    _args: PhantomData<fn(A)>,
}

/// Makes a tool from an async function whose argument type implements `Deserialize`.
///
/// The function returns anything `Serialize`: a string goes back to the model as is, other values
/// as JSON text. Arguments that pass the schema but do not deserialize into `A` come back to the
/// model as an invalid-arguments result.
///
/// ```
/// use serde::Deserialize;
/// use serde_json::json;
/// use switchyard_agent::{ToolError, fn_tool};
///
/// #[derive(Deserialize)]
/// struct Add { a: f64, b: f64 }
///
/// let add = fn_tool(
///     "add",
///     "Adds two numbers",
///     json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}),
///     |args: Add| async move { Ok::<_, ToolError>(args.a + args.b) },
/// );
/// assert_eq!(add.name(), "add");
/// ```
pub fn fn_tool<A, R, E, F, Fut>(
    name: impl Into<String>,
    description: impl Into<String>,
    parameters: Value,
    func: F,
) -> SharedTool
where
    A: DeserializeOwned + Send + 'static,
    R: Serialize,
    E: Into<ToolError>,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send,
{
    Arc::new(FnTool { name: name.into(), description: description.into(), parameters, func, _args: PhantomData })
}

#[async_trait]
impl<A, R, E, F, Fut> Tool for FnTool<A, F>
where
    A: DeserializeOwned + Send + 'static,
    R: Serialize,
    E: Into<ToolError>,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        self.parameters.clone()
    }

    async fn call(&self, arguments: Value) -> Result<String, ToolError> {
        let args: A = serde_json::from_value(arguments).map_err(|e| ToolError::invalid_arguments(e.to_string()))?;
        let output = (self.func)(args).await.map_err(Into::into)?;
        match serde_json::to_value(output) {
            Ok(Value::String(text)) => Ok(text),
            Ok(value) => Ok(value.to_string()),
            Err(e) => Err(ToolError::permanent(format!("the tool's output could not be serialized: {e}"))),
        }
    }
}
