//! How the simulated upstream answers a request to continue a partial answer (what a gateway sends with
//! `after_commit = "continue"`): a prefill is continued where it stopped; `restart` and `restartdiff` start
//! over instead, the way some models do.

use serde_json::Value;

use super::Fault;
use super::conversation::{Answer, text_of};

/// The refusal `noprefill` answers a prefill with.
pub(super) const NO_PREFILL: &str =
    "This model does not accept an assistant prefill: the conversation must end with a user message.";

/// A partial answer that a request asks the model to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Partial {
    /// The last message is an assistant message with this text (a prefill).
    Prefill(String),
    /// An assistant message with this text comes just before the last message, a user message (an
    /// instruction to continue).
    Instruction(String),
}

impl Partial {
    /// The partial answer in a request of either API (both carry `messages` with `role` and `content`).
    pub(super) fn of(request: &Value) -> Option<Partial> {
        let messages = request.get("messages")?.as_array()?;
        let (last, before) = messages.split_last()?;
        if let Some(text) = text_with_role(last, "assistant") {
            return Some(Partial::Prefill(text));
        }
        let previous = before.last()?;
        if last.get("role").and_then(Value::as_str) != Some("user") {
            return None;
        }
        text_with_role(previous, "assistant").map(Partial::Instruction)
    }

    fn text(&self) -> &str {
        match self {
            Partial::Prefill(text) | Partial::Instruction(text) => text,
        }
    }
}

/// The message's text when it has this role and some text.
fn text_with_role(message: &Value, role: &str) -> Option<String> {
    if message.get("role").and_then(Value::as_str) != Some(role) {
        return None;
    }
    Some(text_of(message.get("content")?)).filter(|text| !text.trim().is_empty())
}

/// The answer to a continuation request, when it differs from `normal` (what the model answers from the
/// start). The partial answer is taken to stop after as many words as it has: a prefill gets the rest of
/// `normal` after that many words; `restart` the partial answer again followed by that rest (the whole answer,
/// the same text when the partial answer is this answer's start); `restartdiff` the partial answer's first
/// word followed by other words. An instruction to other words gets `normal`: a restart in the model's own
/// words.
pub(super) fn answer(partial: &Partial, fault: Fault, model: &str, normal: &Answer) -> Option<Answer> {
    let Answer::Text(normal) = normal else { return None };
    let said = partial.text().trim_end();
    let rest: String = normal.split_inclusive(' ').skip(said.split_whitespace().count()).collect();
    match (fault, partial) {
        (Fault::Restart, _) => Some(Answer::Text(format!("{said} {rest}"))),
        (Fault::RestartDiff, _) => {
            let first = said.split_whitespace().next().unwrap_or_default();
            Some(Answer::Text(format!("{first} Here is {model} again, starting over in other words.")))
        }
        // The prefill ends without whitespace (Anthropic requires it): the rest starts with the space.
        (_, Partial::Prefill(_)) => Some(Answer::Text(format!(" {rest}"))),
        (_, Partial::Instruction(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NORMAL: &str = "Hello! This is m-ok answering from the simulated upstream.";

    fn text(answer: Option<Answer>) -> String {
        match answer {
            Some(Answer::Text(text)) => text,
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn the_partial_answer_is_read_from_either_shape() {
        let prefill = json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "Hello! This"}]}]});
        assert_eq!(Partial::of(&prefill), Some(Partial::Prefill("Hello! This".into())));
        let instruction = json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello! This"}, {"role": "user", "content": "Continue."}]});
        assert_eq!(Partial::of(&instruction), Some(Partial::Instruction("Hello! This".into())));
        assert_eq!(Partial::of(&json!({"messages": [{"role": "user", "content": "hi"}]})), None);
        let tool_call = json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null, "tool_calls": []}]});
        assert_eq!(Partial::of(&tool_call), None);
    }

    #[test]
    fn a_prefill_is_continued_a_restart_starts_over() {
        let normal = Answer::Text(NORMAL.into());
        let cut = "Hello! This is m-break4";
        let prefill = Partial::Prefill(cut.into());
        assert_eq!(text(answer(&prefill, Fault::Ok, "m-ok", &normal)), " answering from the simulated upstream.");
        let instruction = Partial::Instruction(format!("{cut} "));
        assert_eq!(answer(&instruction, Fault::Ok, "m-ok", &normal), None);
        let whole = text(answer(&instruction, Fault::Restart, "m-restart", &normal));
        assert_eq!(whole, "Hello! This is m-break4 answering from the simulated upstream.");
        let other = text(answer(&prefill, Fault::RestartDiff, "m-restartdiff", &normal));
        assert!(other.starts_with("Hello! Here is m-restartdiff"), "{other}");
    }
}
