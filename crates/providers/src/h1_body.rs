//! A response body read straight from its connection: by length, in chunks, or to the connection's end. The
//! connection goes back to the pool as soon as the body has been read to its end and the response allowed
//! it; a body dropped before its end closes the connection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::h1_conn::Conn;
use crate::h1_head::Framing;
use crate::pool::Pool;
use crate::transport::BoxError;

/// A chunk-size line (with its extensions) or a trailer line longer than this is refused.
const MAX_LINE: usize = 4 * 1024;

/// Trailers past this many bytes in all are refused.
const MAX_TRAILERS: usize = 16 * 1024;

/// Why a body broke off.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// The connection ended before the body did.
    #[error("the connection closed before the body ended")]
    Closed,
    /// The chunked encoding is not what RFC 9112 section 7.1 allows.
    #[error("the body's chunked encoding is malformed")]
    BadChunk,
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where a body's reading stands.
enum Decoding {
    /// This many bytes are left.
    Length(u64),
    /// In a chunked body.
    Chunked(Chunk),
    /// Until the connection ends.
    Close,
    /// Read to its end.
    Done,
}

/// Where a chunked body's reading stands.
enum Chunk {
    /// At a chunk-size line.
    Size,
    /// This many bytes of the current chunk's data are left.
    Data(u64),
    /// At the line end after a chunk's data.
    DataEnd,
    /// In the trailers after the last chunk; this many bytes of them read.
    Trailers(usize),
}

/// What the bytes at hand gave.
enum Step {
    Data(Bytes),
    End,
    More,
}

/// One response's body and, until it ends, its connection.
pub(crate) struct H1Body {
    conn: Option<Conn>,
    decoding: Decoding,
    keep_alive: bool,
    pool: Arc<Pool>,
}

impl H1Body {
    /// The body framed as `framing` on `conn`, which goes back to `pool` at the end when `keep_alive`.
    pub(crate) fn new(conn: Conn, framing: Framing, keep_alive: bool, pool: Arc<Pool>) -> Self {
        let decoding = match framing {
            Framing::Length(n) => Decoding::Length(n),
            Framing::Chunked => Decoding::Chunked(Chunk::Size),
            Framing::Close => Decoding::Close,
        };
        let mut body = Self { conn: Some(conn), decoding, keep_alive, pool };
        if matches!(body.decoding, Decoding::Length(0)) {
            body.end();
        }
        body
    }

    /// The body is read: its connection goes back to the pool when the response allowed it and nothing
    /// unasked-for follows, else it is closed.
    fn end(&mut self) {
        self.decoding = Decoding::Done;
        if let Some(mut conn) = self.conn.take()
            && self.keep_alive
            && conn.buf.is_empty()
        {
            conn.shrink();
            self.pool.put(conn);
        }
    }
}

/// The next piece the buffered bytes give.
fn step(decoding: &mut Decoding, buf: &mut BytesMut) -> Result<Step, BodyError> {
    match decoding {
        Decoding::Done => Ok(Step::End),
        Decoding::Length(left) => Ok(take_up_to(buf, left).map_or(Step::More, Step::Data)),
        Decoding::Close if buf.is_empty() => Ok(Step::More),
        Decoding::Close => Ok(Step::Data(buf.split().freeze())),
        Decoding::Chunked(chunk) => chunked(chunk, buf),
    }
}

/// Up to `left` of the buffered bytes (`left` counted down); `None` when there are none.
fn take_up_to(buf: &mut BytesMut, left: &mut u64) -> Option<Bytes> {
    if buf.is_empty() {
        return None;
    }
    let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
    *left -= n as u64;
    Some(buf.split_to(n).freeze())
}

/// Reads a chunked body from `buf` as far as it goes.
fn chunked(chunk: &mut Chunk, buf: &mut BytesMut) -> Result<Step, BodyError> {
    loop {
        match chunk {
            Chunk::Size => {
                let size = match httparse::parse_chunk_size(buf) {
                    // Extensions are not bounded by the parser: a line that long is refused.
                    Ok(httparse::Status::Complete((used, _))) if used > MAX_LINE => return Err(BodyError::BadChunk),
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        size
                    }
                    Ok(httparse::Status::Partial) if buf.len() > MAX_LINE => return Err(BodyError::BadChunk),
                    Ok(httparse::Status::Partial) => return Ok(Step::More),
                    Err(_) => return Err(BodyError::BadChunk),
                };
                *chunk = if size == 0 { Chunk::Trailers(0) } else { Chunk::Data(size) };
            }
            Chunk::Data(left) => {
                let Some(data) = take_up_to(buf, left) else { return Ok(Step::More) };
                if *left == 0 {
                    *chunk = Chunk::DataEnd;
                }
                return Ok(Step::Data(data));
            }
            Chunk::DataEnd => {
                let Some(line) = take_line(buf)? else { return Ok(Step::More) };
                if !line.is_empty() {
                    return Err(BodyError::BadChunk);
                }
                *chunk = Chunk::Size;
            }
            Chunk::Trailers(read) => {
                let Some(line) = take_line(buf)? else { return Ok(Step::More) };
                // Trailers carry nothing the gateway uses: read past them.
                if line.is_empty() {
                    return Ok(Step::End);
                }
                *read += line.len();
                if *read > MAX_TRAILERS {
                    return Err(BodyError::BadChunk);
                }
            }
        }
    }
}

/// The next line of `buf` without its CRLF, consumed; `None` until a whole line is there.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, BodyError> {
    let Some(end) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > MAX_LINE { Err(BodyError::BadChunk) } else { Ok(None) };
    };
    if end > MAX_LINE || end == 0 || buf[end - 1] != b'\r' {
        return Err(BodyError::BadChunk);
    }
    let line = buf.split_to(end - 1);
    buf.advance(2);
    Ok(Some(line))
}

impl HttpBody for H1Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
            match step(&mut this.decoding, &mut conn.buf) {
                Ok(Step::Data(data)) => {
                    if matches!(this.decoding, Decoding::Length(0)) {
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
                Ok(Step::More) => {}
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) if matches!(this.decoding, Decoding::Close) => {
                    this.conn = None;
                    this.decoding = Decoding::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(Box::new(BodyError::Closed))));
                }
                Ok(_) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(Box::new(BodyError::Io(e)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.decoding, Decoding::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoding {
            Decoding::Length(n) => SizeHint::with_exact(n),
            Decoding::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Runs the chunked reader over `input` fed in pieces of `step` bytes; the data and whether it ended.
    fn read_chunked(input: &[u8], step: usize) -> Result<(Vec<u8>, bool), BodyError> {
        let mut chunk = Chunk::Size;
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                match chunked(&mut chunk, &mut buf)? {
                    Step::Data(data) => out.extend_from_slice(&data),
                    Step::End => return Ok((out, true)),
                    Step::More => break,
                }
            }
        }
        Ok((out, false))
    }

    #[test]
    fn chunked_bodies_read_the_same_however_they_arrive() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in [1, 2, 3, 7, body.len()] {
            let (data, ended) = read_chunked(body, step).unwrap();
            assert_eq!((data.as_slice(), ended), (&b"hello, world"[..], true), "pieces of {step}");
        }
        let (data, ended) = read_chunked(b"A\r\n0123456789\r\n0\r\n\r\n", 4).unwrap();
        assert_eq!((data.as_slice(), ended), (&b"0123456789"[..], true));
    }

    #[test]
    fn malformed_chunks_are_refused() {
        let bad_ones =
            [&b"zz\r\n"[..], b"5\r\nhelloXX\r\n", b"5 x\r\nhello\r\n", b"11111111111111111\r\n", b"5\nhello\n"];
        for bad in bad_ones {
            assert!(matches!(read_chunked(bad, 64), Err(BodyError::BadChunk)), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = format!("5;{}\r\n", "e".repeat(MAX_LINE));
        assert!(matches!(read_chunked(long.as_bytes(), 64), Err(BodyError::BadChunk)));
    }
}
