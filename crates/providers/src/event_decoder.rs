//! The interface between the SSE reader and a vendor's stream format.

use std::borrow::Cow;

use switchyard::{ChatChunk, Error};

use crate::classify::excerpt;
use crate::sse::SseEventRef;

/// What one event did to the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// It was read (its chunks, if any, are in `out`); more follow.
    More,
    /// It was the stream's end marker.
    End,
    /// It is not valid JSON, or not a shape the format knows: nothing was read from it. The reader skips it
    /// inside an otherwise healthy stream; the error says what was wrong, should the stream fail over it.
    Malformed(Error),
}

/// Turns one vendor's SSE events into neutral chunks.
pub trait EventDecoder: Send + 'static {
    /// Feeds one event, appending chunks to `out`. `Err` is a failure the stream reports (an in-stream error
    /// event, an end marker without a finish). `out` may end with the text chunk of the events before this one
    /// in the same read: text added to that chunk joins it; a new text chunk after it is handed over apart.
    fn event(&mut self, event: SseEventRef<'_>, out: &mut Vec<ChatChunk>) -> Result<Decoded, Error>;

    /// The byte stream ended without an end marker: complete the answer if it was complete, or fail.
    fn end(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Error>;
}

/// Room a new text chunk starts with: a read of many events joins their words, and a chunk grown word by word
/// from its first word's size reallocated four times for a sentence (an allocation of this size costs the
/// same as a smaller one).
const TEXT_ROOM: usize = 64;

/// Adds `text` to `out`: to the text chunk at its end when there is one (the reader joins the text of
/// events that came in the same read), else as a chunk of its own.
pub(crate) fn push_text(out: &mut Vec<ChatChunk>, text: Cow<'_, str>) {
    match out.last_mut() {
        Some(ChatChunk::Text { text: last }) => last.push_str(&text),
        _ => {
            let text = match text {
                Cow::Borrowed(text) => {
                    let mut owned = String::with_capacity(text.len().max(TEXT_ROOM));
                    owned.push_str(text);
                    owned
                }
                Cow::Owned(text) => text,
            };
            out.push(ChatChunk::Text { text });
        }
    }
}

/// An event whose data is not the JSON the vendor's stream format promises.
pub(crate) fn bad_event(data: &str, e: &serde_json::Error) -> Decoded {
    Decoded::Malformed(Error::invalid_response(format!("unexpected stream event ({e}): {}", excerpt(data))))
}
