//! Fields decided per target before the call (SPEC-2 section 14), through the gateway: structured output
//! translated both ways (whole and streamed) on routes mixing both kinds with a failing primary, dropped
//! fields named in `x-switchyard-dropped`, a field no target can honour a 400 naming it with the attempts,
//! and `strict_fields`.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::*;

const ROUTES: &str = r#"
[routes.oa_first]
targets = [{ provider = "oa", model = "gpt-500" }, { provider = "an", model = "claude-ok" }]
[routes.an_first]
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-ok" }]
[routes.to_anthropic]
targets = [{ provider = "an", model = "claude-ok" }]
[routes.strict]
strict_fields = true
targets = [{ provider = "an", model = "claude-ok" }, { provider = "oa", model = "gpt-ok" }]
[routes.refuses_after_failure]
targets = [{ provider = "oa", model = "gpt-500" }, { provider = "an", model = "claude-400" }]
"#;

/// The schema the clients send, as the Rust type its answer must parse into.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct City {
    name: String,
    population: i64,
    coastal: bool,
    districts: Vec<District>,
    kind: Kind,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct District {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Capital,
    Town,
}

fn city_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string" },
            "population": { "type": "integer" },
            "coastal": { "type": "boolean" },
            "districts": { "type": "array", "items": {
                "type": "object", "properties": { "name": { "type": "string" } },
                "required": ["name"], "additionalProperties": false
            }},
            "kind": { "type": "string", "enum": ["capital", "town"] }
        },
        "required": ["name", "population", "coastal", "districts", "kind"],
        "additionalProperties": false
    })
}

fn openai_structured(stream: bool) -> Value {
    json!({
        "model": "oa_first", "stream": stream,
        "messages": [{ "role": "user", "content": "Describe Lisbon." }],
        "response_format": { "type": "json_schema", "json_schema": { "name": "city", "strict": true, "schema": city_schema() } }
    })
}

fn anthropic_structured(stream: bool) -> Value {
    json!({
        "model": "an_first", "max_tokens": 300, "stream": stream,
        "messages": [{ "role": "user", "content": "Describe Lisbon." }],
        "output_config": { "format": { "type": "json_schema", "schema": city_schema() } }
    })
}

#[tokio::test]
async fn openai_structured_output_parses_into_the_schema_when_the_anthropic_fallback_answers() {
    let h = start(ROUTES).await;
    let r = h.post("/v1/chat/completions", &openai_structured(false)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.target(), r.attempts(), r.fallback()), ("an/claude-ok", "2", "true"));
    let content = r.body["choices"][0]["message"]["content"].as_str().unwrap();
    serde_json::from_str::<City>(content).unwrap_or_else(|e| panic!("{e}: {content}"));

    let s = h.stream("/v1/chat/completions", &openai_structured(true)).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.header("x-switchyard-target"), "an/claude-ok");
    serde_json::from_str::<City>(&s.openai_text()).unwrap_or_else(|e| panic!("{e}: {}", s.text));
}

#[tokio::test]
async fn anthropic_structured_output_parses_into_the_schema_when_the_openai_fallback_answers() {
    let h = start(ROUTES).await;
    let r = h.post("/v1/messages", &anthropic_structured(false)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.target(), r.attempts(), r.fallback()), ("oa/gpt-ok", "2", "true"));
    let content = r.body["content"][0]["text"].as_str().unwrap();
    serde_json::from_str::<City>(content).unwrap_or_else(|e| panic!("{e}: {content}"));

    let s = h.stream("/v1/messages", &anthropic_structured(true)).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.header("x-switchyard-target"), "oa/gpt-ok");
    serde_json::from_str::<City>(&s.anthropic_text()).unwrap_or_else(|e| panic!("{e}: {}", s.text));
}

#[tokio::test]
async fn seed_to_an_anthropic_target_is_served_and_named_in_x_switchyard_dropped() {
    let h = start(ROUTES).await;
    let body = json!({ "model": "to_anthropic", "seed": 7, "presence_penalty": 0.5,
        "messages": [{ "role": "user", "content": "hi" }] });
    let r = h.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-switchyard-dropped"), "presence_penalty,seed");
    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let s = h.stream("/v1/chat/completions", &stream).await;
    assert_eq!((s.status, s.header("x-switchyard-dropped")), (200, "presence_penalty,seed"));
    // Nothing dropped: no header.
    let r = h.chat("to_anthropic", "hi").await;
    assert!(r.headers.get("x-switchyard-dropped").is_none());
}

#[tokio::test]
async fn strict_fields_skips_a_target_that_would_drop_a_field_and_the_next_serves() {
    let h = start(ROUTES).await;
    let body = json!({ "model": "strict", "seed": 7, "messages": [{ "role": "user", "content": "hi" }] });
    let r = h.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.target(), r.attempts(), r.fallback()), ("oa/gpt-ok", "1", "false"));
    assert!(r.headers.get("x-switchyard-dropped").is_none());
}

#[tokio::test]
async fn a_field_no_target_can_honour_is_a_400_naming_it_with_the_attempts() {
    let h = start(ROUTES).await;
    let body = json!({ "model": "oa_first", "n": 2, "messages": [{ "role": "user", "content": "hi" }] });
    let r = h.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["param"], "n");
    assert_eq!(r.attempts(), "0");
    let attempts = r.body["error"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|a| a["outcome"] == "skipped" && a["reason"].as_str().unwrap().contains("`n`")));
    assert_eq!(h.upstream.calls("gpt-500") + h.upstream.calls("claude-ok"), 0);
}

#[tokio::test]
async fn an_upstream_400_after_a_failed_call_carries_the_attempts() {
    let h = start(ROUTES).await;
    let r = h.chat("refuses_after_failure", "hi").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.attempts(), "2");
    assert_eq!(r.body["error"]["attempts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_target_that_cannot_honour_a_field_is_skipped_saying_why_and_the_next_serves() {
    let h = start(
        r#"
[routes.oa_then_an]
targets = [{ provider = "oa", model = "gpt-ok" }, { provider = "an", model = "claude-ok" }]
"#,
    )
    .await;
    // `container` (Anthropic code execution) has no OpenAI equivalent: the OpenAI target is not called.
    let body = json!({ "model": "oa_then_an", "max_tokens": 100, "container": "container_1",
        "messages": [{ "role": "user", "content": "hi" }] });
    let r = h.post("/v1/messages", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.target(), r.attempts(), r.fallback()), ("an/claude-ok", "1", "false"));
    assert_eq!(h.upstream.calls("gpt-ok"), 0);
    // `n = 2` no target can honour (the gateway carries one answer per request): a 400 naming `n`, every
    // skipped target listed with why.
    let body = json!({ "model": "oa_then_an", "n": 2, "messages": [{ "role": "user", "content": "hi" }] });
    let r = h.post("/v1/chat/completions", &body).await;
    assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some("n")), "{}", r.body);
    let attempts = r.body["error"]["attempts"].as_array().unwrap();
    let skipped: Vec<&str> = attempts.iter().map(|a| a["target"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["oa/gpt-ok", "an/claude-ok"], "{}", r.body);
    assert!(attempts.iter().all(|a| a["reason"].as_str().unwrap().contains("one answer per request")), "{}", r.body);
}
