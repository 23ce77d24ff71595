//! A client connection's socket and the bytes read from it and not consumed yet, shared by the connection's
//! task (which reads request heads and writes answers) and the request body being read by a handler. Both run
//! on the connection's one task, so the buffer's lock is never contended.

use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::activity::Activity;

/// Reads for a request ask for at least this much room: a chat request's head and body mostly fit.
const READ: usize = 4 * 1024;

/// While an answer is being written, bytes of a next (pipelined) request are kept up to this much; past it
/// the socket is not read until the answer is done.
const MAX_AHEAD: usize = 64 * 1024;

/// The client's socket, its unread bytes, and the connection's [`Activity`].
#[derive(Debug)]
pub(crate) struct Socket {
    tcp: TcpStream,
    buf: Mutex<BytesMut>,
    pub(crate) activity: Arc<Activity>,
}

impl Socket {
    pub(crate) fn new(tcp: TcpStream, activity: Arc<Activity>) -> Self {
        Self { tcp, buf: Mutex::new(BytesMut::new()), activity }
    }

    /// The bytes read and not consumed yet.
    pub(crate) fn buf(&self) -> MutexGuard<'_, BytesMut> {
        self.buf.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads more into `buf` (the guard of [`Self::buf`]); `Ok(0)` when the client has closed its side.
    pub(crate) fn poll_fill(&self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        if buf.capacity() - buf.len() < READ {
            // In place when the bytes handed out before are all dropped (the usual case), else a new buffer.
            buf.reserve(READ);
        }
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            match self.tcp.try_read_buf(buf) {
                Ok(n) => {
                    if n > 0 {
                        self.activity.bytes_arrived();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Watches the socket while an answer is on its way: ready when the client has gone (it closed its side or
    /// the connection broke), which ends the answer. Bytes of a next request are kept for later.
    pub(crate) fn poll_gone(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [const { std::mem::MaybeUninit::uninit() }; 512];
        loop {
            if self.buf().len() >= MAX_AHEAD {
                return Poll::Pending;
            }
            if self.tcp.poll_read_ready(cx).is_pending() {
                return Poll::Pending;
            }
            // Read beside the buffer: an open stream then holds no read buffer at all.
            let mut read = tokio::io::ReadBuf::uninit(&mut scratch);
            match self.tcp.try_read_buf(&mut read) {
                Ok(0) => return Poll::Ready(()),
                Ok(_) => self.buf().extend_from_slice(read.filled()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Poll::Ready(()),
            }
        }
    }

    /// Writes as much of `bufs` as the socket takes now.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self.tcp.try_write_vectored(bufs) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Writes all of `bytes`.
    pub(crate) async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = std::future::poll_fn(|cx| self.poll_write(cx, &[IoSlice::new(bytes)])).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Reads and drops what the client sends until it closes its side or the read fails.
    pub(crate) async fn discard_until_closed(&self) {
        let mut sink = vec![0u8; 4096];
        loop {
            if self.tcp.readable().await.is_err() {
                return;
            }
            match self.tcp.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }

    /// Ends the sending side: the client reads the end of the answer, then the connection's end.
    pub(crate) fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(&self.tcp).shutdown(std::net::Shutdown::Write);
    }

    /// Lets go of the read buffer's memory when nothing is left in it (between requests and while answers
    /// stream, a connection then holds none).
    pub(crate) fn release_if_empty(&self) {
        let mut buf = self.buf();
        if buf.is_empty() && buf.capacity() > 0 {
            *buf = BytesMut::new();
        }
    }
}
