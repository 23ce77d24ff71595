//! The commit rule: an attempt is not committed until its first content chunk has arrived and the validator
//! accepts the start; every failure before that is the attempt's failure, which the loop may retry.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use futures::StreamExt;

use crate::attempt::Attempt;
use crate::error::Error;
use crate::model::{ChatModel, ChatStream};
use crate::time_limits::{Limit, within};
use crate::types::{ChatChunk, ChatRequest};
use crate::validate::{PrefixVerdict, ResponseValidator};

/// A stream that reached its first content chunk: the chunks read so far, and the rest.
pub(crate) struct Opened {
    /// The target an inner engine chose, when the model is itself an engine.
    pub(crate) served_by: Option<String>,
    /// The attempts an inner engine made.
    pub(crate) attempts: Vec<Attempt>,
    pub(super) buffered: Vec<ChatChunk>,
    /// `None` when the stream already ended (with its finish) while being checked.
    pub(super) rest: Option<ChatStream>,
}

/// Opens a stream and reads it up to its first content chunk; every failure before that
/// (including an error item, an end without content, and the limit) is an `Err`. The malformed events
/// the stream skips, from its start to its end, are added to `events_skipped`.
pub(crate) async fn open(
    model: &dyn ChatModel,
    request: ChatRequest,
    limit: Option<Limit>,
    validator: Option<&dyn ResponseValidator>,
    events_skipped: Option<Arc<AtomicU64>>,
) -> Result<Opened, Error> {
    within(limit, async move {
        let mut stream = model.stream(request).await?;
        if let Some(counter) = events_skipped {
            stream.skipped_events().report_to(counter);
        }
        let served_by = stream.served_by.take();
        let attempts = std::mem::take(&mut stream.attempts);
        let mut buffered = Vec::new();
        let mut text = String::new();
        let mut has_content = false;
        let mut has_tool_call = false;
        loop {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    // The text so far is only for the validator: without one it is not copied.
                    if let (Some(_), ChatChunk::Text { text: piece }) = (validator, &chunk) {
                        text.push_str(piece);
                    }
                    has_content |= chunk.is_content();
                    has_tool_call |= matches!(chunk, ChatChunk::ToolCall(_));
                    buffered.push(chunk);
                    if has_content {
                        match validator.map_or(PrefixVerdict::Accept, |v| v.check_prefix(&text, false)) {
                            PrefixVerdict::Reject(reason) => return Err(Error::invalid_response(reason)),
                            // Validators judge text; a tool call is an answer, so it commits.
                            PrefixVerdict::NeedMore if !has_tool_call => {}
                            PrefixVerdict::Accept | PrefixVerdict::NeedMore => {
                                return Ok(Opened { served_by, attempts, buffered, rest: Some(stream) });
                            }
                        }
                    }
                }
                Some(Err(error)) => return Err(error),
                None if !has_content => {
                    return Err(Error::invalid_response("the stream ended before any content"));
                }
                None => {
                    return match validator.map_or(PrefixVerdict::Accept, |v| v.check_prefix(&text, true)) {
                        PrefixVerdict::Reject(reason) => Err(Error::invalid_response(reason)),
                        _ => Ok(Opened { served_by, attempts, buffered, rest: None }),
                    };
                }
            }
        }
    })
    .await
}
