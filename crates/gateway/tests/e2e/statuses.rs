//! Every status of SPEC section 5's error list, in the caller's API shape, with the request id; auth (401, 403),
//! 404, 405 and 413. Through the router with in-process models: sockets add nothing here (streams, disconnects,
//! proxies and shutdown keep their socket tests).

use std::time::Duration;

use serde_json::json;
use switchyard::Error;
use switchyard_sim::{Behavior, SimModel};

use crate::in_process::*;

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

/// The models of `ROUTES`, by name; the last two are `gpt-400` and `claude-ok`, for counting calls.
fn models() -> Vec<SimModel> {
    let limited = || Error::rate_limited("slow down", Some(Duration::from_secs(1)));
    vec![
        SimModel::failing("claude-500", Error::server(500, "boom")),
        SimModel::failing("gpt-503", Error::server(503, "unavailable")),
        SimModel::failing("claude-429", limited()),
        SimModel::failing("gpt-429", limited()),
        SimModel::new("gpt-hang").then_default(Behavior::Hang),
        SimModel::failing("gpt-400", Error::invalid_request("bad request", None)),
        SimModel::replying("claude-ok", "hello"),
    ]
}

fn gateway() -> axum::Router {
    router(&keys(), ROUTES, models())
}

#[tokio::test]
async fn all_failed_is_502_listing_every_attempt_in_both_shapes() {
    let router = gateway();
    let r = chat(&router, "down", "hi").await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert_eq!(r.header("x-switchyard-attempts"), "2");
    let attempts = r.body["error"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["target"], "an/claude-500");
    assert_eq!(attempts[1]["target"], "oa/gpt-503");
    assert_eq!(attempts[1]["kind"], "server");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("all targets failed"));
    assert_eq!(r.body["error"]["request_id"], r.header("x-request-id"));

    let r = message(&router, "down", "hi").await;
    assert_eq!(r.status, 502);
    assert_eq!(r.body["type"], "error");
    assert_eq!(r.body["error"]["type"], "api_error");
    assert_eq!(r.body["error"]["attempts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn all_rate_limited_is_429_with_retry_after() {
    let router = gateway();
    let r = chat(&router, "limited", "hi").await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.header("retry-after"), "1");
    assert_eq!(r.body["error"]["type"], "rate_limit_error");
    let r = message(&router, "limited", "hi").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn an_invalid_request_is_the_upstreams_400_at_once_without_fallback() {
    let models = models();
    let (invalid, fallback) = (models[5].clone(), models[6].clone());
    let router = router(&keys(), ROUTES, models);
    let r = chat(&router, "invalid", "hi").await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    assert_eq!(invalid.calls(), 1);
    assert_eq!(fallback.calls(), 0, "an invalid request must not fall back");
}

#[tokio::test(start_paused = true)]
async fn upstreams_that_all_time_out_give_504() {
    let r = chat(&gateway(), "slow", "hi").await;
    assert_eq!(r.status, 504, "{:?}", r.body);
    assert_eq!(r.body["error"]["attempts"][0]["kind"], "timeout");
}

#[tokio::test]
async fn malformed_bodies_are_400_and_the_server_keeps_serving() {
    let router = gateway();
    let bad: [(&str, &str); 6] = [
        ("/v1/chat/completions", "this is not json"),
        ("/v1/chat/completions", "{\"model\": \"ok\""),
        ("/v1/chat/completions", "{\"model\": \"ok\"}"),
        ("/v1/chat/completions", "{\"model\": \"ok\", \"messages\": \"hello\"}"),
        ("/v1/chat/completions", "[1, 2, 3]"),
        ("/v1/messages", "{\"model\": \"ok\", \"max_tokens\": 10}"),
    ];
    for (path, body) in bad {
        let request = http::Request::post(path)
            .header("authorization", format!("Bearer {CLIENT_KEY}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        let r = call(&router, request).await;
        assert_eq!(r.status, 400, "{path} {body}: {:?}", r.body);
        if path == "/v1/messages" {
            assert_eq!(r.body["type"], "error");
            // The missing field is named.
            assert!(r.body["error"]["message"].as_str().unwrap().contains("messages"), "{:?}", r.body);
        }
        assert!(!r.body["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(chat(&router, "ok", "still there?").await.status, 200);
}

#[tokio::test]
async fn a_body_over_max_body_is_413() {
    let router = router(&format!("api_keys = [\"{CLIENT_KEY}\"]\nmax_body = \"1KiB\""), ROUTES, models());
    let big = "x".repeat(2000);
    let r = chat(&router, "ok", &big).await;
    assert_eq!(r.status, 413, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("max_body"));
    let r = message(&router, "ok", &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["error"]["type"], "request_too_large");
    assert_eq!(chat(&router, "ok", "small").await.status, 200);
}

#[tokio::test]
async fn an_unknown_route_is_404() {
    let router = gateway();
    let r = chat(&router, "nope", "hi").await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("unknown model \"nope\""));
    assert_eq!(r.body["error"]["code"], "model_not_found");
    let r = message(&router, "nope", "hi").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn an_unknown_endpoint_is_404_unknown_endpoint_naming_it_and_listing_the_supported_ones() {
    let router = gateway();
    for path in ["/v1/embeddings", "/v1/messages/batches", "/nothing"] {
        let body = json!({ "model": "ok", "input": "hi" });
        let r = call(&router, request("POST", path, Some(CLIENT_KEY), Some(&body))).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body["error"]["code"], "unknown_endpoint", "{path}");
        assert_eq!(r.body["error"]["type"], "invalid_request_error");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(path) && message.contains("POST /v1/chat/completions"), "{message}");
    }
}

#[tokio::test]
async fn wrong_or_missing_keys_are_401_and_never_echoed() {
    let router = gateway();
    let body = chat_body("ok", "hi");
    let with = |name: &str, value: &str| {
        let mut r = request("POST", "/v1/chat/completions", None, Some(&body));
        r.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        r
    };
    let cases = [
        request("POST", "/v1/chat/completions", None, Some(&body)),
        request("POST", "/v1/chat/completions", Some("wrong-key-789"), Some(&body)),
        with("x-api-key", "wrong-key-789"),
        with("authorization", CLIENT_KEY),
    ];
    for request in cases {
        let r = call(&router, request).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.body["error"]["type"], "authentication_error");
        assert!(!r.body.to_string().contains("wrong-key-789"));
    }
    let r = call(&router, request("POST", "/v1/messages", None, Some(&body))).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["type"], "error");
    // x-api-key works as well as Bearer.
    assert_eq!(call(&router, with("x-api-key", CLIENT_KEY)).await.status, 200);
    // The admin API wants the admin key, not a client key.
    assert_eq!(call(&router, request("GET", "/admin/routes", Some(CLIENT_KEY), None)).await.status, 401);
    // /health and /metrics need no key.
    assert_eq!(call(&router, request("GET", "/health", None, None)).await.status, 200);
    let metrics = call(&router, request("GET", "/metrics", None, None)).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.body.as_str().unwrap();
    assert!(text.contains("switchyard_rejected_total{status=\"401\"} 6"), "{text}");
}

#[tokio::test]
async fn without_an_admin_key_the_admin_api_is_403() {
    let router = router("", ROUTES, models());
    let r = admin_get(&router, "/admin/routes").await;
    assert_eq!(r.status, 403);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("server.admin_key"), "{:?}", r.body);
    // And with no api_keys, clients need none.
    let r = call(&router, request("POST", "/v1/chat/completions", None, Some(&chat_body("ok", "hi")))).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn the_request_id_is_the_callers_or_a_new_one() {
    let router = gateway();
    let traced = |mut request: http::Request<axum::body::Body>, id: &str| {
        request.headers_mut().insert("x-request-id", id.parse().unwrap());
        request
    };
    let r = call(
        &router,
        traced(
            request("POST", "/v1/chat/completions", Some(CLIENT_KEY), Some(&chat_body("nope", "hi"))),
            "my-trace-42",
        ),
    )
    .await;
    assert_eq!(r.header("x-request-id"), "my-trace-42");
    assert_eq!(r.body["error"]["request_id"], "my-trace-42");
    let a = chat(&router, "ok", "hi").await;
    let b = chat(&router, "ok", "hi").await;
    assert!(!a.header("x-request-id").is_empty());
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
    // Every other answer carries one too: a refused key, a wrong method, an unknown endpoint, the health check.
    let refused =
        call(&router, traced(request("POST", "/v1/messages", None, Some(&chat_body("ok", "hi"))), "t-401")).await;
    assert_eq!((refused.status, refused.header("x-request-id")), (401, "t-401"));
    assert_eq!(refused.body["request_id"], "t-401");
    assert_eq!(refused.body["type"], "error", "a refusal on /v1/messages is in Anthropic's shape");
    let wrong_method = call(&router, traced(request("GET", "/v1/messages", None, None), "t-405")).await;
    assert_eq!((wrong_method.status, wrong_method.header("x-request-id")), (405, "t-405"));
    assert_eq!(wrong_method.header("allow"), "POST");
    assert_eq!(wrong_method.body["type"], "error", "{:?}", wrong_method.body);
    assert_eq!(wrong_method.body["request_id"], "t-405");
    let wrong_method = call(&router, traced(request("PUT", "/v1/chat/completions", None, None), "t-405b")).await;
    assert_eq!((wrong_method.status, wrong_method.header("allow")), (405, "POST"));
    assert_eq!(wrong_method.body["error"]["request_id"], "t-405b", "{:?}", wrong_method.body);
    for path in ["/nope", "/health"] {
        let r = call(&router, traced(request("GET", path, None, None), "t-other")).await;
        assert_eq!(r.header("x-request-id"), "t-other", "{path}");
    }
}
