//! The interface between the SSE reader and a vendor's stream format.

use switchyard::{ChatChunk, Error};

use crate::sse::SseEvent;

/// Turns one vendor's SSE events into neutral chunks.
pub trait EventDecoder: Send + 'static {
    /// Feeds one event, appending chunks to `out`; `Ok(true)` once the stream's end marker arrived.
    fn event(&mut self, event: &SseEvent, out: &mut Vec<ChatChunk>) -> Result<bool, Error>;

    /// The byte stream ended without an end marker: complete the answer if it was complete, or fail.
    fn end(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Error>;
}
