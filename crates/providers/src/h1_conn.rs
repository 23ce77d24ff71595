//! One upstream HTTP/1.1 connection, driven by the request that uses it: no connection task, no channel
//! between the two, one read buffer that grows only for large answers. hyper's client connection held a
//! request channel (9 KB), a read and a write buffer (8 KB each) and a task of its own for every open stream;
//! this holds the socket and one buffer (`docs/performance.md`, memory per open stream).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Reads ask for at least this much room: an SSE chunk or a short answer fits, and it is all an idle stream
/// holds.
const MIN_READ: usize = 4 * 1024;

/// Reads that keep filling the room they had double it, up to this.
const MAX_READ: usize = 64 * 1024;

/// Anything a connection can be: TCP, TLS over TCP, either through a proxy's tunnel.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A connection and the bytes read from it that are not consumed yet.
pub(crate) struct Conn {
    io: Box<dyn Io>,
    /// Read and not yet consumed: the start of a response head, or body bytes not handed out yet.
    pub(crate) buf: BytesMut,
    /// Room the next read asks for.
    next_read: usize,
}

impl Conn {
    /// A connection over `io`, nothing read yet.
    pub(crate) fn new(io: impl Io) -> Self {
        Self { io: Box::new(io), buf: BytesMut::new(), next_read: MIN_READ }
    }

    /// Writes a request: its head, then its body, in as few writes as the connection takes.
    pub(crate) async fn write_request(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        let (mut head, mut body) = (head, body);
        while !head.is_empty() {
            let n = if body.is_empty() {
                self.io.write(head).await?
            } else {
                self.io.write_vectored(&[io::IoSlice::new(head), io::IoSlice::new(body)]).await?
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let from_head = n.min(head.len());
            head = &head[from_head..];
            body = &body[n - from_head..];
        }
        self.io.write_all(body).await?;
        self.io.flush().await
    }

    /// Reads more into the buffer; `Ok(0)` at the end of the connection.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.next_read == MIN_READ && self.buf.capacity() - self.buf.len() < MIN_READ {
            // Read onto the stack first, so nothing is allocated while the read waits: a stream waiting for
            // its upstream's next event holds no buffer. What came is then copied (an event: a few hundred
            // bytes). Reads that fill this go on into the buffer itself.
            let mut landing = [const { std::mem::MaybeUninit::uninit() }; MIN_READ];
            let mut read = ReadBuf::uninit(&mut landing);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            self.buf.extend_from_slice(read.filled());
            if n >= MIN_READ {
                self.next_read = MIN_READ * 2;
            }
            return Poll::Ready(Ok(n));
        }
        if self.buf.capacity() - self.buf.len() < self.next_read {
            // In place when the bytes handed out before are all dropped (the usual case), else a new buffer.
            self.buf.reserve(self.next_read);
        }
        let n = ready!(tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf))?;
        if n >= self.next_read {
            self.next_read = (self.next_read * 2).min(MAX_READ);
        }
        Poll::Ready(Ok(n))
    }

    /// Reads more into the buffer; `Ok(0)` at the end of the connection.
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// Whether an idle connection can take a request: nothing to read on it. A server that ended it while it
    /// was idle has sent its end (or, misbehaving, bytes nobody asked for): either way it is not used again.
    pub(crate) fn is_idle_and_open(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        // Pending: nothing there, still open. TLS records without application data (session tickets) are
        // taken in by the TLS layer and also end as Pending.
        Pin::new(&mut self.io).poll_read(&mut cx, &mut probe).is_pending()
    }

    /// Back to a fresh connection's state once an answer is done: no buffer, reads of the minimum size, so an
    /// idle connection in the pool holds nothing after a large answer.
    pub(crate) fn shrink(&mut self) {
        self.release_if_empty();
        self.next_read = MIN_READ;
    }

    /// Lets go of the read buffer when everything read is handed out: a stream waiting for its upstream's
    /// next event then holds no buffer (its memory goes once the pieces handed out are dropped), and the next
    /// read takes a fresh one.
    pub(crate) fn release_if_empty(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }
}
