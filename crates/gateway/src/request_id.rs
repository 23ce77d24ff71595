//! `x-request-id`: the caller's, or a new one; attached to the request, the response and the logs.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue};
use uuid::Uuid;
use uuid::fmt::Simple;

/// The request id, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Longest caller-supplied id kept; longer ones are replaced.
const MAX_LEN: usize = 128;

/// A new id: 32 hex digits, a random per-process half and a counter. Unique within the process and, by the
/// random half, across restarts; one `getrandom` per process instead of one per request (a system call that
/// was a few per cent of the request path's CPU). Written by `uuid`'s hex encoder: `format!` and a `char` pushed
/// at a time each cost more than the rest of taking the id.
fn new_id() -> String {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| Uuid::new_v4().as_u64_pair().0);
    let id = Uuid::from_u64_pair(prefix, NEXT.fetch_add(1, Ordering::Relaxed));
    let mut text = [0u8; Simple::LENGTH];
    id.simple().encode_lower(&mut text).to_owned()
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
    use super::new_id;

    #[test]
    fn an_id_is_the_random_half_then_the_counter_as_zero_padded_lowercase_hex() {
        let (a, b) = (new_id(), new_id());
        let halves = |id: &str| {
            let half = |range: std::ops::Range<usize>| u64::from_str_radix(&id[range], 16).unwrap();
            (half(0..16), half(16..32))
        };
        let ((prefix_a, count_a), (prefix_b, count_b)) = (halves(&a), halves(&b));
        assert_eq!(a, format!("{prefix_a:016x}{count_a:016x}"));
        assert_eq!(prefix_a, prefix_b);
        assert!(count_b > count_a, "{a} then {b}");
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
