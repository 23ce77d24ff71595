//! A response body that gives its connection back to the pool: as soon as it has been read to the end, or
//! when it is dropped (the pool keeps a connection only once hyper has it ready for a new request: a body
//! dropped unread makes hyper close the connection, which the pool then discards).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};

use crate::pool::{Pool, Sender};
use crate::transport::BoxError;

/// One response's body and, until it ends, its connection.
pub(crate) struct PooledBody {
    body: Incoming,
    back: Option<(Sender, Arc<Pool>)>,
}

impl PooledBody {
    /// `body`, whose connection goes back to `pool` when it ends.
    pub(crate) fn new(body: Incoming, sender: Sender, pool: Arc<Pool>) -> Self {
        Self { body, back: Some((sender, pool)) }
    }

    fn give_back(&mut self) {
        if let Some((sender, pool)) = self.back.take() {
            pool.put(sender);
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        // The last frame, or a reader that stops at `is_end_stream` without asking for the end: hand the
        // connection back now, not when the response is dropped.
        if frame.is_none() || this.body.is_end_stream() {
            this.give_back();
        }
        Poll::Ready(frame.map(|frame| frame.map_err(BoxError::from)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        self.give_back();
    }
}
