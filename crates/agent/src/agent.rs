//! `ReactAgent`: the reason-and-act loop over native tool calling.

use std::sync::Arc;

use futures::channel::mpsc;
use futures::stream::FuturesUnordered;
use futures::{SinkExt, Stream, StreamExt};
use switchyard::{
    ChatChunk, ChatModel, ChatOptions, ChatRequest, ChatResponse, Message, Part, Role, ToolCall, ToolResult,
    interceptors::InterceptorChain, model::Accumulator,
};

use crate::builder::ReactAgentBuilder;
use crate::error::AgentError;
use crate::event::{AgentEvent, AgentOutput, StepRecord};
use crate::tool_interceptor::{ToolCallRequest, ToolInterceptor, ToolNext};
use crate::tool_set::ToolSet;

/// An agent that calls the model, runs the tools it asks for, feeds the results back, and repeats
/// until the model answers without tool calls or the iteration limit is reached.
///
/// Every model call goes through the model interceptors (first registered outermost), streaming
/// ones included; every tool call goes through the tool interceptors.
pub struct ReactAgent {
    chain: InterceptorChain,
    system_prompt: Option<String>,
    tools: ToolSet,
    tool_interceptors: Vec<Arc<dyn ToolInterceptor>>,
    max_iterations: usize,
    options: ChatOptions,
    model_name: String,
}

/// What to start a run with: a user message, or a whole conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentInput {
    /// One user message.
    Text(String),
    /// A conversation so far, ending with the user's turn.
    Messages(Vec<Message>),
}

impl From<&str> for AgentInput {
    fn from(text: &str) -> Self {
        AgentInput::Text(text.to_owned())
    }
}

impl From<String> for AgentInput {
    fn from(text: String) -> Self {
        AgentInput::Text(text)
    }
}

impl From<Vec<Message>> for AgentInput {
    fn from(messages: Vec<Message>) -> Self {
        AgentInput::Messages(messages)
    }
}

impl AgentInput {
    fn into_messages(self) -> Vec<Message> {
        match self {
            AgentInput::Text(text) => vec![Message::user(text)],
            AgentInput::Messages(messages) => messages,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Complete,
    Stream,
}

/// Where events go: nowhere for `invoke`, a channel for `stream`.
enum Sink {
    Discard,
    Channel(mpsc::Sender<Result<AgentEvent, AgentError>>),
}

impl Sink {
    async fn emit(&mut self, event: AgentEvent) {
        self.send(Ok(event)).await;
    }

    async fn send(&mut self, item: Result<AgentEvent, AgentError>) {
        if let Sink::Channel(tx) = self {
            // A closed channel means the caller dropped the stream, and with it this run.
            let _ = tx.send(item).await;
        }
    }
}

/// Events of a run driven by `run`, which gets the sending end. The driver yields nothing itself;
/// polling it alongside the receiver runs the loop without spawning, so the stream may borrow.
fn event_stream<'a, F>(run: impl FnOnce(Sink) -> F) -> impl Stream<Item = Result<AgentEvent, AgentError>> + Send + 'a
where
    F: Future<Output = ()> + Send + 'a,
{
    let (tx, rx) = mpsc::channel(16);
    let driver = futures::stream::once(run(Sink::Channel(tx))).filter_map(|()| futures::future::ready(None));
    futures::stream::select(rx, driver)
}

impl ReactAgent {
    /// Assembles an agent; the builder has checked the parts.
    pub(crate) fn new(
        chain: InterceptorChain,
        system_prompt: Option<String>,
        tools: ToolSet,
        tool_interceptors: Vec<Arc<dyn ToolInterceptor>>,
        max_iterations: usize,
        options: ChatOptions,
        model_name: String,
    ) -> Self {
        Self { chain, system_prompt, tools, tool_interceptors, max_iterations, options, model_name }
    }

    /// A builder; `model` is required.
    pub fn builder() -> ReactAgentBuilder {
        ReactAgentBuilder::default()
    }

    /// Runs to the final answer with whole-response model calls.
    pub async fn invoke(&self, input: impl Into<AgentInput>) -> Result<AgentOutput, AgentError> {
        self.run(input.into(), Mode::Complete, &mut Sink::Discard).await
    }

    /// Runs with streaming model calls, yielding events as they happen. The last item is
    /// [`AgentEvent::Done`] or an error. Dropping the stream cancels the run.
    pub fn stream(
        &self,
        input: impl Into<AgentInput>,
    ) -> impl Stream<Item = Result<AgentEvent, AgentError>> + Send + '_ {
        let input = input.into();
        event_stream(move |sink| self.run_streaming(input, sink))
    }

    /// Like [`ReactAgent::stream`], for a shared agent: the stream owns what it needs, so it can be
    /// spawned or returned from a handler.
    pub fn stream_owned(
        self: Arc<Self>,
        input: impl Into<AgentInput>,
    ) -> impl Stream<Item = Result<AgentEvent, AgentError>> + Send + 'static {
        let input = input.into();
        event_stream(move |sink| async move { self.run_streaming(input, sink).await })
    }

    /// The names of the model interceptors, outermost first.
    pub fn interceptor_names(&self) -> Vec<&str> {
        self.chain.names()
    }

    /// A streaming run whose last item is `Done` or the error.
    async fn run_streaming(&self, input: AgentInput, mut sink: Sink) {
        let last = self.run(input, Mode::Stream, &mut sink).await.map(AgentEvent::Done);
        sink.send(last).await;
    }

    async fn run(&self, input: AgentInput, mode: Mode, sink: &mut Sink) -> Result<AgentOutput, AgentError> {
        let mut messages = input.into_messages();
        let mut output =
            AgentOutput { text: String::new(), messages: Vec::new(), usage: Default::default(), steps: Vec::new() };
        let mut last_served: Option<String> = None;
        for step in 1..=self.max_iterations {
            let request = self.request(&messages);
            tracing::debug!(step, messages = request.messages.len(), "agent step");
            let mut response = match mode {
                Mode::Complete => {
                    self.chain.complete(request).await.map_err(|source| AgentError::Model { step, source })?
                }
                Mode::Stream => self.stream_step(step, request, &mut last_served, sink).await?,
            };
            if mode == Mode::Complete {
                note_served(step, response.served_by.as_deref(), &mut last_served, sink).await;
            }
            name_unnamed_calls(step, &mut response.message);
            let calls: Vec<ToolCall> = response.message.tool_calls().cloned().collect();
            output.usage += response.usage;
            output.steps.push(StepRecord {
                served_by: response.served_by.take(),
                usage: response.usage,
                tool_calls: calls.iter().map(|c| c.name.clone()).collect(),
                attempts: std::mem::take(&mut response.attempts),
            });
            if calls.is_empty() {
                output.text = response.message.text();
                messages.push(response.message);
                output.messages = messages;
                return Ok(output);
            }
            if step == self.max_iterations {
                break;
            }
            messages.push(response.message);
            for call in &calls {
                sink.emit(AgentEvent::ToolCall { step, call: call.clone() }).await;
            }
            let results = self.run_tools(step, &calls, sink).await?;
            messages.extend(results);
        }
        Err(AgentError::MaxIterations { limit: self.max_iterations })
    }

    fn request(&self, messages: &[Message]) -> ChatRequest {
        ChatRequest {
            model: self.model_name.clone(),
            system: self.system_prompt.clone(),
            messages: messages.to_vec(),
            tools: self.tools.definitions().to_vec(),
            options: self.options.clone(),
            ..ChatRequest::default()
        }
    }

    async fn stream_step(
        &self,
        step: usize,
        request: ChatRequest,
        last_served: &mut Option<String>,
        sink: &mut Sink,
    ) -> Result<ChatResponse, AgentError> {
        let model_error = |source| AgentError::Model { step, source };
        let mut stream = self.chain.stream(request).await.map_err(model_error)?;
        let served_by = stream.served_by.take();
        let attempts = std::mem::take(&mut stream.attempts);
        note_served(step, served_by.as_deref(), last_served, sink).await;
        let mut acc = Accumulator::new();
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(model_error)?;
            if let ChatChunk::Text { text } = &chunk
                && !text.is_empty()
            {
                sink.emit(AgentEvent::TextDelta { step, text: text.clone() }).await;
            }
            acc.push(&chunk);
        }
        let mut response = acc.finish("").map_err(model_error)?;
        response.served_by = served_by;
        response.attempts = attempts;
        Ok(response)
    }

    /// Runs the calls concurrently; results come back in the order of the calls.
    async fn run_tools(&self, step: usize, calls: &[ToolCall], sink: &mut Sink) -> Result<Vec<Message>, AgentError> {
        let chain = ToolNext::new(&self.tool_interceptors, &self.tools);
        let mut pending: FuturesUnordered<_> = calls
            .iter()
            .enumerate()
            .map(|(i, call)| async move {
                let request = ToolCallRequest {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                    step,
                };
                (i, chain.call(request).await)
            })
            .collect();
        let mut results: Vec<Option<Message>> = vec![None; calls.len()];
        while let Some((i, outcome)) = pending.next().await {
            let call = &calls[i];
            let response = outcome.map_err(|source| AgentError::Tool { step, name: call.name.clone(), source })?;
            let result =
                ToolResult { tool_call_id: call.id.clone(), content: response.content, is_error: response.is_error };
            sink.emit(AgentEvent::ToolResult { step, name: call.name.clone(), result: result.clone() }).await;
            results[i] = Some(Message { role: Role::Tool, content: vec![Part::ToolResult(result)] });
        }
        Ok(results.into_iter().flatten().collect())
    }
}

impl std::fmt::Debug for ReactAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactAgent")
            .field("interceptors", &self.chain.names())
            .field("tools", &self.tools.definitions().iter().map(|d| &d.name).collect::<Vec<_>>())
            .field("tool_interceptors", &self.tool_interceptors.iter().map(|t| t.name()).collect::<Vec<_>>())
            .field("max_iterations", &self.max_iterations)
            .finish_non_exhaustive()
    }
}

/// Emits `ModelSwitched` when this step's target differs from the previous step's.
async fn note_served(step: usize, served_by: Option<&str>, last: &mut Option<String>, sink: &mut Sink) {
    let Some(now) = served_by else { return };
    if let Some(before) = last.as_deref()
        && before != now
    {
        tracing::info!(step, from = before, to = now, "agent switched model");
        sink.emit(AgentEvent::ModelSwitched { step, from: before.to_owned(), to: now.to_owned() }).await;
    }
    *last = Some(now.to_owned());
}

/// Gives calls without an id one, so results can refer to them.
fn name_unnamed_calls(step: usize, message: &mut Message) {
    for (i, part) in message.content.iter_mut().enumerate() {
        if let Part::ToolCall(call) = part
            && call.id.is_empty()
        {
            call.id = format!("call_{step}_{i}");
        }
    }
}
