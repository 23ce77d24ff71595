//! The one table of request fields that do not mean the same in both APIs (SPEC-2 section 14), and
//! what each becomes on its way to a target of the other kind:
//!
//! - *translated*: expressed in the target's API (`response_format` ⇄ `output_config.format`, …);
//! - *dropped*: not sent; it does not change what the answer is (a sampling or routing hint). The
//!   attempt names it and the gateway's answer carries `x-switchyard-dropped`;
//! - *contract*: the target's API cannot honour what it asks for (`n > 1`, `logprobs`, audio): the
//!   planner skips that target, and the request is a 400 naming the field only when no target can.
//!
//! Fields of the target's own API pass through untouched; an unknown field of the other API is dropped.
//! Clients and the planner read the same table: [`fit`] before the call, the request encoders while
//! building the body.

use serde_json::{Map, Value};
use switchyard::{
    ChatRequest, Error,
    model::{Fit, Unfit},
};

use crate::config::ProviderKind;

/// What one request field becomes on its way to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldClass {
    /// Sent as it is (the target speaks the field's own API).
    Pass,
    /// Expressed in the target's API, maybe under another name or shape.
    Translated,
    /// Not sent; the answer names it.
    Dropped,
    /// The target cannot honour it; this says what its API lacks.
    Contract(&'static str),
}

/// When a contract field is harmless (its value asks for nothing the target lacks).
#[derive(Debug, Clone, Copy)]
enum Harmless {
    /// `n`: 1 (or null).
    One,
    /// `logprobs`: false.
    False,
    /// `top_logprobs`: 0.
    Zero,
    /// `modalities`: only `"text"`.
    TextOnly,
    /// Never.
    Never,
}

/// One row: a field of `from` on its way to a target of kind `toward`.
struct Row {
    from: ProviderKind,
    field: &'static str,
    toward: ProviderKind,
    class: FieldClass,
    /// For contract rows: values that ask for nothing.
    harmless: Harmless,
}

const fn row(from: ProviderKind, field: &'static str, toward: ProviderKind, class: FieldClass) -> Row {
    Row { from, field, toward, class, harmless: Harmless::Never }
}

const fn contract(
    from: ProviderKind,
    field: &'static str,
    toward: ProviderKind,
    why: &'static str,
    h: Harmless,
) -> Row {
    Row { from, field, toward, class: FieldClass::Contract(why), harmless: h }
}

use FieldClass::{Dropped, Translated};
use ProviderKind::{Anthropic as A, OpenAi as O};

const ONE_CHOICE: &str = "the gateway carries one answer per request";

/// The table. Rows for the field's own API (`from == toward`) only list what that API cannot carry
/// through the gateway either.
const TABLE: &[Row] = &[
    // OpenAI chat-completions fields towards Anthropic targets.
    row(O, "response_format", A, Translated),
    row(O, "reasoning_effort", A, Translated),
    row(O, "user", A, Translated),
    row(O, "max_completion_tokens", A, Translated),
    row(O, "seed", A, Dropped),
    row(O, "frequency_penalty", A, Dropped),
    row(O, "presence_penalty", A, Dropped),
    row(O, "logit_bias", A, Dropped),
    row(O, "store", A, Dropped),
    row(O, "metadata", A, Dropped),
    row(O, "service_tier", A, Dropped),
    row(O, "prompt_cache_key", A, Dropped),
    row(O, "safety_identifier", A, Dropped),
    row(O, "verbosity", A, Dropped),
    row(O, "prediction", A, Dropped),
    contract(O, "n", A, ONE_CHOICE, Harmless::One),
    contract(O, "logprobs", A, "the Messages API returns no log probabilities", Harmless::False),
    contract(O, "top_logprobs", A, "the Messages API returns no log probabilities", Harmless::Zero),
    contract(O, "modalities", A, "the Messages API answers in text only", Harmless::TextOnly),
    contract(O, "audio", A, "the Messages API answers in text only", Harmless::Never),
    contract(O, "web_search_options", A, "web search is an OpenAI built-in tool", Harmless::Never),
    contract(O, "functions", A, "legacy functions are not translated; send `tools`", Harmless::Never),
    contract(O, "function_call", A, "legacy functions are not translated; send `tool_choice`", Harmless::Never),
    // OpenAI fields the gateway cannot carry even to an OpenAI target.
    contract(O, "n", O, ONE_CHOICE, Harmless::One),
    // Anthropic Messages fields towards OpenAI-compatible targets.
    row(A, "output_config", O, Translated),
    row(A, "thinking", O, Translated),
    row(A, "metadata", O, Translated),
    row(A, "top_k", O, Dropped),
    row(A, "service_tier", O, Dropped),
    row(A, "context_management", O, Dropped),
    row(A, "inference_geo", O, Dropped),
    contract(A, "container", O, "code-execution containers are an Anthropic feature", Harmless::Never),
    contract(A, "mcp_servers", O, "remote MCP servers are an Anthropic feature", Harmless::Never),
];

/// What `field` (with `value`) of a request written for `from` becomes towards a `toward` target.
pub fn class(from: ProviderKind, toward: ProviderKind, field: &str, value: &Value) -> FieldClass {
    if value.is_null() {
        return FieldClass::Pass;
    }
    let found = TABLE.iter().find(|r| r.from == from && r.toward == toward && r.field == field);
    match found {
        Some(Row { class: FieldClass::Contract(why), harmless, .. }) => {
            if is_harmless(*harmless, value) {
                if from == toward { FieldClass::Pass } else { FieldClass::Dropped }
            } else {
                FieldClass::Contract(why)
            }
        }
        Some(r) => r.class,
        None if from == toward => FieldClass::Pass,
        None => FieldClass::Dropped,
    }
}

fn is_harmless(h: Harmless, value: &Value) -> bool {
    match h {
        Harmless::One => value.as_u64() == Some(1),
        Harmless::False => value.as_bool() == Some(false),
        Harmless::Zero => value.as_u64() == Some(0),
        Harmless::TextOnly => value.as_array().is_some_and(|v| v.iter().all(|m| m == "text")),
        Harmless::Never => false,
    }
}

/// The API a request's vendor fields were written for (`None`: built in code, passed through as they are).
pub(crate) fn origin(request: &ChatRequest) -> Option<ProviderKind> {
    request.extra.origin.as_deref().and_then(ProviderKind::from_config)
}

/// The extra fields a `toward` target receives: its own API's (or code-built) fields as they are; from the
/// other API what passes, without what is dropped, each translated field handed to `translate` (which writes
/// its form in the target's API into the map), and an InvalidRequest naming a field the target cannot
/// honour (the planner skips such a target before calling it).
pub(crate) fn forward(
    request: &ChatRequest,
    toward: ProviderKind,
    mut translate: impl FnMut(&str, &Value, &mut Map<String, Value>) -> Result<(), Error>,
) -> Result<Map<String, Value>, Error> {
    let extra = &request.extra;
    let Some(from) = origin(request) else { return Ok(extra.fields.clone()) };
    let mut out = Map::new();
    for (key, value) in &extra.fields {
        match class(from, toward, key, value) {
            FieldClass::Pass => {
                out.insert(key.clone(), value.clone());
            }
            FieldClass::Dropped => {}
            FieldClass::Contract(why) => {
                return Err(Error::invalid_request(format!("field `{key}` cannot be honoured: {why}"), Some(key)));
            }
            FieldClass::Translated => translate(key, value, &mut out)?,
        }
    }
    Ok(out)
}

/// What a `toward` target makes of the request's fields: [`switchyard::ChatModel::fit`] for both clients.
pub fn fit(request: &ChatRequest, toward: ProviderKind) -> Fit {
    let Some(from) = origin(request) else { return Fit::serves() };
    let mut fit = Fit::serves();
    for (field, value) in &request.extra.fields {
        match class(from, toward, field, value) {
            FieldClass::Pass | FieldClass::Translated => {}
            FieldClass::Dropped => fit.dropped.push(field.clone()),
            FieldClass::Contract(why) => {
                fit.unfit.get_or_insert_with(|| Unfit::Cannot { field: field.clone(), detail: why.to_owned() });
            }
        }
    }
    fit
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_that_ask_for_nothing_are_not_contract_fields() {
        assert_eq!(class(O, A, "n", &json!(1)), FieldClass::Dropped);
        assert!(matches!(class(O, A, "n", &json!(2)), FieldClass::Contract(_)));
        assert_eq!(class(O, O, "n", &json!(1)), FieldClass::Pass);
        assert!(matches!(class(O, O, "n", &json!(2)), FieldClass::Contract(_)));
        assert_eq!(class(O, A, "logprobs", &json!(false)), FieldClass::Dropped);
        assert_eq!(class(O, A, "modalities", &json!(["text"])), FieldClass::Dropped);
        assert!(matches!(class(O, A, "modalities", &json!(["text", "audio"])), FieldClass::Contract(_)));
        assert_eq!(class(O, A, "seed", &json!(7)), FieldClass::Dropped);
        assert_eq!(class(O, O, "seed", &json!(7)), FieldClass::Pass);
        assert_eq!(class(A, O, "some_new_field", &json!(1)), FieldClass::Dropped);
        assert_eq!(class(A, A, "top_k", &json!(5)), FieldClass::Pass);
    }
}
