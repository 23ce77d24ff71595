//! Clients never see internal details: no upstream URL, no OS error, in any error answer or stream error
//! event of either API; the target id and the error kind are there instead.

use serde_json::json;

use crate::common::*;

/// Every way of reaching a broken upstream: a refused connection, and an answer that breaks off.
const ROUTES: &str = r#"
[providers.dead]
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
api_key = "k"
[routes.down]
backoff = { kind = "linear", base = "1ms" }
targets = [{ provider = "dead", model = "gpt-ok", max_retries = 0 }, { provider = "oa", model = "gpt-break0", max_retries = 0 }]
[routes.brk]
targets = [{ provider = "oa", model = "gpt-break2" }]
[routes.brk_an]
targets = [{ provider = "an", model = "claude-break2" }]
"#;

fn assert_no_internals(h: &Harness, what: &str, text: &str) {
    let upstream = h.upstream.url();
    let authority = upstream.trim_start_matches("http://").trim_end_matches('/');
    for secret in [authority, "127.0.0.1:1/", "os error", "http://"] {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

#[tokio::test]
async fn error_answers_name_targets_and_kinds_but_no_urls_or_os_errors() {
    let h = start(ROUTES).await;
    for (path, api) in [("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")] {
        for model in ["down", "brk", "brk_an"] {
            let body = json!({ "model": model, "max_tokens": 50, "messages": [{ "role": "user", "content": "hi" }] });
            let r = h.post(path, &body).await;
            assert_eq!(r.status, 502, "{api} {model}: {:?}", r.body);
            let text = r.body.to_string();
            assert_no_internals(&h, &format!("{api} {model} whole"), &text);
            assert!(text.contains("connection"), "the kind is named: {text}");

            let mut stream_body = body.clone();
            stream_body["stream"] = json!(true);
            let r = h.stream(path, &stream_body).await;
            assert_no_internals(&h, &format!("{api} {model} stream"), &r.text);
            assert!(r.text.contains("connection"), "the kind is named: {}", r.text);
        }
    }
    // The 502 still lists each target by id.
    let r = h.chat("down", "hi").await;
    let attempts = r.body["error"]["attempts"].as_array().unwrap();
    assert_eq!(
        (attempts[0]["target"].as_str(), attempts[0]["kind"].as_str()),
        (Some("dead/gpt-ok"), Some("connection"))
    );
}

#[tokio::test]
async fn an_unknown_model_name_is_echoed_truncated() {
    let h = start(ROUTES).await;
    let long = "m".repeat(100_000);
    let r = h.chat(&long, "hi").await;
    assert_eq!(r.status, 404);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.len() < 1000, "{} bytes", message.len());
    assert!(message.contains(&format!("\"{}…\"", "m".repeat(100))), "{message}");
}
