//! A response body read straight from its connection: by length, in chunks, or to the connection's end. The
//! connection goes back to the pool as soon as the body has been read to its end and the response allowed
//! it; a body dropped before its end closes the connection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::h1_conn::Conn;
use crate::http1::{BodyDecoder, BodyError, Step};
use crate::pool::Pool;
use crate::transport::BoxError;

/// One response's body and, until it ends, its connection.
pub(crate) struct H1Body {
    conn: Option<Conn>,
    decoder: BodyDecoder,
    keep_alive: bool,
    pool: Arc<Pool>,
}

impl H1Body {
    /// The body `decoder` reads from `conn`, which goes back to `pool` at the end when `keep_alive`.
    pub(crate) fn new(conn: Conn, decoder: BodyDecoder, keep_alive: bool, pool: Arc<Pool>) -> Self {
        let mut body = Self { conn: Some(conn), decoder, keep_alive, pool };
        if body.decoder.is_done() {
            body.end();
        }
        body
    }

    /// The body is read: its connection goes back to the pool when the response allowed it and nothing
    /// unasked-for follows, else it is closed.
    fn end(&mut self) {
        self.decoder = BodyDecoder::Done;
        if let Some(mut conn) = self.conn.take()
            && self.keep_alive
            && conn.buf.is_empty()
        {
            conn.shrink();
            self.pool.put(conn);
        }
    }
}

impl HttpBody for H1Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
            match this.decoder.step(&mut conn.buf) {
                Ok(Step::Data(data)) => {
                    if this.decoder.is_done() {
                        this.end();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::End) => {
                    this.end();
                    return Poll::Ready(None);
                }
                Err(e) => {
                    // The connection is closed with the error: it is not reused.
                    this.conn = None;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Ok(Step::More) => conn.release_if_empty(),
            }
            let failed = match ready!(conn.poll_fill(cx)) {
                Ok(0) => this.decoder.at_eof().err(),
                Ok(_) => continue,
                Err(e) => Some(BodyError::Io(e)),
            };
            // The connection ended or broke: it is not reused either way.
            this.conn = None;
            return Poll::Ready(failed.map(|e| Err(Box::new(e) as BoxError)));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder.exact_left().map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
