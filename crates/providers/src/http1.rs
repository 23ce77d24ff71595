//! HTTP/1.1 wire pieces shared by the providers' upstream client and the gateway's own server: reading a
//! message body by length, in chunks or to the connection's end (RFC 9112 sections 6 and 7), and what a head's
//! framing headers say. The connections themselves live with each side.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use smallvec::SmallVec;

use crate::header_names;

/// A chunk-size line (with its extensions) or a trailer line longer than this is refused.
const MAX_LINE: usize = 4 * 1024;

/// Trailers past this many bytes in all are refused.
const MAX_TRAILERS: usize = 16 * 1024;

/// Why a body broke off.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
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

/// Where a body's reading stands: feed it the connection's buffered bytes with [`BodyDecoder::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyDecoder {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// At a chunk-size line.
    Size,
    /// This many bytes of the current chunk's data are left.
    Data(u64),
    /// At the line end after a chunk's data.
    DataEnd,
    /// In the trailers after the last chunk; this many bytes of them read.
    Trailers(usize),
}

/// What the buffered bytes gave.
#[derive(Debug)]
pub enum Step {
    /// The next piece of the body.
    Data(Bytes),
    /// The body has ended.
    End,
    /// More bytes are needed.
    More,
}

impl BodyDecoder {
    /// A chunked body, at its start.
    pub fn chunked() -> Self {
        BodyDecoder::Chunked(Chunk::Size)
    }

    /// The next piece the bytes in `buf` give, consumed from it.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, BodyError> {
        let step = match self {
            BodyDecoder::Done => Ok(Step::End),
            BodyDecoder::Length(0) => Ok(Step::End),
            BodyDecoder::Length(left) => Ok(take_up_to(buf, left).map_or(Step::More, Step::Data)),
            BodyDecoder::Close if buf.is_empty() => Ok(Step::More),
            BodyDecoder::Close => Ok(Step::Data(buf.split().freeze())),
            BodyDecoder::Chunked(chunk) => chunked(chunk, buf),
        };
        if matches!(step, Ok(Step::End)) || matches!(self, BodyDecoder::Length(0)) {
            *self = BodyDecoder::Done;
        }
        step
    }

    /// The connection ended: the end of a body read to the connection's end, else a body cut short.
    pub fn at_eof(&mut self) -> Result<(), BodyError> {
        match self {
            BodyDecoder::Close | BodyDecoder::Done => {
                *self = BodyDecoder::Done;
                Ok(())
            }
            _ => Err(BodyError::Closed),
        }
    }

    /// Whether the body has been read to its end.
    pub fn is_done(&self) -> bool {
        matches!(self, BodyDecoder::Done)
    }

    /// The bytes left when the length is known.
    pub fn exact_left(&self) -> Option<u64> {
        match self {
            BodyDecoder::Length(n) => Some(*n),
            BodyDecoder::Done => Some(0),
            _ => None,
        }
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
                let size = match plain_chunk_size(buf) {
                    Some((used, size)) => {
                        buf.advance(used);
                        size
                    }
                    None => match httparse::parse_chunk_size(buf) {
                        // Extensions are not bounded by the parser: a line that long is refused.
                        Ok(httparse::Status::Complete((used, _))) if used > MAX_LINE => {
                            return Err(BodyError::BadChunk);
                        }
                        Ok(httparse::Status::Complete((used, size))) => {
                            buf.advance(used);
                            size
                        }
                        Ok(httparse::Status::Partial) if buf.len() > MAX_LINE => return Err(BodyError::BadChunk),
                        Ok(httparse::Status::Partial) => return Ok(Step::More),
                        Err(_) => return Err(BodyError::BadChunk),
                    },
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
                if line != 0 {
                    return Err(BodyError::BadChunk);
                }
                *chunk = Chunk::Size;
            }
            Chunk::Trailers(read) => {
                let Some(line) = take_line(buf)? else { return Ok(Step::More) };
                // Trailers carry nothing the gateway uses: read past them.
                if line == 0 {
                    return Ok(Step::End);
                }
                *read += line;
                if *read > MAX_TRAILERS {
                    return Err(BodyError::BadChunk);
                }
            }
        }
    }
}

/// The length of the next line of `buf` without its CRLF, the line consumed; `None` until a whole line is there.
/// (Only a line's length is read: the line after each chunk's data is empty, and trailers are skipped.)
fn take_line(buf: &mut BytesMut) -> Result<Option<usize>, BodyError> {
    // The usual line, an empty one, without the search below: it gives the same answer, and going without it
    // cost the paced stream about 0.7k instructions (bench/instructions with BENCH_STORAGE=off).
    if buf.starts_with(b"\r\n") {
        buf.advance(2);
        return Ok(Some(0));
    }
    let Some(end) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > MAX_LINE { Err(BodyError::BadChunk) } else { Ok(None) };
    };
    if end > MAX_LINE || end == 0 || buf[end - 1] != b'\r' {
        return Err(BodyError::BadChunk);
    }
    buf.advance(end + 1);
    Ok(Some(end - 1))
}

/// The usual chunk-size line, hex digits and CRLF, read here: the bytes it takes and the size. `None` for
/// anything else (extensions, blanks, more digits than a u64 holds, a line not all there), which httparse reads.
/// An upstream's stream is a chunk an event: this, and the line after each chunk's data read without splitting
/// it off, took about 130 instructions a chunk (bench/instructions' paced stream: 100.6k -> 98.9k).
fn plain_chunk_size(buf: &[u8]) -> Option<(usize, u64)> {
    let mut size: u64 = 0;
    // At most 16 digits, then the CR: a 17th digit ends the loop with `None`.
    for (i, &b) in buf.iter().enumerate().take(17) {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            b'\r' if i > 0 && buf.get(i + 1) == Some(&b'\n') => return Some((i + 2, size)),
            _ => return None,
        };
        size = size << 4 | u64::from(digit);
    }
    None
}

/// A header name or value the `http` types refuse.
#[derive(Debug, thiserror::Error)]
#[error("invalid header")]
pub struct InvalidHeader;

/// The parsed headers' names and where their values sit in the head: taken before the head is split off the
/// read buffer, so that [`header_map`] can share the head's bytes rather than copy each value.
pub type Fields = SmallVec<[(HeaderName, Range<usize>); 16]>;

/// The names and value positions of the `headers` that `keep` takes (by name), parsed from `head`, put in
/// `fields` (filled in place: the list is a few hundred bytes, and each move of it was a copy); what the
/// framing headers among all of them say is returned, kept or not.
pub fn fields(
    head: &[u8],
    headers: &[httparse::Header<'_>],
    keep: impl Fn(&[u8]) -> bool,
    fields: &mut Fields,
) -> Result<Framing, InvalidHeader> {
    let base = head.as_ptr() as usize;
    let mut known = header_names::known();
    let mut framing = Framing::default();
    for field in headers {
        let raw = field.name.as_bytes();
        framing.read(raw, field.value);
        if keep(raw) {
            let name = known.name(raw).ok_or(InvalidHeader)?;
            let start = field.value.as_ptr() as usize - base;
            fields.push((name, start..start + field.value.len()));
        }
    }
    Ok(framing)
}

/// What a head's framing headers say (`Content-Length`, `Transfer-Encoding`, `Connection`), gathered as
/// [`fields`] lists them: looking them up in the header map afterwards, and keeping the upstream's in it, cost
/// 0.5k instructions a whole answer and 1.8k a streamed one (`bench/instructions`, both heads).
#[derive(Debug, Default)]
pub struct Framing {
    /// The one length the `Content-Length` headers give so far.
    length: Option<u64>,
    /// A `Content-Length` was not one number.
    bad_length: bool,
    /// Whether the last transfer coding is `chunked`; `None` without `Transfer-Encoding`.
    chunked_last: Option<bool>,
    /// `Connection` lists `close`.
    close: bool,
}

impl Framing {
    /// The one length the `Content-Length` headers give (see [`content_length`]); `None` without one.
    pub fn content_length(&self) -> Result<Option<u64>, InvalidLength> {
        if self.bad_length { Err(InvalidLength) } else { Ok(self.length) }
    }

    /// Whether the last transfer coding is `chunked`; `None` without `Transfer-Encoding`.
    pub fn chunked_last(&self) -> Option<bool> {
        self.chunked_last
    }

    /// Whether `Connection` lists `close`.
    pub fn close(&self) -> bool {
        self.close
    }

    /// Both a transfer coding and a length: the way requests get smuggled (RFC 9112 section 6.1).
    pub fn both(&self) -> bool {
        self.chunked_last.is_some() && (self.length.is_some() || self.bad_length)
    }

    fn read(&mut self, name: &[u8], value: &[u8]) {
        // The length first: most names are ruled out by it alone.
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                self.bad_length |= add_length(value, &mut self.length).is_err();
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                self.chunked_last = Some(visible(value) && last_coding_is_chunked(value));
            }
            10 if name.eq_ignore_ascii_case(b"connection") => self.close |= lists_token(value, b"close"),
            _ => {}
        }
    }
}

/// Whether a value is text `HeaderValue::to_str` takes (visible ASCII, space and tab).
fn visible(value: &[u8]) -> bool {
    value.iter().all(|&b| (32..127).contains(&b) || b == b'\t')
}

/// Whether the last of a `Transfer-Encoding` value's codings is `chunked`.
fn last_coding_is_chunked(value: &[u8]) -> bool {
    value.rsplit(|&b| b == b',').next().is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Whether a comma-separated value lists `token` (case aside).
fn lists_token(value: &[u8], token: &[u8]) -> bool {
    visible(value) && value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// The header map of `fields` (taken out of the list), its values sharing `head`'s bytes.
pub fn header_map(fields: &mut Fields, head: &Bytes) -> Result<HeaderMap, InvalidHeader> {
    let mut headers = HeaderMap::with_capacity(fields.len());
    for (name, range) in fields.drain(..) {
        let value = HeaderValue::from_maybe_shared(head.slice(range)).map_err(|_| InvalidHeader)?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// `Content-Length` that is not one number.
#[derive(Debug, thiserror::Error)]
#[error("invalid Content-Length")]
pub struct InvalidLength;

/// The one length the `Content-Length` headers give (`5, 5` and repeated equal headers are one length;
/// anything else is refused); `None` without one.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, InvalidLength> {
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        add_length(value.as_bytes(), &mut length)?;
    }
    Ok(length)
}

/// Adds one `Content-Length` value (`5` or `5, 5`) to the `length` read so far: refused when it is not
/// numbers, or when it says another length.
fn add_length(value: &[u8], length: &mut Option<u64>) -> Result<(), InvalidLength> {
    let mut add = |n: u64| match length {
        Some(seen) if *seen != n => Err(InvalidLength),
        _ => {
            *length = Some(n);
            Ok(())
        }
    };
    // The usual case, plain digits, without the general parse below.
    if let Some(n) = plain_number(value) {
        return add(n);
    }
    if !visible(value) {
        return Err(InvalidLength);
    }
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(InvalidLength);
        }
        let n: u64 = std::str::from_utf8(part).map_err(|_| InvalidLength)?.parse().map_err(|_| InvalidLength)?;
        add(n)?;
    }
    Ok(())
}

/// `digits` as a number when they are 1 to 19 ASCII digits (so they cannot overflow).
fn plain_number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Whether a comma-separated header lists `token` (case aside).
pub fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| lists_token(v.as_bytes(), token.as_bytes()))
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
                match super::chunked(&mut chunk, &mut buf)? {
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

    proptest::proptest! {
        /// The usual size line is read here as httparse reads it; what is not read here is left to httparse.
        #[test]
        fn a_plain_chunk_size_is_what_httparse_reads(line in "[0-9a-fA-F]{0,18}(\r\n|\r|;x=1\r\n| \r\n|\n|g)?.{0,3}") {
            let ours = plain_chunk_size(line.as_bytes());
            let theirs = httparse::parse_chunk_size(line.as_bytes());
            if let Some((used, size)) = ours {
                proptest::prop_assert_eq!(theirs, Ok(httparse::Status::Complete((used, size))));
            } else {
                // Nothing refused here that is a plain size line: hex digits (at most 16) and CRLF.
                let digits = line.bytes().take_while(u8::is_ascii_hexdigit).count();
                let plain = (1..=16).contains(&digits) && line.as_bytes()[digits..].starts_with(b"\r\n");
                proptest::prop_assert!(!plain, "{line:?}");
            }
        }
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

    #[test]
    fn content_lengths_are_one_number_or_refused() {
        let of = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(CONTENT_LENGTH, HeaderValue::from_str(v).unwrap());
            }
            content_length(&headers).ok()
        };
        assert_eq!(of(&[]), Some(None));
        assert_eq!(of(&["12"]), Some(Some(12)));
        assert_eq!(of(&["0"]), Some(Some(0)));
        assert_eq!(of(&["5, 5"]), Some(Some(5)));
        assert_eq!(of(&["7", "7"]), Some(Some(7)));
        assert_eq!(of(&["9999999999999999999"]), Some(Some(9_999_999_999_999_999_999)));
        for bad in [&["5, 6"][..], &["5", "6"], &[""], &["-1"], &["+1"], &["1 2"], &["99999999999999999999999"]] {
            assert_eq!(of(bad), None, "{bad:?}");
        }
    }
}

#[cfg(test)]
mod framing_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use http::header::{CONNECTION, TRANSFER_ENCODING};

    /// The framing [`fields`] gathers from `lines` (a head's header lines), and the map it keeps (all).
    fn framing_of(lines: &[u8]) -> (Framing, HeaderMap) {
        let text = [&b"HTTP/1.1 200 OK\r\n"[..], lines, b"\r\n"].concat();
        let mut slots = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Response::new(&mut slots);
        parsed.parse(&text).unwrap();
        let mut list = Fields::new();
        let framing = fields(&text, parsed.headers, |_| true, &mut list).unwrap();
        let head = Bytes::copy_from_slice(&text);
        (framing, header_map(&mut list, &head).unwrap())
    }

    #[test]
    fn the_framing_read_with_the_fields_is_what_the_map_says() {
        let cases: [&[u8]; 15] = [
            b"",
            b"content-length: 12\r\n",
            b"Content-Length: 5, 5\r\n",
            b"content-length: 7\r\nCONTENT-LENGTH: 7\r\n",
            b"content-length: 5\r\ncontent-length: 6\r\n",
            b"content-length: 5, 6\r\n",
            b"content-length: -1\r\n",
            b"content-length: 99999999999999999999999\r\n",
            b"content-length: \r\n",
            b"content-length: 1\xe9\r\n",
            b"connection: keep-alive\r\n",
            b"Connection: Keep-Alive, Close\r\n",
            b"connection: upgrade\r\nconnection: close\r\n",
            b"connection: closed\r\n",
            b"x-connection: close\r\ncontent-lengths: 4\r\n",
        ];
        for lines in cases {
            let (framing, map) = framing_of(lines);
            let text = String::from_utf8_lossy(lines);
            assert_eq!(framing.content_length().ok(), content_length(&map).ok(), "{text}");
            assert_eq!(framing.close(), has_token(&map, &CONNECTION, "close"), "{text}");
            assert_eq!(framing.chunked_last(), None, "{text}");
            assert!(!framing.both(), "{text}");
        }
        // And what that is, in so many words.
        let length = |lines: &[u8]| framing_of(lines).0.content_length().ok();
        assert_eq!(length(b"Content-Length: 5, 5\r\n"), Some(Some(5)));
        assert_eq!(length(b"content-length: 7\r\nCONTENT-LENGTH: 7\r\n"), Some(Some(7)));
        assert_eq!(length(b"content-length: 5\r\ncontent-length: 6\r\n"), None);
        assert_eq!(length(b"content-length: 1\xe9\r\n"), None);
        assert_eq!(length(b"content-lengths: 4\r\n"), Some(None));
        let close = |lines: &[u8]| framing_of(lines).0.close();
        assert!(close(b"Connection: Keep-Alive, Close\r\n") && close(b"connection: upgrade\r\nconnection: close\r\n"));
        assert!(!close(b"connection: closed\r\n") && !close(b"x-connection: close\r\n"));
    }

    #[test]
    fn the_last_transfer_coding_decides_and_a_length_beside_one_is_told() {
        let chunked = |lines: &[u8]| framing_of(lines).0.chunked_last();
        assert_eq!(chunked(b"transfer-encoding: chunked\r\n"), Some(true));
        assert_eq!(chunked(b"Transfer-Encoding: gzip, Chunked\r\n"), Some(true));
        assert_eq!(chunked(b"transfer-encoding: chunked, gzip\r\n"), Some(false));
        assert_eq!(chunked(b"transfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n"), Some(true));
        assert_eq!(chunked(b"transfer-encoding: chunked\r\ntransfer-encoding: gzip\r\n"), Some(false));
        assert_eq!(chunked(b"transfer-encoding: \xe9, chunked\r\n"), Some(false), "text to_str refuses");
        let (framing, map) = framing_of(b"transfer-encoding: chunked\r\ncontent-length: 9\r\n");
        assert!(framing.both() && map.contains_key(TRANSFER_ENCODING));
        assert!(framing_of(b"transfer-encoding: chunked\r\ncontent-length: x\r\n").0.both());
    }
}
