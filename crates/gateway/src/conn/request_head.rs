//! Reading a request's head (with `httparse`) into the `http` types, and what it says about its body and the
//! connection (RFC 9112 sections 6 and 9.3).

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::EXPECT;
use http::{Method, Request, StatusCode, Uri, Version};
use switchyard_providers::http1::{self, BodyDecoder};

use crate::error::Api;
use crate::routes::chat;

/// Headers a request may carry (hyper's limit too).
const MAX_HEADERS: usize = 100;

/// A request head larger than this is refused with 431 rather than buffered on.
const MAX_HEAD: usize = 64 * 1024;

/// A request head that cannot be served; [`HeadError::status`] is the answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
    /// Not HTTP/1.x as `httparse` reads it, or a header or target the `http` types refuse.
    #[error("malformed request head")]
    Malformed,
    /// Over [`MAX_HEAD`] bytes, or more than [`MAX_HEADERS`] headers.
    #[error("request head too large")]
    TooLarge,
    /// `Content-Length` that is not one number, or a transfer coding that does not end in `chunked`.
    #[error("request body framing is invalid")]
    BadFraming,
}

impl HeadError {
    /// The status the client is answered with before the connection is closed.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            HeadError::Malformed | HeadError::BadFraming => StatusCode::BAD_REQUEST,
            HeadError::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    /// What the client is told: what is wrong with the head and what to send instead.
    pub(crate) fn message(&self) -> String {
        match self {
            HeadError::Malformed => {
                "the request head is not valid HTTP/1.1: its request line, a header name or a header value cannot \
                 be read"
                    .to_owned()
            }
            HeadError::TooLarge => format!(
                "the request head is larger than {} KiB or has more than {MAX_HEADERS} headers: send fewer or \
                 smaller headers",
                MAX_HEAD / 1024
            ),
            HeadError::BadFraming => "the request body's framing is invalid: send one Content-Length number, or a \
                                      Transfer-Encoding that ends in chunked"
                .to_owned(),
        }
    }
}

/// A request's head as read.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) parts: http::request::Parts,
    /// How its body is read.
    pub(crate) body: BodyDecoder,
    /// The connection can carry another request after this one's answer.
    pub(crate) keep_alive: bool,
    /// The client waits for `100 Continue` before sending the body.
    pub(crate) expect_continue: bool,
    /// The chat endpoint the request names, if any ([`chat::endpoint`]), decided once here.
    pub(crate) chat: Option<Api>,
}

/// The request head at the front of `buf`, consumed; `None` while more bytes are needed.
pub(crate) fn read(buf: &mut BytesMut) -> Result<Option<RequestHead>, HeadError> {
    // Uninitialised slots: setting a hundred empty headers first was a tenth of reading a head.
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut parsed, buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes()).map_err(|_| HeadError::Malformed)?;
    let version = if parsed.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let path = parsed.path.unwrap_or_default();
    let path_start = path.as_ptr() as usize - buf.as_ptr() as usize;
    let path_range = path_start..path_start + path.len();
    // A chat request keeps only the headers its handler reads; any other keeps them all.
    let endpoint = chat::endpoint(&method, path);
    let keep = |name: &[u8]| endpoint.is_none() || chat::reads_header(name);
    // The target and the header values share the head's bytes rather than being copied one by one.
    let mut fields = http1::Fields::new();
    let framing = http1::fields(buf, parsed.headers, keep, &mut fields).map_err(|_| HeadError::Malformed)?;
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(path_range)).map_err(|_| HeadError::Malformed)?;
    let headers = http1::header_map(&mut fields, &head).map_err(|_| HeadError::Malformed)?;

    // RFC 9112 section 6.3: a transfer coding wins over a length, and must end in chunked on a request; a
    // request with both is served but its connection is not trusted again (the way requests get smuggled).
    let body = match framing.chunked_last() {
        Some(true) => BodyDecoder::chunked(),
        Some(false) => return Err(HeadError::BadFraming),
        None => match framing.content_length().map_err(|_| HeadError::BadFraming)? {
            None | Some(0) => BodyDecoder::Done,
            Some(n) => BodyDecoder::Length(n),
        },
    };
    // HTTP/1.0 connections end with their answer: keeping them alive takes headers few clients send.
    let keep_alive = version == Version::HTTP_11 && !framing.both() && !framing.close();
    let expect_continue = version == Version::HTTP_11
        && !body.is_done()
        && headers.get(EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));

    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    let (parts, ()) = request.into_parts();
    Ok(Some(RequestHead { parts, body, keep_alive, expect_continue, chat: endpoint }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn read_text(text: &str) -> Result<Option<RequestHead>, HeadError> {
        read(&mut BytesMut::from(text.as_bytes()))
    }

    #[test]
    fn a_request_head_is_read_with_its_body_framing() {
        let mut buf = BytesMut::from(
            &b"POST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nX-A: b\r\n\r\n{\"model\":1}"[..],
        );
        let head = read(&mut buf).unwrap().unwrap();
        assert_eq!(head.parts.method, Method::POST);
        assert_eq!(head.parts.uri.path(), "/v1/completions");
        assert_eq!(head.parts.uri.query(), Some("x=1"));
        assert_eq!(head.parts.headers["x-a"], "b");
        assert!(matches!(head.body, BodyDecoder::Length(12)));
        assert!(head.keep_alive && !head.expect_continue);
        assert_eq!(&buf[..], b"{\"model\":1}", "the body is left in the buffer");

        let head = read_text("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nExpect: 100-Continue\r\n\r\n");
        let head = head.unwrap().unwrap();
        assert!(matches!(head.body, BodyDecoder::Chunked(_)));
        assert!(head.expect_continue);
        let head = read_text("GET /health HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert!(head.body.is_done() && head.keep_alive);
    }

    #[test]
    fn a_chat_request_keeps_only_the_headers_its_handler_reads() {
        let sent = "Host: a\r\nUser-Agent: OpenAI/Python 1.99.0\r\nX-Stainless-Os: Linux\r\nAuthorization: Bearer k\r\n\
            X-Api-Key: k2\r\nX-Request-Id: r1\r\nContent-Type: application/json\r\nX-Switchyard-Deadline-Ms: 900\r\n\
            Expect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        for target in ["/v1/chat/completions", "/v1/messages?beta=true"] {
            let head = read_text(&format!("POST {target} HTTP/1.1\r\n{sent}")).unwrap().unwrap();
            let mut kept: Vec<&str> = head.parts.headers.keys().map(|name| name.as_str()).collect();
            kept.sort_unstable();
            let read =
                ["authorization", "content-type", "expect", "x-api-key", "x-request-id", "x-switchyard-deadline-ms"];
            assert_eq!(kept, read, "{target}");
            assert!(head.chat.is_some(), "{target}");
            // The framing headers are read as the head is, kept or not.
            assert!(matches!(head.body, BodyDecoder::Length(2)) && head.expect_continue);
        }
        // Another endpoint (or another method) keeps every header.
        for line in ["POST /v1/models HTTP/1.1", "GET /v1/chat/completions HTTP/1.1"] {
            let head = read_text(&format!("{line}\r\n{sent}")).unwrap().unwrap();
            assert_eq!(head.parts.headers.len(), 10, "{line}");
            assert_eq!(head.chat, None, "{line}");
        }
    }

    #[test]
    fn closing_and_old_clients_do_not_keep_the_connection() {
        for text in [
            "GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        ] {
            assert!(!read_text(text).unwrap().unwrap().keep_alive, "{text}");
        }
    }

    #[test]
    fn partial_heads_wait_and_bad_ones_are_refused_with_their_status() {
        assert!(read_text("POST / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
        let bad = [
            ("GARBAGE\r\n\r\n", StatusCode::BAD_REQUEST),
            ("POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n", StatusCode::BAD_REQUEST),
            ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", StatusCode::BAD_REQUEST),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", StatusCode::BAD_REQUEST),
            ("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", StatusCode::BAD_REQUEST),
        ];
        for (text, status) in bad {
            assert_eq!(read_text(text).unwrap_err().status(), status, "{text}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        let err = read_text(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err();
        assert_eq!(err.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let endless = format!("GET / HTTP/1.1\r\nx-a: {}", "a".repeat(MAX_HEAD));
        assert_eq!(read_text(&endless).unwrap_err().status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
}
