//! Spreading traffic (SPEC-2 section 12) through the gateway: a tier shares traffic by weight; per-target
//! limits (through the router, no sockets needed) answer a 429 with `Retry-After` in the caller's API shape
//! when every target is at one, the attempts naming the limit (a request no target's `tpm` can ever take: 503);
//! routes listing one target share its limits.

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use serde_json::{Value, json};
use switchyard_gateway::config::Config;
use switchyard_gateway::server;
use switchyard_gateway::state::{AppState, HttpProviders};
use tower::ServiceExt;

use crate::common::CLIENT_KEY;

/// Two targets of one tier, each allowed one call a minute; their upstream refuses connections at once.
fn router() -> axum::Router {
    let text = format!(
        r#"
[server]
api_keys = ["{CLIENT_KEY}"]
[providers.oa]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
[routes.main]
balance = "weighted"
hedge = false
targets = [
  {{ provider = "oa", model = "a", priority = 1, weight = 3, rpm = 1 }},
  {{ provider = "oa", model = "b", priority = 1, rpm = 1 }},
]
"#
    );
    let config = Config::parse(&text, &|_| None, None).unwrap();
    server::router(Arc::new(AppState::build(&config, &HttpProviders::default()).unwrap()))
}

async fn send(router: &axum::Router, path: &str) -> (u16, Option<String>, Value) {
    let body = json!({ "model": "main", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] });
    let request = Request::post(path)
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, retry_after, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn every_target_at_its_limit_is_a_429_with_retry_after_in_both_api_shapes() {
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let router = router();
        let (status, _, first) = send(&router, path).await;
        assert_eq!(status, 502, "both targets were called and failed: {first}");
        let (status, retry_after, body) = send(&router, path).await;
        assert_eq!(status, 429, "{path}: {body}");
        let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
        // 60 s after the slot of the calls ends (a quarter second at most), rounded up.
        assert!((59..=61).contains(&secs), "{secs}");
        let error = &body["error"];
        if path == "/v1/messages" {
            assert_eq!(body["type"], "error");
            assert_eq!(error["type"], "rate_limit_error", "{body}");
        } else {
            assert_eq!(error["type"], "rate_limit_error", "{body}");
        }
        let attempts = error["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{body}");
        for attempt in attempts {
            assert_eq!(attempt["outcome"], "skipped");
            assert_eq!(attempt["reason"], "rpm limit 1 reached");
        }
    }
}

#[tokio::test]
async fn two_routes_listing_one_target_share_its_limit() {
    let text = format!(
        "[server]\napi_keys = [\"{CLIENT_KEY}\"]\n[providers.oa]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         [routes.one]\nhedge = false\ntargets = [{{ provider = \"oa\", model = \"a\", rpm = 1 }}]\n\
         [routes.two]\nhedge = false\ntargets = [{{ provider = \"oa\", model = \"a\", rpm = 1 }}]\n"
    );
    let config = Config::parse(&text, &|_| None, None).unwrap();
    let router = server::router(Arc::new(AppState::build(&config, &HttpProviders::default()).unwrap()));
    let send_to = |model: &'static str| {
        let body = json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] });
        Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {CLIENT_KEY}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let first = router.clone().oneshot(send_to("one")).await.unwrap();
    assert_eq!(first.status().as_u16(), 502, "the one call allowed was made (and failed)");
    for model in ["two", "oa/a"] {
        let next = router.clone().oneshot(send_to(model)).await.unwrap();
        assert_eq!(next.status().as_u16(), 429, "{model}: the target's minute is used up in every route");
    }
}

#[test]
fn limits_and_weights_must_be_at_least_one_and_balance_is_weighted_or_latency() {
    let parse = |target_extra: &str, route_extra: &str| {
        let text = format!(
            "[providers.oa]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n[routes.main]\n{route_extra}\n\
             targets = [{{ provider = \"oa\", model = \"a\"{target_extra} }}]\n"
        );
        Config::parse(&text, &|_| None, None).map(|_| ()).map_err(|e| e.to_string())
    };
    for key in ["weight", "rpm", "tpm", "max_concurrency"] {
        let err = parse(&format!(", {key} = 0"), "").unwrap_err();
        assert!(err.contains(&format!("routes.main.targets[0].{key}: must be 1 or more")), "{err}");
    }
    parse(", weight = 2, rpm = 600, tpm = 100000, max_concurrency = 8", "balance = \"latency\"").unwrap();
    let text = "[providers.oa]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n[routes.main]\n\
                targets = [{ provider = \"oa\", model = \"a\", priority = 1, weight = 3, rpm = 600 }, \
                { provider = \"oa\", model = \"b\", priority = 1, max_concurrency = 8 }]\n";
    let lines: Vec<String> =
        Config::parse(text, &|_| None, None).unwrap().readiness().into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        lines,
        [
            "route main: oa/a ready (tier of 2 by weighted, weight 3; rpm 600)",
            "route main: oa/b ready (tier of 2 by weighted, weight 1; max_concurrency 8)"
        ]
    );
    let err = parse("", "balance = \"ordered\"").unwrap_err();
    assert!(err.contains("balance"), "{err}");
}

#[tokio::test]
async fn a_tier_in_config_shares_traffic_by_weight() {
    let h = crate::common::start(
        r#"
[routes.spread]
hedge = false
targets = [
  { provider = "oa", model = "light", priority = 1 },
  { provider = "oa", model = "heavy", priority = 1, weight = 3 },
  { provider = "oa", model = "never", priority = 2 },
]
"#,
    )
    .await;
    for _ in 0..400 {
        assert_eq!(h.chat("spread", "hi").await.status, 200);
    }
    let heavy = h.upstream.calls("heavy");
    assert_eq!(h.upstream.calls("light") + heavy, 400);
    assert_eq!(h.upstream.calls("never"), 0);
    // 75% expected; 400 samples have a standard deviation of about 2 points.
    assert!((260..=340).contains(&heavy), "weight 3 of 4 got {heavy} of 400");
}

#[tokio::test]
async fn a_request_larger_than_every_targets_tpm_is_a_503_not_a_429() {
    let text = format!(
        r#"
[server]
api_keys = ["{CLIENT_KEY}"]
[providers.oa]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
[routes.main]
targets = [
  {{ provider = "oa", model = "a", tpm = 100 }},
  {{ provider = "oa", model = "b", tpm = 5 }},
]
"#
    );
    let config = Config::parse(&text, &|_| None, None).unwrap();
    let router = server::router(Arc::new(AppState::build(&config, &HttpProviders::default()).unwrap()));
    // Its reservation (the prompt's estimate + max_tokens 200) is larger than either target's tpm.
    let body = json!({ "model": "main", "max_tokens": 200, "messages": [{ "role": "user", "content": "hi" }] });
    let request = Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let (status, retry_after) = (response.status().as_u16(), response.headers().get("retry-after").cloned());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!((status, retry_after), (503, None), "it can never fit, so no Retry-After: {body}");
    let attempts = body["error"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{body}");
    assert!(attempts.iter().all(|a| a["outcome"] == "skipped"), "{body}");
    assert_eq!(attempts[0]["reason"], "the request's token estimate alone exceeds its tpm limit of 100", "{body}");
}
