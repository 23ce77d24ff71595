//! Turns a JSON body's parse error into an InvalidRequest that names the field.

use switchyard::Error;

/// An InvalidRequest for a body serde could not read; `param` is the missing field, when serde named one.
pub(crate) fn invalid_body(e: &serde_json::Error) -> Error {
    let text = e.to_string();
    let param = text
        .split_once("missing field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(field, _)| field.to_owned());
    Error::InvalidRequest { status: 400, message: format!("invalid request body: {text}"), param, attempts: Vec::new() }
}
