//! Failover as a client reading the answer sees it (issue 11): the answer names the model that served it.

use serde_json::{Value, json};

use crate::common::*;

const FALLBACK: &str = r#"
[routes.fb]
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-ok" }]
[routes.fb_ka]
keepalive = "50ms"
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-ok" }]
[routes.fb_an]
targets = [{ provider = "oa", model = "gpt-503" }, { provider = "an", model = "claude-ok" }]
"#;

fn openai_body(model: &str, stream: bool) -> Value {
    json!({ "model": model, "stream": stream, "messages": [{ "role": "user", "content": "hello" }] })
}

fn anthropic_body(model: &str, stream: bool) -> Value {
    json!({ "model": model, "stream": stream, "max_tokens": 100, "messages": [{ "role": "user", "content": "hello" }] })
}

/// The target id's model part (`provider/model`).
fn model_of_target(target: &str) -> &str {
    target.split_once('/').map_or(target, |(_, model)| model)
}

#[tokio::test]
async fn after_a_fallback_the_whole_answer_names_the_fallbacks_model_in_both_apis() {
    let h = start(FALLBACK).await;
    for (route, served) in [("fb", "gpt-ok"), ("fb_an", "claude-ok")] {
        let r = h.post("/v1/chat/completions", &openai_body(route, false)).await;
        assert_eq!((r.status, r.fallback()), (200, "true"), "{:?}", r.body);
        assert_eq!(r.body["model"], served, "{:?}", r.body);
        assert_eq!(model_of_target(r.target()), served);
        let r = h.post("/v1/messages", &anthropic_body(route, false)).await;
        assert_eq!((r.status, r.fallback()), (200, "true"), "{:?}", r.body);
        assert_eq!(r.body["model"], served, "{:?}", r.body);
        assert_eq!(model_of_target(r.target()), served);
        assert!(r.body["usage"]["output_tokens"].as_u64().unwrap() > 0, "usage stays on fallback answers");
    }
}

#[tokio::test]
async fn after_a_fallback_every_openai_chunk_names_the_fallbacks_model() {
    let h = start(FALLBACK).await;
    for (route, served) in [("fb", "gpt-ok"), ("fb_an", "claude-ok")] {
        let mut body = openai_body(route, true);
        body["stream_options"] = json!({ "include_usage": true });
        let r = h.stream("/v1/chat/completions", &body).await;
        assert_eq!((r.status, r.header("x-switchyard-fallback")), (200, "true"), "{}", r.text);
        assert_eq!(model_of_target(r.header("x-switchyard-target")), served);
        let chunks: Vec<Value> = r.data().iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
        assert!(chunks.len() >= 3, "at least the text, the finish and the usage: {}", r.text);
        assert!(chunks.iter().all(|c| c["model"] == served), "{}", r.text);
        assert!(chunks.last().unwrap()["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{}", r.text);
    }
}

#[tokio::test]
async fn after_a_fallback_the_anthropic_message_start_names_the_fallbacks_model() {
    let h = start(FALLBACK).await;
    for (route, served) in [("fb", "gpt-ok"), ("fb_an", "claude-ok")] {
        let r = h.stream("/v1/messages", &anthropic_body(route, true)).await;
        assert_eq!((r.status, r.header("x-switchyard-fallback")), (200, "true"), "{}", r.text);
        assert_eq!(model_of_target(r.header("x-switchyard-target")), served);
        let start: Value = serde_json::from_str(&r.data()[0]).unwrap();
        assert_eq!(start["type"], "message_start");
        assert_eq!(start["message"]["model"], served, "{}", r.text);
    }
}

#[tokio::test]
async fn on_a_keepalive_route_the_stream_names_the_model_that_served_too() {
    let h = start(FALLBACK).await;
    let r = h.stream("/v1/chat/completions", &openai_body("fb_ka", true)).await;
    assert!(r.text.contains("x-switchyard-target=oa/gpt-ok"), "{}", r.text);
    let chunks: Vec<Value> = r.data().iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
    assert!(!chunks.is_empty() && chunks.iter().all(|c| c["model"] == "gpt-ok"), "{}", r.text);
    let r = h.stream("/v1/messages", &anthropic_body("fb_ka", true)).await;
    let start: Value = serde_json::from_str(&r.data()[0]).unwrap();
    assert_eq!(start["message"]["model"], "gpt-ok", "{}", r.text);
}

const MALFORMED: &str = r#"
[routes.one_bad]
targets = [{ provider = "oa", model = "gpt-badchunk1" }, { provider = "an", model = "claude-ok" }]
[routes.one_bad_an]
targets = [{ provider = "an", model = "claude-badchunk1" }, { provider = "oa", model = "gpt-ok" }]
[routes.ten_bad]
targets = [{ provider = "oa", model = "gpt-badchunk10" }, { provider = "an", model = "claude-ok" }]
"#;

#[tokio::test]
async fn a_stream_with_one_malformed_event_completes_with_the_full_text_and_counts_it() {
    let h = start(MALFORMED).await;
    let r = h.stream("/v1/chat/completions", &openai_body("one_bad", true)).await;
    assert_eq!(r.data().last().map(String::as_str), Some("[DONE]"), "{}", r.text);
    assert_eq!(r.openai_text(), "Hello! This is gpt-badchunk1 answering from the simulated upstream.");
    assert_eq!(r.header("x-switchyard-attempts"), "1");
    let r = h.stream("/v1/messages", &anthropic_body("one_bad_an", true)).await;
    assert_eq!(r.events().last().map(String::as_str), Some("message_stop"), "{}", r.text);
    assert_eq!(r.anthropic_text(), "Hello! This is claude-badchunk1 answering from the simulated upstream.");
    let m = h.metrics().await;
    for (route, target) in [("one_bad", "oa/gpt-badchunk1"), ("one_bad_an", "an/claude-badchunk1")] {
        let line = format!("switchyard_stream_events_skipped_total{{route=\"{route}\",target=\"{target}\"}} 1");
        assert!(m.contains(&line), "{line} in {m}");
    }
    assert!(m.contains("switchyard_stream_events_skipped_total{route=\"ten_bad\",target=\"oa/gpt-badchunk10\"} 0"));
    // One counter, two views: the engine's stats say the same.
    let stats = h.admin_get("/admin/stats").await.body;
    assert_eq!(stats["routes"]["one_bad"]["targets"]["oa/gpt-badchunk1"]["events_skipped"], 1, "{stats}");
}

#[tokio::test]
async fn ten_malformed_events_in_a_row_fail_a_committed_stream_with_a_typed_error() {
    let h = start(MALFORMED).await;
    let r = h.stream("/v1/chat/completions", &openai_body("ten_bad", true)).await;
    assert_eq!(r.status, 200);
    assert!(!r.data().iter().any(|d| d == "[DONE]"), "{}", r.text);
    let last: Value = serde_json::from_str(r.data().last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "invalid_upstream_response", "{}", r.text);
    assert_eq!(r.openai_text(), "Hello! ", "the first chunk went out before the bad run");
    assert_eq!(h.upstream.calls("claude-ok"), 0, "after commit there is no fallback (after_commit = error)");
}

#[tokio::test]
async fn a_silent_target_is_called_once_unless_the_route_retries_timeouts() {
    let h = start(
        r#"
[routes.silent]
timeouts = { first_chunk = "300ms" }
backoff = { kind = "linear", base = "1ms" }
targets = [{ provider = "oa", model = "gpt-hang", max_retries = 2 }, { provider = "an", model = "claude-ok" }]
[routes.patient]
retry_timeouts = true
timeouts = { first_chunk = "300ms" }
backoff = { kind = "linear", base = "1ms" }
targets = [{ provider = "an", model = "claude-hang", max_retries = 2 }, { provider = "oa", model = "gpt-ok" }]
"#,
    )
    .await;
    let r = h.chat("silent", "hi").await;
    assert_eq!((r.status, r.target(), r.attempts()), (200, "an/claude-ok", "2"), "{:?}", r.body);
    assert_eq!(h.upstream.calls("gpt-hang"), 1);
    let r = h.stream("/v1/chat/completions", &openai_body("patient", true)).await;
    assert_eq!((r.status, r.header("x-switchyard-target")), (200, "oa/gpt-ok"), "{}", r.text);
    assert_eq!(h.upstream.calls("claude-hang"), 3);
}

#[tokio::test]
async fn a_content_filter_refusal_is_answered_at_once_as_a_400_unless_the_route_falls_back() {
    let h = start(
        r#"
[routes.strict]
targets = [{ provider = "oa", model = "gpt-filter", max_retries = 2 }, { provider = "an", model = "claude-ok" }]
[routes.strict_an]
targets = [{ provider = "an", model = "claude-filter", max_retries = 2 }, { provider = "oa", model = "gpt-ok" }]
[routes.lenient]
on_content_filter = "fallback"
targets = [{ provider = "oa", model = "gpt-filter", max_retries = 2 }, { provider = "an", model = "claude-ok" }]
"#,
    )
    .await;
    for streaming in [false, true] {
        let r = h.post("/v1/chat/completions", &openai_body("strict", streaming)).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert_eq!(r.body["error"]["code"], "content_filter");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("content management policy"), "{:?}", r.body);
        assert_eq!((r.attempts(), r.body["error"]["attempts"][0]["target"].as_str()), ("1", Some("oa/gpt-filter")));
        let r = h.post("/v1/messages", &anthropic_body("strict_an", streaming)).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert_eq!(
            (r.body["type"].as_str(), r.body["error"]["code"].as_str()),
            (Some("error"), Some("content_filter"))
        );
        assert!(r.body["error"]["message"].as_str().unwrap().contains("refus"), "{:?}", r.body);
        // Like every 400 after a call, it says what was tried (SPEC-2 section 14).
        assert_eq!(r.attempts(), "1", "{:?}", r.body);
        let attempts = r.body["error"]["attempts"].as_array().unwrap();
        assert_eq!((attempts.len(), attempts[0]["target"].as_str()), (1, Some("an/claude-filter")), "{:?}", r.body);
        assert_eq!(
            (attempts[0]["outcome"].as_str(), attempts[0]["kind"].as_str()),
            (Some("failed"), Some("content_filtered"))
        );
    }
    assert_eq!((h.upstream.calls("gpt-filter"), h.upstream.calls("claude-filter")), (2, 2), "one call per request");
    assert_eq!(h.upstream.calls("claude-ok") + h.upstream.calls("gpt-ok"), 0, "no fallback");

    let r = h.chat("lenient", "hi").await;
    assert_eq!((r.status, r.target(), r.attempts()), (200, "an/claude-ok", "2"), "{:?}", r.body);
    assert_eq!(h.upstream.calls("gpt-filter"), 3);
}
