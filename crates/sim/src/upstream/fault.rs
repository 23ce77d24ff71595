//! The behaviour the simulated upstream gives a model, read from the model name's last `-`-separated word.

use std::time::Duration;

/// What the simulated upstream does for one request, chosen by the model name's last `-`-separated word.
///
/// Unknown words (and words whose number does not parse, e.g. `slow`) behave like `ok`, so ordinary model
/// names such as `gpt-4o` answer normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ok`: a normal answer.
    Ok,
    /// `500`, `503`, `529`, `429` (with `Retry-After: 1`), `401`, `400`: that status with the vendor's error body.
    Status(u16),
    /// `ctxlen`: 400 with the vendor's context-length error.
    ContextLength,
    /// `hang`: no answer at all (not even headers) until the server shuts down.
    Hang,
    /// `slowN`: the answer (its headers, when streaming) comes after N ms.
    Slow(Duration),
    /// `ttfbN`: N ms before the first chunk (before the whole answer when not streaming).
    Ttfb(Duration),
    /// `paceN`: a stream's content chunks N ms apart, each written on its own, as a model writes at its own
    /// pace (not streaming: a normal answer).
    Pace(Duration),
    /// `flakyN`: the first N calls for this model name fail with 503, later ones answer normally.
    Flaky(u64),
    /// `breakN`: the stream is dropped after N content chunks (the body is cut off when not streaming).
    Break(usize),
    /// `stallN`: N content chunks, then silence with the connection open (headers, then silence, when not
    /// streaming).
    Stall(usize),
    /// `sseerr`: a 200 stream whose first event is the vendor's in-stream error (not streaming: a 200 whose
    /// body is that error object).
    SseError,
    /// `errtext`: a 200 whose text starts with `Exception:`.
    ErrText,
    /// `empty`: a 200 with empty content.
    Empty,
    /// `badjson`: a 200 whose body (or stream event) is not JSON.
    BadJson,
    /// `filter`: the provider's content filter refuses (OpenAI-compatible: a 400 with `code: content_filter`;
    /// Anthropic: a 200 with no content and `stop_reason: "refusal"`).
    ContentFilter,
    /// `badchunkN`: a healthy stream with N malformed events (not JSON) after its first content chunk (not
    /// streaming: a normal answer).
    BadChunk(usize),
    /// `noprefill`: a 400 to a request whose last message is an assistant message (as Claude 4.6 models
    /// answer a prefill); other requests are answered normally.
    NoPrefill,
    /// `restart`: a continuation request (a partial answer as the last message, or before a last user
    /// message) is answered with the whole answer again from its start, the same text.
    Restart,
    /// `restartdiff`: a continuation request is answered from the start again, with different text after the
    /// first word.
    RestartDiff,
}

/// Every word the model name may end with, and what it does (`N` is a number); `mock-upstream --help` lists
/// them.
pub const FAULT_WORDS: [(&str, &str); 21] = [
    ("ok", "a normal answer (also any word not listed here)"),
    ("500, 503, 529, 401, 400", "that status with the vendor's error body"),
    ("429", "429 with Retry-After: 1"),
    ("ctxlen", "400 with the vendor's context-length error"),
    ("hang", "no answer at all until the server stops"),
    ("slowN", "the answer (its headers, when streaming) after N ms"),
    ("ttfbN", "N ms before the first chunk"),
    ("paceN", "a stream's content chunks N ms apart, each written on its own"),
    ("flakyN", "the first N calls fail with 503, per model and session (x-switchyard-sim-session, else the key)"),
    ("breakN", "the stream is dropped after N content chunks"),
    ("stallN", "N content chunks, then silence with the connection open"),
    ("sseerr", "a 200 stream whose first event is the vendor's error"),
    ("errtext", "a 200 whose text starts with `Exception:`"),
    ("empty", "a 200 with empty content"),
    ("badjson", "a 200 whose body (or stream event) is not JSON"),
    ("badchunkN", "a healthy stream with N malformed events after its first chunk"),
    ("filter", "a content-filter refusal (OpenAI: 400 code content_filter; Anthropic: stop_reason refusal)"),
    ("noprefill", "400 to a request whose last message is an assistant message (a prefill)"),
    ("restart", "a continuation request gets the whole answer again from its start, the same text"),
    ("restartdiff", "a continuation request gets an answer from the start again, with different text"),
    ("(any other)", "behaves like ok, so ordinary names such as gpt-4o answer normally"),
];

impl Fault {
    /// Reads the behaviour from a model name, e.g. `gpt-4o-503` or `claude-slow200`.
    pub fn of_model(model: &str) -> Fault {
        let word = model.rsplit('-').next().unwrap_or(model);
        let number = |prefix: &str| word.strip_prefix(prefix).and_then(|n| n.parse::<u64>().ok());
        match word {
            "ok" => return Fault::Ok,
            "500" | "503" | "529" | "429" | "401" | "400" => {
                return word.parse().map_or(Fault::Ok, Fault::Status);
            }
            "ctxlen" => return Fault::ContextLength,
            "hang" => return Fault::Hang,
            "sseerr" => return Fault::SseError,
            "errtext" => return Fault::ErrText,
            "empty" => return Fault::Empty,
            "badjson" => return Fault::BadJson,
            "filter" => return Fault::ContentFilter,
            "noprefill" => return Fault::NoPrefill,
            "restart" => return Fault::Restart,
            "restartdiff" => return Fault::RestartDiff,
            _ => {}
        }
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        if let Some(n) = number("slow") {
            Fault::Slow(Duration::from_millis(n))
        } else if let Some(n) = number("ttfb") {
            Fault::Ttfb(Duration::from_millis(n))
        } else if let Some(n) = number("pace") {
            Fault::Pace(Duration::from_millis(n))
        } else if let Some(n) = number("flaky") {
            Fault::Flaky(n)
        } else if let Some(n) = number("break") {
            Fault::Break(count(n))
        } else if let Some(n) = number("stall") {
            Fault::Stall(count(n))
        } else if let Some(n) = number("badchunk") {
            Fault::BadChunk(count(n))
        } else {
            Fault::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_word_is_a_fault() {
        for (words, _) in FAULT_WORDS.iter().filter(|(w, _)| !w.starts_with('(')) {
            for word in words.split(", ") {
                let model = format!("m-{}", word.replace('N', "2"));
                assert!(word == "ok" || Fault::of_model(&model) != Fault::Ok, "{word} is listed but does nothing");
            }
        }
    }

    #[test]
    fn the_last_word_decides() {
        let cases = [
            ("gpt-4o-ok", Fault::Ok),
            ("gpt-4o", Fault::Ok),
            ("ok", Fault::Ok),
            ("m-503", Fault::Status(503)),
            ("claude-sonnet-529", Fault::Status(529)),
            ("m-429", Fault::Status(429)),
            ("m-ctxlen", Fault::ContextLength),
            ("m-hang", Fault::Hang),
            ("m-slow250", Fault::Slow(Duration::from_millis(250))),
            ("m-ttfb50", Fault::Ttfb(Duration::from_millis(50))),
            ("m-pace1", Fault::Pace(Duration::from_millis(1))),
            ("m-flaky2", Fault::Flaky(2)),
            ("m-break3", Fault::Break(3)),
            ("m-stall0", Fault::Stall(0)),
            ("m-sseerr", Fault::SseError),
            ("m-errtext", Fault::ErrText),
            ("m-empty", Fault::Empty),
            ("m-badjson", Fault::BadJson),
            ("m-badchunk1", Fault::BadChunk(1)),
            ("m-filter", Fault::ContentFilter),
            ("m-noprefill", Fault::NoPrefill),
            ("m-restart", Fault::Restart),
            ("m-restartdiff", Fault::RestartDiff),
            ("m-slow", Fault::Ok),
            ("m-slowx", Fault::Ok),
            ("m-418", Fault::Ok),
            ("", Fault::Ok),
        ];
        for (model, fault) in cases {
            assert_eq!(Fault::of_model(model), fault, "{model}");
        }
    }
}
