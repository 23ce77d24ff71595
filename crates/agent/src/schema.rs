//! Validation of tool arguments against the tool's JSON Schema.
//!
//! A deliberate subset of JSON Schema, the part tool schemas use: `type` (one or several),
//! `properties`, `required`, `additionalProperties` (bool or schema), `enum`, `const`, `items`,
//! `minItems`/`maxItems`, `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum`,
//! `minLength`/`maxLength`, `anyOf`/`oneOf`/`allOf`. Other keywords (`$ref`, `pattern`, `format`, …)
//! are accepted and not checked; the tool's own deserialization still guards its input.
//! Hand-rolled because the `jsonschema` crate pulls in about thirty crates, with second copies of
//! `getrandom` and `base64` (0.33) or `syn` (0.60), for what is a few dozen lines here.

use std::fmt;

use serde_json::{Map, Value};

/// One way the arguments break the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON Pointer to the offending value (`""` for the arguments object itself).
    pub path: String,
    /// What is wrong, e.g. `expected integer, got string "x"`.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "`{}`: {}", self.path, self.message) }
    }
}

/// Checks `instance` against `schema`; every violation found is returned.
pub fn validate(schema: &Value, instance: &Value) -> Result<(), Vec<Violation>> {
    let mut out = Vec::new();
    check(schema, instance, "", &mut out);
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// Checks that a tool's parameter schema is an object schema the validator can use.
pub fn check_parameters_schema(schema: &Value) -> Result<(), String> {
    let Some(obj) = schema.as_object() else {
        return Err("parameters must be a JSON object (a JSON Schema)".to_owned());
    };
    if obj.get("type").and_then(Value::as_str) != Some("object") {
        return Err("parameters must be a JSON Schema with \"type\": \"object\"".to_owned());
    }
    if let Some(props) = obj.get("properties")
        && !props.is_object()
    {
        return Err("\"properties\" must be an object".to_owned());
    }
    if let Some(required) = obj.get("required")
        && !required.as_array().is_some_and(|r| r.iter().all(Value::is_string))
    {
        return Err("\"required\" must be an array of property names".to_owned());
    }
    Ok(())
}

fn check(schema: &Value, instance: &Value, path: &str, out: &mut Vec<Violation>) {
    let obj = match schema {
        Value::Bool(false) => {
            out.push(violation(path, "no value is allowed here".to_owned()));
            return;
        }
        Value::Object(obj) => obj,
        _ => return,
    };
    if let Some(expected) = obj.get("type")
        && !type_matches(expected, instance)
    {
        out.push(violation(path, format!("expected {}, got {}", type_names(expected), describe(instance))));
        // Other keywords would only repeat the mismatch.
        return;
    }
    if let Some(Value::Array(allowed)) = obj.get("enum")
        && !allowed.iter().any(|v| json_eq(v, instance))
    {
        let list = allowed.iter().map(Value::to_string).collect::<Vec<_>>().join(", ");
        out.push(violation(path, format!("expected one of [{list}], got {}", describe(instance))));
    }
    if let Some(expected) = obj.get("const")
        && !json_eq(expected, instance)
    {
        out.push(violation(path, format!("expected {expected}, got {}", describe(instance))));
    }
    match instance {
        Value::Object(map) => check_object(obj, map, path, out),
        Value::Array(items) => check_array(obj, items, path, out),
        Value::String(s) => check_string(obj, s, path, out),
        Value::Number(_) => check_number(obj, instance, path, out),
        _ => {}
    }
    check_combinators(obj, instance, path, out);
}

fn check_object(schema: &Map<String, Value>, map: &Map<String, Value>, path: &str, out: &mut Vec<Violation>) {
    let props = schema.get("properties").and_then(Value::as_object);
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                out.push(violation(path, format!("missing required property `{name}`")));
            }
        }
    }
    for (key, value) in map {
        let child = format!("{path}/{}", escape_pointer(key));
        match props.and_then(|p| p.get(key)) {
            Some(sub) => check(sub, value, &child, out),
            None => match schema.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    let known = props.map(|p| p.keys().map(String::as_str).collect::<Vec<_>>().join(", "));
                    let hint = known.filter(|k| !k.is_empty()).map(|k| format!(" (allowed: {k})")).unwrap_or_default();
                    out.push(violation(path, format!("unknown property `{key}`{hint}")));
                }
                Some(sub @ Value::Object(_)) => check(sub, value, &child, out),
                _ => {}
            },
        }
    }
}

fn check_array(schema: &Map<String, Value>, items: &[Value], path: &str, out: &mut Vec<Violation>) {
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        out.push(violation(path, format!("expected at least {min} items, got {}", items.len())));
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && (items.len() as u64) > max
    {
        out.push(violation(path, format!("expected at most {max} items, got {}", items.len())));
    }
    if let Some(item_schema @ (Value::Object(_) | Value::Bool(_))) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}/{i}"), out);
        }
    }
}

fn check_string(schema: &Map<String, Value>, s: &str, path: &str, out: &mut Vec<Violation>) {
    let len = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        out.push(violation(path, format!("expected at least {min} characters, got {len}")));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        out.push(violation(path, format!("expected at most {max} characters, got {len}")));
    }
}

fn check_number(schema: &Map<String, Value>, instance: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(n) = instance.as_f64() else { return };
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(min) = bound("minimum")
        && n < min
    {
        out.push(violation(path, format!("expected a number >= {min}, got {instance}")));
    }
    if let Some(max) = bound("maximum")
        && n > max
    {
        out.push(violation(path, format!("expected a number <= {max}, got {instance}")));
    }
    if let Some(min) = bound("exclusiveMinimum")
        && n <= min
    {
        out.push(violation(path, format!("expected a number > {min}, got {instance}")));
    }
    if let Some(max) = bound("exclusiveMaximum")
        && n >= max
    {
        out.push(violation(path, format!("expected a number < {max}, got {instance}")));
    }
}

fn check_combinators(schema: &Map<String, Value>, instance: &Value, path: &str, out: &mut Vec<Violation>) {
    if let Some(Value::Array(all)) = schema.get("allOf") {
        for sub in all {
            check(sub, instance, path, out);
        }
    }
    let passing = |subs: &[Value]| subs.iter().filter(|s| validate_at(s, instance, path).is_empty()).count();
    if let Some(Value::Array(any)) = schema.get("anyOf")
        && passing(any) == 0
    {
        out.push(violation(path, format!("{} matches none of the allowed shapes (anyOf)", describe(instance))));
    }
    if let Some(Value::Array(one)) = schema.get("oneOf") {
        let n = passing(one);
        if n != 1 {
            out.push(violation(
                path,
                format!("{} must match exactly one allowed shape (oneOf), matched {n}", describe(instance)),
            ));
        }
    }
}

fn validate_at(schema: &Value, instance: &Value, path: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    check(schema, instance, path, &mut out);
    out
}

fn type_matches(expected: &Value, instance: &Value) -> bool {
    match expected {
        Value::String(name) => is_type(name, instance),
        Value::Array(names) => names.iter().filter_map(Value::as_str).any(|n| is_type(n, instance)),
        _ => true,
    }
}

fn is_type(name: &str, instance: &Value) -> bool {
    match name {
        "object" => instance.is_object(),
        "array" => instance.is_array(),
        "string" => instance.is_string(),
        "boolean" => instance.is_boolean(),
        "null" => instance.is_null(),
        "number" => instance.is_number(),
        "integer" => instance.is_i64() || instance.is_u64() || instance.as_f64().is_some_and(|f| f.fract() == 0.0),
        // An unknown type name is the schema's problem, not the arguments'.
        _ => true,
    }
}

fn type_names(expected: &Value) -> String {
    match expected {
        Value::String(name) => name.clone(),
        Value::Array(names) => names.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        other => other.to_string(),
    }
}

/// Numbers compare by value (`1` equals `1.0`), everything else structurally.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn describe(instance: &Value) -> String {
    let kind = match instance {
        Value::Null => return "null".to_owned(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => return "an array".to_owned(),
        Value::Object(_) => return "an object".to_owned(),
    };
    let mut text = instance.to_string();
    if text.len() > 40 {
        let cut = (0..=40).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    format!("{kind} {text}")
}

fn violation(path: &str, message: String) -> Violation {
    Violation { path: path.to_owned(), message }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[allow(clippy::needless_pass_by_value)]
    fn errors(schema: Value, instance: Value) -> Vec<String> {
        validate(&schema, &instance).err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reports_missing_wrong_type_unknown_and_enum() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "number"},
                "op": {"type": "string", "enum": ["add", "mul"]},
                "tags": {"type": "array", "items": {"type": "integer"}, "maxItems": 2}
            },
            "required": ["a", "b"],
            "additionalProperties": false
        });
        let got = errors(schema, json!({"a": "x", "op": "pow", "tags": [1, 2.5, 3], "zzz": 1}));
        assert!(got.contains(&"missing required property `b`".to_owned()), "{got:?}");
        assert!(got.contains(&"`/a`: expected number, got string \"x\"".to_owned()), "{got:?}");
        assert!(got.contains(&"`/op`: expected one of [\"add\", \"mul\"], got string \"pow\"".to_owned()), "{got:?}");
        assert!(got.contains(&"`/tags`: expected at most 2 items, got 3".to_owned()), "{got:?}");
        assert!(got.contains(&"`/tags/1`: expected integer, got number 2.5".to_owned()), "{got:?}");
        assert!(got.iter().any(|e| e.starts_with("unknown property `zzz` (allowed: ")), "{got:?}");
        assert_eq!(got.len(), 6, "{got:?}");
    }

    #[test]
    fn valid_arguments_pass_and_integers_accept_whole_floats() {
        let schema = json!({
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 0}, "s": {"type": ["string", "null"]}},
            "required": ["n"]
        });
        assert!(validate(&schema, &json!({"n": 3.0, "s": null, "extra": true})).is_ok());
        assert_eq!(errors(schema, json!({"n": -1})), ["`/n`: expected a number >= 0, got -1"]);
    }

    #[test]
    fn combinators_and_nested_additional_properties() {
        let schema = json!({
            "type": "object",
            "properties": {
                "v": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "m": {"type": "object", "additionalProperties": {"type": "boolean"}}
            }
        });
        assert!(validate(&schema, &json!({"v": 1, "m": {"x": true}})).is_ok());
        let got = errors(schema, json!({"v": [], "m": {"x": 1}}));
        assert!(got.contains(&"`/v`: an array matches none of the allowed shapes (anyOf)".to_owned()), "{got:?}");
        assert!(got.contains(&"`/m/x`: expected boolean, got number 1".to_owned()), "{got:?}");
    }

    #[test]
    fn parameter_schemas_must_be_objects() {
        assert!(check_parameters_schema(&json!({"type": "object"})).is_ok());
        assert!(check_parameters_schema(&json!({"type": "string"})).unwrap_err().contains("\"type\": \"object\""));
        assert!(check_parameters_schema(&json!({"type": "object", "required": "a"})).is_err());
        assert!(check_parameters_schema(&json!([])).is_err());
    }
}
