//! `ReactAgentBuilder`: assembles and checks a [`ReactAgent`].

use std::sync::Arc;

use switchyard::{
    ChatOptions, SharedModel,
    interceptors::{InterceptorChain, ModelInterceptor},
};

use crate::agent::ReactAgent;
use crate::error::AgentError;
use crate::tool::{SharedTool, Tool};
use crate::tool_interceptor::ToolInterceptor;
use crate::tool_set::ToolSet;

/// Default for [`ReactAgentBuilder::max_iterations`].
pub const DEFAULT_MAX_ITERATIONS: usize = 10;

/// Builds a [`ReactAgent`].
#[derive(Default)]
pub struct ReactAgentBuilder {
    model: Option<SharedModel>,
    system_prompt: Option<String>,
    tools: Vec<SharedTool>,
    interceptors: Vec<Arc<dyn ModelInterceptor>>,
    tool_interceptors: Vec<Arc<dyn ToolInterceptor>>,
    max_iterations: Option<usize>,
    options: ChatOptions,
    model_name: String,
}

impl ReactAgentBuilder {
    /// The model (a provider, a simulator, a `FallbackManager`, …). Required.
    pub fn model(mut self, model: SharedModel) -> Self {
        self.model = Some(model);
        self
    }

    /// The system prompt sent with every model call.
    pub fn system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = Some(prompt.into());
        self
    }

    /// Adds one tool.
    pub fn tool(mut self, tool: impl Tool + 'static) -> Self {
        self.tools.push(Arc::new(tool));
        self
    }

    /// Adds tools.
    pub fn tools(mut self, tools: impl IntoIterator<Item = SharedTool>) -> Self {
        self.tools.extend(tools);
        self
    }

    /// Adds model interceptors; the first registered is the outermost.
    pub fn interceptors(mut self, interceptors: impl IntoIterator<Item = Arc<dyn ModelInterceptor>>) -> Self {
        self.interceptors.extend(interceptors);
        self
    }

    /// Adds one model interceptor inside those already added.
    pub fn interceptor(mut self, interceptor: Arc<dyn ModelInterceptor>) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// Adds tool interceptors; the first registered is the outermost.
    pub fn tool_interceptors(mut self, interceptors: impl IntoIterator<Item = Arc<dyn ToolInterceptor>>) -> Self {
        self.tool_interceptors.extend(interceptors);
        self
    }

    /// Adds one tool interceptor inside those already added.
    pub fn tool_interceptor(mut self, interceptor: Arc<dyn ToolInterceptor>) -> Self {
        self.tool_interceptors.push(interceptor);
        self
    }

    /// The most model calls one run may make (default 10, at least 1).
    pub fn max_iterations(mut self, n: usize) -> Self {
        self.max_iterations = Some(n);
        self
    }

    /// Sampling options sent with every model call.
    pub fn options(mut self, options: ChatOptions) -> Self {
        self.options = options;
        self
    }

    /// The model name put in requests (`ChatRequest::model`); engines and providers route by
    /// their own configuration, so this is usually left empty.
    pub fn model_name(mut self, name: impl Into<String>) -> Self {
        self.model_name = name.into();
        self
    }

    /// The agent; a missing model, a zero limit or a bad tool is an error saying what to fix.
    pub fn build(self) -> Result<ReactAgent, AgentError> {
        let model = self.model.ok_or_else(|| {
            AgentError::Config("ReactAgent needs a model: call ReactAgent::builder().model(..)".into())
        })?;
        let max_iterations = self.max_iterations.unwrap_or(DEFAULT_MAX_ITERATIONS);
        if max_iterations == 0 {
            return Err(AgentError::Config("max_iterations must be at least 1".into()));
        }
        Ok(ReactAgent::new(
            InterceptorChain::new(model).with_all(self.interceptors),
            self.system_prompt,
            ToolSet::new(self.tools)?,
            self.tool_interceptors,
            max_iterations,
            self.options,
            self.model_name,
        ))
    }
}
