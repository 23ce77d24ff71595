//! Errors that need a socket: a committed stream that breaks ends with the API's error event. The statuses of
//! SPEC section 5's error list are tested through the router, in `statuses.rs`.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_committed_stream_that_breaks_ends_with_the_apis_error_event() {
    let h = start("[routes.brk]\ntargets = [{ provider = \"an\", model = \"claude-break2\" }, { provider = \"oa\", model = \"gpt-ok\" }]").await;
    let r = h
        .stream(
            "/v1/chat/completions",
            &json!({ "model": "brk", "stream": true, "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(r.status, 200);
    let data = r.data();
    assert!(!data.iter().any(|d| d == "[DONE]"), "{}", r.text);
    let last: serde_json::Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{}", r.text);
    assert!(!r.openai_text().is_empty());

    let r = h
        .stream(
            "/v1/messages",
            &json!({ "model": "brk", "stream": true, "max_tokens": 100, "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    let events = r.events();
    assert_eq!(events.last().map(String::as_str), Some("error"), "{}", r.text);
    assert!(!events.iter().any(|e| e == "message_stop"));
}
