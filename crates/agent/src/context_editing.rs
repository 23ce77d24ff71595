//! `ContextEditingInterceptor`: past a token threshold, older tool results are replaced by a
//! placeholder in the outgoing request, keeping the newest call/result pairs whole.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use switchyard::{
    ChatRequest, ChatResponse, ChatStream, Error, Part,
    interceptors::{ModelInterceptor, Next},
};

type TokenCounter = Arc<dyn Fn(&ChatRequest) -> usize + Send + Sync>;

/// Clears old tool results when a request grows past `trigger_tokens`.
///
/// Defaults: trigger 100 000 tokens (estimated as characters / 4), keep the newest 3 call/result
/// pairs, clear every older pair (`clear_at_least` 0 means "no minimum, clear them all"; the Java
/// seed's same default cleared nothing), placeholder `[cleared]`, tool inputs left alone.
/// Results of excluded tools are never touched. Only the request sent to the model changes; the
/// agent's own history keeps every result.
#[derive(Clone)]
pub struct ContextEditingInterceptor {
    trigger_tokens: usize,
    keep: usize,
    clear_at_least: usize,
    exclude: HashSet<String>,
    placeholder: String,
    clear_tool_inputs: bool,
    count: TokenCounter,
}

impl ContextEditingInterceptor {
    /// A builder with the defaults.
    pub fn builder() -> ContextEditingInterceptorBuilder {
        ContextEditingInterceptorBuilder { inner: Self::default() }
    }

    /// Edits `request` in place; returns how many pairs were cleared.
    pub fn edit(&self, request: &mut ChatRequest) -> usize {
        let tokens = (self.count)(request);
        if tokens <= self.trigger_tokens {
            return 0;
        }
        // Where each call is, and its tool's name, by call id.
        let mut calls: HashMap<String, (usize, usize, String)> = HashMap::new();
        let mut results: Vec<(usize, usize, String)> = Vec::new();
        for (m, message) in request.messages.iter().enumerate() {
            for (p, part) in message.content.iter().enumerate() {
                match part {
                    Part::ToolCall(call) => {
                        calls.insert(call.id.clone(), (m, p, call.name.clone()));
                    }
                    Part::ToolResult(result) => results.push((m, p, result.tool_call_id.clone())),
                    _ => {}
                }
            }
        }
        let older = results.len().saturating_sub(self.keep);
        let mut cleared = 0;
        let mut saved_chars = 0;
        for (m, p, id) in results.into_iter().take(older) {
            let call = calls.get(&id);
            if call.is_some_and(|(_, _, name)| self.exclude.contains(name)) {
                continue;
            }
            let Part::ToolResult(result) = &mut request.messages[m].content[p] else { continue };
            if result.content == self.placeholder {
                continue;
            }
            saved_chars += result.content.len().saturating_sub(self.placeholder.len());
            result.content.clone_from(&self.placeholder);
            if self.clear_tool_inputs
                && let Some((cm, cp, _)) = call
                && let Part::ToolCall(call) = &mut request.messages[*cm].content[*cp]
            {
                saved_chars += call.arguments.len().saturating_sub(2);
                call.arguments = "{}".to_owned();
            }
            cleared += 1;
            if self.clear_at_least > 0 && saved_chars / 4 >= self.clear_at_least {
                break;
            }
        }
        if cleared > 0 {
            tracing::debug!(
                tokens,
                cleared,
                saved_tokens = saved_chars / 4,
                "context editing cleared old tool results"
            );
        }
        cleared
    }
}

impl Default for ContextEditingInterceptor {
    fn default() -> Self {
        Self {
            trigger_tokens: 100_000,
            keep: 3,
            clear_at_least: 0,
            exclude: HashSet::new(),
            placeholder: "[cleared]".to_owned(),
            clear_tool_inputs: false,
            count: Arc::new(estimate_tokens),
        }
    }
}

impl std::fmt::Debug for ContextEditingInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextEditingInterceptor")
            .field("trigger_tokens", &self.trigger_tokens)
            .field("keep", &self.keep)
            .field("clear_at_least", &self.clear_at_least)
            .field("exclude", &self.exclude)
            .field("placeholder", &self.placeholder)
            .field("clear_tool_inputs", &self.clear_tool_inputs)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ModelInterceptor for ContextEditingInterceptor {
    fn name(&self) -> &str {
        "ContextEditing"
    }

    async fn intercept(&self, mut request: ChatRequest, next: Next<'_>) -> Result<ChatResponse, Error> {
        self.edit(&mut request);
        next.complete(request).await
    }

    async fn intercept_stream(&self, mut request: ChatRequest, next: Next<'_>) -> Result<ChatStream, Error> {
        self.edit(&mut request);
        next.stream(request).await
    }
}

/// Characters / 4 over everything the model reads: system prompt, messages, tool definitions (the core's
/// [`ChatRequest::estimate_input_tokens`], the one estimate the engine and the gateway use too).
pub fn estimate_tokens(request: &ChatRequest) -> usize {
    usize::try_from(request.estimate_input_tokens()).unwrap_or(usize::MAX)
}

/// Builds a [`ContextEditingInterceptor`].
#[derive(Debug, Clone)]
pub struct ContextEditingInterceptorBuilder {
    inner: ContextEditingInterceptor,
}

impl ContextEditingInterceptorBuilder {
    /// Clear only when the request is estimated above this many tokens.
    pub fn trigger_tokens(mut self, tokens: usize) -> Self {
        self.inner.trigger_tokens = tokens;
        self
    }

    /// How many of the newest call/result pairs (of any tool, excluded ones included) stay untouched.
    pub fn keep(mut self, pairs: usize) -> Self {
        self.inner.keep = pairs;
        self
    }

    /// Stop once at least this many tokens were reclaimed; 0 clears every older pair.
    pub fn clear_at_least(mut self, tokens: usize) -> Self {
        self.inner.clear_at_least = tokens;
        self
    }

    /// Never clear results of these tools.
    pub fn exclude_tools<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.inner.exclude.extend(names.into_iter().map(Into::into));
        self
    }

    /// The text that replaces a cleared result.
    pub fn placeholder(mut self, text: impl Into<String>) -> Self {
        self.inner.placeholder = text.into();
        self
    }

    /// Also replace the arguments of cleared calls with `{}`.
    pub fn clear_tool_inputs(mut self, yes: bool) -> Self {
        self.inner.clear_tool_inputs = yes;
        self
    }

    /// Counts a request's tokens (default: [`estimate_tokens`]).
    pub fn token_counter(mut self, count: impl Fn(&ChatRequest) -> usize + Send + Sync + 'static) -> Self {
        self.inner.count = Arc::new(count);
        self
    }

    /// The interceptor.
    pub fn build(self) -> ContextEditingInterceptor {
        self.inner
    }
}
