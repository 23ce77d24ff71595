//! SPEC-2 section 9: one health record per target, shared by every route listing it and by direct
//! requests; `PATCH /admin/targets/{id}` changes a target everywhere.

use serde_json::json;

use crate::common::*;

const TWO_ROUTES: &str = r#"
[routes.a]
breaker = { failures = 2, cooldown = "60s" }
targets = [{ provider = "an", model = "claude-500", max_retries = 2 }, { provider = "oa", model = "gpt-ok" }]
[routes.b]
breaker = { failures = 2, cooldown = "60s" }
targets = [{ provider = "an", model = "claude-500" }, { provider = "an", model = "claude-ok" }]
"#;

#[tokio::test]
async fn failures_through_one_route_open_the_shared_breaker_for_the_other_route_and_direct_requests() {
    let h = start(TWO_ROUTES).await;
    // Its first call and one retry open the breaker, which cuts the second retry short.
    let r = h.chat("a", "hi").await;
    assert_eq!((r.status, r.target()), (200, "oa/gpt-ok"));
    assert_eq!(h.upstream.calls("claude-500"), 2);

    let r = h.chat("b", "hi").await;
    assert_eq!((r.status, r.target(), r.attempts()), (200, "an/claude-ok", "1"));
    assert_eq!(h.upstream.calls("claude-500"), 2, "route b skips the open target without a call");
    let routes = h.admin_get("/admin/routes").await.body;
    for route in routes["routes"].as_array().unwrap() {
        assert_eq!(route["targets"][0]["breaker"], "open", "{route}");
    }

    // A direct request to the open target (whose `max_retries = 2` comes from route a): one call
    // (never lost to breakers alone), no retries.
    let r = h.chat("an/claude-500", "hi").await;
    assert!(r.status >= 500, "{:?}", r.body);
    assert_eq!(h.upstream.calls("claude-500"), 3, "one last-resort call, not three");
}

#[tokio::test]
async fn direct_failures_open_the_breaker_for_the_routes() {
    let h = start(TWO_ROUTES).await;
    for _ in 0..2 {
        h.chat("an/claude-500", "hi").await;
    }
    let calls = h.upstream.calls("claude-500");
    let r = h.chat("a", "hi").await;
    assert_eq!((r.status, r.target(), r.attempts()), (200, "oa/gpt-ok", "1"));
    assert_eq!(h.upstream.calls("claude-500"), calls, "the route learned from the direct requests");
}

#[tokio::test]
async fn patching_a_target_disables_it_in_every_route_and_for_direct_requests() {
    let h = start(TWO_ROUTES).await;
    let r = h.admin_patch("/admin/targets/an%2Fclaude-ok", &json!({ "enabled": false })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, json!({ "id": "an/claude-ok", "enabled": false, "routes": ["b"], "direct": true }));

    let r = h.admin_patch("/admin/targets/oa%2Fgpt-ok", &json!({ "enabled": false })).await;
    assert_eq!(r.body["routes"], json!(["a"]));
    let r = h.admin_patch("/admin/targets/an%2Fclaude-500", &json!({ "enabled": false })).await;
    assert_eq!(r.body["routes"], json!(["a", "b"]));

    assert_eq!(h.chat("a", "hi").await.status, 503);
    assert_eq!(h.chat("b", "hi").await.status, 503);
    let r = h.chat("an/claude-ok", "hi").await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert!(r.body["error"]["message"].is_string(), "OpenAI shape: {:?}", r.body);
    let r = h.message("an/claude-500", "hi").await;
    assert_eq!((r.status, &r.body["type"]), (503, &json!("error")), "Anthropic shape: {:?}", r.body);
    assert_eq!(h.upstream.all_calls().values().sum::<u64>(), 0, "a disabled target is never called");

    // Written with its slash, the id works too; enabling applies everywhere again.
    let r = h.admin_patch("/admin/targets/an/claude-ok", &json!({ "enabled": true })).await;
    assert_eq!((r.status, &r.body["enabled"]), (200, &json!(true)));
    assert_eq!(h.chat("b", "hi").await.target(), "an/claude-ok");
    assert_eq!(h.chat("an/claude-ok", "hi").await.status, 200);
    let targets = &h.admin_get("/admin/routes").await.body["routes"][1]["targets"];
    assert_eq!(targets[1]["enabled"], true);
}

#[tokio::test]
async fn patching_an_unknown_target_is_a_404_with_a_request_id() {
    let h = start(TWO_ROUTES).await;
    let r = h.admin_patch("/admin/targets/nobody%2Fnothing", &json!({ "enabled": false })).await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("nobody/nothing"), "{:?}", r.body);
    assert!(!r.body["error"]["request_id"].as_str().unwrap().is_empty(), "{:?}", r.body);
    let r = h.admin_patch("/admin/targets/an%2Fclaude-ok", &json!({ "priority": 1 })).await;
    assert_eq!(r.status, 400, "only `enabled` is accepted: {:?}", r.body);
}
