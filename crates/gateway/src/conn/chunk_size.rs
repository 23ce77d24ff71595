//! The size line of an HTTP/1.1 chunk (`{len:X}\r\n`). Lines for the sizes a stream's frames have are made at
//! compile time, so writing one takes neither formatting nor an allocation (formatting and a buffer split per
//! frame were about 5% of a streamed answer's instructions).

use bytes::Bytes;

/// Sizes below this have their line in [`LINES`].
const SMALL: usize = 4096;

/// Up to three hex digits, then CRLF.
const WIDTH: usize = 5;

/// Each small size's line, left-aligned; its length is [`line_len`].
static LINES: [[u8; WIDTH]; SMALL] = lines();

const fn lines() -> [[u8; WIDTH]; SMALL] {
    let mut table = [[0; WIDTH]; SMALL];
    let mut n = 0;
    while n < SMALL {
        let digits = digits(n);
        let mut d = 0;
        while d < digits {
            let shift = 4 * (digits - 1 - d);
            table[n][d] = HEX[(n >> shift) & 0xF];
            d += 1;
        }
        table[n][digits] = b'\r';
        table[n][digits + 1] = b'\n';
        n += 1;
    }
    table
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Hex digits of `n`, without leading zeros (one for zero).
const fn digits(n: usize) -> usize {
    let mut digits = 1;
    let mut rest = n >> 4;
    while rest > 0 {
        digits += 1;
        rest >>= 4;
    }
    digits
}

/// The chunk-size line announcing `len` bytes.
pub(super) fn line(len: usize) -> Bytes {
    if len < SMALL {
        return Bytes::from_static(&LINES[len][..digits(len) + 2]);
    }
    let digits = digits(len);
    let mut out = Vec::with_capacity(digits + 2);
    for d in (0..digits).rev() {
        out.push(HEX[(len >> (4 * d)) & 0xF]);
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_the_size_in_hex_then_crlf() {
        let sizes = (0..SMALL + 300).chain([65_535, 65_536, 1 << 20, usize::MAX]);
        for len in sizes {
            assert_eq!(line(len), format!("{len:X}\r\n").as_bytes(), "{len}");
        }
    }
}
