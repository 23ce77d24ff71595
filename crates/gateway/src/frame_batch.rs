//! A stream's frames that are ready together, sent as one piece: one body frame instead of one per event
//! saves the connection's per-frame work (a chunk's framing, a queue entry) and, for the OpenAI stream, the
//! allocation of each frame.

use bytes::Bytes;

/// How many more frames like those held a full buffer makes room for.
const BURST: usize = 15;

/// Frames gathered for one body frame.
#[derive(Debug, Default)]
pub(crate) struct FrameBatch {
    /// A single frame, kept as it came (no copy); only while `joined` is empty.
    first: Option<Bytes>,
    /// Several frames, joined.
    joined: Vec<u8>,
}

impl FrameBatch {
    /// Appends a whole frame.
    pub(crate) fn push(&mut self, frame: Bytes) {
        if frame.is_empty() {
            return;
        }
        if self.first.is_none() && self.joined.is_empty() {
            self.first = Some(frame);
        } else {
            self.buffer().extend_from_slice(&frame);
        }
    }

    /// The buffer to append frames to; a single frame held so far moves into it.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        if let Some(first) = self.first.take() {
            // The frame's own allocation is reused when nothing else holds it.
            self.joined = Vec::from(first);
        }
        // A full buffer (the first frame is written exactly) makes room for a burst of frames like the ones
        // so far at once, rather than growing (and copying) by doubling frame after frame.
        if !self.joined.is_empty() && self.joined.len() == self.joined.capacity() {
            self.joined.reserve(self.joined.len() * BURST);
        }
        &mut self.joined
    }

    /// How many bytes the batch holds.
    pub(crate) fn len(&self) -> usize {
        self.first.as_ref().map_or(self.joined.len(), Bytes::len)
    }

    /// The frames as one piece; `None` when there are none.
    pub(crate) fn into_bytes(self) -> Option<Bytes> {
        match self.first {
            Some(first) => Some(first),
            None if self.joined.is_empty() => None,
            None => Some(Bytes::from(self.joined)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FrameBatch;
    use bytes::Bytes;

    #[test]
    fn frames_come_out_in_order_as_one_piece() {
        assert_eq!(FrameBatch::default().into_bytes(), None);

        let mut batch = FrameBatch::default();
        batch.push(Bytes::new());
        assert_eq!(batch.len(), 0);
        assert_eq!(batch.into_bytes(), None);

        let one = Bytes::from_static(b"data: 1\n\n");
        let mut batch = FrameBatch::default();
        batch.push(one.clone());
        let out = batch.into_bytes().unwrap();
        assert_eq!(out.as_ptr(), one.as_ptr(), "a single frame is not copied");

        let mut batch = FrameBatch::default();
        batch.push(one);
        batch.buffer().extend_from_slice(b"data: 2\n\n");
        batch.push(Bytes::from_static(b"data: 3\n\n"));
        batch.push(Bytes::new());
        assert_eq!(batch.len(), 27);
        assert_eq!(batch.into_bytes().unwrap(), &b"data: 1\n\ndata: 2\n\ndata: 3\n\n"[..]);

        let mut batch = FrameBatch::default();
        let _ = batch.buffer();
        assert_eq!(batch.into_bytes(), None, "a buffer nothing was written to is no frame");
    }
}
