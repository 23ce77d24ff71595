//! Turns a JSON body's parse error into an InvalidRequest that names the field path and, for a field of
//! several shapes, the shapes it takes.

use serde::de::DeserializeOwned;
use switchyard::Error;

/// An InvalidRequest for a body serde could not read as `T`. The fast parse only says what failed; this
/// re-reads the body (on the error path only) to find where, e.g. `messages[0].content`.
pub(crate) fn invalid_body<T: DeserializeOwned>(body: &[u8], e: &serde_json::Error) -> Error {
    let mut de = serde_json::Deserializer::from_slice(body);
    let (path, text) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(located) => (located.path().to_string(), located.into_inner().to_string()),
        Ok(_) => (String::new(), e.to_string()),
    };
    // serde_path_to_error writes the root as ".".
    let path = if path == "." { String::new() } else { path };
    let join = |field: &str| if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") };
    if let Some(field) = text.split_once("missing field `").and_then(|(_, rest)| rest.split_once('`')) {
        let param = join(field.0);
        return Error::InvalidRequest {
            status: 400,
            message: "missing; this field is required".to_owned(),
            param: Some(param),
            attempts: Vec::new(),
        };
    }
    if let Some((_, name)) = text.split_once("did not match any variant of untagged enum ") {
        let shapes = accepted_shapes(name.split_whitespace().next().unwrap_or(name));
        return Error::InvalidRequest {
            status: 400,
            message: format!("expected {shapes}"),
            param: (!path.is_empty()).then_some(path),
            attempts: Vec::new(),
        };
    }
    let message = if path.is_empty() { format!("invalid request body: {text}") } else { text };
    Error::InvalidRequest { status: 400, message, param: (!path.is_empty()).then_some(path), attempts: Vec::new() }
}

/// What a field of several shapes (an untagged enum of the wire types) accepts, in the API's words.
fn accepted_shapes(wire_enum: &str) -> &'static str {
    match wire_enum {
        "MessageContent" => {
            "a string, or an array of content parts ({\"type\": \"text\", \"text\": \"…\"} or \
             {\"type\": \"image_url\", \"image_url\": {\"url\": \"…\"}})"
        }
        "WireContent" => {
            "a string, or an array of content blocks ({\"type\": \"text\", \"text\": \"…\"}, image, tool_use or \
             tool_result blocks)"
        }
        "SystemPrompt" => "a string, or an array of text blocks ({\"type\": \"text\", \"text\": \"…\"})",
        "ToolResultContent" => "a string, or an array of text and image blocks",
        "Stop" => "a string or an array of strings",
        "WireToolChoice" => {
            "\"none\", \"auto\", \"required\", or {\"type\": \"function\", \"function\": {\"name\": \"…\"}}"
        }
        _ => "one of the shapes the API reference lists for this field",
    }
}
