//! What the simulated upstream reads from a request, whatever its API, and the answer it gives.

use serde_json::{Map, Value, json};

/// The answer to a request, before it is put in a vendor's shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Assistant text.
    Text(String),
    /// One call to a tool, with its arguments as JSON text.
    ToolCall {
        /// The tool's name.
        name: String,
        /// The arguments, JSON text.
        arguments: String,
    },
}

impl Answer {
    /// Words of the answer, reported as output tokens.
    pub(crate) fn output_tokens(&self) -> u64 {
        match self {
            Answer::Text(text) => text.split_whitespace().count() as u64,
            Answer::ToolCall { arguments, .. } => 1 + arguments.len().div_ceil(4) as u64,
        }
    }

    /// Pieces of the answer that are streamed as separate content chunks.
    pub(crate) fn pieces(&self) -> Vec<&str> {
        match self {
            Answer::Text(text) => text.split_inclusive(' ').collect(),
            Answer::ToolCall { arguments, .. } => crate::behavior::fragments(arguments, 3),
        }
    }
}

/// The last message of the conversation, as far as the answer is concerned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Last {
    /// A user message with this text.
    User(String),
    /// The result of a tool call.
    ToolResult(String),
    /// Anything else (an assistant prefix, nothing at all).
    Other,
}

/// The parts of a request the answer depends on, read from either API.
#[derive(Debug)]
pub(crate) struct Conversation<'a> {
    /// Words in the system prompt and the messages, reported as input tokens.
    pub(crate) input_tokens: u64,
    /// The last message.
    pub(crate) last: Last,
    /// The first tool offered: its name and JSON schema.
    pub(crate) first_tool: Option<(&'a str, &'a Value)>,
    /// The tool the request forces, or `Some(None)` when it forces any tool.
    pub(crate) forced_tool: Option<Option<&'a str>>,
    /// The JSON schema the answer must fit (structured output), when the request sets one.
    pub(crate) output_schema: Option<&'a Value>,
}

impl Conversation<'_> {
    /// The answer: a tool call when tools are offered and the last user message contains the word `tool`
    /// (or the request forces a tool call); a text quoting the result when the last message is a tool
    /// result; otherwise a fixed greeting naming the model.
    pub(crate) fn answer(&self, model: &str) -> Answer {
        if let Last::ToolResult(result) = &self.last {
            return Answer::Text(format!("The tool returned: {result}"));
        }
        if let (Some((first, schema)), Last::User(text)) = (self.first_tool, &self.last)
            && (self.forced_tool.is_some() || mentions_tool(text))
        {
            let name = self.forced_tool.flatten().unwrap_or(first);
            return Answer::ToolCall { name: name.to_owned(), arguments: value_for(schema).to_string() };
        }
        // Structured output: JSON that fits the schema, as the real APIs guarantee.
        if let (Some(schema), Last::User(_)) = (self.output_schema, &self.last) {
            return Answer::Text(value_for(schema).to_string());
        }
        Answer::Text(format!("Hello! This is {model} answering from the simulated upstream."))
    }
}

/// Whether the text has the word `tool` or `tools`, in any case.
fn mentions_tool(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|w| w.eq_ignore_ascii_case("tool") || w.eq_ignore_ascii_case("tools"))
}

/// A value that fits a JSON schema: its first enum value or `const`, else one by its type; objects get
/// every declared property, arrays one item. `$ref`s and combinators are not followed.
fn value_for(schema: &Value) -> Value {
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::Array(kinds)) => kinds.iter().find_map(Value::as_str).unwrap_or("string"),
        Some(kind) => kind.as_str().unwrap_or("string"),
        None if schema.get("properties").is_some() => "object",
        None => "string",
    };
    match kind {
        "integer" | "number" => json!(1),
        "boolean" => json!(true),
        "null" => Value::Null,
        "array" => match schema.get("items") {
            Some(items) => json!([value_for(items)]),
            None => json!([]),
        },
        "object" => {
            let mut fields = Map::new();
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    fields.insert(name.clone(), value_for(property));
                }
            }
            Value::Object(fields)
        }
        _ => json!("simulated"),
    }
}

/// Counts words in a string or in the text blocks of a content array (`{"type":"text","text":…}`), and
/// in tool results' content.
pub(crate) fn words_in(content: &Value) -> u64 {
    match content {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| {
                b.get("text").map_or(0, words_in)
                    + b.get("content").map_or(0, words_in)
                    + b.get("input").map_or(0, |i| u64::from(!i.is_null()))
            })
            .sum(),
        _ => 0,
    }
}

/// The text of a string or of the text blocks of a content array, joined.
pub(crate) fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => {
            let mut out = String::new();
            for block in blocks {
                match block.get("text").and_then(Value::as_str) {
                    Some(text) => out.push_str(text),
                    None => {
                        if let Some(inner) = block.get("content") {
                            out.push_str(&text_of(inner));
                        }
                    }
                }
            }
            out
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convo<'a>(last: Last, tool: Option<(&'a str, &'a Value)>) -> Conversation<'a> {
        Conversation { input_tokens: 0, last, first_tool: tool, forced_tool: None, output_schema: None }
    }

    #[test]
    fn a_tool_call_needs_tools_and_the_word_tool() {
        let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}});
        let with = convo(Last::User("Use the TOOL please".into()), Some(("get_weather", &schema)));
        assert_eq!(
            with.answer("m"),
            Answer::ToolCall { name: "get_weather".into(), arguments: r#"{"city":"simulated","days":1}"#.into() }
        );
        let without_word = convo(Last::User("toolbox weather".into()), Some(("get_weather", &schema)));
        assert!(matches!(without_word.answer("m"), Answer::Text(_)));
        let without_tools = convo(Last::User("use a tool".into()), None);
        assert!(matches!(without_tools.answer("m"), Answer::Text(_)));
        let mut forced = convo(Last::User("weather?".into()), Some(("get_weather", &schema)));
        forced.forced_tool = Some(None);
        assert!(matches!(forced.answer("m"), Answer::ToolCall { .. }));
    }

    #[test]
    fn a_tool_result_is_quoted() {
        let c = convo(Last::ToolResult("21C and sunny".into()), None);
        assert_eq!(c.answer("m"), Answer::Text("The tool returned: 21C and sunny".into()));
    }

    #[test]
    fn text_and_words_read_blocks() {
        let content =
            json!([{"type": "text", "text": "two words"}, {"type": "tool_result", "content": "three more words"}]);
        assert_eq!(words_in(&content), 5);
        assert_eq!(text_of(&content), "two wordsthree more words");
    }

    #[test]
    fn structured_output_answers_json_that_fits_the_schema() {
        let schema = json!({"type": "object", "properties": {
            "name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "integer"}},
            "kind": {"enum": ["a", "b"]}, "inner": {"properties": {"ok": {"type": "boolean"}}}
        }});
        let mut c = convo(Last::User("hi".into()), None);
        c.output_schema = Some(&schema);
        let Answer::Text(text) = c.answer("m") else { panic!("expected text") };
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value, json!({"name": "simulated", "tags": [1], "kind": "a", "inner": {"ok": true}}));
    }
}
