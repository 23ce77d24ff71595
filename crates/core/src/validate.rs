//! Response validators: mark a successful-looking answer as failed (InvalidResponse), so the engine
//! retries or falls back.

use std::sync::Arc;

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

/// Several validators as one: an answer passes when every one passes; the first rejection wins.
///
/// ```
/// use std::sync::Arc;
/// use switchyard::{ChatResponse, validate::{AllOf, ExceptionMarker, RejectEmpty, ResponseValidator}};
///
/// let both = AllOf::new([Arc::new(ExceptionMarker) as Arc<dyn ResponseValidator>, Arc::new(RejectEmpty)]);
/// assert!(both.check(&ChatResponse::text("m", "")).is_err());
/// assert!(both.check(&ChatResponse::text("m", "Exception: boom")).is_err());
/// assert!(both.check(&ChatResponse::text("m", "fine")).is_ok());
/// ```
#[derive(Clone, Default)]
pub struct AllOf(Vec<Arc<dyn ResponseValidator>>);

impl AllOf {
    /// These validators, checked in order.
    pub fn new(validators: impl IntoIterator<Item = Arc<dyn ResponseValidator>>) -> Self {
        Self(validators.into_iter().collect())
    }

    /// Adds one more validator, checked after the others.
    pub fn and(mut self, validator: Arc<dyn ResponseValidator>) -> Self {
        self.0.push(validator);
        self
    }
}

impl ResponseValidator for AllOf {
    fn check(&self, response: &ChatResponse) -> Result<(), String> {
        self.0.iter().try_for_each(|v| v.check(response))
    }

    fn check_prefix(&self, text: &str, done: bool) -> PrefixVerdict {
        let mut verdict = PrefixVerdict::Accept;
        for validator in &self.0 {
            match validator.check_prefix(text, done) {
                PrefixVerdict::Reject(reason) => return PrefixVerdict::Reject(reason),
                PrefixVerdict::NeedMore => verdict = PrefixVerdict::NeedMore,
                PrefixVerdict::Accept => {}
            }
        }
        verdict
    }
}

impl std::fmt::Debug for AllOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AllOf({} validators)", self.0.len())
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
    fn all_of_waits_while_any_needs_more_and_rejects_when_any_rejects() {
        let both = AllOf::new([Arc::new(ExceptionMarker) as Arc<dyn ResponseValidator>]).and(Arc::new(RejectEmpty));
        assert_eq!(both.check_prefix("Exc", false), PrefixVerdict::NeedMore);
        assert_eq!(both.check_prefix("Hello", false), PrefixVerdict::Accept);
        assert!(matches!(both.check_prefix("Exception: x", false), PrefixVerdict::Reject(_)));
        assert_eq!(both.check(&answer("")), Err("the answer is empty".to_owned()));
    }

    #[test]
    fn empty_answers_are_rejected() {
        assert!(RejectEmpty.check(&answer("")).is_err());
        assert!(RejectEmpty.check(&answer("hi")).is_ok());
    }
}
