//! A server-sent-events reader that works on any split of the byte stream and bounds memory.
//!
//! Hand-rolled (about a hundred lines) because `eventsource-stream` buffers a line without limit:
//! a peer that never sends a newline could grow memory until the process dies.

use std::borrow::Cow;
use std::fmt;

/// The largest line (and the largest event's data) accepted by default: 8 MiB.
pub const DEFAULT_MAX_LINE: usize = 8 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; empty when the peer sent none (the spec's default type `message`).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` field seen, if any.
    pub id: Option<String>,
}

/// A line or event over the size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseTooLong {
    /// The limit that was passed.
    pub limit: usize,
}

impl fmt::Display for SseTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server-sent event line or data longer than {} bytes", self.limit)
    }
}

impl std::error::Error for SseTooLong {}

/// Incremental parser: feed bytes with [`SseParser::push`], take events as they complete.
#[derive(Debug)]
pub struct SseParser {
    max_line: usize,
    line: Vec<u8>,
    // A `\r` ended the last line; a `\n` right after it belongs to the same line ending.
    after_cr: bool,
    at_start: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE)
    }
}

impl SseParser {
    /// A parser refusing lines (and event data) longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            event: String::new(),
            data: String::new(),
            has_data: false,
            id: None,
        }
    }

    /// Feeds bytes; completed events are appended to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseTooLong> {
        while !bytes.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            match memchr::memchr2(b'\n', b'\r', bytes) {
                Some(end) => {
                    self.extend_line(&bytes[..end])?;
                    self.after_cr = bytes[end] == b'\r';
                    bytes = &bytes[end + 1..];
                    self.end_line(out)?;
                }
                None => {
                    self.extend_line(bytes)?;
                    bytes = &[];
                }
            }
        }
        Ok(())
    }

    fn extend_line(&mut self, part: &[u8]) -> Result<(), SseTooLong> {
        if self.line.len() + part.len() > self.max_line {
            return Err(SseTooLong { limit: self.max_line });
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseTooLong> {
        // Taken out so the fields can be updated while it is read, then put back to keep its capacity:
        // a fresh buffer per line was an allocation per line.
        let mut raw = std::mem::take(&mut self.line);
        let result = self.field(&raw, out);
        raw.clear();
        self.line = raw;
        result
    }

    fn field(&mut self, mut line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseTooLong> {
        if self.at_start {
            self.at_start = false;
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(()); // a comment (keep-alive)
        }
        // Checked first: `from_utf8` is several times faster than the lossy decoder on valid (nearly all) input.
        let text = match std::str::from_utf8(line) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(line),
        };
        // `data:` lines, nearly all of them, are named without a search for the colon.
        let split = match text.strip_prefix("data:") {
            Some(value) => Some(("data", value)),
            None => text.split_once(':'),
        };
        let (field, value) = match split {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*text, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_line {
                    return Err(SseTooLong { limit: self.max_line });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {} // `retry` and unknown fields: ignored, as the spec says
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return; // an event with no data lines is not dispatched
        }
        self.has_data = false;
        out.push(SseEvent { event, data: std::mem::take(&mut self.data), id: self.id.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseTooLong> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk, &mut out)?;
        }
        Ok(out)
    }

    const SAMPLE: &str = "\u{feff}: keep-alive\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\n\
        data: line one\ndata:line two\n\n: comment\n\nevent: ping\rdata: {}\r\r\
        id: 7\ndata\nretry: 10\nunknown: x\n\ndata: trailing without blank line";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent { event: "message_start".into(), data: "{\"a\":1}".into(), id: None },
            SseEvent { event: String::new(), data: "line one\nline two".into(), id: None },
            SseEvent { event: "ping".into(), data: "{}".into(), id: None },
            SseEvent { event: String::new(), data: String::new(), id: Some("7".into()) },
        ]
    }

    #[test]
    fn parses_crlf_cr_comments_multiline_data_and_drops_an_unfinished_event() {
        assert_eq!(parse_all(&[SAMPLE.as_bytes()]).unwrap(), expected());
    }

    #[test]
    fn a_line_without_newline_cannot_grow_past_the_limit() {
        let mut parser = SseParser::new(1024);
        let mut out = Vec::new();
        let chunk = [b'x'; 100];
        let mut result = Ok(());
        for _ in 0..20 {
            result = parser.push(&chunk, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseTooLong { limit: 1024 }));
        assert!(out.is_empty());
    }

    #[test]
    fn many_data_lines_cannot_grow_an_event_past_the_limit() {
        let mut parser = SseParser::new(64);
        let mut out = Vec::new();
        let mut result = Ok(());
        for _ in 0..20 {
            result = parser.push(b"data: 0123456789\n", &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseTooLong { limit: 64 }));
    }

    /// Writes events with a chosen line ending, a comment before each, and data split over lines.
    fn write_events(events: &[(String, Vec<String>)], eol: &str) -> String {
        let mut out = String::new();
        for (name, lines) in events {
            out.push_str(&format!(": comment{eol}"));
            if !name.is_empty() {
                out.push_str(&format!("event: {name}{eol}"));
            }
            for line in lines {
                out.push_str(&format!("data: {line}{eol}"));
            }
            out.push_str(eol);
        }
        out
    }

    fn split_at(bytes: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
        cuts.retain(|c| *c <= bytes.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts {
            chunks.push(&bytes[start..cut]);
            start = cut;
        }
        chunks.push(&bytes[start..]);
        chunks
    }

    proptest! {
        #[test]
        fn generated_events_survive_any_line_ending_and_any_split(
            events in proptest::collection::vec(
                ("[a-z_]{0,12}", proptest::collection::vec("[^\\r\\n]{0,20}", 1..4)),
                0..6,
            ),
            eol in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            cuts in proptest::collection::vec(0usize..400, 0..16),
        ) {
            let text = write_events(&events, eol);
            let chunks = split_at(text.as_bytes(), cuts);
            let expected: Vec<SseEvent> = events
                .iter()
                .map(|(name, lines)| SseEvent { event: name.clone(), data: lines.join("\n"), id: None })
                .collect();
            prop_assert_eq!(parse_all(&chunks).unwrap(), expected);
        }

        #[test]
        fn any_split_yields_the_same_events(cuts in proptest::collection::vec(0usize..SAMPLE.len(), 0..12)) {
            let chunks = split_at(SAMPLE.as_bytes(), cuts);
            prop_assert_eq!(parse_all(&chunks).unwrap(), expected());
        }
    }
}
