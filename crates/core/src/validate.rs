//! Response validators: mark a successful-looking answer as failed (InvalidResponse), so the engine
//! retries or falls back.

use crate::types::ChatResponse;

/// What a validator says about the start of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixVerdict {
    /// The stream may be committed.
    Accept,
    /// Not enough text yet to decide; keep buffering (bounded by the validator's own needs).
    NeedMore,
    /// The answer is a failure; the message says why.
    Reject(String),
}

/// Decides whether an answer that arrived without an error is really an answer.
pub trait ResponseValidator: Send + Sync {
    /// Checks a complete response; `Err` carries the reason.
    fn check(&self, response: &ChatResponse) -> Result<(), String>;

    /// Checks the text a stream has produced so far, before it is committed. `done` is true when
    /// the stream has finished, so `NeedMore` is no longer possible.
    fn check_prefix(&self, _text: &str, _done: bool) -> PrefixVerdict {
        PrefixVerdict::Accept
    }
}

/// The Java seed's marker: an answer whose text *starts with* `Exception:` is a failure that the
/// base handler turned into text. Matched at the start only (after leading whitespace), never
/// as a substring, so answers that discuss exceptions pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExceptionMarker;

const MARKER: &str = "Exception:";

impl ResponseValidator for ExceptionMarker {
    fn check(&self, response: &ChatResponse) -> Result<(), String> {
        let text = response.message.text();
        match self.check_prefix(&text, true) {
            PrefixVerdict::Reject(reason) => Err(reason),
            _ => Ok(()),
        }
    }

    fn check_prefix(&self, text: &str, done: bool) -> PrefixVerdict {
        let trimmed = text.trim_start();
        if trimmed.starts_with(MARKER) {
            let line = trimmed.lines().next().unwrap_or(trimmed);
            return PrefixVerdict::Reject(format!("the answer is an error report: {line}"));
        }
        if !done && MARKER.starts_with(trimmed) {
            return PrefixVerdict::NeedMore;
        }
        PrefixVerdict::Accept
    }
}

/// Rejects answers with neither text nor tool calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectEmpty;

impl ResponseValidator for RejectEmpty {
    fn check(&self, response: &ChatResponse) -> Result<(), String> {
        let empty = response.message.tool_calls().next().is_none() && response.message.text().trim().is_empty();
        if empty { Err("the answer is empty".to_owned()) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> ChatResponse {
        ChatResponse::text("m", text)
    }

    #[test]
    fn marker_matches_only_at_the_start() {
        assert!(ExceptionMarker.check(&answer("Exception: I/O error")).is_err());
        assert!(ExceptionMarker.check(&answer("  Exception: boom")).is_err());
        assert!(ExceptionMarker.check(&answer("A NullPointerException: is thrown when…")).is_ok());
        assert!(ExceptionMarker.check(&answer("In Java, `Exception:` is a prefix")).is_ok());
    }

    #[test]
    fn marker_waits_for_enough_text_in_streams() {
        assert_eq!(ExceptionMarker.check_prefix("Exce", false), PrefixVerdict::NeedMore);
        assert_eq!(ExceptionMarker.check_prefix("Exce", true), PrefixVerdict::Accept);
        assert_eq!(ExceptionMarker.check_prefix("Excellent", false), PrefixVerdict::Accept);
        assert!(matches!(ExceptionMarker.check_prefix("Exception: x", false), PrefixVerdict::Reject(_)));
    }

    #[test]
    fn empty_answers_are_rejected() {
        assert!(RejectEmpty.check(&answer("")).is_err());
        assert!(RejectEmpty.check(&answer("hi")).is_ok());
    }
}
