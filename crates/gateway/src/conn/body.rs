//! Request and response bodies that tell the connection's [`Activity`] when they end.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use switchyard_providers::http1::{BodyDecoder, BodyError, Step};

use super::activity::{Activity, Phase};
use super::socket::Socket;

/// The request body, read from the connection's socket as the handler asks for it. Its end stops the body
/// timeout. A client that sent `Expect: 100-continue` is told to go on when the handler first asks.
#[derive(Debug)]
pub(crate) struct RequestBody {
    socket: Arc<Socket>,
    decoder: BodyDecoder,
    /// Bytes of `100 Continue` still to be written.
    continue_left: usize,
}

/// The interim answer to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

impl RequestBody {
    pub(crate) fn new(socket: Arc<Socket>, decoder: BodyDecoder, expect_continue: bool) -> Self {
        let continue_left = if expect_continue { CONTINUE.len() } else { 0 };
        Self { socket, decoder, continue_left }
    }

    fn ended(&mut self) {
        self.socket.activity.body_done();
        self.socket.release_if_empty();
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        while this.continue_left > 0 {
            let unsent = &CONTINUE[CONTINUE.len() - this.continue_left..];
            match ready!(this.socket.poll_write(cx, &[std::io::IoSlice::new(unsent)])) {
                Ok(n) => this.continue_left -= n.min(this.continue_left),
                Err(e) => return Poll::Ready(Some(Err(BodyError::Io(e)))),
            }
        }
        let socket = this.socket.clone();
        let mut inbound = socket.inbound();
        loop {
            match this.decoder.step(&mut inbound.buf) {
                Ok(Step::Data(data)) => {
                    if this.decoder.is_done() {
                        drop(inbound);
                        this.ended();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::End) => {
                    drop(inbound);
                    this.ended();
                    return Poll::Ready(None);
                }
                Err(e) => return Poll::Ready(Some(Err(e))),
                Ok(Step::More) => {}
            }
            match ready!(socket.poll_fill(cx, &mut inbound)) {
                Ok(0) => return Poll::Ready(Some(Err(BodyError::Closed))),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(BodyError::Io(e)))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder.exact_left().map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// The response body: when the connection is done with it, the connection waits for its next request.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    inner: axum::body::Body,
    activity: Arc<Activity>,
}

impl ResponseBody {
    pub(crate) fn new(inner: axum::body::Body, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if self.activity.phase() == Phase::Busy {
            self.activity.enter(Phase::Idle);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
