//! Writing an answer: its head, then its body by length or in chunks, the body's pieces that are ready at
//! once gathered into one write; meanwhile the socket is watched, and a client that has gone ends the answer
//! (dropping its body, which cancels the upstream call behind it). An answer's [`LimitHeaders`] extension is
//! written into the head with its other fields.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{Response, StatusCode};
use http_body::Body;
use smallvec::SmallVec;
use switchyard_providers::http1;

use super::body::ResponseBody;
use super::socket::Socket;
use crate::client_keys::LimitHeaders;

/// Slices gathered into one write, at most (a chunked piece takes three: its size line, its data, its end).
const GATHER: usize = 64;

/// Why an answer was not written to its end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// The client closed the connection or it broke.
    #[error("the client went away")]
    Gone,
    /// Writing failed.
    #[error("writing the answer failed: {0}")]
    Io(#[from] std::io::Error),
    /// The handler's body failed.
    #[error("the answer's body failed: {0}")]
    Body(axum::Error),
}

/// What the request said that shapes its answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked {
    /// A HEAD request: the answer has no body.
    pub(crate) head: bool,
    /// The connection may carry another request after this answer.
    pub(crate) keep_alive: bool,
    /// The client reads chunked bodies (HTTP/1.1).
    pub(crate) chunked_ok: bool,
}

/// How the body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body.
    None,
    /// This many bytes, as the `Content-Length` says.
    Length(u64),
    /// In chunks.
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client, length unknown).
    Close,
}

/// Writes `response`; `Ok(true)` when the connection can take another request.
pub(crate) async fn write(socket: &Socket, response: Response<ResponseBody>, asked: Asked) -> Result<bool, WriteError> {
    let (parts, body) = response.into_parts();
    let no_body = asked.head
        || parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    let declared = http1::content_length(&parts.headers).ok().flatten();
    let framing = if no_body {
        Framing::None
    } else if let Some(n) = declared.or(body.size_hint().exact()) {
        Framing::Length(n)
    } else if asked.chunked_ok {
        Framing::Chunked
    } else {
        Framing::Close
    };
    let keep_alive =
        asked.keep_alive && framing != Framing::Close && !http1::has_token(&parts.headers, &CONNECTION, "close");
    let limits = parts.extensions.get::<LimitHeaders>();
    // Room for the four limit fields and the writer's own three too.
    let fields = parts.headers.len() + 3 + if limits.is_some() { 4 } else { 0 };
    let mut head = Vec::with_capacity(128 + fields * 48);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(parts.status.canonical_reason().unwrap_or("Unknown").as_bytes());
    head.extend_from_slice(b"\r\n");
    // The handler's fields, then the framing the writer chose, written here rather than put in the map first
    // (an insert hashes the name, and a length as a `HeaderValue` was an allocation).
    for (name, value) in &parts.headers {
        if name != TRANSFER_ENCODING {
            push_field(&mut head, name.as_str(), value.as_bytes());
        }
    }
    match framing {
        Framing::Length(n) if declared.is_none() => {
            push_field(&mut head, CONTENT_LENGTH.as_str(), itoa::Buffer::new().format(n).as_bytes());
        }
        Framing::Chunked => push_field(&mut head, TRANSFER_ENCODING.as_str(), b"chunked"),
        _ => {}
    }
    if !keep_alive && !parts.headers.contains_key(CONNECTION) {
        push_field(&mut head, CONNECTION.as_str(), b"close");
    }
    if let Some(limits) = limits {
        let mut digits = itoa::Buffer::new();
        for (name, n) in limits.fields() {
            push_field(&mut head, name, digits.format(n).as_bytes());
        }
    }
    if !parts.headers.contains_key(DATE) {
        head.extend_from_slice(b"date: ");
        push_date(&mut head);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    drop(parts);

    let mut sending = Sending { out: SmallVec::new(), framing, written: 0, body: None, ended: None };
    if framing == Framing::None {
        sending.ended = Some(body);
    } else {
        sending.body = Some(body);
    }
    sending.out.push(Bytes::from(head));
    poll_fn(|cx| sending.poll(cx, socket)).await?;
    // A body shorter than its length leaves the client waiting for bytes that never come, a longer one sends
    // bytes it would read as the next answer: either way the connection ends here.
    let mismatched = matches!(framing, Framing::Length(n) if sending.written != n);
    Ok(keep_alive && !mismatched)
}

fn push_field(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// An answer on its way: what is queued for the socket and the body still to be read.
struct Sending {
    out: SmallVec<[Bytes; 8]>,
    framing: Framing,
    /// Body bytes queued so far.
    written: u64,
    /// `None` once the body has ended.
    body: Option<ResponseBody>,
    /// The body after its end, kept until its last bytes are written: dropping it marks the connection idle,
    /// and an idle connection is closed at once by a shutdown.
    ended: Option<ResponseBody>,
}

impl Sending {
    fn poll(&mut self, cx: &mut Context<'_>, socket: &Socket) -> Poll<Result<(), WriteError>> {
        loop {
            self.gather(cx)?;
            if self.out.is_empty() {
                if self.body.is_none() {
                    return Poll::Ready(Ok(()));
                }
                // Waiting for the body's next piece: meanwhile a client that goes away ends the answer.
                return match socket.poll_gone(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(WriteError::Gone)),
                    Poll::Pending => Poll::Pending,
                };
            }
            let slices: SmallVec<[IoSlice<'_>; GATHER]> = self.out.iter().map(|b| IoSlice::new(b)).collect();
            let written = socket.poll_write(cx, &slices);
            drop(slices);
            let n = match written {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()));
                }
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => {
                    return match socket.poll_gone(cx) {
                        Poll::Ready(()) => Poll::Ready(Err(WriteError::Gone)),
                        Poll::Pending => Poll::Pending,
                    };
                }
            };
            self.consume(n);
        }
    }

    /// Queues the body's pieces that are ready now, framed, up to [`GATHER`] of them.
    fn gather(&mut self, cx: &mut Context<'_>) -> Result<(), WriteError> {
        while self.out.len() + 3 <= GATHER {
            let Some(body) = self.body.as_mut() else { return Ok(()) };
            match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are not sent: nothing in the gateway makes them.
                    let Ok(data) = frame.into_data() else { continue };
                    if data.is_empty() {
                        continue;
                    }
                    self.written += data.len() as u64;
                    if self.framing == Framing::Chunked {
                        self.out.push(super::chunk_size::line(data.len()));
                        self.out.push(data);
                        self.out.push(Bytes::from_static(b"\r\n"));
                    } else {
                        self.out.push(data);
                    }
                }
                Poll::Ready(None) => {
                    self.ended = self.body.take();
                    if self.framing == Framing::Chunked {
                        self.out.push(Bytes::from_static(b"0\r\n\r\n"));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Err(WriteError::Body(e)),
                Poll::Pending => return Ok(()),
            }
        }
        Ok(())
    }

    /// Drops the first `n` queued bytes, written.
    fn consume(&mut self, mut n: usize) {
        let done = self.out.iter().take_while(|b| {
            if n >= b.len() {
                n -= b.len();
                true
            } else {
                false
            }
        });
        let whole = done.count();
        self.out.drain(..whole);
        if self.out.is_empty() && self.out.spilled() {
            // A burst of pieces moved the queue to the heap; a stream waiting for its next piece holds none.
            self.out = SmallVec::new();
        }
        if n > 0
            && let Some(first) = self.out.first_mut()
        {
            first.advance(n);
        }
    }
}

thread_local! {
    /// The `Date` value of the current second (RFC 9110 section 6.6.1), made once a second per thread.
    static NOW: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Appends the current time as an HTTP date.
fn push_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    NOW.with_borrow_mut(|(at, text)| {
        if *at != second {
            let fresh = httpdate::fmt_http_date(now);
            if fresh.len() == text.len() {
                text.copy_from_slice(fresh.as_bytes());
                *at = second;
            }
        }
        out.extend_from_slice(text);
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_date_is_an_http_date() {
        let mut out = Vec::new();
        push_date(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(httpdate::parse_http_date(&text).is_ok(), "{text}");
    }
}
