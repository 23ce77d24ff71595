//! Client disconnects, graceful shutdown, health, and the demo.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_cancels_the_upstream_call() {
    let h = start("[routes.stall]\ntargets = [{ provider = \"oa\", model = \"gpt-stall2\" }]").await;
    let response = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({ "model": "stall", "stream": true, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("data: "));
    assert_eq!(h.live_streams.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    drop(body);
    eventually("the upstream stream is dropped", || h.live_streams.0.load(std::sync::atomic::Ordering::SeqCst) == 0)
        .await;
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = h.metrics().await;
        if metrics.contains("switchyard_requests_total{route=\"stall\",status=\"499\"} 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(metrics.contains("switchyard_requests_total{route=\"stall\",status=\"499\"} 1"), "{metrics}");
    assert!(metrics.contains("switchyard_in_flight{route=\"stall\"} 0"));
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_stops_accepting() {
    let h = start("[routes.slow]\ntargets = [{ provider = \"oa\", model = \"gpt-slow300\" }]").await;
    let url = h.url("/v1/chat/completions");
    let http = h.http.clone();
    let in_flight = tokio::spawn(async move {
        http.post(url)
            .bearer_auth(CLIENT_KEY)
            .json(&json!({ "model": "slow", "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    eventually("the request reached the upstream", || h.upstream.calls("gpt-slow300") == 1).await;
    let addr = h.gateway.addr;
    h.gateway.shutdown().await.unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap(), 200, "the in-flight request finished");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no new connections after shutdown");
}

#[tokio::test]
async fn health_says_degraded_when_a_route_has_no_enabled_target() {
    let h = start("[routes.one]\ntargets = [{ provider = \"oa\", model = \"gpt-ok\" }]").await;
    let r = reply(h.http.get(h.url("/health")).send().await.unwrap()).await;
    assert_eq!((r.status, &r.body["status"]), (200, &json!("ok")));
    h.admin_patch("/admin/routes/one/targets/oa%2Fgpt-ok", &json!({ "enabled": false })).await;
    let r = reply(h.http.get(h.url("/health")).send().await.unwrap()).await;
    assert_eq!((r.status, &r.body["status"]), (503, &json!("degraded")));
    let r = h.chat("one", "hi").await;
    assert_eq!(r.status, 503, "{:?}", r.body);
}

#[tokio::test]
async fn the_demo_passes_every_step() {
    assert!(switchyard_gateway::commands::demo::run().await.unwrap());
}

#[tokio::test]
async fn a_client_that_disconnects_before_the_answer_cancels_the_request() {
    let h = start("[routes.slow]\ntargets = [{ provider = \"oa\", model = \"gpt-slow3000\" }]").await;
    let url = h.url("/v1/chat/completions");
    let http = h.http.clone();
    let call = tokio::spawn(async move {
        http.post(url)
            .bearer_auth(CLIENT_KEY)
            .json(&json!({ "model": "slow", "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
            .await
    });
    eventually("the request reached the upstream", || h.upstream.calls("gpt-slow3000") == 1).await;
    call.abort();
    let mut stats = serde_json::Value::Null;
    for _ in 0..150 {
        stats = h.admin_get("/admin/stats").await.body;
        if stats["cancelled"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stats["cancelled"], 1, "cancelled well before the upstream's 3 s answer: {stats}");
    assert_eq!(stats["success"], 0);
    let m = h.metrics().await;
    assert!(m.contains("switchyard_requests_total{route=\"slow\",status=\"499\"} 1"), "{m}");
    assert!(m.contains("switchyard_in_flight{route=\"slow\"} 0"), "{m}");
}
