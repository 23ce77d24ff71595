//! Every status of SPEC section 5's error list, in the caller's API shape.

use serde_json::json;

use crate::common::*;

const ROUTES: &str = r#"
[routes.down]
backoff = { kind = "linear", base = "1ms" }
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-503" }]
[routes.limited]
targets = [{ provider = "an", model = "claude-429" }, { provider = "oa", model = "gpt-429" }]
[routes.invalid]
targets = [{ provider = "oa", model = "gpt-400" }, { provider = "an", model = "claude-ok" }]
[routes.slow]
timeouts = { first_chunk = "200ms" }
targets = [{ provider = "oa", model = "gpt-hang" }]
[routes.ok]
targets = [{ provider = "oa", model = "gpt-ok" }]
"#;

#[tokio::test]
async fn all_failed_is_502_listing_every_attempt_in_both_shapes() {
    let h = start(ROUTES).await;
    let r = h.chat("down", "hi").await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert_eq!(r.attempts(), "2");
    let attempts = r.body["error"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["target"], "an/claude-500");
    assert_eq!(attempts[1]["target"], "oa/gpt-503");
    assert_eq!(attempts[1]["kind"], "server");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("all targets failed"));
    assert_eq!(r.body["error"]["request_id"], r.header("x-request-id"));

    let r = h.message("down", "hi").await;
    assert_eq!(r.status, 502);
    assert_eq!(r.body["type"], "error");
    assert_eq!(r.body["error"]["type"], "api_error");
    assert_eq!(r.body["error"]["attempts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn all_rate_limited_is_429_with_retry_after() {
    let h = start(ROUTES).await;
    let r = h.chat("limited", "hi").await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.header("retry-after"), "1");
    assert_eq!(r.body["error"]["type"], "rate_limit_error");
    let r = h.message("limited", "hi").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn an_invalid_request_is_the_upstreams_400_at_once_without_fallback() {
    let h = start(ROUTES).await;
    let r = h.chat("invalid", "hi").await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    assert_eq!(h.upstream.calls("gpt-400"), 1);
    assert_eq!(h.upstream.calls("claude-ok"), 0, "an invalid request must not fall back");
}

#[tokio::test]
async fn upstreams_that_all_time_out_give_504() {
    let h = start(ROUTES).await;
    let r = h.chat("slow", "hi").await;
    assert_eq!(r.status, 504, "{:?}", r.body);
    assert_eq!(r.body["error"]["attempts"][0]["kind"], "timeout");
}

#[tokio::test]
async fn malformed_bodies_are_400_and_the_server_keeps_serving() {
    let h = start(ROUTES).await;
    let bad: [(&str, &str); 6] = [
        ("/v1/chat/completions", "this is not json"),
        ("/v1/chat/completions", "{\"model\": \"ok\""),
        ("/v1/chat/completions", "{\"model\": \"ok\"}"),
        ("/v1/chat/completions", "{\"model\": \"ok\", \"messages\": \"hello\"}"),
        ("/v1/chat/completions", "[1, 2, 3]"),
        ("/v1/messages", "{\"model\": \"ok\", \"max_tokens\": 10}"),
    ];
    for (path, body) in bad {
        let r = h.post_raw(path, body).await;
        assert_eq!(r.status, 400, "{path} {body}: {:?}", r.body);
        let message = if path == "/v1/messages" {
            assert_eq!(r.body["type"], "error");
            r.body["error"]["message"].as_str().unwrap().to_owned()
        } else {
            r.body["error"]["message"].as_str().unwrap().to_owned()
        };
        assert!(!message.is_empty());
    }
    // The missing field is named.
    let r = h.post_raw("/v1/messages", bad[5].1).await;
    assert!(r.body["error"]["message"].as_str().unwrap().contains("messages"), "{:?}", r.body);
    let r = h.chat("ok", "still there?").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_body_over_max_body_is_413() {
    let h = start_with(&format!("api_keys = [\"{CLIENT_KEY}\"]\nmax_body = \"1KiB\""), ROUTES).await;
    let big = "x".repeat(2000);
    let r = h.chat("ok", &big).await;
    assert_eq!(r.status, 413, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("max_body"));
    let r = h.message("ok", &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["error"]["type"], "request_too_large");
    assert_eq!(h.chat("ok", "small").await.status, 200);
}

#[tokio::test]
async fn an_unknown_route_is_404() {
    let h = start(ROUTES).await;
    let r = h.chat("nope", "hi").await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("unknown model \"nope\""));
    let r = h.message("nope", "hi").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn an_unknown_endpoint_is_404_unknown_endpoint_naming_it_and_listing_the_supported_ones() {
    let h = start(ROUTES).await;
    assert_eq!(h.chat("nope", "hi").await.body["error"]["code"], "model_not_found");
    for path in ["/v1/embeddings", "/v1/messages/batches", "/nothing"] {
        let r = h.post(path, &serde_json::json!({ "model": "ok", "input": "hi" })).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body["error"]["code"], "unknown_endpoint", "{path}");
        assert_eq!(r.body["error"]["type"], "invalid_request_error");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(path) && message.contains("POST /v1/chat/completions"), "{message}");
    }
}

#[tokio::test]
async fn wrong_or_missing_keys_are_401_and_never_echoed() {
    let h = start(ROUTES).await;
    let body = json!({ "model": "ok", "messages": [{ "role": "user", "content": "hi" }] });
    let url = h.url("/v1/chat/completions");
    let cases = [
        h.http.post(&url).json(&body),
        h.http.post(&url).bearer_auth("wrong-key-789").json(&body),
        h.http.post(&url).header("x-api-key", "wrong-key-789").json(&body),
        h.http.post(&url).header("authorization", CLIENT_KEY).json(&body),
    ];
    for request in cases {
        let r = reply(request.send().await.unwrap()).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.body["error"]["type"], "authentication_error");
        assert!(!r.body.to_string().contains("wrong-key-789"));
    }
    let r = reply(h.http.post(h.url("/v1/messages")).json(&body).send().await.unwrap()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["type"], "error");
    // x-api-key works as well as Bearer.
    let r = reply(h.http.post(&url).header("x-api-key", CLIENT_KEY).json(&body).send().await.unwrap()).await;
    assert_eq!(r.status, 200);
    // The admin API wants the admin key, not a client key.
    let r = reply(h.http.get(h.url("/admin/routes")).bearer_auth(CLIENT_KEY).send().await.unwrap()).await;
    assert_eq!(r.status, 401);
    // /health and /metrics need no key.
    assert_eq!(h.http.get(h.url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(h.http.get(h.url("/metrics")).send().await.unwrap().status(), 200);
    assert!(h.metrics().await.contains("switchyard_rejected_total{status=\"401\"} 6"));
}

#[tokio::test]
async fn without_an_admin_key_the_admin_api_is_403() {
    let h = start_with("", ROUTES).await;
    let r = h.admin_get("/admin/routes").await;
    assert_eq!(r.status, 403);
    // And with no api_keys, clients need none.
    let r = reply(
        h.http
            .post(h.url("/v1/chat/completions"))
            .json(&json!({ "model": "ok", "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
}

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
