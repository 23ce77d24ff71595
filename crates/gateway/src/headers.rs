//! The gateway's own header names, built once: a name given as text is parsed and checked on every use.

use http::{HeaderName, HeaderValue};

/// `x-request-id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `x-api-key` (Anthropic SDKs send the key here).
pub const API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// `x-switchyard-deadline-ms`: the caller's deadline for the whole request.
pub const DEADLINE_MS: HeaderName = HeaderName::from_static("x-switchyard-deadline-ms");
/// `x-switchyard-target`: the target that answered.
pub const TARGET: HeaderName = HeaderName::from_static("x-switchyard-target");
/// `x-switchyard-attempts`: upstream calls made.
pub const ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
/// `x-switchyard-fallback`: whether the answer came from another target than the first one called.
pub const FALLBACK: HeaderName = HeaderName::from_static("x-switchyard-fallback");
/// `x-switchyard-dropped`: request fields the serving target's API has no equivalent for (comma-separated).
pub const DROPPED: HeaderName = HeaderName::from_static("x-switchyard-dropped");
// The `x-ratelimit-*` names are written into the head as text by the connection (see
// `client_keys::LimitHeaders`), not inserted into a `HeaderMap`.
/// `x-ratelimit-limit-requests`: a named client key's `rpm`.
pub const LIMIT_REQUESTS: &str = "x-ratelimit-limit-requests";
/// `x-ratelimit-remaining-requests`: requests the key has left in the window after this one.
pub const REMAINING_REQUESTS: &str = "x-ratelimit-remaining-requests";
/// `x-ratelimit-limit-tokens`: a named client key's `tpm`.
pub const LIMIT_TOKENS: &str = "x-ratelimit-limit-tokens";
/// `x-ratelimit-remaining-tokens`: tokens the key has left in the window after this request's reservation.
pub const REMAINING_TOKENS: &str = "x-ratelimit-remaining-tokens";

/// A count as a header value (`x-switchyard-attempts`): static for the usual small counts, since formatting
/// one allocates.
pub fn count(n: usize) -> HeaderValue {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    DIGITS.get(n).map_or_else(|| HeaderValue::from(n), |d| HeaderValue::from_static(d))
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_read_as_their_decimal_digits() {
        for n in [0, 1, 9, 10, 123] {
            assert_eq!(count(n), n.to_string().as_str());
        }
    }
}
