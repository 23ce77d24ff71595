//! The interface between the SSE reader and a vendor's stream format.

use switchyard::{ChatChunk, Error};

use crate::classify::excerpt;
use crate::sse::SseEvent;

/// Turns one vendor's SSE events into neutral chunks.
pub trait EventDecoder: Send + 'static {
    /// Feeds one event, appending chunks to `out`; `Ok(true)` once the stream's end marker arrived.
    fn event(&mut self, event: &SseEvent, out: &mut Vec<ChatChunk>) -> Result<bool, Error>;

    /// The byte stream ended without an end marker: complete the answer if it was complete, or fail.
    fn end(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Error>;
}

/// An event whose data is not the JSON the vendor's stream format promises.
pub(crate) fn bad_event(data: &str, e: &serde_json::Error) -> Error {
    Error::invalid_response(format!("unexpected stream event ({e}): {}", excerpt(data)))
}
