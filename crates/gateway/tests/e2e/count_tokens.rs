//! `POST /v1/messages/count_tokens`: forwarded to the route's first Anthropic target that can count (falling
//! back across them), else the gateway's estimate.

use serde_json::{Value, json};

use crate::common::*;

const ROUTES: &str = r#"
[routes.mixed]
targets = [{ provider = "oa", model = "gpt-ok" }, { provider = "an", model = "claude-500" }, { provider = "an", model = "claude-ok" }]
[routes.openai_only]
targets = [{ provider = "oa", model = "gpt-ok" }]
"#;

fn body(model: &str) -> Value {
    json!({ "model": model, "system": "You are terse.",
        "messages": [{ "role": "user", "content": "count these five words" }],
        "tools": [{ "name": "clock", "input_schema": { "type": "object", "properties": {} } }] })
}

#[tokio::test]
async fn count_tokens_is_forwarded_to_the_first_anthropic_target_that_answers() {
    let h = start(ROUTES).await;
    let r = h.post("/v1/messages/count_tokens", &body("mixed")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The simulated upstream counts words (3 + 4) and one per tool.
    assert_eq!(r.body, json!({ "input_tokens": 8 }));
    assert_eq!(r.target(), "an/claude-ok");
    assert_eq!((h.upstream.calls("claude-500"), h.upstream.calls("claude-ok"), h.upstream.calls("gpt-ok")), (1, 1, 0));
}

#[tokio::test]
async fn count_tokens_without_an_anthropic_target_is_the_gateways_estimate() {
    let h = start(ROUTES).await;
    let r = h.post("/v1/messages/count_tokens", &body("openai_only")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tokens = r.body["input_tokens"].as_u64().unwrap();
    assert!((10..100).contains(&tokens), "{tokens}");
    assert!(r.headers.get("x-switchyard-target").is_none());
    assert_eq!(h.upstream.calls("gpt-ok"), 0);

    let r = h.post("/v1/messages/count_tokens", &body("nope")).await;
    assert_eq!((r.status, &r.body["error"]["type"]), (404, &json!("not_found_error")));
}
