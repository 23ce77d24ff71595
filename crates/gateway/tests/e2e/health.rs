//! SPEC section 6 features wired through the gateway: breakers, deadlines, stream keep-alive.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn an_open_breaker_skips_the_target_without_a_call_and_shows_in_admin_and_metrics() {
    let h = start(
        r#"
[routes.main]
breaker = { failures = 2, cooldown = "60s" }
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-ok" }]
"#,
    )
    .await;
    for _ in 0..2 {
        let r = h.chat("main", "hi").await;
        assert_eq!((r.status, r.attempts(), r.fallback()), (200, "2", "true"));
    }
    let t = h.admin_get("/admin/routes").await.body["routes"][0]["targets"][0].clone();
    assert_eq!(t["id"], "an/claude-500");
    assert_eq!(t["breaker"], "open");
    assert!(t["last_failure"].is_string(), "{t}");
    assert!(t["last_recovery"].is_null());

    let r = h.chat("main", "hi").await;
    assert_eq!((r.status, r.target(), r.attempts(), r.fallback()), (200, "oa/gpt-ok", "1", "false"));
    assert_eq!(h.upstream.calls("claude-500"), 2, "an open breaker means no call");
    let s = h.admin_get("/admin/stats").await.body;
    assert_eq!(s["targets"]["an/claude-500"]["skipped"], 1);
    assert_eq!(s["targets"]["an/claude-500"]["attempts"], 2);
    let m = h.metrics().await;
    assert!(m.contains("switchyard_breaker_state{route=\"main\",target=\"an/claude-500\"} 1"), "{m}");
    assert!(m.contains("switchyard_breaker_state{route=\"main\",target=\"oa/gpt-ok\"} 0"));
    assert!(m.contains("switchyard_target_skipped_total{route=\"main\",target=\"an/claude-500\"} 1"), "{m}");
}

#[tokio::test]
async fn the_route_deadline_and_the_callers_deadline_give_504() {
    let h = start(
        r#"
[routes.bounded]
deadline = "300ms"
targets = [{ provider = "oa", model = "gpt-hang" }, { provider = "an", model = "claude-ok" }]
[routes.open]
targets = [{ provider = "oa", model = "gpt-slow2000" }]
"#,
    )
    .await;
    let r = h.chat("bounded", "hi").await;
    assert_eq!(r.status, 504, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("deadline"), "{:?}", r.body);

    let r = reply(
        h.http
            .post(h.url("/v1/messages"))
            .bearer_auth(CLIENT_KEY)
            .header("x-switchyard-deadline-ms", "200")
            .json(&json!({ "model": "open", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 504, "{:?}", r.body);
    assert_eq!(r.body["error"]["type"], "timeout_error");

    let r = reply(
        h.http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .header("x-switchyard-deadline-ms", "soon")
            .json(&json!({ "model": "open", "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("x-switchyard-deadline-ms"));
}

const KEEPALIVE: &str = r#"
[routes.ka]
keepalive = "50ms"
targets = [{ provider = "oa", model = "gpt-ttfb300" }]
[routes.ka_down]
keepalive = "50ms"
targets = [{ provider = "oa", model = "gpt-500" }]
"#;

#[tokio::test]
async fn keepalive_sends_comments_while_waiting_then_the_answer() {
    let h = start(KEEPALIVE).await;
    let r = h
        .stream(
            "/v1/chat/completions",
            &json!({ "model": "ka", "stream": true, "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text.starts_with(": keep-alive\n\n"), "{}", r.text);
    assert!(r.text.matches(": keep-alive").count() >= 2, "{}", r.text);
    assert!(
        r.text.contains(": x-switchyard-target=oa/gpt-ttfb300 x-switchyard-attempts=1 x-switchyard-fallback=false")
    );
    assert!(r.openai_text().contains("gpt-ttfb300"));
    assert_eq!(r.data().last().map(String::as_str), Some("[DONE]"));
    // Non-streaming requests on the route are answered as usual.
    let r = h.chat("ka", "hi").await;
    assert_eq!((r.status, r.target()), (200, "oa/gpt-ttfb300"));
}

#[tokio::test]
async fn with_keepalive_a_failure_before_the_first_chunk_is_an_in_stream_error() {
    let h = start(KEEPALIVE).await;
    let r = h
        .stream(
            "/v1/chat/completions",
            &json!({ "model": "ka_down", "stream": true, "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(r.status, 200);
    let data = r.data();
    assert!(!data.iter().any(|d| d == "[DONE]"));
    let last: serde_json::Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(last["error"]["message"].as_str().unwrap().contains("all targets failed"), "{}", r.text);

    let r = h
        .stream(
            "/v1/messages",
            &json!({ "model": "ka_down", "stream": true, "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(r.events().last().map(String::as_str), Some("error"), "{}", r.text);
    let m = h.metrics().await;
    assert!(m.contains("switchyard_requests_total{route=\"ka_down\",status=\"502\"} 2"), "{m}");
}

#[tokio::test]
async fn a_hedged_request_is_answered_by_the_second_target_when_the_first_is_slow() {
    let h = start(
        r#"
[routes.hedged]
hedge = { after = "100ms" }
targets = [{ provider = "oa", model = "gpt-slow3000" }, { provider = "an", model = "claude-ok" }]
"#,
    )
    .await;
    for streaming in [false, true] {
        let body = json!({ "model": "hedged", "stream": streaming, "messages": [{ "role": "user", "content": "hi" }] });
        let (status, target, attempts) = if streaming {
            let r = h.stream("/v1/chat/completions", &body).await;
            assert_eq!(r.data().last().map(String::as_str), Some("[DONE]"));
            (r.status, r.header("x-switchyard-target").to_owned(), r.header("x-switchyard-attempts").to_owned())
        } else {
            let r = h.post("/v1/chat/completions", &body).await;
            (r.status, r.target().to_owned(), r.attempts().to_owned())
        };
        assert_eq!((status, target.as_str(), attempts.as_str()), (200, "an/claude-ok", "2"), "stream: {streaming}");
    }
    let s = h.admin_get("/admin/stats").await.body;
    assert_eq!(s["targets"]["an/claude-ok"]["hedges"], 2, "{s}");
}

#[tokio::test]
async fn after_commit_continue_splices_only_a_fallback_that_verifiably_continues() {
    let h = start(
        r#"
[routes.cont]
after_commit = "continue"
targets = [{ provider = "an", model = "claude-break3" }, { provider = "oa", model = "gpt-ok" }]
[routes.cont4]
after_commit = "continue"
targets = [{ provider = "an", model = "claude-break4" }, { provider = "oa", model = "gpt-ok" }]
[routes.err]
targets = [{ provider = "an", model = "claude-break3" }, { provider = "oa", model = "gpt-ok" }]
"#,
    )
    .await;
    let body =
        |model: &str| json!({ "model": model, "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
    // The simulated fallback does not continue a partial answer: it starts its greeting again. After
    // "Hello! This is " that restart begins with the whole delivered text: the repeat is dropped and only
    // the rest spliced, and the chunks after the splice name the fallback's model.
    let r = h.stream("/v1/chat/completions", &body("cont")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data().last().map(String::as_str), Some("[DONE]"), "{}", r.text);
    assert_eq!(r.openai_text(), "Hello! This is gpt-ok answering from the simulated upstream.");
    assert_eq!(h.upstream.calls("gpt-ok"), 1, "the next target continued the answer");
    let models: Vec<String> = r
        .data()
        .iter()
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| v["model"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(models.first().map(String::as_str), Some("claude-break3"));
    assert_eq!(models.last().map(String::as_str), Some("gpt-ok"));
    // The end of the stream names every target that wrote part of the answer.
    assert!(r.text.contains(": x-switchyard-targets: an/claude-break3, oa/gpt-ok\n"), "{}", r.text);

    // After "Hello! This is claude-break4 " the same restart diverges ("gpt-ok" vs "claude-break4"):
    // splicing it would be a garbled answer presented as a success, so the original break ends the stream.
    let r = h.stream("/v1/chat/completions", &body("cont4")).await;
    assert!(!r.data().iter().any(|d| d == "[DONE]"), "{}", r.text);
    assert!(r.text.contains("\"error\""), "{}", r.text);
    assert_eq!(r.openai_text(), "Hello! This is claude-break4 ");
    assert_eq!(h.upstream.calls("gpt-ok"), 2, "the fallback was asked, and not spliced");

    // The same break without `continue` ends with the error event, without asking anyone.
    let r = h.stream("/v1/chat/completions", &body("err")).await;
    assert!(!r.data().iter().any(|d| d == "[DONE]"));
    assert!(r.text.contains("\"error\""), "{}", r.text);
    assert_eq!(h.upstream.calls("gpt-ok"), 2);
}

#[tokio::test]
async fn when_the_breaker_closes_traffic_fails_back_to_the_primary() {
    let h = start(
        r#"
[routes.main]
breaker = { failures = 2, cooldown = "300ms" }
targets = [{ provider = "an", model = "claude-flaky2" }, { provider = "oa", model = "gpt-ok" }]
"#,
    )
    .await;
    // The primary's first two calls fail: its breaker opens and the secondary serves without a call to it.
    for _ in 0..3 {
        assert_eq!(h.chat("main", "hi").await.target(), "oa/gpt-ok");
    }
    assert_eq!(h.upstream.calls("claude-flaky2"), 2);
    assert_eq!(h.admin_get("/admin/routes").await.body["routes"][0]["targets"][0]["breaker"], "open");

    // After the cooldown the next request probes the (recovered) primary and stays there.
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    for _ in 0..3 {
        let r = h.chat("main", "hi").await;
        assert_eq!((r.target(), r.attempts(), r.fallback()), ("an/claude-flaky2", "1", "false"));
    }
    let t = h.admin_get("/admin/routes").await.body["routes"][0]["targets"][0].clone();
    assert_eq!(t["breaker"], "closed");
    assert!(t["last_recovery"].is_string() && t["last_failure"].is_string(), "{t}");
    assert_eq!(t["is_current"], true);
}

#[tokio::test]
async fn with_the_primary_down_the_retry_budget_bounds_upstream_calls() {
    let h = start(
        r#"
[routes.main]
breaker = { enabled = false }
hedge = false
backoff = { kind = "linear", base = "1ms" }
targets = [{ provider = "an", model = "claude-503", max_retries = 3 }, { provider = "oa", model = "gpt-ok" }]
"#,
    )
    .await;
    let n = 300;
    let started = std::time::Instant::now();
    let replies = futures::future::join_all((0..n).map(|_| h.chat("main", "hi"))).await;
    let seconds = started.elapsed().as_secs() + 1;
    assert!(replies.iter().all(|r| r.status == 200 && r.target() == "oa/gpt-ok"));
    // Without a budget: 4 calls per request (1,200). With it: one each, 20% retries, the 100 the
    // bucket starts with, and the floor of 10 retries per second over however long the run took
    // (a loaded machine takes longer, so the floor adds more).
    let calls = h.upstream.calls("claude-503");
    eprintln!(
        "{calls} upstream calls to the down primary for {n} requests in {seconds} s (4 per request without a budget)"
    );
    let bound = n + n / 5 + 100 + 10 * seconds;
    assert!(calls <= bound, "{calls} calls to the primary for {n} requests in {seconds} s (bound {bound})");
    assert!(calls < 4 * n, "the budget must refuse retries: {calls} calls");
    let s = h.admin_get("/admin/stats").await.body;
    assert!(s["targets"]["an/claude-503"]["retries_refused"].as_u64().unwrap() > 0, "{s}");
}
