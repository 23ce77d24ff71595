//! Both APIs, streaming and not, through a fallback; headers; direct target ids; the model list.

use serde_json::{Value, json};

use crate::common::*;

const ROUTES: &str = r#"
[routes.fb]
backoff = { kind = "linear", base = "1ms" }
targets = [
  { provider = "an", model = "claude-500", max_retries = 1 },
  { provider = "oa", model = "gpt-sseerr" },
  { provider = "oa", model = "gpt-ok" },
]
[routes.plain]
targets = [{ provider = "an", model = "claude-ok" }, { provider = "oa", model = "gpt-ok" }]
[routes.retry]
backoff = { kind = "linear", base = "1ms" }
targets = [{ provider = "oa", model = "gpt-flaky1", max_retries = 2 }]
"#;

fn openai_body(model: &str, stream: bool) -> Value {
    json!({ "model": model, "stream": stream, "messages": [{ "role": "user", "content": "hello" }] })
}

fn anthropic_body(model: &str, stream: bool) -> Value {
    json!({ "model": model, "stream": stream, "max_tokens": 100, "messages": [{ "role": "user", "content": "hello" }] })
}

#[tokio::test]
async fn openai_non_streaming_through_a_fallback() {
    let h = start(ROUTES).await;
    let r = h.post("/v1/chat/completions", &openai_body("fb", false)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.target(), "oa/gpt-ok");
    // claude-500 twice (one retry), gpt-sseerr once, gpt-ok once.
    assert_eq!(r.attempts(), "4");
    assert_eq!(r.fallback(), "true");
    assert_eq!(r.body["object"], "chat.completion");
    assert_eq!(r.body["model"], "gpt-ok", "the answer names the model that served it, not the route");
    assert!(r.body["choices"][0]["message"]["content"].as_str().unwrap().contains("gpt-ok"));
    assert_eq!(r.body["choices"][0]["finish_reason"], "stop");
    assert!(r.body["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(h.upstream.calls("claude-500"), 2);
}

#[tokio::test]
async fn openai_streaming_through_a_fallback() {
    let h = start(ROUTES).await;
    let mut body = openai_body("fb", true);
    body["stream_options"] = json!({ "include_usage": true });
    let r = h.stream("/v1/chat/completions", &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/event-stream");
    assert_eq!(r.header("x-switchyard-target"), "oa/gpt-ok");
    assert_eq!(r.header("x-switchyard-attempts"), "4");
    assert_eq!(r.header("x-switchyard-fallback"), "true");
    assert!(r.openai_text().contains("gpt-ok"), "{}", r.text);
    let data = r.data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{}", r.text);
}

#[tokio::test]
async fn anthropic_non_streaming_through_a_fallback() {
    let h = start(ROUTES).await;
    let r = h.post("/v1/messages", &anthropic_body("fb", false)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.target(), "oa/gpt-ok");
    assert_eq!(r.fallback(), "true");
    assert_eq!(r.body["type"], "message");
    assert_eq!(r.body["role"], "assistant");
    assert!(r.body["content"][0]["text"].as_str().unwrap().contains("gpt-ok"));
    assert_eq!(r.body["stop_reason"], "end_turn");
}

#[tokio::test]
async fn anthropic_streaming_through_a_fallback() {
    let h = start(ROUTES).await;
    let r = h.stream("/v1/messages", &anthropic_body("fb", true)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-switchyard-target"), "oa/gpt-ok");
    assert_eq!(r.header("x-switchyard-fallback"), "true");
    let events = r.events();
    assert_eq!(events.first().map(String::as_str), Some("message_start"));
    assert_eq!(events.last().map(String::as_str), Some("message_stop"));
    assert!(r.anthropic_text().contains("gpt-ok"));
}

#[tokio::test]
async fn a_clean_answer_is_no_fallback_and_one_attempt() {
    let h = start(ROUTES).await;
    for r in [h.chat("plain", "hi").await, h.message("plain", "hi").await] {
        assert_eq!(r.status, 200);
        assert_eq!((r.target(), r.attempts(), r.fallback()), ("an/claude-ok", "1", "false"));
    }
    // A retry on the same target is not a fallback.
    let r = h.chat("retry", "hi").await;
    assert_eq!((r.status, r.target(), r.attempts(), r.fallback()), (200, "oa/gpt-flaky1", "2", "false"));
}

#[tokio::test]
async fn a_target_id_as_model_reaches_that_target_alone_with_its_retries() {
    let h = start(ROUTES).await;
    let r = h.chat("an/claude-500", "hi").await;
    assert_eq!(r.status, 502);
    assert_eq!(r.attempts(), "2", "max_retries = 1 gives two calls and no fallback");
    assert_eq!(h.upstream.calls("gpt-ok"), 0);
    let r = h.message("oa/gpt-ok", "hi").await;
    assert_eq!((r.status, r.target()), (200, "oa/gpt-ok"));
}

#[tokio::test]
async fn models_lists_routes_and_target_ids() {
    let h = start(ROUTES).await;
    let r = reply(h.http.get(h.url("/v1/models")).bearer_auth(CLIENT_KEY).send().await.unwrap()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["object"], "list");
    let ids: Vec<&str> = r.body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    for id in ["fb", "plain", "retry", "an/claude-500", "oa/gpt-sseerr", "oa/gpt-ok", "an/claude-ok", "oa/gpt-flaky1"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert_eq!(ids.len(), 8);
}

#[tokio::test]
async fn metrics_count_requests_fallbacks_failures_tokens_and_latency() {
    let h = start(ROUTES).await;
    h.chat("fb", "hi").await;
    h.stream("/v1/chat/completions", &openai_body("plain", true)).await;
    let m = h.metrics().await;
    assert!(m.contains("switchyard_requests_total{route=\"fb\",status=\"200\"} 1"), "{m}");
    assert!(m.contains("switchyard_fallbacks_total{route=\"fb\"} 1"));
    assert!(m.contains("switchyard_failures_total{route=\"fb\",target=\"an/claude-500\",kind=\"server\"} 2"));
    assert!(m.contains("switchyard_attempts_total{route=\"fb\",target=\"oa/gpt-ok\",outcome=\"success\"} 1"));
    assert!(m.contains("switchyard_request_duration_seconds_count{route=\"fb\",target=\"oa/gpt-ok\"} 1"));
    assert!(m.contains("switchyard_first_chunk_seconds_count{route=\"plain\",target=\"an/claude-ok\"} 1"));
    assert!(m.contains("switchyard_requests_total{route=\"plain\",status=\"200\"} 1"));
    let out_tokens = m
        .lines()
        .find(|l| l.starts_with("switchyard_tokens_total{route=\"plain\",target=\"an/claude-ok\",direction=\"out\"}"))
        .unwrap();
    assert_ne!(out_tokens.rsplit(' ').next(), Some("0"), "{out_tokens}");
}
