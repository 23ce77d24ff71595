//! A strict reader for the common OpenAI stream chunk (text, refusal, finish, usage), about half the
//! instructions of the serde path it stands in front of (2.4k against 5.0k for a ~210-byte text chunk under
//! callgrind), whose per-string and per-key generic work was a quarter of a streamed answer's instructions.
//! It reads only chunks whose serde reading it can match exactly; anything else (tool calls, a second choice
//! 0, duplicate keys, escaped keys, numbers out of range, malformed JSON…) is "not mine" (`None`) and the
//! serde path reads it as before, errors included.

use std::borrow::Cow;

use switchyard::Usage;

use super::answer_scan::{USAGE_KEYS, UsageKey};
use crate::json_scan::{Reader, Seen, keys};

/// What a chunk says, as the stream decoder uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ScannedChunk<'a> {
    /// The usage object, when present and not `null`.
    pub usage: Option<Usage>,
    /// The choice with index 0, when there is one.
    pub choice: Option<ScannedChoice<'a>>,
}

/// Choice 0's delta and finish reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ScannedChoice<'a> {
    /// `delta.role`.
    pub role: Option<Cow<'a, str>>,
    /// `delta.content`.
    pub content: Option<Cow<'a, str>>,
    /// `delta.refusal`.
    pub refusal: Option<Cow<'a, str>>,
    /// `finish_reason`.
    pub finish_reason: Option<Cow<'a, str>>,
}

/// What a stream's earlier chunks showed, so that the bytes they share are not read again: reading the same
/// bytes in the same state ends in the same state.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    /// The start of a chunk read before, up to its `"choices"` key, and the top-level keys it held. A stream's
    /// chunks begin alike (id, object, created, model, fingerprint), so a chunk that starts with the same
    /// bytes is read from its `"choices"` on. Only a start that gave the chunk nothing (no usage) and ends
    /// with a member's comma is kept.
    start: Vec<u8>,
    start_seen: Seen,
    /// The last chunk that held nothing but one text, around that text.
    text: TextFrame,
}

/// A chunk that held nothing but choice 0's `delta.content` as a string: its bytes before the string's
/// opening quote and after its closing one. Most of a stream's chunks are that chunk with another text: one
/// with the same bytes around a string reads as it did, with this text, so only the string is read (a chunk
/// read from `"choices"` on was 1.4k instructions; bench/instructions' streamed answer went 106.1k -> 98.8k).
///
/// OpenAI pads every chunk with a random `obfuscation` string (unless the request turned it off), so after
/// the text the frame may hold one more string that differs from chunk to chunk: the padding, whose value is
/// read over as the whole reading reads over it.
#[derive(Debug, Default)]
struct TextFrame {
    /// The frame's bytes in one buffer (one allocation a stream, not three): the head, then the tail, then
    /// what comes after the padding.
    bytes: Vec<u8>,
    /// Where the head ends in `bytes`.
    head_end: usize,
    /// Where the tail ends in `bytes`: from the text's closing quote to the padding's opening quote, or to the
    /// end when there is no padding.
    tail_end: usize,
    /// Whether the frame has a padding string (what comes after it is the rest of `bytes`).
    padded: bool,
}

impl TextFrame {
    /// The bytes before the text's opening quote (empty: no frame kept).
    fn head(&self) -> &[u8] {
        &self.bytes[..self.head_end]
    }

    fn tail(&self) -> &[u8] {
        &self.bytes[self.head_end..self.tail_end]
    }

    /// The bytes after the padding's closing quote; `None` when the frame has no padding.
    fn after_padding(&self) -> Option<&[u8]> {
        self.padded.then(|| &self.bytes[self.tail_end..])
    }

    /// The text of `data` when it is this frame around a string (and a padding string).
    fn read<'a>(&self, data: &'a str) -> Option<Cow<'a, str>> {
        let head = self.head();
        if head.is_empty() || !data.as_bytes().starts_with(head) {
            return None;
        }
        let mut r = Reader::at(data, head.len());
        let text = r.string()?;
        let rest = data.as_bytes().get(r.position()..)?;
        let tail = self.tail();
        let Some(after) = self.after_padding() else {
            return (rest == tail).then_some(text);
        };
        rest.starts_with(tail).then_some(())?;
        let mut r = Reader::at(data, r.position() + tail.len());
        r.string()?;
        (data.as_bytes().get(r.position()..)? == after).then_some(text)
    }

    /// Keeps `data`'s frame around its text (`start..end`, quotes included), with the padding string at `padding`
    /// when it comes after the text.
    fn keep(&mut self, data: &str, (start, end): (usize, usize), padding: Option<(usize, usize)>) {
        let bytes = data.as_bytes();
        let padding = padding.filter(|&(from, _)| from >= end);
        let tail_to = padding.map_or(bytes.len(), |(from, _)| from);
        let after = padding.map_or(&[][..], |(_, to)| &bytes[to..]);
        self.bytes.clear();
        self.bytes.reserve_exact(start + (tail_to - end) + after.len());
        self.bytes.extend_from_slice(&bytes[..start]);
        self.head_end = start;
        self.bytes.extend_from_slice(&bytes[end..tail_to]);
        self.tail_end = self.bytes.len();
        self.bytes.extend_from_slice(after);
        self.padded = padding.is_some();
    }
}

/// Where choice texts were read in a chunk: how many, and the last one's string (from its opening quote to
/// after its closing one).
#[derive(Debug, Default)]
struct TextsAt {
    count: u32,
    last: (usize, usize),
}

/// Bits of the top-level keys in [`Seen`].
const ID: u32 = 0;
const OBJECT: u32 = 1;
const MODEL: u32 = 2;
const CREATED: u32 = 3;
const CHOICES: u32 = 4;
const USAGE: u32 = 5;

/// Reads `data` (one event's JSON) if it is a chunk this reader handles exactly as the serde path would.
#[cfg(test)]
pub(crate) fn scan(data: &str) -> Option<ScannedChunk<'_>> {
    scan_after(data, &mut Learned::default())
}

/// [`scan`] for the next chunk of a stream: what `learned` holds from the chunks before is not read again,
/// and what this chunk shows is kept there.
pub(crate) fn scan_after<'a>(data: &'a str, learned: &mut Learned) -> Option<ScannedChunk<'a>> {
    if let Some(text) = learned.text.read(data) {
        let choice = ScannedChoice { content: Some(text), ..ScannedChoice::default() };
        return Some(ScannedChunk { usage: None, choice: Some(choice) });
    }
    let known = !learned.start.is_empty() && data.as_bytes().starts_with(&learned.start);
    let (mut r, mut seen) = if known {
        (Reader::at(data, learned.start.len()), learned.start_seen)
    } else {
        (Reader::new(data), Seen::default())
    };
    let mut chunk = ScannedChunk::default();
    let mut texts = TextsAt::default();
    // Where the padding string is, from its opening quote to after its closing one.
    let mut padding = None;
    let member = |r: &mut Reader<'a>, key: Option<Top>| {
        match key {
            // The serde type holds these as strings and a u64: other types are its errors to report.
            Some(Top::Id) => {
                seen.once(ID)?;
                r.string()?;
            }
            Some(Top::Object) => {
                seen.once(OBJECT)?;
                r.string()?;
            }
            Some(Top::Model) => {
                seen.once(MODEL)?;
                r.string()?;
            }
            Some(Top::Created) => {
                seen.once(CREATED)?;
                r.u64()?;
            }
            Some(Top::Choices) => {
                // Kept when a comma comes before the key: resumed there, [`Reader::members`] reads what the
                // whole reading would (after an object's `{`, a `}` would have ended it instead).
                let start = &data.as_bytes()[..r.key_at];
                if !known && !seen.has(USAGE) && start.trim_ascii_end().ends_with(b",") {
                    learned.start.clear();
                    learned.start.reserve_exact(start.len());
                    learned.start.extend_from_slice(start);
                    learned.start_seen = seen;
                }
                seen.once(CHOICES)?;
                r.array(|r| r.choice(&mut chunk.choice, &mut texts))?;
            }
            Some(Top::Usage) => {
                seen.once(USAGE)?;
                chunk.usage = if r.null() { None } else { Some(r.usage()?) };
            }
            // Read over like any key the serde type does not name; its place is kept for the text frame.
            Some(Top::Obfuscation) if r.peek_string() => {
                let start = r.position();
                r.string()?;
                padding = Some((start, r.position()));
            }
            // An error event: the decoder's error path reads it.
            Some(Top::Error) => return None,
            Some(Top::Fingerprint | Top::Obfuscation) | None => r.skip(0)?,
        }
        Some(())
    };
    if known {
        r.members(TOP_KEYS, CHOICES_KEY, member)?;
    } else {
        r.object(TOP_KEYS, member)?;
    }
    r.at_end().then_some(())?;
    let only_text = chunk.usage.is_none()
        && chunk.choice.as_ref().is_some_and(|c| {
            c.content.is_some() && c.role.is_none() && c.refusal.is_none() && c.finish_reason.is_none()
        });
    if only_text && texts.count == 1 {
        learned.text.keep(data, texts.last, padding);
    }
    Some(chunk)
}

// The keys of a chunk, its choice, delta and usage, in the order OpenAI writes them (a delta after the first
// has its content alone; a key that comes only in an error chunk goes last).
keys!(Top, TOP_KEYS {
    Id = "id",
    Object = "object",
    Created = "created",
    Model = "model",
    Fingerprint = "system_fingerprint",
    Choices = "choices",
    Usage = "usage",
    Obfuscation = "obfuscation",
    Error = "error",
});
/// Where `"choices"` is in [`TOP_KEYS`]: only where the resumed reading compares first (a wrong one costs a key
/// read, never a wrong reading).
const CHOICES_KEY: usize = 5;
keys!(ChoiceKey, CHOICE_KEYS {
    Index = "index",
    Delta = "delta",
    Logprobs = "logprobs",
    FinishReason = "finish_reason",
});
keys!(DeltaKey, DELTA_KEYS { Content = "content", Refusal = "refusal", Role = "role", ToolCalls = "tool_calls" });

impl<'a> Reader<'a> {
    /// One element of `choices`; choice 0 goes to `slot` (a second one is not mine).
    fn choice(&mut self, slot: &mut Option<ScannedChoice<'a>>, texts: &mut TextsAt) -> Option<()> {
        let mut choice = ScannedChoice::default();
        let mut index = 0u32;
        let mut seen = Seen::default();
        self.object(CHOICE_KEYS, |r, key| {
            match key {
                Some(ChoiceKey::Index) => {
                    seen.once(0)?;
                    index = u32::try_from(r.u64()?).ok()?;
                }
                Some(ChoiceKey::Delta) => {
                    seen.once(1)?;
                    r.delta(&mut choice, texts)?;
                }
                Some(ChoiceKey::FinishReason) => {
                    seen.once(2)?;
                    choice.finish_reason = r.opt_string()?;
                }
                Some(ChoiceKey::Logprobs) | None => r.skip(1)?,
            }
            Some(())
        })?;
        if index == 0 {
            if slot.is_some() {
                return None;
            }
            *slot = Some(choice);
        }
        Some(())
    }

    fn delta(&mut self, choice: &mut ScannedChoice<'a>, texts: &mut TextsAt) -> Option<()> {
        let mut seen = Seen::default();
        self.object(DELTA_KEYS, |r, key| {
            match key {
                Some(DeltaKey::Role) => {
                    seen.once(0)?;
                    choice.role = r.opt_string()?;
                }
                Some(DeltaKey::Content) => {
                    seen.once(1)?;
                    r.ws();
                    let start = r.position();
                    choice.content = r.opt_string()?;
                    if choice.content.is_some() {
                        texts.count += 1;
                        texts.last = (start, r.position());
                    }
                }
                Some(DeltaKey::Refusal) => {
                    seen.once(2)?;
                    choice.refusal = r.opt_string()?;
                }
                // Tool calls keep the serde path: `null` is the only form read here.
                Some(DeltaKey::ToolCalls) => {
                    seen.once(3)?;
                    r.null().then_some(())?;
                }
                None => r.skip(2)?,
            }
            Some(())
        })
    }

    fn usage(&mut self) -> Option<Usage> {
        let mut usage = Usage::default();
        let mut seen = Seen::default();
        self.object(USAGE_KEYS, |r, key| {
            match key {
                Some(UsageKey::Prompt) => {
                    seen.once(0)?;
                    usage.input_tokens = r.u64()?;
                }
                Some(UsageKey::Completion) => {
                    seen.once(1)?;
                    usage.output_tokens = r.u64()?;
                }
                Some(UsageKey::Total) => {
                    seen.once(2)?;
                    r.u64()?;
                }
                None => r.skip(1)?,
            }
            Some(())
        })?;
        Some(usage)
    }
}

#[cfg(test)]
mod tests {
    //! The fast reading against the serde path's, on frames written out and on generated ones.

    use std::borrow::Cow;

    use proptest::prelude::*;
    use switchyard::Usage;

    use super::{Learned, ScannedChoice, ScannedChunk, scan, scan_after};
    use crate::openai::wire::ChatCompletionChunk;

    /// What the serde path reads: `Err` when it refuses the frame, `Ok(None)` for what the fast path leaves to
    /// it (tool calls, a second choice 0).
    fn via_serde(data: &str) -> Result<Option<ScannedChunk<'static>>, serde_json::Error> {
        let chunk: ChatCompletionChunk<'_> = serde_json::from_str(data)?;
        let owned = |text: Option<Cow<'_, str>>| text.map(|t| Cow::Owned(t.into_owned()));
        let mut choice = None;
        for c in chunk.choices {
            if c.delta.tool_calls.is_some() {
                return Ok(None);
            }
            if c.index != 0 {
                continue;
            }
            if choice.is_some() {
                return Ok(None);
            }
            choice = Some(ScannedChoice {
                role: owned(c.delta.role),
                content: owned(c.delta.content),
                refusal: owned(c.delta.refusal),
                finish_reason: owned(c.finish_reason),
            });
        }
        let usage = chunk.usage.map(|u| Usage { input_tokens: u.prompt_tokens, output_tokens: u.completion_tokens });
        Ok(Some(ScannedChunk { usage, choice }))
    }

    /// Whatever the fast path reads, the serde path reads the same.
    fn agrees(data: &str) -> Result<(), TestCaseError> {
        if let Some(fast) = scan(data) {
            let slow = via_serde(data).map_err(|e| TestCaseError::fail(format!("serde refuses {data:?}: {e}")))?;
            prop_assert_eq!(Some(fast), slow, "{}", data);
        }
        Ok(())
    }

    /// A text chunk as OpenAI sends it by default: padded with a random `obfuscation` string.
    const PADDED: &str = r#"{"id":"chatcmpl-D0q8","object":"chat.completion.chunk","created":1769092764,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_29330a9688","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"obfuscation":"ZGF"}"#;

    const TEXT: &str = r#"{"id":"chatcmpl-sim1","object":"chat.completion.chunk","created":1796246998,"model":"bench-ok","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"This "},"logprobs":null,"finish_reason":null}]}"#;

    /// Frames the fast path must read, each as the serde path does.
    const FAST: &[&str] = &[
        TEXT,
        r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        r#"{"choices":[{"delta":{"content":"default index"}}]}"#,
        r#"{"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":null},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        r#"{"usage":{}}"#,
        r#"{}"#,
        r#"{"choices":[{"delta":{"content":"esc \" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u20ac \ud83d\ude00 end"}}]}"#,
        r#"{"choices":[{"delta":{"content":"\u0000\u001f\uFFFF\uDBFF\uDFFF"}}]}"#,
        r#"{"choices":[{"delta":{"content":"unicode raw: é € 😀 中文"}}]}"#,
        r#"{"choices":[{"delta":{"refusal":"I can't \"do\" that"}}]}"#,
        r#"{"choices":[{"finish_reason":"length","index":0,"delta":{"content":"order"}}],"model":"m","id":"x"}"#,
        " \t\r\n{ \"choices\" : [ { \"index\" : 0 , \"delta\" : { \"content\" : \"ws\" } } ] , \"usage\" : null } \n",
        r#"{"choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"content":"zero"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"x","tool_calls":null,"function_call":{"a":[1,-2.5e+3,0.0,true,false,null,"s\n"]}}}]}"#,
        r#"{"x":{"deep":[[[[{"a":[]}]]]]},"y":-0,"z":1E-7,"choices":[{"index":0,"delta":{"content":"skips"}}]}"#,
        r#"{"created":18446744073709551615,"choices":[{"index":4294967295,"delta":{"content":"max"}}]}"#,
        r#"{"id":"\u0063","choices":[{"index":0,"delta":{"content":null,"role":null},"finish_reason":"content_filter"}]}"#,
        PADDED,
        r#"{"obfuscation":"first","choices":[{"delta":{"content":"x"}}],"obfuscation":1}"#,
        r#"{"choices":[{"delta":{"content":"x"}}],"obfuscation":{"not":"a string"}}"#,
    ];

    /// Frames the fast path must leave to the serde path: malformed, refused by the serde types, or not its kind.
    const NOT_MINE: &[&str] = &[
        "",
        "[]",
        "null",
        "{",
        r#"{"choices":[{"index":0,"delta":{"content":"x"}}]"#,
        r#"{"choices":[{"index":0,"delta":{"content":"x"}}]} x"#,
        r#"{"choices":[{"index":0,"delta":{"content":"x"}}],}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"x"}},]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"unterminated}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"bad \x"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"bad \u12G4"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"lone \ud83d"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"lone \ude00"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"pair? \ud83d\u0041"}}]}"#,
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"raw \u{1} control\"}}]}",
        r#"{"choices":[{"index":0,"delta":{"content":1}}]}"#,
        r#"{"choices":[{"index":-1,"delta":{"content":"x"}}]}"#,
        r#"{"choices":[{"index":1.0,"delta":{"content":"x"}}]}"#,
        r#"{"choices":[{"index":4294967296,"delta":{"content":"x"}}]}"#,
        r#"{"choices":[{"index":00,"delta":{"content":"x"}}]}"#,
        r#"{"created":18446744073709551616,"choices":[]}"#,
        r#"{"created":null,"choices":[]}"#,
        r#"{"id":null,"choices":[]}"#,
        r#"{"choices":null}"#,
        r#"{"choices":[{"index":0,"delta":null}]}"#,
        r#"{"choices":[[0,{"content":"x"},null]]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"a","content":"b"}}]}"#,
        r#"{"id":"a","id":"b","choices":[]}"#,
        r#"{"choices":[{"index":0,"delta":{"con\u0074ent":"escaped key"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":0,"delta":{"content":"b"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
        r#"{"choices":[{"index":1,"delta":{"tool_calls":[]}}]}"#,
        r#"{"usage":{"prompt_tokens":null}}"#,
        r#"{"usage":{"prompt_tokens":1,"prompt_tokens":2}}"#,
        r#"{"usage":"none"}"#,
        r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
        r#"{"choices":[],"error":null}"#,
        r#"{"x":01,"choices":[]}"#,
        r#"{"x":1.,"choices":[]}"#,
        r#"{"x":.5,"choices":[]}"#,
        r#"{"x":1e,"choices":[]}"#,
        r#"{"x":tru,"choices":[]}"#,
        r#"{"x":nul,"choices":[]}"#,
    ];

    #[test]
    fn common_chunks_read_as_the_serde_path_reads_them() {
        for frame in FAST {
            let fast = scan(frame);
            assert!(fast.is_some(), "not read: {frame}");
            let slow = via_serde(frame).unwrap_or_else(|e| panic!("serde refuses {frame}: {e}"));
            assert_eq!(fast, slow, "{frame}");
        }
        // Strings without escapes borrow from the frame.
        let text = scan(TEXT).and_then(|c| c.choice).and_then(|c| c.content);
        assert!(matches!(text, Some(Cow::Borrowed("This "))), "{text:?}");
    }

    /// What `b` reads as after `a` was read in the same stream.
    fn after(a: &str, b: &'static str) -> Option<ScannedChunk<'static>> {
        let mut learned = Learned::default();
        let _ = scan_after(a, &mut learned);
        scan_after(b, &mut learned)
    }

    #[test]
    fn a_chunk_read_after_another_reads_as_it_reads_alone() {
        let same_start = r#"{"id":"chatcmpl-sim1","object":"chat.completion.chunk","created":1796246998,"model":"bench-ok","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
        let frames: Vec<&'static str> = FAST.iter().chain(NOT_MINE).chain([&same_start]).copied().collect();
        for a in &frames {
            for b in &frames {
                assert_eq!(after(a, b), scan(b), "{b} after {a}");
            }
        }
    }

    #[test]
    fn the_shared_start_is_read_once_and_still_counts_its_keys() {
        let mut learned = Learned::default();
        scan_after(TEXT, &mut learned).unwrap();
        let start = &TEXT[..TEXT.find(r#""choices""#).unwrap()];
        assert_eq!(learned.start, start.as_bytes());
        // The start is not read again, yet its keys are known: a second `id` is a duplicate, left to serde.
        let again: &'static str = Box::leak(format!(r#"{start}"choices":[],"id":"x"}}"#).into_boxed_str());
        assert_eq!(scan_after(again, &mut learned), None);
        assert!(via_serde(again).is_err());
        let next: &'static str =
            Box::leak(format!(r#"{start}"choices":[{{"delta":{{"content":"next"}}}}]}}"#).into_boxed_str());
        let read = scan_after(next, &mut learned).and_then(|c| c.choice).and_then(|c| c.content);
        assert_eq!(read.as_deref(), Some("next"));
    }

    #[test]
    fn a_chunk_of_text_alone_is_kept_around_its_text_and_read_so() {
        let mut learned = Learned::default();
        scan_after(TEXT, &mut learned).unwrap();
        let quote = TEXT.find(r#""This "#).unwrap();
        assert_eq!(learned.text.head(), &TEXT.as_bytes()[..quote]);
        assert_eq!(learned.text.tail(), &TEXT.as_bytes()[quote + r#""This ""#.len()..]);
        let other: &'static str = Box::leak(TEXT.replace(r#""This ""#, r#""is \"more\"""#).into_boxed_str());
        let read = scan_after(other, &mut learned).and_then(|c| c.choice).and_then(|c| c.content);
        assert_eq!(read.as_deref(), Some(r#"is "more""#));
        assert_eq!(scan_after(other, &mut learned), scan(other));
        // Another frame (a finish) is read whole and does not replace the text's frame.
        let finish: &'static str = Box::leak(
            TEXT.replace(r#""content":"This "},"logprobs":null,"finish_reason":null"#, r#"},"finish_reason":"stop""#)
                .into_boxed_str(),
        );
        assert_eq!(scan_after(finish, &mut learned), scan(finish));
        assert_eq!(learned.text.head(), &TEXT.as_bytes()[..quote]);
        // A first chunk, with the role, is not a frame to keep.
        let mut fresh = Learned::default();
        scan_after(FAST[1], &mut fresh).unwrap();
        assert!(fresh.text.head().is_empty());
    }

    #[test]
    fn a_padded_chunk_of_text_is_kept_around_its_text_and_padding_and_read_so() {
        let mut learned = Learned::default();
        scan_after(PADDED, &mut learned).unwrap();
        let quote = PADDED.find(r#""Hello""#).unwrap();
        let pad = PADDED.find(r#""ZGF""#).unwrap();
        assert_eq!(learned.text.head(), &PADDED.as_bytes()[..quote]);
        assert_eq!(learned.text.tail(), &PADDED.as_bytes()[quote + r#""Hello""#.len()..pad]);
        assert_eq!(learned.text.after_padding(), Some(&b"}"[..]));
        // Another text with another padding is read by the frame alone, as the whole reading reads it.
        let other: &'static str =
            Box::leak(PADDED.replace(r#""Hello""#, r#"", world""#).replace("ZGF", "lRK2aBv").into_boxed_str());
        assert_eq!(learned.text.read(other).as_deref(), Some(", world"));
        assert_eq!(scan_after(other, &mut learned), scan(other));
        // A padding that is not a string, or bytes after it that differ, are not the frame's.
        for not_frame in [PADDED.replace(r#""ZGF""#, "7"), PADDED.replace(r#""ZGF"}"#, r#""ZGF","x":1}"#)] {
            assert_eq!(learned.text.read(&not_frame), None, "{not_frame}");
        }
        // A padding before the text is in the head: no frame around the text then.
        let mut early = Learned::default();
        scan_after(r#"{"obfuscation":"a","choices":[{"delta":{"content":"x"}}]}"#, &mut early).unwrap();
        assert_eq!(early.text.after_padding(), None);
        assert_eq!(early.text.read(r#"{"obfuscation":"b","choices":[{"delta":{"content":"y"}}]}"#), None);
    }

    #[test]
    fn the_resumed_reading_compares_choices_first() {
        assert_eq!(super::TOP_KEYS[super::CHOICES_KEY], ("\"choices\"", super::Top::Choices));
    }

    #[test]
    fn a_start_that_holds_usage_is_not_kept() {
        let first = r#"{"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},"choices":[]}"#;
        let second = r#"{"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},"choices":[{"delta":{"content":"x"}}]}"#;
        let mut learned = Learned::default();
        scan_after(first, &mut learned).unwrap();
        assert!(learned.start.is_empty());
        let read = scan_after(second, &mut learned).unwrap();
        assert_eq!(read.usage, Some(Usage { input_tokens: 1, output_tokens: 2 }));
    }

    #[test]
    fn anything_else_is_left_to_the_serde_path() {
        for frame in NOT_MINE {
            assert_eq!(scan(frame), None, "{frame}");
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_left_to_the_serde_path() {
        let deep = format!(r#"{{"x":{}{},"choices":[]}}"#, "[".repeat(100), "]".repeat(100));
        assert_eq!(scan(&deep), None);
        let fine = format!(r#"{{"x":{}{},"choices":[]}}"#, "[".repeat(10), "]".repeat(10));
        assert_eq!(scan(&fine), Some(ScannedChunk::default()));
    }

    /// One choice-0 field written as JSON text, any characters inside (serde_json escapes them).
    fn string_or_null() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => Just("null".to_owned()),
            4 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
            // Escapes serde_json never writes: \/ and \u for everything, including surrogate pairs.
            2 => any::<String>().prop_map(|s| {
                let mut out = String::from('"');
                for c in s.chars() {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                    out.push_str("\\/");
                }
                out.push('"');
                out
            }),
        ]
    }

    fn frame() -> impl Strategy<Value = String> {
        (
            string_or_null(),
            string_or_null(),
            string_or_null(),
            prop::option::of((any::<u64>(), any::<u64>())),
            0u32..3,
            any::<bool>(),
            prop::sample::select(vec!["", " ", "\n", "\t\r\n "]),
        )
            .prop_map(|(content, refusal, finish, usage, index, reorder, ws)| {
                let delta = format!(r#"{{"content":{content},{ws}"refusal":{refusal}}}"#);
                let choice = if reorder {
                    format!(r#"{{"finish_reason":{finish},"delta":{delta},"index":{index},"logprobs":null}}"#)
                } else {
                    format!(r#"{{"index":{index},{ws}"delta":{delta},"finish_reason":{finish}}}"#)
                };
                let usage = usage.map_or("null".to_owned(), |(p, c)| {
                    format!(r#"{{"prompt_tokens":{p},"completion_tokens":{c},"total_tokens":0}}"#)
                });
                format!(r#"{ws}{{"id":"x","created":1,{ws}"choices":[{choice}],"usage":{usage}}}{ws}"#)
            })
    }

    proptest! {
        #[test]
        fn generated_chunks_read_as_the_serde_path_reads_them(frame in frame()) {
            prop_assert!(scan(&frame).is_some(), "not read: {}", frame);
            agrees(&frame)?;
        }

        #[test]
        fn a_stream_of_generated_chunks_reads_as_each_alone(frames in proptest::collection::vec(frame(), 1..6)) {
            let mut learned = Learned::default();
            for frame in &frames {
                prop_assert_eq!(scan_after(frame, &mut learned), scan(frame), "{}", frame);
            }
        }

        /// Chunks that differ only in their text, the text frame's case, with texts it must refuse among them.
        #[test]
        fn a_stream_of_texts_in_one_frame_reads_as_each_alone(
            texts in proptest::collection::vec(prop_oneof![
                4 => string_or_null(),
                1 => prop::sample::select(vec![
                    "1", "\"open", "\"bad \\x\"", "\"raw \u{1}\"", "\"two\" \"strings\"", "\"a\"}", "",
                ]).prop_map(str::to_owned),
            ], 1..8),
            paddings in proptest::collection::vec(prop_oneof![
                4 => string_or_null(),
                1 => prop::sample::select(vec!["1", "\"open", "\"bad \\x\"", "{}", ""]).prop_map(str::to_owned),
            ], 8),
            tail in prop::sample::select(vec![
                r#"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
                r#"},"logprobs":null,"finish_reason":"stop"}]}"#,
                r#"}}]} "#,
                r#"},"logprobs":null,"finish_reason":null}],"obfuscation":PAD}"#,
                r#"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation": PAD }"#,
                r#"},"logprobs":null,"finish_reason":null}],"obfuscation":PAD,"usage":null}"#,
            ]),
        ) {
            let mut learned = Learned::default();
            for (text, padding) in texts.iter().zip(&paddings) {
                let tail = tail.replace("PAD", padding);
                let frame = format!(r#"{{"id":"x","created":1,"choices":[{{"index":0,"delta":{{"content":{text}{tail}"#);
                prop_assert_eq!(scan_after(&frame, &mut learned), scan(&frame), "{}", frame);
            }
        }

        #[test]
        fn damaged_chunks_are_read_only_as_the_serde_path_reads_them(
            frame in frame(),
            at in any::<prop::sample::Index>(),
            damage in prop::sample::select(vec!["", "\"", "\\", "{", "}", "[", "]", ",", ":", "0", "-", ".", "e", "u", "n", " ", "\u{1}", "\\ud800"]),
            replace in any::<bool>(),
        ) {
            let mut damaged = frame.clone();
            let mut cut = at.index(damaged.len() + 1);
            while !damaged.is_char_boundary(cut) {
                cut -= 1;
            }
            if replace && cut < damaged.len() {
                let next = damaged[cut..].chars().next().map_or(0, char::len_utf8);
                damaged.replace_range(cut..cut + next, damage);
            } else {
                damaged.insert_str(cut, damage);
            }
            agrees(&damaged)?;
        }
    }
}
