//! Hand-written JSON for the frames written on every answer: a string escaped exactly as serde_json escapes it,
//! and an integer (itoa's). The fixed parts of a frame are byte literals the caller writes around them, which costs a
//! fraction of serde's field-by-field writer (each key escaped again on every frame).

/// Appends `text` as a JSON string (quoted), escaped byte for byte as `serde_json` does: `"` and `\`, the
/// short forms `\b \t \n \f \r`, `\u00XX` for the other control characters, and nothing else.
pub(crate) fn push_str(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                start = i + 1;
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ]);
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The length of `text` as [`push_str`] writes it, quotes included: a frame sized exactly becomes `Bytes`
/// without the extra allocation a vector with spare capacity costs.
pub(crate) fn quoted_len(text: &str) -> usize {
    text.bytes().fold(text.len() + 2, |len, byte| {
        len + match byte {
            b'"' | b'\\' | 0x08 | b'\t' | b'\n' | 0x0c | b'\r' => 1,
            0x00..=0x1f => 5,
            _ => 0,
        }
    })
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
