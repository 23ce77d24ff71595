//! Hand-written JSON for the frames written on every answer: a string escaped exactly as serde_json escapes it,
//! and an integer (itoa's). The fixed parts of a frame are byte literals the caller writes around them, which costs a
//! fraction of serde's field-by-field writer (each key escaped again on every frame).

use crate::json_scan::plain_run;

/// Appends `text` as a JSON string (quoted), escaped byte for byte as `serde_json` does: `"` and `\`, the
/// short forms `\b \t \n \f \r`, `\u00XX` for the other control characters, and nothing else. The runs
/// between those are found a word at a time ([`plain_run`]): a byte at a time, this was 10 instructions a byte.
pub(crate) fn push_str(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    loop {
        let end = plain_run(bytes, start);
        out.extend_from_slice(&bytes[start..end]);
        let Some(&byte) = bytes.get(end) else { break };
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ]);
            }
        }
        start = end + 1;
    }
    out.push(b'"');
}

/// The length of `text` as [`push_str`] writes it, quotes included: a frame sized exactly becomes `Bytes`
/// without the extra allocation a vector with spare capacity costs.
pub(crate) fn quoted_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut len = text.len() + 2;
    let mut at = plain_run(bytes, 0);
    while let Some(&byte) = bytes.get(at) {
        len += match byte {
            b'"' | b'\\' | 0x08 | b'\t' | b'\n' | 0x0c | b'\r' => 1,
            _ => 5,
        };
        at = plain_run(bytes, at + 1);
    }
    len
}

/// Appends `n` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::{push_str, push_u64, quoted_len};

    fn ours(text: &str) -> String {
        let mut out = Vec::new();
        push_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let every_ascii: String = (0u8..=0x7f).map(char::from).collect();
        for text in ["", "plain", "quote \" and \\ back", "tab\tline\nreturn\r", "héllo ✓ 🦀", &every_ascii] {
            assert_eq!(ours(text), serde_json::to_string(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn an_escape_at_any_place_of_a_word_is_found() {
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', 'é', '\u{7f}'] {
            for at in 0..20 {
                let mut text: String = "abcdefghijklmnopqrstu".chars().take(at).collect();
                text.push(special);
                text.push_str("xyz\t12345678");
                assert_eq!(ours(&text), serde_json::to_string(&text).unwrap(), "{text:?}");
                assert_eq!(quoted_len(&text), ours(&text).len(), "{text:?}");
            }
        }
    }

    #[test]
    fn quoted_len_is_the_written_length() {
        let every_ascii: String = (0u8..=0x7f).map(char::from).collect();
        for text in ["", "plain", "quote \" and \\ back", "tab\tline\nreturn\r", "héllo ✓ 🦀", &every_ascii] {
            assert_eq!(quoted_len(text), ours(text).len(), "{text:?}");
        }
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 1_796_229_560, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
