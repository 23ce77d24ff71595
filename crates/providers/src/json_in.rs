//! Reading a JSON body: one UTF-8 check of the whole body, then serde_json's text reader, which does not check
//! each string again as its slice reader does (a tenth of reading a short body). A body that is not UTF-8 goes
//! to the slice reader, which accepts bad bytes in the fields it skips and names the place of the others, as
//! it did before.

use serde::Deserialize;

/// `T` from `body`, as `serde_json::from_slice` reads it.
pub(crate) fn from_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    match crate::utf8::text(body) {
        Some(text) => serde_json::from_str(text),
        None => serde_json::from_slice(body),
    }
}
