//! What one attempt is in each mode: a whole answer, or a stream read up to its first content chunk.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use futures::future::BoxFuture;

use crate::attempt::Attempt;
use crate::error::Error;
use crate::gate::CallPermit;
use crate::health::Health;
use crate::model::ChatModel;
use crate::streaming::{self, Opened};
use crate::time_limits::{AttemptLimits, within};
use crate::types::{ChatRequest, ChatResponse};
use crate::validate::ResponseValidator;

/// What one attempt produces in each mode.
pub(super) trait Mode: Sync {
    type Output: Send;
    /// For logs: `complete` or `stream`.
    const NAME: &'static str;
    /// Whether an answer is the whole answer (for streams, only the start: health counts the end).
    const WHOLE: bool;

    /// One call; a stream adds the malformed events it skips to `events_skipped`.
    fn attempt<'a>(
        &'a self,
        model: &'a dyn ChatModel,
        request: ChatRequest,
        limits: AttemptLimits,
        validator: Option<&'a dyn ResponseValidator>,
        events_skipped: Option<Arc<AtomicU64>>,
    ) -> BoxFuture<'a, Result<Self::Output, Error>>;

    /// The target and attempts an inner engine recorded on the output, when the model is one.
    fn inner(output: &mut Self::Output) -> (Option<String>, Vec<Attempt>);

    /// The tokens the answer reports it used, when it has (a stream reports them at its end).
    fn tokens_used(output: &Self::Output) -> Option<u64>;
}

pub(super) struct Whole;

impl Mode for Whole {
    type Output = ChatResponse;
    const NAME: &'static str = "complete";
    const WHOLE: bool = true;

    fn attempt<'a>(
        &'a self,
        model: &'a dyn ChatModel,
        request: ChatRequest,
        limits: AttemptLimits,
        validator: Option<&'a dyn ResponseValidator>,
        _events_skipped: Option<Arc<AtomicU64>>,
    ) -> BoxFuture<'a, Result<ChatResponse, Error>> {
        Box::pin(async move {
            let response = within(limits.first, model.complete(request)).await?;
            if let Some(validator) = validator {
                validator.check(&response).map_err(Error::invalid_response)?;
            }
            Ok(response)
        })
    }

    fn inner(output: &mut ChatResponse) -> (Option<String>, Vec<Attempt>) {
        (output.served_by.take(), std::mem::take(&mut output.attempts))
    }

    fn tokens_used(output: &ChatResponse) -> Option<u64> {
        let total = output.usage.input_tokens + output.usage.output_tokens;
        (total > 0).then_some(total)
    }
}

pub(super) struct Streamed;

impl Mode for Streamed {
    type Output = Opened;
    const NAME: &'static str = "stream";
    const WHOLE: bool = false;

    fn attempt<'a>(
        &'a self,
        model: &'a dyn ChatModel,
        request: ChatRequest,
        limits: AttemptLimits,
        validator: Option<&'a dyn ResponseValidator>,
        events_skipped: Option<Arc<AtomicU64>>,
    ) -> BoxFuture<'a, Result<Opened, Error>> {
        Box::pin(streaming::open(model, request, limits.first, validator, events_skipped))
    }

    fn inner(output: &mut Opened) -> (Option<String>, Vec<Attempt>) {
        (output.served_by.take(), std::mem::take(&mut output.attempts))
    }

    fn tokens_used(_output: &Opened) -> Option<u64> {
        None
    }
}

/// The attempt that answered.
pub(crate) struct Served<T> {
    pub(crate) output: T,
    pub(crate) slot: usize,
    /// The target that served, when known (a transparent target without an inner answer: `None`).
    pub(crate) id: Option<String>,
    /// For logs: the target of this loop that answered.
    pub(crate) called: String,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) limits: AttemptLimits,
    pub(crate) health: Option<Arc<Health>>,
    /// The call's place at its target, held until the answer (for a stream: its end) is delivered.
    pub(crate) permit: Option<CallPermit>,
}
