//! A client connection's socket and the bytes read from it and not consumed yet, shared by the connection's
//! task (which reads request heads and writes answers) and the request body being read by a handler. Both run
//! on the connection's one task, so the buffer's lock is never contended.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::activity::Activity;

/// Reads for a request ask for at least this much room: a chat request's head and body mostly fit.
const READ: usize = 4 * 1024;

/// While an answer is being written, bytes of a next (pipelined) request are kept up to this much; past it
/// the socket is not read until the answer is done.
const MAX_AHEAD: usize = 64 * 1024;

/// The client's socket, its unread bytes, and the connection's [`Activity`].
#[derive(Debug)]
pub(crate) struct Socket {
    inbound: Mutex<Inbound>,
    outbound: Mutex<OwnedWriteHalf>,
    pub(crate) activity: Arc<Activity>,
}

/// The socket's reading half and what was read from it and not consumed yet. Reads go through tokio's
/// `AsyncRead`, which notes a short read as "nothing more to read" and so saves the read that would find
/// nothing.
#[derive(Debug)]
pub(crate) struct Inbound {
    read: OwnedReadHalf,
    pub(crate) buf: BytesMut,
}

impl Socket {
    pub(crate) fn new(tcp: TcpStream, activity: Arc<Activity>) -> Self {
        let (read, write) = tcp.into_split();
        Self { inbound: Mutex::new(Inbound { read, buf: BytesMut::new() }), outbound: Mutex::new(write), activity }
    }

    /// The reading half and the bytes read and not consumed yet.
    pub(crate) fn inbound(&self) -> MutexGuard<'_, Inbound> {
        self.inbound.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads more into `inbound.buf` (`inbound`: the guard of [`Self::inbound`]); `Ok(0)` when the client has
    /// closed its side.
    pub(crate) fn poll_fill(&self, cx: &mut Context<'_>, inbound: &mut Inbound) -> Poll<io::Result<usize>> {
        if inbound.buf.capacity() - inbound.buf.len() < READ {
            // In place when the bytes handed out before are all dropped (the usual case), else a new buffer.
            inbound.buf.reserve(READ);
        }
        let n = ready!(tokio_util::io::poll_read_buf(Pin::new(&mut inbound.read), cx, &mut inbound.buf))?;
        if n > 0 {
            self.activity.bytes_arrived();
        }
        Poll::Ready(Ok(n))
    }

    /// Watches the socket while an answer is on its way: ready when the client has gone (it closed its side or
    /// the connection broke), which ends the answer. Bytes of a next request are kept for later.
    pub(crate) fn poll_gone(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [const { MaybeUninit::uninit() }; 512];
        let mut inbound = self.inbound();
        loop {
            if inbound.buf.len() >= MAX_AHEAD {
                return Poll::Pending;
            }
            // Read beside the buffer: an open stream then holds no read buffer at all.
            let mut read = ReadBuf::uninit(&mut scratch);
            match Pin::new(&mut inbound.read).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if read.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => inbound.buf.extend_from_slice(read.filled()),
                Poll::Ready(Err(_)) => return Poll::Ready(()),
            }
        }
    }

    /// Writes as much of `bufs` as the socket takes now.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let mut outbound = self.outbound.lock().unwrap_or_else(PoisonError::into_inner);
        Pin::new(&mut *outbound).poll_write_vectored(cx, bufs)
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
        let mut sink = vec![MaybeUninit::uninit(); 4096];
        loop {
            let read = std::future::poll_fn(|cx| {
                let mut read = ReadBuf::uninit(&mut sink);
                let mut inbound = self.inbound();
                Pin::new(&mut inbound.read).poll_read(cx, &mut read).map_ok(|()| read.filled().len())
            })
            .await;
            if !matches!(read, Ok(n) if n > 0) {
                return;
            }
        }
    }

    /// Ends the sending side: the client reads the end of the answer, then the connection's end.
    pub(crate) async fn shutdown_write(&self) {
        let _ = std::future::poll_fn(|cx| {
            Pin::new(&mut *self.outbound.lock().unwrap_or_else(PoisonError::into_inner)).poll_shutdown(cx)
        })
        .await;
    }

    /// Lets go of the read buffer's memory when nothing is left in it (between requests and while answers
    /// stream, a connection then holds none).
    pub(crate) fn release_if_empty(&self) {
        let mut inbound = self.inbound();
        if inbound.buf.is_empty() && inbound.buf.capacity() > 0 {
            inbound.buf = BytesMut::new();
        }
    }
}
