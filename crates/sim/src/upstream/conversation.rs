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

/// A tool the request offers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool<'a> {
    /// Its name.
    pub(crate) name: &'a str,
    /// Its description (empty when none).
    pub(crate) description: &'a str,
    /// The JSON schema of its arguments.
    pub(crate) schema: &'a Value,
}

/// The parts of a request the answer depends on, read from either API.
#[derive(Debug)]
pub(crate) struct Conversation<'a> {
    /// Words in the system prompt and the messages, reported as input tokens.
    pub(crate) input_tokens: u64,
    /// The last message.
    pub(crate) last: Last,
    /// The text of the last user message that is not a tool result: the question being worked on.
    pub(crate) question: String,
    /// The tools offered (none when `tool_choice` is none), in order.
    pub(crate) tools: Vec<Tool<'a>>,
    /// The tool the request forces, or `Some(None)` when it forces any tool.
    pub(crate) forced_tool: Option<Option<&'a str>>,
    /// The JSON schema the answer must fit (structured output), when the request sets one.
    pub(crate) output_schema: Option<&'a Value>,
    /// The tools called since the question, in order.
    pub(crate) called: Vec<String>,
    /// The tool results since the question, in order.
    pub(crate) results: Vec<String>,
}

impl Conversation<'_> {
    /// The answer. When tools are offered and the question contains the word `tool` (or the request forces a
    /// tool call): a call to the next tool the question asks for that was not called yet, with arguments read
    /// from the question (numbers, an arithmetic operator). When every such tool was called: a text quoting
    /// the results. Otherwise a fixed greeting naming the model.
    pub(crate) fn answer(&self, model: &str) -> Answer {
        let wants_tools = self.forced_tool.is_some() || mentions_tool(&self.question);
        if wants_tools && let Some(tool) = self.next_tool() {
            let arguments = arguments_for(tool.schema, &self.question).to_string();
            return Answer::ToolCall { name: tool.name.to_owned(), arguments };
        }
        if let Last::ToolResult(result) = &self.last {
            if self.results.len() > 1 {
                return Answer::Text(format!("The tools returned: {}", self.results.join("; ")));
            }
            return Answer::Text(format!("The tool returned: {result}"));
        }
        // Structured output: JSON that fits the schema, as the real APIs guarantee.
        if let (Some(schema), Last::User(_)) = (self.output_schema, &self.last) {
            return Answer::Text(value_for(schema).to_string());
        }
        Answer::Text(format!("Hello! This is {model} answering from the simulated upstream."))
    }

    /// The first tool of the plan not called yet. The plan: the forced tool; else every tool the question
    /// asks for (see [`asks_for`]), in the order offered; else the first tool.
    fn next_tool(&self) -> Option<Tool<'_>> {
        let forced = self.forced_tool.flatten().and_then(|name| self.tools.iter().find(|t| t.name == name));
        let plan: Vec<Tool<'_>> = match forced {
            Some(tool) => vec![*tool],
            None => {
                let asked: Vec<Tool<'_>> = self.tools.iter().copied().filter(|t| asks_for(&self.question, t)).collect();
                if asked.is_empty() { self.tools.first().copied().into_iter().collect() } else { asked }
            }
        };
        plan.into_iter().find(|t| !self.called.iter().any(|c| c == t.name))
    }
}

/// Words too common to say which tool a question asks for.
const COMMON: [&str; 14] =
    ["what", "with", "from", "that", "this", "when", "into", "your", "will", "have", "each", "than", "then", "does"];

/// Whether the question asks for the tool: it names the tool, shares a word of four letters or more with its
/// description, or holds a number for each number its arguments take (two at least).
fn asks_for(question: &str, tool: &Tool<'_>) -> bool {
    let words: Vec<String> =
        question.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    let has = |w: &str| words.iter().any(|q| q == w);
    if tool.name.split(|c: char| !c.is_alphanumeric()).any(|part| part.len() >= 4 && has(&part.to_lowercase())) {
        return true;
    }
    let described = tool
        .description
        .split(|c: char| !c.is_alphabetic())
        .map(str::to_lowercase)
        .any(|w| w.len() >= 4 && !COMMON.contains(&w.as_str()) && has(&w));
    let numeric = number_properties(tool.schema);
    described || (numeric >= 2 && numbers_in(question).len() >= numeric)
}

fn number_properties(schema: &Value) -> usize {
    schema.get("properties").and_then(Value::as_object).map_or(0, |p| {
        p.values().filter(|p| matches!(p.get("type").and_then(Value::as_str), Some("number" | "integer"))).count()
    })
}

/// The numbers in a text, in order (`12.5`, `8`; a sentence's final `.` is not a decimal point).
fn numbers_in(text: &str) -> Vec<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|s| s.trim_matches('.'))
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The arithmetic the text asks for, as a verb (`multiply`, `add`, `subtract`, `divide`) and its symbol.
fn operation_in(text: &str) -> Option<(&'static str, &'static str)> {
    const NEEDLES: [(&str, &str, &str); 12] = [
        ("*", "multiply", "*"),
        ("×", "multiply", "*"),
        (" times ", "multiply", "*"),
        ("multipl", "multiply", "*"),
        ("+", "add", "+"),
        (" plus ", "add", "+"),
        (" - ", "subtract", "-"),
        ("minus", "subtract", "-"),
        ("subtract", "subtract", "-"),
        ("/", "divide", "/"),
        ("÷", "divide", "/"),
        ("divid", "divide", "/"),
    ];
    let lower = text.to_lowercase();
    NEEDLES
        .iter()
        .filter_map(|(n, verb, sym)| lower.find(n).map(|at| (at, *verb, *sym)))
        .min_by_key(|(at, ..)| *at)
        .map(|(_, verb, sym)| (verb, sym))
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

/// Arguments that fit an object schema: one value per declared property, by its type, read from the
/// question where it can be: numbers in order for number properties, the operator for an enum that names
/// one (`mul`, `multiply`, `*`); otherwise a placeholder (1, the first enum value, `"simulated"`).
fn arguments_for(schema: &Value, question: &str) -> Value {
    let mut numbers = numbers_in(question).into_iter();
    let operation = operation_in(question);
    let mut args = Map::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let value = if let Some(values) = property.get("enum").and_then(Value::as_array) {
                let names_it = |v: &&Value| {
                    let v = v.as_str().unwrap_or("").to_lowercase();
                    operation.is_some_and(|(verb, sym)| !v.is_empty() && (verb.starts_with(&v) || v == sym))
                };
                values.iter().find(names_it).or(values.first()).cloned().unwrap_or(Value::Null)
            } else {
                match property.get("type").and_then(Value::as_str) {
                    Some("number") => numbers.next().map_or(json!(1), |n| json!(n)),
                    Some("integer") => {
                        numbers.next().filter(|n| n.fract() == 0.0).map_or(json!(1), |n| json!(n as i64))
                    }
                    Some("boolean") => json!(true),
                    Some("array") => json!([]),
                    Some("object") => json!({}),
                    Some("null") => Value::Null,
                    _ => json!("simulated"),
                }
            };
            args.insert(name.clone(), value);
        }
    }
    Value::Object(args)
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
        let question = match &last {
            Last::User(text) => text.clone(),
            _ => String::new(),
        };
        let tools = tool.into_iter().map(|(name, schema)| Tool { name, description: "", schema }).collect();
        Conversation {
            input_tokens: 0,
            last,
            question,
            tools,
            forced_tool: None,
            called: vec![],
            results: vec![],
            output_schema: None,
        }
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
    fn the_calls_come_from_the_question() {
        let calc = json!({"type": "object", "properties": {
            "op": {"type": "string", "enum": ["add", "sub", "mul", "div"]}, "a": {"type": "number"}, "b": {"type": "number"}}});
        let clock = json!({"type": "object", "properties": {}});
        let question = "Use the tools: what is 12.5 * 8, and what time is it now (UTC)?";
        let tools = vec![
            Tool { name: "weather", description: "The weather in a city", schema: &clock },
            Tool { name: "calculator", description: "Computes `a op b`", schema: &calc },
            Tool { name: "clock", description: "The current date and time in UTC", schema: &clock },
        ];
        let mut c = Conversation {
            input_tokens: 0,
            last: Last::User(question.into()),
            question: question.into(),
            tools,
            forced_tool: None,
            called: vec![],
            results: vec![],
            output_schema: None,
        };
        let Answer::ToolCall { name, arguments } = c.answer("m") else { panic!("a call") };
        let arguments: Value = serde_json::from_str(&arguments).unwrap();
        assert_eq!((name.as_str(), arguments), ("calculator", json!({"op": "mul", "a": 12.5, "b": 8.0})));
        c.called.push(name);
        c.results.push("100".into());
        c.last = Last::ToolResult("100".into());
        assert_eq!(c.answer("m"), Answer::ToolCall { name: "clock".into(), arguments: "{}".into() });
        c.called.push("clock".into());
        c.results.push("2026-01-01T00:00:00Z".into());
        c.last = Last::ToolResult("2026-01-01T00:00:00Z".into());
        assert_eq!(c.answer("m"), Answer::Text("The tools returned: 100; 2026-01-01T00:00:00Z".into()));

        // Other words, other calls: the operator and the numbers are read, not fixed.
        c.question = "tool please: 7 minus 2.5".into();
        c.last = Last::User(c.question.clone());
        c.called.clear();
        let Answer::ToolCall { arguments, .. } = c.answer("m") else { panic!("a call") };
        assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), json!({"op": "sub", "a": 7.0, "b": 2.5}));
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
