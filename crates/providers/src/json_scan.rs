//! A strict, allocation-light JSON reader for the hot answers' own fast paths (`openai/chunk_scan.rs`,
//! `openai/answer_scan.rs`): it reads only what it can read exactly as serde_json would, and says "not mine"
//! (`None`) for anything else, so the caller's serde path keeps every error and every unusual shape.
//! serde_json's generic per-string and per-key work was about 25 instructions a byte of these short bodies.

use std::borrow::Cow;
use std::sync::LazyLock;

/// The serde path's deepest nesting is 128; a skipped value nested deeper than this is left to it.
const MAX_DEPTH: u32 = 64;

/// Known keys met so far in one object, one bit each: the serde types refuse a duplicate one.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Seen(u32);

impl Seen {
    pub(crate) fn once(&mut self, bit: u32) -> Option<()> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return None;
        }
        self.0 |= mask;
        Some(())
    }

    /// Whether the key of `bit` was met.
    pub(crate) fn has(self, bit: u32) -> bool {
        self.0 & (1 << bit) != 0
    }
}

/// Where the run of plain string bytes from `i` ends: at the first quote, backslash or control byte (or the
/// end). Eight bytes a word at a time: a byte at a time, this loop was half the reader's instructions.
pub fn plain_run(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_le_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_le_bytes([b'\\'; 8]);
    // The high bit of a byte of `(x - ONES * n) & !x & HIGH` is set where that byte of x is below n (n <= 0x80).
    // A borrow may mark bytes after the first hit too, never before it: the lowest mark is exact.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    while let Some(word) = bytes.get(i..i + 8) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let w = u64::from_le_bytes(eight);
        let hits = below(w ^ QUOTES, 1) | below(w ^ BACKSLASHES, 1) | below(w, 0x20);
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = bytes.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

/// Whether `body` holds a `"tools"` or `"tool_choice"` key: the request readers leave tool definitions to serde,
/// and they come after the messages, so a reader says so before it reads those (a long conversation read for
/// nothing). A quote inside a string is escaped, so only a string that is exactly such a name is taken for one
/// too (and then only costs the serde path). One searcher, built once, for their common start.
pub(crate) fn mentions_tool_keys(body: &[u8]) -> bool {
    static START: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(br#""tool"#));
    START.find_iter(body).any(|at| {
        let rest = body.get(at + 5..).unwrap_or_default();
        rest.starts_with(br#"s""#) || rest.starts_with(br#"_choice""#)
    })
}

/// The keys a reader names in one object: each quoted as it stands in the JSON, with its name, in the order
/// the upstream writes them.
pub(crate) type Keys<K> = [(&'static str, K)];

/// Declares an enum naming an object's keys and their [`Keys`] list, in the order the upstream writes them:
/// `keys!(Name, LIST { Variant = "key", ... })`, with an optional visibility before the name.
macro_rules! keys {
    ($vis:vis $name:ident, $list:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($variant),+
        }
        $vis const $list: &$crate::json_scan::Keys<$name> = &[$((concat!("\"", $text, "\""), $name::$variant)),+];
    };
}
pub(crate) use keys;

/// Whether `bytes` starts with `prefix`, a word at a time (the last word overlapping the one before): a key is
/// a few words, and a call to `memcmp` per key compared cost more than the comparison.
#[inline]
fn starts_with(bytes: &[u8], prefix: &[u8]) -> bool {
    fn word<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
        bytes.get(at..at + N)?.try_into().ok()
    }
    let n = prefix.len();
    if bytes.len() < n {
        return false;
    }
    if n < 4 {
        return bytes[..n] == *prefix;
    }
    if n < 8 {
        return word::<4>(bytes, 0) == word::<4>(prefix, 0) && word::<4>(bytes, n - 4) == word::<4>(prefix, n - 4);
    }
    let mut at = 0;
    while at + 8 < n {
        if word::<8>(bytes, at) != word::<8>(prefix, at) {
            return false;
        }
        at += 8;
    }
    word::<8>(bytes, n - 8) == word::<8>(prefix, n - 8)
}

/// A cursor over one JSON text.
pub(crate) struct Reader<'a> {
    s: &'a str,
    i: usize,
    /// Where the key [`Self::members`] read last starts.
    pub(crate) key_at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `s`.
    pub(crate) fn new(s: &'a str) -> Self {
        Self::at(s, 0)
    }

    /// A reader of `s` at byte `i` (what comes before was read by an earlier reader).
    pub(crate) fn at(s: &'a str, i: usize) -> Self {
        Self { s, i, key_at: i }
    }

    /// The reading position: the byte after what was read.
    pub(crate) fn position(&self) -> usize {
        self.i
    }

    /// Whether only blanks are left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    pub(crate) fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// The next non-blank byte, consumed.
    fn next(&mut self) -> Option<u8> {
        self.ws();
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.s.as_bytes().get(self.i..end)? == word).then_some(())?;
        self.i = end;
        Some(())
    }

    /// `null`, consumed if it is next.
    pub(crate) fn null(&mut self) -> bool {
        self.ws();
        if self.s.as_bytes().get(self.i..).is_some_and(|rest| rest.starts_with(b"null")) {
            self.i += 4;
            return true;
        }
        false
    }

    /// An object, each member handed to `member` with its key's name in `keys` (`None`: a key not listed),
    /// which reads the value. `keys` lists the keys in the order the upstream writes them: the next one is
    /// compared as it stands first, a fraction of reading a key (which was a third of the reader's
    /// instructions); any other key is read as usual and looked up.
    pub(crate) fn object<K: Copy>(
        &mut self,
        keys: &Keys<K>,
        member: impl FnMut(&mut Self, Option<K>) -> Option<()>,
    ) -> Option<()> {
        (self.next()? == b'{').then_some(())?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        self.members(keys, 0, member)
    }

    /// An object's members from the key at the reading position to the object's end, as [`Self::object`]
    /// reads them: its `{` and the members before were read already. `next` is the index in `keys` compared
    /// first.
    pub(crate) fn members<K: Copy>(
        &mut self,
        keys: &Keys<K>,
        mut next: usize,
        mut member: impl FnMut(&mut Self, Option<K>) -> Option<()>,
    ) -> Option<()> {
        loop {
            self.ws();
            self.key_at = self.i;
            let name = match keys.get(next) {
                Some(&(quoted, name)) if starts_with(self.rest(), quoted.as_bytes()) => {
                    next += 1;
                    self.i += quoted.len();
                    Some(name)
                }
                _ => {
                    let key = self.key()?;
                    keys.iter().find(|(quoted, _)| quoted.get(1..quoted.len() - 1) == Some(key)).map(|&(_, name)| name)
                }
            };
            (self.next()? == b':').then_some(())?;
            member(self, name)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// An array, each element read by `element`.
    pub(crate) fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        (self.next()? == b'[').then_some(())?;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            element(self)?;
            match self.next()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A key without escapes (an escaped key would need unescaping before it is matched: not mine).
    fn key(&mut self) -> Option<&'a str> {
        (self.next()? == b'"').then_some(())?;
        let start = self.i;
        let end = plain_run(self.s.as_bytes(), start);
        (self.peek_at(end)? == b'"').then_some(())?;
        self.i = end + 1;
        self.s.get(start..end)
    }

    fn rest(&self) -> &'a [u8] {
        self.s.as_bytes().get(self.i..).unwrap_or_default()
    }

    fn peek_at(&self, i: usize) -> Option<u8> {
        self.s.as_bytes().get(i).copied()
    }

    /// A string, borrowed when it has no escapes.
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        (self.next()? == b'"').then_some(())?;
        let bytes = self.s.as_bytes();
        let start = self.i;
        let mut i = plain_run(bytes, start);
        if self.peek_at(i)? == b'"' {
            self.i = i + 1;
            return Some(Cow::Borrowed(self.s.get(start..i)?));
        }
        let mut out = String::with_capacity(i - start + 16);
        let mut run = start;
        loop {
            out.push_str(self.s.get(run..i)?);
            match *bytes.get(i)? {
                b'"' => {
                    self.i = i + 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    self.i = i + 1;
                    out.push(self.escape()?);
                    run = self.i;
                    i = plain_run(bytes, run);
                }
                // A raw control character: serde's error to report.
                _ => return None,
            }
        }
    }

    /// The character of the escape after a backslash; a lone surrogate is an error in serde's str, so not mine.
    fn escape(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        Some(match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0xD800..=0xDBFF => {
                        self.literal(b"\\u")?;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))?
                    }
                    _ => char::from_u32(unit)?,
                }
            }
            _ => return None,
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let end = self.i.checked_add(4)?;
        let digits = self.s.get(self.i..end)?;
        // from_str_radix takes a sign too: only the four hex digits JSON allows.
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.i = end;
        u32::from_str_radix(digits, 16).ok()
    }

    /// A non-negative integer that fits a u64 (a fraction, exponent or sign is the serde path's to refuse).
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.ws();
        let bytes = self.s.as_bytes();
        let start = self.i;
        let mut value: u64 = 0;
        while let Some(&c) = bytes.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        let leading_zero = digits > 1 && bytes.get(start) == Some(&b'0');
        if digits == 0 || leading_zero || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(value)
    }

    /// Any JSON value, checked as strictly as the serde path checks what it ignores, and dropped.
    pub(crate) fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object::<()>(&[], |r, _| r.skip(depth + 1)),
            b'[' => self.array(|r| r.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A JSON number's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }

    /// The text of the key [`Self::members`] read last (a key with escapes is never read: not mine).
    pub(crate) fn key_text(&self) -> Option<&'a str> {
        let start = self.key_at.checked_add(1)?;
        self.s.get(start..plain_run(self.s.as_bytes(), start))
    }

    /// Whether a string comes next.
    pub(crate) fn peek_string(&mut self) -> bool {
        self.ws();
        self.peek() == Some(b'"')
    }

    /// `true` or `false`.
    pub(crate) fn bool(&mut self) -> Option<bool> {
        self.ws();
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    /// The text of the next value, read over (for a value handed whole to serde_json).
    pub(crate) fn value_text(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.i;
        self.skip(0)?;
        self.s.get(start..self.i)
    }

    /// A `u32` or `null`.
    pub(crate) fn opt_u32(&mut self) -> Option<Option<u32>> {
        if self.null() { Some(None) } else { u32::try_from(self.u64()?).ok().map(Some) }
    }

    /// A `bool` or `null`.
    pub(crate) fn opt_bool(&mut self) -> Option<Option<bool>> {
        if self.null() { Some(None) } else { self.bool().map(Some) }
    }

    /// A number or `null`, as serde_json reads a number into an `f64` (its own conversion, not redone here).
    pub(crate) fn opt_f64(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        let start = self.i;
        self.number()?;
        serde_json::from_str(self.s.get(start..self.i)?).ok().map(Some)
    }

    /// The member whose key [`Self::members`] read last, for a key no field names: its value as serde_json
    /// reads it, into `extra` (a struct's flattened map). A repeated key (serde keeps the last) is not mine.
    pub(crate) fn extra_member(&mut self, extra: &mut serde_json::Map<String, serde_json::Value>) -> Option<()> {
        let name = self.key_text()?;
        if extra.contains_key(name) {
            return None;
        }
        let value = serde_json::from_str(self.value_text()?).ok()?;
        extra.insert(name.to_owned(), value);
        Some(())
    }

    /// An array of strings or `null`.
    pub(crate) fn opt_strings(&mut self) -> Option<Option<Vec<String>>> {
        if self.null() {
            return Some(None);
        }
        self.list(|r| r.string().map(Cow::into_owned)).map(Some)
    }

    /// An array, each element read by `element` into the list.
    pub(crate) fn list<T>(&mut self, mut element: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut list = Vec::new();
        self.array(|r| {
            list.push(element(r)?);
            Some(())
        })?;
        Some(list)
    }

    /// A string or `null` (the wire type's `opt_cow` fields).
    pub(crate) fn opt_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() { Some(None) } else { self.string().map(Some) }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Reader, starts_with};

    proptest! {
        /// The word-at-a-time comparison answers as the slice's own, on prefixes that match, differ in any byte,
        /// or are longer than what they are compared with.
        #[test]
        fn starts_with_is_the_slices_starts_with(
            bytes in proptest::collection::vec(0u8..4, 0..40),
            cut in 0usize..40,
            flip in proptest::option::of(0usize..40),
        ) {
            let mut prefix: Vec<u8> = bytes.iter().copied().take(cut).collect();
            if prefix.len() < cut {
                prefix.push(1);
            }
            if let Some(at) = flip.filter(|&at| at < prefix.len()) {
                prefix[at] ^= 1;
            }
            prop_assert_eq!(starts_with(&bytes, &prefix), bytes.starts_with(&prefix));
        }
    }

    keys!(Key, KEYS { A = "a", B = "bb" });

    /// Keys in the listed order, out of it, and unlisted ones reach the member with their names.
    #[test]
    fn every_key_gets_its_name_whatever_the_order() {
        for (json, expected) in [
            (r#"{"a":1,"bb":2}"#, vec![Some(Key::A), Some(Key::B)]),
            (r#"{"bb":1,"a":2,"c":3}"#, vec![Some(Key::B), Some(Key::A), None]),
            (r#"{ "c" : 1 , "a" : 2 , "a" : 3 }"#, vec![None, Some(Key::A), Some(Key::A)]),
            (r#"{"b":1,"bbb":2,"aa":3}"#, vec![None, None, None]),
        ] {
            let mut names = Vec::new();
            let mut r = Reader::new(json);
            r.object(KEYS, |r, key| {
                names.push(key);
                r.skip(0)
            })
            .unwrap();
            assert!(r.at_end(), "{json}");
            assert_eq!(names, expected, "{json}");
        }
    }
}
