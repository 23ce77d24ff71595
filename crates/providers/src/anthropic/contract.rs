//! What a Messages request must hold beyond its JSON shape, checked before anything is sent: at least one
//! message, and tool input schemas that are a JSON Schema object.

use switchyard::Error;

use super::wire::MessagesRequest;

/// Refuses a request the upstream would refuse anyway, naming the field.
pub(crate) fn check(wire: &MessagesRequest) -> Result<(), Error> {
    if wire.messages.is_empty() {
        return Err(Error::invalid_request(
            "no messages: send at least one, e.g. [{\"role\": \"user\", \"content\": \"Hello\"}]",
            Some("messages"),
        ));
    }
    for (i, t) in wire.tools.iter().enumerate() {
        if !t.input_schema.is_object() {
            let param = format!("tools[{i}].input_schema");
            return Err(Error::invalid_request(
                "not an object: send a JSON Schema object, e.g. {\"type\": \"object\", \"properties\": {}}",
                Some(&param),
            ));
        }
    }
    Ok(())
}
