//! A body's bytes gathered from its pieces, without copying the usual body that comes in one piece.

use bytes::{Bytes, BytesMut};

/// A body's bytes gathered from its pieces: a body in one piece (the usual case: a slice of the connection's
/// read buffer) is kept as it is; only a body in several pieces is copied into one buffer.
#[derive(Debug, Default)]
pub struct JoinedBody {
    first: Bytes,
    joined: Option<BytesMut>,
}

impl JoinedBody {
    /// The bytes gathered so far.
    pub fn len(&self) -> usize {
        self.joined.as_ref().map_or(self.first.len(), BytesMut::len)
    }

    /// Whether nothing was gathered yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds the next piece.
    pub fn push(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        match &mut self.joined {
            Some(buf) => buf.extend_from_slice(&piece),
            None if self.first.is_empty() => self.first = piece,
            None => {
                let mut buf = BytesMut::with_capacity(self.first.len() + piece.len());
                buf.extend_from_slice(&self.first);
                buf.extend_from_slice(&piece);
                self.first = Bytes::new();
                self.joined = Some(buf);
            }
        }
    }

    /// The whole body.
    pub fn into_bytes(self) -> Bytes {
        self.joined.map_or(self.first, BytesMut::freeze)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::JoinedBody;

    #[test]
    fn a_body_in_one_piece_is_that_piece_uncopied() {
        let piece = Bytes::from(b"{\"model\":\"m\"}".to_vec());
        let mut body = JoinedBody::default();
        body.push(Bytes::new());
        body.push(piece.clone());
        body.push(Bytes::new());
        let whole = body.into_bytes();
        assert_eq!(whole, piece);
        assert_eq!(whole.as_ptr(), piece.as_ptr(), "the piece itself, not a copy");
    }

    proptest! {
        /// Whatever the pieces, the body is their bytes in order, and its length is theirs as it grows.
        #[test]
        fn the_body_is_its_pieces_in_order(pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..8)) {
            let mut body = JoinedBody::default();
            let mut expected = Vec::new();
            for piece in &pieces {
                body.push(Bytes::from(piece.clone()));
                expected.extend_from_slice(piece);
                prop_assert_eq!(body.len(), expected.len());
                prop_assert_eq!(body.is_empty(), expected.is_empty());
            }
            let whole = body.into_bytes();
            prop_assert_eq!(whole.as_ref(), expected.as_slice());
        }
    }
}
