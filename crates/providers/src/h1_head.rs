//! HTTP/1.1 message heads: the request's, written, and the response's, read (with `httparse`), with what the
//! response's headers say about its body's length (RFC 9112 section 6.3) and the connection's reuse.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};

use crate::http1::{self, BodyDecoder};

/// Headers a response may carry (hyper's limit too).
const MAX_HEADERS: usize = 100;

/// A response head larger than this is refused rather than buffered on.
const MAX_HEAD: usize = 64 * 1024;

/// A response head that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
    /// Not HTTP/1.x as `httparse` reads it.
    #[error("the upstream's response head is malformed: {0}")]
    Malformed(httparse::Error),
    /// Over [`MAX_HEAD`] bytes without its end.
    #[error("the upstream's response head is larger than {MAX_HEAD} bytes")]
    TooLarge,
    /// A header name or value the `http` types refuse.
    #[error("the upstream's response has an invalid header")]
    InvalidHeader,
    /// `Content-Length` that is not one number.
    #[error("the upstream's response has an invalid Content-Length")]
    InvalidLength,
    /// 101: the gateway never asks to switch protocols.
    #[error("the upstream switched protocols unasked")]
    Upgrade,
}

/// A response's head as read.
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    /// The answer's headers, or only those the providers read (see [`KeptHeaders`]).
    pub(crate) headers: HeaderMap,
    /// How its body is read (and where it ends).
    pub(crate) body: BodyDecoder,
    /// The connection can carry another request once this body is read to its end.
    pub(crate) keep_alive: bool,
}

/// Appends the start of a request head: the request line with `target` (origin-form or absolute-form), then
/// `headers` as given (a `Content-Length` or `Transfer-Encoding` among them is left out: [`end_request_head`]
/// writes the body's length).
pub(crate) fn write_request_lines(out: &mut Vec<u8>, method: &Method, target: &str, headers: &HeaderMap) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        write_header(out, name.as_str(), value);
    }
}

/// Appends one `name: value` line.
pub(crate) fn write_header(out: &mut Vec<u8>, name: &str, value: &HeaderValue) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Ends a request head begun by [`write_request_lines`] with the body's length.
pub(crate) fn end_request_head(out: &mut Vec<u8>, method: &Method, body_len: usize) {
    // A bodiless GET or HEAD says nothing; anything else says its length, even 0.
    if body_len > 0 || !matches!(*method, Method::GET | Method::HEAD) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Which of an answer's headers [`read_response_head`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeptHeaders {
    /// Every one (the CLI's client reads the gateway's own `x-switchyard-*`).
    All,
    /// Those the providers read ([`read_here`]).
    ProvidersRead,
}

/// The final response's head from the front of `buf`, consumed with any interim (1xx) heads before it;
/// `None` while more bytes are needed.
pub(crate) fn read_response_head(
    buf: &mut BytesMut,
    method: &Method,
    kept: KeptHeaders,
) -> Result<Option<ResponseHead>, HeadError> {
    loop {
        // Uninitialised slots: setting a hundred empty headers first was a tenth of reading a head.
        let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let len =
            match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut parsed, buf, &mut slots) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(HeadError::Malformed(e)),
            };
        let code = parsed.code.unwrap_or_default();
        let status = StatusCode::from_u16(code).map_err(|_| HeadError::Malformed(httparse::Error::Status))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(HeadError::Upgrade);
        }
        if status.is_informational() {
            // 100 Continue, 103 Early Hints: the final answer follows.
            let _ = buf.split_to(len);
            continue;
        }
        let version = if parsed.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
        // The header values share the head's bytes rather than being copied one by one.
        let mut fields = http1::Fields::new();
        let keep = |name: &[u8]| kept == KeptHeaders::All || read_here(name);
        let framing = http1::fields(buf, parsed.headers, keep, &mut fields).map_err(|_| HeadError::InvalidHeader)?;
        let head = buf.split_to(len).freeze();
        let headers = http1::header_map(&mut fields, &head).map_err(|_| HeadError::InvalidHeader)?;
        let body = body_decoder(status, method, &framing)?;
        // Both a chunked coding and a length: the length is ignored, and the connection not trusted again
        // (RFC 9112 section 6.1: the way requests get smuggled).
        let keep_alive =
            version == Version::HTTP_11 && !framing.close() && body != BodyDecoder::Close && !framing.both();
        return Ok(Some(ResponseHead { status, version, headers, body, keep_alive }));
    }
}

/// Whether the providers read a response header of this name: the content type, the retry hints and the
/// vendors' rate-limit families (the body's framing is read here, as the head is: [`http1::Framing`]). An
/// answer carries many more (OpenAI's about twenty: its version, organisation, processing time, cookies, the
/// CDN's), and each one kept cost about 400 instructions to check, hash and insert into a map nothing read
/// them from (`bench/instructions`: 0.8k for the bench's two).
fn read_here(name: &[u8]) -> bool {
    const NAMES: [&[u8]; 3] = [b"content-type", b"retry-after", b"retry-after-ms"];
    const FAMILIES: [&[u8]; 2] = [b"x-ratelimit-", b"anthropic-ratelimit-"];
    NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
        || FAMILIES.iter().any(|f| name.get(..f.len()).is_some_and(|start| start.eq_ignore_ascii_case(f)))
}

/// How the body is read, from the status, the request's method and the headers (RFC 9112 section 6.3).
fn body_decoder(status: StatusCode, method: &Method, framing: &http1::Framing) -> Result<BodyDecoder, HeadError> {
    if *method == Method::HEAD || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(BodyDecoder::Done);
    }
    // Chunked only when it is the last coding; otherwise the body runs to the connection's end.
    if let Some(chunked) = framing.chunked_last() {
        return Ok(if chunked { BodyDecoder::chunked() } else { BodyDecoder::Close });
    }
    let length = framing.content_length().map_err(|_| HeadError::InvalidLength)?;
    Ok(match length {
        None => BodyDecoder::Close,
        Some(0) => BodyDecoder::Done,
        Some(n) => BodyDecoder::Length(n),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn head_of(text: &str) -> BytesMut {
        BytesMut::from(text.as_bytes())
    }

    fn read(text: &str) -> Result<Option<ResponseHead>, HeadError> {
        read_response_head(&mut head_of(text), &Method::POST, KeptHeaders::ProvidersRead)
    }

    #[test]
    fn a_length_a_chunked_and_a_closing_body_are_told_apart() {
        let text = "HTTP/1.1 200 OK\r\ncontent-length: 12\r\nx-a: b\r\n\r\n";
        let head = read_response_head(&mut head_of(text), &Method::POST, KeptHeaders::All).unwrap().unwrap();
        assert_eq!((head.body, head.keep_alive), (BodyDecoder::Length(12), true));
        assert_eq!(head.headers["x-a"], "b");
        let head = read("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n").unwrap().unwrap();
        assert_eq!((head.body, head.keep_alive), (BodyDecoder::chunked(), true));
        let head = read("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n").unwrap().unwrap();
        assert_eq!((head.body, head.keep_alive), (BodyDecoder::Close, false));
        let head = read("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: Close\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive, "connection: close ends the connection after this body");
        let head = read("HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive, "HTTP/1.0 connections are not reused");
        let head = read("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n").unwrap().unwrap();
        assert_eq!((head.body, head.keep_alive), (BodyDecoder::chunked(), false), "a length beside chunked is ignored");
        let head = read("HTTP/1.1 204 No Content\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.body, BodyDecoder::Done);
    }

    #[test]
    fn only_the_headers_the_providers_read_are_kept_whatever_their_case() {
        let text = "HTTP/1.1 429 Too Many Requests\r\nDate: Thu, 03 Dec 2026 15:41:44 GMT\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\nConnection: keep-alive\r\nopenai-version: 2020-10-01\r\nx-request-id: req_1\r\n\
             X-RateLimit-Remaining-Requests: 0\r\nx-ratelimit-reset-requests: 2s\r\nanthropic-ratelimit-tokens-reset: x\r\n\
             retry-after: 3\r\nretry-after-ms: 2500\r\nset-cookie: a=b\r\nserver: cloudflare\r\nx-ratelimit: no dash\r\n\r\n";
        let all = read_response_head(&mut head_of(text), &Method::POST, KeptHeaders::All).unwrap().unwrap();
        assert_eq!(all.headers.len(), 14);
        let head = read(text).unwrap().unwrap();
        let mut names: Vec<&str> = head.headers.keys().map(http::HeaderName::as_str).collect();
        names.sort_unstable();
        let expected = [
            "anthropic-ratelimit-tokens-reset",
            "content-type",
            "retry-after",
            "retry-after-ms",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ];
        assert_eq!(names, expected);
        assert_eq!(head.headers["x-ratelimit-remaining-requests"], "0");
        assert_eq!((head.body, head.keep_alive), (BodyDecoder::Length(2), true));
    }

    #[test]
    fn interim_heads_are_skipped_and_a_partial_head_waits_for_more() {
        let mut buf = head_of("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        let head = read_response_head(&mut buf, &Method::POST, KeptHeaders::All).unwrap().unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(&buf[..], b"ok", "the body's bytes stay in the buffer");
        let mut partial = head_of("HTTP/1.1 200 OK\r\ncontent-le");
        assert!(read_response_head(&mut partial, &Method::POST, KeptHeaders::All).unwrap().is_none());
        assert_eq!(partial.len(), 27, "nothing is consumed while the head is incomplete");
    }

    #[test]
    fn bad_lengths_and_bad_heads_are_refused() {
        assert!(matches!(read("HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\n"), Err(HeadError::InvalidLength)));
        assert!(matches!(read("HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n"), Err(HeadError::InvalidLength)));
        let head = read("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.body, BodyDecoder::Length(2));
        assert!(matches!(read("SMTP ready\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(matches!(read("HTTP/1.1 101 Switching\r\n\r\n"), Err(HeadError::Upgrade)));
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD));
        assert!(matches!(read(&huge), Err(HeadError::TooLarge)));
    }

    #[test]
    fn the_request_head_carries_its_length_and_not_the_callers_framing_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.com"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("999"));
        let mut out = Vec::new();
        write_request_lines(&mut out, &Method::POST, "/v1/chat", &headers);
        end_request_head(&mut out, &Method::POST, 5);
        assert_eq!(out, b"POST /v1/chat HTTP/1.1\r\nhost: example.com\r\ncontent-length: 5\r\n\r\n");
        out.clear();
        write_request_lines(&mut out, &Method::GET, "/v1/models", &HeaderMap::new());
        end_request_head(&mut out, &Method::GET, 0);
        assert_eq!(out, b"GET /v1/models HTTP/1.1\r\n\r\n");
    }
}
