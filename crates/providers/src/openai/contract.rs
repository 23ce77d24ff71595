//! What a chat-completions request must hold beyond its JSON shape, checked before anything is sent:
//! at least one message, content in every message (tool calls stand in for an assistant's), tool
//! parameters that are a JSON Schema object.

use switchyard::Error;

use super::wire::{ChatCompletionRequest, WireRole};

/// Refuses a request the upstream would refuse anyway, naming the field.
pub(crate) fn check(wire: &ChatCompletionRequest) -> Result<(), Error> {
    if wire.messages.is_empty() {
        return Err(Error::invalid_request(
            "no messages: send at least one, e.g. [{\"role\": \"user\", \"content\": \"Hello\"}]",
            Some("messages"),
        ));
    }
    for (i, m) in wire.messages.iter().enumerate() {
        let has_calls = m.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
        if m.content.is_none() && !(m.role == WireRole::Assistant && has_calls) {
            let param = format!("messages[{i}].content");
            return Err(Error::invalid_request(
                "missing content: a message needs a string or an array of content parts",
                Some(&param),
            ));
        }
    }
    for (i, t) in wire.tools.iter().enumerate() {
        if t.function.parameters.as_ref().is_some_and(|p| !p.is_object()) {
            let param = format!("tools[{i}].function.parameters");
            return Err(Error::invalid_request(
                "not an object: send a JSON Schema object, e.g. {\"type\": \"object\", \"properties\": {}}",
                Some(&param),
            ));
        }
    }
    Ok(())
}
