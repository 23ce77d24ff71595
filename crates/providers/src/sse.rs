//! A server-sent-events reader that works on any split of the byte stream and bounds memory.
//!
//! Hand-rolled (about a hundred lines) because `eventsource-stream` buffers a line without limit:
//! a peer that never sends a newline could grow memory until the process dies.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::ops::ControlFlow;

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

impl SseEvent {
    /// The event as its borrowed form, the one decoders read.
    pub fn view(&self) -> SseEventRef<'_> {
        SseEventRef { event: &self.event, data: &self.data, id: self.id.as_deref() }
    }
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

/// One dispatched event, borrowed: from the bytes fed when the event lay whole in them, else from the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEventRef<'a> {
    /// The `event:` field; empty when the peer sent none.
    pub event: &'a str,
    /// The `data:` lines joined with `\n`.
    pub data: &'a str,
    /// The last `id:` field seen, if any.
    pub id: Option<&'a str>,
}

impl SseEventRef<'_> {
    /// The event as an owned value.
    pub fn to_event(&self) -> SseEvent {
        SseEvent { event: self.event.to_owned(), data: self.data.to_owned(), id: self.id.map(str::to_owned) }
    }
}

/// Incremental parser: feed bytes with [`SseParser::feed`] (or [`SseParser::push`]), take events as they complete.
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

/// The data buffer's capacity kept between events read line by line; a larger one (a rare huge event) is let go
/// rather than held for the rest of the stream.
const KEPT_DATA: usize = 4096;

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
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseTooLong> {
        self.feed(bytes, |event| out.push(event.to_event()))
    }

    /// Feeds bytes; `on_event` is called with each event as it completes. An event that lies whole in `bytes`
    /// in the common shape is handed over as slices of them, with no copy.
    pub fn feed<F: FnMut(SseEventRef<'_>)>(&mut self, bytes: &[u8], mut on_event: F) -> Result<(), SseTooLong> {
        self.feed_until(bytes, |event| {
            on_event(event);
            ControlFlow::Continue(())
        })
        .map(drop)
    }

    /// Feeds bytes as [`Self::feed`] does until `on_event` breaks, and says how many were read: those after
    /// the event it broke at are for a later call. A reader can so take one event at a time from a read that
    /// holds many, instead of holding what all of them make at once.
    pub fn feed_until<F: FnMut(SseEventRef<'_>) -> ControlFlow<()>>(
        &mut self,
        all: &[u8],
        mut on_event: F,
    ) -> Result<usize, SseTooLong> {
        let mut bytes = all;
        // Only a stream's first byte can start a byte order mark; without one, the first event may be read whole.
        if self.at_start && self.line.is_empty() && bytes.first().is_some_and(|b| *b != 0xEF) {
            self.at_start = false;
        }
        let go_on = Cell::new(ControlFlow::Continue(()));
        let mut on_event = |event: SseEventRef<'_>| go_on.set(on_event(event));
        while !bytes.is_empty() && go_on.get().is_continue() {
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            if self.between_events()
                && let Some((event, used)) = self.whole_event(bytes)
            {
                on_event(event);
                bytes = &bytes[used..];
                continue;
            }
            match memchr::memchr2(b'\n', b'\r', bytes) {
                Some(end) => {
                    self.extend_line(&bytes[..end])?;
                    self.after_cr = bytes[end] == b'\r';
                    bytes = &bytes[end + 1..];
                    self.end_line(&mut on_event)?;
                }
                None => {
                    self.extend_line(bytes)?;
                    bytes = &[];
                }
            }
        }
        Ok(all.len() - bytes.len())
    }

    /// At a line's start with no event under way: where [`Self::whole_event`] may read.
    fn between_events(&self) -> bool {
        !self.at_start && self.line.is_empty() && !self.has_data && self.event.is_empty()
    }

    /// The event at the start of `bytes` and the bytes it took, when it has the common shape: an optional
    /// `event:` line, one `data:` line and a blank line, each ended by `\n`, the values UTF-8, all within the
    /// limit. Anything else (a `\r`, several data lines, comments, `id:`, an event not whole yet) is left to the
    /// line-by-line path, which reads these the same way.
    fn whole_event<'a>(&'a self, bytes: &'a [u8]) -> Option<(SseEventRef<'a>, usize)> {
        let mut at = 0;
        let mut event = "";
        if bytes.starts_with(b"event:") {
            (event, at) = field_value(bytes, b"event:".len())?;
        }
        if !bytes[at..].starts_with(b"data:") {
            return None;
        }
        let (data, end) = field_value(bytes, at + b"data:".len())?;
        if bytes.get(end) != Some(&b'\n') || end > self.max_line {
            return None;
        }
        Some((SseEventRef { event, data, id: self.id.as_deref() }, end + 1))
    }

    fn extend_line(&mut self, part: &[u8]) -> Result<(), SseTooLong> {
        if self.line.len() + part.len() > self.max_line {
            return Err(SseTooLong { limit: self.max_line });
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn end_line<F: FnMut(SseEventRef<'_>)>(&mut self, on_event: &mut F) -> Result<(), SseTooLong> {
        // Taken out so the fields can be updated while it is read, then put back to keep its capacity:
        // a fresh buffer per line was an allocation per line.
        let mut raw = std::mem::take(&mut self.line);
        let result = self.field(&raw, on_event);
        raw.clear();
        self.line = raw;
        result
    }

    fn field<F: FnMut(SseEventRef<'_>)>(&mut self, mut line: &[u8], on_event: &mut F) -> Result<(), SseTooLong> {
        if self.at_start {
            self.at_start = false;
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(on_event);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(()); // a comment (keep-alive)
        }
        // Checked first: the strict check is several times faster than the lossy decoder on valid (nearly all) input.
        let text = match crate::utf8::text(line) {
            Some(text) => Cow::Borrowed(text),
            None => String::from_utf8_lossy(line),
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

    fn dispatch<F: FnMut(SseEventRef<'_>)>(&mut self, on_event: &mut F) {
        // An event with no data lines is not dispatched.
        if self.has_data {
            self.has_data = false;
            on_event(SseEventRef { event: &self.event, data: &self.data, id: self.id.as_deref() });
            if self.data.capacity() > KEPT_DATA {
                self.data = String::new();
            }
            self.data.clear();
        }
        self.event.clear();
    }
}

/// The value of the field whose name ends at `start` (one leading space dropped) and where the next line starts;
/// `None` when the line is not whole in `bytes`, ends with `\r`, or its value is not UTF-8.
fn field_value(bytes: &[u8], start: usize) -> Option<(&str, usize)> {
    let end = start + memchr::memchr2(b'\n', b'\r', &bytes[start..])?;
    if bytes[end] != b'\n' {
        return None;
    }
    let value = &bytes[start..end];
    let value = value.strip_prefix(b" ").unwrap_or(value);
    Some((crate::utf8::text(value)?, end + 1))
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

    /// Parses as [`parse_all`] does, but takes one event per call of [`SseParser::feed_until`], going on
    /// from where the call stopped.
    fn parse_one_at_a_time(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseTooLong> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let before = out.len();
                let read = parser.feed_until(rest, |event| {
                    out.push(event.to_event());
                    ControlFlow::Break(())
                })?;
                assert!(out.len() - before <= 1, "a call went on after breaking");
                assert!(read == rest.len() || out.len() == before + 1, "a call stopped without an event");
                rest = &rest[read..];
            }
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
    fn events_taken_one_at_a_time_are_those_read_at_once() {
        assert_eq!(parse_one_at_a_time(&[SAMPLE.as_bytes()]).unwrap(), expected());
        // Whole events (the shape read without a copy) are taken one at a time too.
        let whole = b"data: 1\n\ndata: 2\n\nevent: e\ndata: 3\n\n";
        let mut parser = SseParser::default();
        let mut seen = Vec::new();
        let read = parser
            .feed_until(whole, |e| {
                seen.push(e.data.to_owned());
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!((read, seen), (b"data: 1\n\n".len(), vec!["1".to_owned()]));
        assert_eq!(parse_one_at_a_time(&[whole]).unwrap().len(), 3);
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

    #[test]
    fn an_event_whole_in_the_bytes_is_handed_over_as_slices_of_them() {
        let bytes = b"data: {\"a\":1}\n\nevent: ping\ndata: {}\n\n";
        let range = bytes.as_ptr_range();
        let mut parser = SseParser::default();
        let mut seen = Vec::new();
        parser
            .feed(bytes, |e| {
                assert!(range.contains(&e.data.as_ptr()), "the data was copied");
                seen.push(e.to_event());
            })
            .unwrap();
        let expected = vec![
            SseEvent { event: String::new(), data: "{\"a\":1}".into(), id: None },
            SseEvent { event: "ping".into(), data: "{}".into(), id: None },
        ];
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_huge_event_read_line_by_line_does_not_keep_its_buffer() {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        let huge = format!("data: {}\r\n\r\n", "x".repeat(100_000));
        parser.push(huge.as_bytes(), &mut out).unwrap();
        assert_eq!(out[0].data.len(), 100_000);
        assert!(parser.data.capacity() <= KEPT_DATA, "{}", parser.data.capacity());
        parser.push(b"data: a\r\ndata: b\r\n\r\n", &mut out).unwrap();
        assert_eq!(out[1].data, "a\nb");
        assert!(parser.data.capacity() > 0, "a small one keeps its buffer for the next event");
    }

    #[test]
    fn an_event_over_the_limit_fails_whole_or_split() {
        let line = format!("data: {}\n\n", "x".repeat(100));
        for split in [line.len(), 1] {
            let mut parser = SseParser::new(64);
            let mut out = Vec::new();
            let result = line.as_bytes().chunks(split).try_for_each(|piece| parser.push(piece, &mut out));
            assert_eq!(result, Err(SseTooLong { limit: 64 }));
            assert!(out.is_empty());
        }
    }

    /// A line for the generator below: the fields the spec knows, comments, blank lines and stray bytes.
    fn any_line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[ -~]{0,12}".prop_map(|v| format!("data: {v}").into_bytes()),
            "[ -~]{0,6}".prop_map(|v| format!("data:{v}").into_bytes()),
            "[a-z]{0,6}".prop_map(|v| format!("event: {v}").into_bytes()),
            "[0-9]{0,3}".prop_map(|v| format!("id: {v}").into_bytes()),
            Just(b": keep-alive".to_vec()),
            Just(Vec::new()),
            Just(Vec::new()),
            Just(b"retry: 10".to_vec()),
            Just(b"data: \xff\xfe bad".to_vec()),
            Just(b"data".to_vec()),
        ]
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
        fn read_whole_or_a_byte_at_a_time_the_events_are_the_same(
            lines in proptest::collection::vec((any_line(), prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]), 0..24),
        ) {
            let mut bytes = Vec::new();
            for (line, eol) in &lines {
                bytes.extend_from_slice(line);
                bytes.extend_from_slice(eol.as_bytes());
            }
            // A byte at a time no event is ever whole in what is fed: the line-by-line reading is the reference.
            let by_byte: Vec<&[u8]> = bytes.chunks(1).collect();
            prop_assert_eq!(parse_all(&[&bytes]).unwrap(), parse_all(&by_byte).unwrap());
            prop_assert_eq!(parse_one_at_a_time(&[&bytes]).unwrap(), parse_all(&by_byte).unwrap());
        }

        #[test]
        fn any_split_yields_the_same_events(cuts in proptest::collection::vec(0usize..SAMPLE.len(), 0..12)) {
            let chunks = split_at(SAMPLE.as_bytes(), cuts);
            prop_assert_eq!(parse_all(&chunks).unwrap(), expected());
            prop_assert_eq!(parse_one_at_a_time(&chunks).unwrap(), expected());
        }
    }
}
