//! Providers' own rate-limit headers: OpenAI's `x-ratelimit-remaining-{requests,tokens}` with
//! `x-ratelimit-reset-{requests,tokens}` (durations like `6m0s`, `20ms`), Anthropic's
//! `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining` with `-reset` (RFC 3339
//! times). A remaining count of 0 marks the model exhausted until that dimension resets; the engine reads
//! it through [`ChatModel::exhausted_until`](switchyard::ChatModel::exhausted_until).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

/// (remaining, reset) header pairs, both vendors' names. Names, not text: looking a header up by text parses
/// and hashes the text each time (with the clock read, most of the 3.7k instructions every answer paid here).
static PAIRS: [(HeaderName, HeaderName); 6] = [
    (name("x-ratelimit-remaining-requests"), name("x-ratelimit-reset-requests")),
    (name("x-ratelimit-remaining-tokens"), name("x-ratelimit-reset-tokens")),
    (name("anthropic-ratelimit-requests-remaining"), name("anthropic-ratelimit-requests-reset")),
    (name("anthropic-ratelimit-tokens-remaining"), name("anthropic-ratelimit-tokens-reset")),
    (name("anthropic-ratelimit-input-tokens-remaining"), name("anthropic-ratelimit-input-tokens-reset")),
    (name("anthropic-ratelimit-output-tokens-remaining"), name("anthropic-ratelimit-output-tokens-reset")),
];

const fn name(text: &'static str) -> HeaderName {
    HeaderName::from_static(text)
}

/// What the last answer's rate-limit headers said about one model: exhausted until when, if at all.
#[derive(Debug, Default)]
pub(crate) struct Quota {
    until: Mutex<Option<Instant>>,
}

impl Quota {
    /// Takes in an answer's headers (any status). Answers without rate-limit headers change nothing.
    pub(crate) fn observe(&self, headers: &HeaderMap) {
        let Some(exhausted_for) = exhausted_for(headers, SystemTime::now) else { return };
        if let Some(wait) = exhausted_for {
            tracing::info!(
                reset_ms = wait.as_millis() as u64,
                "the provider's rate-limit headers say its quota is used up"
            );
        }
        let until = exhausted_for.map(|d| Instant::now() + d);
        *self.until.lock().unwrap_or_else(PoisonError::into_inner) = until;
    }

    /// Until when the provider said the model's quota is used up.
    pub(crate) fn exhausted_until(&self) -> Option<Instant> {
        *self.until.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `None`: no rate-limit headers. `Some(None)`: headers, nothing at 0. `Some(Some(d))`: at 0 for `d` (the
/// latest reset of the dimensions at 0; a reset that cannot be read counts as one second).
///
/// One pass over the answer's headers, not a lookup per dimension: a lookup hashes the name each time, six
/// of them were most of what every answer paid here. The first value of a repeated header counts, as `get`.
fn exhausted_for(headers: &HeaderMap, now: impl Fn() -> SystemTime) -> Option<Option<Duration>> {
    let mut visited = [false; PAIRS.len()];
    let mut seen = false;
    let mut longest: Option<Duration> = None;
    for (name, value) in headers {
        let name = name.as_str();
        if !(name.starts_with("x-ratelimit-remaining-") || name.starts_with("anthropic-ratelimit-")) {
            continue;
        }
        let Some(pair) = PAIRS.iter().position(|(remaining, _)| remaining.as_str() == name) else { continue };
        if std::mem::replace(&mut visited[pair], true) {
            continue;
        }
        let Some(remaining) = text(value).and_then(|v| v.parse::<u64>().ok()) else { continue };
        seen = true;
        if remaining > 0 {
            continue;
        }
        let reset = headers.get(&PAIRS[pair].1).and_then(text);
        let wait = reset.and_then(|v| reset_in(v, now())).unwrap_or(Duration::from_secs(1));
        longest = Some(longest.map_or(wait, |l| l.max(wait)));
    }
    seen.then_some(longest)
}

/// A header's text without surrounding blanks.
fn text(value: &HeaderValue) -> Option<&str> {
    value.to_str().ok().map(str::trim)
}

/// A reset as a wait: a duration (`1s`, `6m0s`, `1h2m3.5s`, `20ms`) or an RFC 3339 time.
fn reset_in(value: &str, now: SystemTime) -> Option<Duration> {
    go_duration(value).or_else(|| {
        let at = humantime::parse_rfc3339_weak(value).ok()?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    })
}

/// Go's duration format, as OpenAI writes it: numbers with units `h`, `m`, `s`, `ms`, `us`, `ns`.
fn go_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut secs = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if digits == 0 {
            return None;
        }
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        secs += value * scale;
        rest = &rest[unit..];
    }
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn openai_durations() {
        assert_eq!(go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(go_duration("1h2m3.5s"), Some(Duration::from_millis(3_723_500)));
        assert_eq!(go_duration("soon"), None);
        assert_eq!(go_duration("12"), None);
    }

    #[test]
    fn remaining_zero_marks_the_latest_reset_of_the_exhausted_dimensions() {
        let now = SystemTime::now();
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "2s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        assert_eq!(exhausted_for(&h, || now), Some(Some(Duration::from_secs(360))));
        let h = headers(&[("x-ratelimit-remaining-requests", "5"), ("x-ratelimit-reset-requests", "2s")]);
        assert_eq!(exhausted_for(&h, || now), Some(None));
        assert_eq!(exhausted_for(&HeaderMap::new(), || now), None);
    }

    #[test]
    fn the_first_value_of_a_repeated_header_counts_and_other_names_do_not() {
        let now = SystemTime::now();
        let mut h = headers(&[("x-ratelimit-reset-requests", "2s"), ("x-ratelimit-remaining-requests-extra", "0")]);
        assert_eq!(exhausted_for(&h, || now), None, "no known remaining header");
        h.append("x-ratelimit-remaining-requests", "7".parse().unwrap());
        h.append("x-ratelimit-remaining-requests", "0".parse().unwrap());
        assert_eq!(exhausted_for(&h, || now), Some(None), "the first value (7) decides");
        let mut h = headers(&[("x-ratelimit-remaining-tokens", "soon")]);
        h.append("x-ratelimit-remaining-tokens", "0".parse().unwrap());
        assert_eq!(exhausted_for(&h, || now), None, "an unreadable first value says nothing");
    }

    #[test]
    fn anthropic_resets_are_times() {
        let now = humantime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let h = headers(&[
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:30Z"),
            ("anthropic-ratelimit-requests-remaining", "40"),
        ]);
        assert_eq!(exhausted_for(&h, || now), Some(Some(Duration::from_secs(30))));
    }
}
