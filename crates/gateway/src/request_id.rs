//! `x-request-id`: the caller's, or a new one; attached to the request, the response and the logs.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue};

/// The request id, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Longest caller-supplied id kept; longer ones are replaced.
const MAX_LEN: usize = 128;

/// A new id: 32 hex digits, a random per-process half and a counter. Unique within the process and, by the
/// random half, across restarts; one `getrandom` per process instead of one per request (a system call that
/// was a few per cent of the request path's CPU). The random half's digits are written once, too.
fn new_id() -> String {
    static PREFIX: OnceLock<[u8; 16]> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| hex(uuid::Uuid::new_v4().as_u64_pair().0));
    let mut id = [0u8; 32];
    id[..16].copy_from_slice(prefix);
    id[16..].copy_from_slice(&hex(NEXT.fetch_add(1, Ordering::Relaxed)));
    // Hex digits are ASCII: the text is always valid and borrowed here, then copied once.
    String::from_utf8_lossy(&id).into_owned()
}

/// `n` as 16 lowercase hex digits (what `format!("{n:016x}")` writes, without the formatting machinery, and a
/// byte at a time rather than a `char` pushed at a time: each push checked the capacity).
fn hex(n: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = DIGITS[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

/// The caller's id when it is usable (printable ASCII, at most 128 bytes), else a new one.
pub(crate) fn take_or_make(headers: &HeaderMap) -> String {
    headers
        .get(crate::headers::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_LEN && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_id, str::to_owned)
}

/// Echoes the id on the response.
pub(crate) fn stamp(response: &mut Response, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(crate::headers::REQUEST_ID, value);
    }
}

/// Middleware: takes or makes the id, and echoes it on the response.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let id = take_or_make(request.headers());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    stamp(&mut response, &id);
    response
}

#[cfg(test)]
mod tests {
    use super::{hex, new_id};

    #[test]
    fn hex_digits_are_what_format_writes() {
        for n in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(hex(n), format!("{n:016x}").as_bytes());
        }
    }

    #[test]
    fn new_ids_are_distinct_32_hex_digits() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
        // One process, one random half; the counter half tells the ids apart.
        let halves: std::collections::HashSet<&str> = ids.iter().map(|id| &id[..16]).collect();
        assert_eq!(halves.len(), 1);
    }
}
