//! Concurrent load with a flaky primary: every request answered, stats exact.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_requests_at_32_concurrent_with_a_flaky_primary() {
    const REQUESTS: usize = 2000;
    const FLAKY: u64 = 500;
    let h = Arc::new(
        start(&format!(
            // The breaker would stop calling the flaky primary after 5 failures, and a hedge would call the
            // secondary for a slow answer; this test wants every call to the primary and no other.
            "[routes.load]\nbreaker = {{ enabled = false }}\nhedge = false\ntargets = [{{ provider = \"oa\", model = \"gpt-flaky{FLAKY}\" }}, {{ provider = \"an\", model = \"claude-ok\" }}]"
        ))
        .await,
    );
    let results: Vec<(u16, String)> = futures::stream::iter(0..REQUESTS)
        .map(|i| {
            let h = h.clone();
            async move {
                if i % 2 == 0 {
                    let r = h.chat("load", "hi").await;
                    (r.status, r.target().to_owned())
                } else {
                    let r = h
                        .stream(
                            "/v1/chat/completions",
                            &json!({ "model": "load", "stream": true, "messages": [{ "role": "user", "content": "hi" }] }),
                        )
                        .await;
                    let done = r.data().last().map(String::as_str) == Some("[DONE]");
                    (if done { r.status } else { 0 }, r.header("x-switchyard-target").to_owned())
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(results.iter().all(|(status, _)| *status == 200), "every request answered");
    let fell_back = results.iter().filter(|(_, t)| t == "an/claude-ok").count();
    assert_eq!(fell_back, FLAKY as usize);

    let s = h.admin_get("/admin/stats").await.body;
    let route = &s["routes"]["load"];
    assert_eq!(route["total"], REQUESTS);
    assert_eq!(route["success"], REQUESTS);
    assert_eq!(route["failed"], 0);
    assert_eq!(route["cancelled"], 0);
    assert_eq!(route["fallbacks"], FLAKY);
    let primary = &route["targets"][format!("oa/gpt-flaky{FLAKY}")];
    assert_eq!(primary["attempts"], REQUESTS);
    assert_eq!(primary["failures"]["server"], FLAKY);
    assert_eq!(primary["usage"], REQUESTS as u64 - FLAKY);
    assert_eq!(route["targets"]["an/claude-ok"]["usage"], FLAKY);
    assert_eq!(h.upstream.calls(&format!("gpt-flaky{FLAKY}")), REQUESTS as u64);

    let m = h.metrics().await;
    assert!(m.contains(&format!("switchyard_requests_total{{route=\"load\",status=\"200\"}} {REQUESTS}")), "{m}");
    assert!(m.contains(&format!("switchyard_fallbacks_total{{route=\"load\"}} {FLAKY}")));
    assert!(m.contains("switchyard_in_flight{route=\"load\"} 0"));
}
