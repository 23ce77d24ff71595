//! Named client keys (SPEC-2 section 12): the routes a key may use (403 otherwise), its `rpm` and `tpm` (429 with
//! `Retry-After`), the `x-ratelimit-*` headers on its answers, and its name in the request log and usage. Through
//! the router with in-process models (the connection writes the `x-ratelimit-*` headers from the answer's
//! `LimitHeaders` extension; one test over a real socket checks the written head). Windows move with tokio's
//! paused clock.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::Request;
use serde_json::{Value, json};
use switchyard::SharedModel;
use switchyard_gateway::client_keys::LimitHeaders;
use switchyard_gateway::config::{Config, ProviderConfig, TargetConfig};
use switchyard_gateway::server;
use switchyard_gateway::state::{AppState, ModelFactory};
use switchyard_gateway::storage::Storage;
use switchyard_sim::SimModel;
use tower::ServiceExt;

use crate::common::{ADMIN_KEY, CLIENT_KEY, start_with, storage_config, temp_folder};

/// Every target answers "one two three": 3 output tokens, and one input token per prompt word.
struct Replying;

impl ModelFactory for Replying {
    fn build(&self, _provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String> {
        Ok(Arc::new(SimModel::replying(target.model.clone(), "one two three")))
    }
}

const CONFIG: &str = r#"
[server]
api_keys = ["plain-key"]
admin_key = "admin-key-456"
[server.keys.team-a]
key = "team-a-key"
rpm = 3
routes = ["main", "sim/m3"]
[server.keys.tokens]
key = "tokens-key"
rpm = 100
tpm = 1000
[server.keys.open]
key = "open-key"
[server.keys.many]
key = "many-key"
rpm = 25
[server.keys.narrow]
key = "narrow-key"
routes = ["main", "sim/m3"]
[providers.sim]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
[routes.main]
targets = [{ provider = "sim", model = "m1" }]
[routes.other]
targets = [{ provider = "sim", model = "m2" }]
[routes.waits]
keepalive = "1s"
targets = [{ provider = "sim", model = "m3" }]
"#;

fn state() -> AppState {
    let config = Config::parse(CONFIG, &|_| None, None).unwrap();
    AppState::build(&config, &Replying).unwrap()
}

/// A parsed answer: status, headers and the JSON body (or the SSE text as a string).
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

async fn send(router: &axum::Router, key: &str, path: &str, body: Value) -> Answer {
    let request = Request::post(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let (status, mut headers) = (response.status().as_u16(), response.headers().clone());
    // What the connection would write into the head (checked over a socket below).
    if let Some(limits) = response.extensions().get::<LimitHeaders>() {
        for (name, n) in limits.fields() {
            assert!(headers.insert(name, n.into()).is_none(), "{name} is in the map too");
        }
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer { status, headers, body }
}

fn chat(model: &str, stream: bool, max_tokens: u32) -> Value {
    json!({ "model": model, "stream": stream, "max_tokens": max_tokens,
            "messages": [{ "role": "user", "content": "hi there" }] })
}

/// A request for `model` in the shape `path` takes.
fn request_for(path: &str, model: &str) -> Value {
    match path {
        "/v1/responses" => json!({ "model": model, "input": "hi there" }),
        _ => chat(model, false, 50),
    }
}

async fn get(router: &axum::Router, key: &str, path: &str) -> Value {
    let request = Request::get(path).header("authorization", format!("Bearer {key}")).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    serde_json::from_slice(&axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn over_rpm_is_a_429_with_retry_after_and_the_limit_headers_in_both_apis_until_the_window_moves() {
    let router = server::router(Arc::new(state()));
    for left in ["2", "1", "0"] {
        let a = send(&router, "team-a-key", "/v1/chat/completions", chat("main", false, 50)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.header("x-ratelimit-limit-requests"), "3");
        assert_eq!(a.header("x-ratelimit-remaining-requests"), left, "remaining after this request");
        assert_eq!(a.header("x-ratelimit-limit-tokens"), "", "no tpm: no token headers");
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    let openai = send(&router, "team-a-key", "/v1/chat/completions", chat("main", false, 50)).await;
    assert_eq!(openai.status, 429);
    // It came at 0 s: its quarter-second slot leaves the window at 60.25 s, 30.25 s from now, rounded up.
    assert_eq!(openai.header("retry-after"), "31", "the first request leaves the window 60 s after its slot");
    assert_eq!(openai.header("x-ratelimit-remaining-requests"), "0");
    assert_eq!(openai.header("x-ratelimit-limit-requests"), "3");
    assert_eq!(openai.body["error"]["type"], "rate_limit_error", "{}", openai.body);
    let message = openai.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"team-a\"") && message.contains("rpm limit 3 reached"), "{message}");
    assert!(!message.contains("team-a-key"), "the key itself is never echoed");
    let anthropic = send(&router, "team-a-key", "/v1/messages", chat("main", false, 50)).await;
    assert_eq!((anthropic.status, anthropic.header("retry-after")), (429, "31"));
    assert_eq!(anthropic.body["type"], "error");
    assert_eq!(anthropic.body["error"]["type"], "rate_limit_error", "{}", anthropic.body);
    // Refusals hold nothing: once the first request leaves the window, exactly one more fits.
    tokio::time::advance(Duration::from_secs(30)).await;
    let early = send(&router, "team-a-key", "/v1/chat/completions", chat("main", false, 50)).await;
    assert_eq!((early.status, early.header("retry-after")), (429, "1"), "at 60 s its slot has not left yet");
    tokio::time::advance(Duration::from_secs(1)).await;
    let a = send(&router, "team-a-key", "/v1/chat/completions", chat("main", false, 50)).await;
    assert_eq!((a.status, a.header("x-ratelimit-remaining-requests")), (200, "0"));
    let b = send(&router, "team-a-key", "/v1/chat/completions", chat("main", false, 50)).await;
    assert_eq!((b.status, b.header("retry-after")), (429, "10"));
    // Another key, and the unnamed key, are not held to team-a's limit.
    assert_eq!(send(&router, "open-key", "/v1/chat/completions", chat("other", false, 50)).await.status, 200);
    let plain = send(&router, "plain-key", "/v1/chat/completions", chat("main", false, 50)).await;
    assert_eq!((plain.status, plain.header("x-ratelimit-limit-requests")), (200, ""));
}

#[tokio::test(start_paused = true)]
async fn tpm_reserves_the_prompt_estimate_plus_max_tokens_and_settles_from_the_usage_of_answers_and_streams() {
    let router = server::router(Arc::new(state()));
    // "hi there": 8 characters, an estimate of 2 tokens, plus max_tokens 500; the answer uses 2 in + 3 out.
    let a = send(&router, "tokens-key", "/v1/chat/completions", chat("main", false, 500)).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-ratelimit-limit-tokens"), "1000");
    assert_eq!(a.header("x-ratelimit-remaining-tokens"), "498", "502 reserved up front");
    assert_eq!(a.header("x-ratelimit-remaining-requests"), "99");
    // The first was settled at 5 tokens, so 1000 - 5 - 502 remain after the second's reservation.
    let s = send(&router, "tokens-key", "/v1/chat/completions", chat("main", true, 500)).await;
    assert_eq!((s.status, s.header("content-type")), (200, "text/event-stream"));
    assert_eq!(s.header("x-ratelimit-remaining-tokens"), "493", "streams carry the headers too");
    // The stream's final usage settled it at 5 as well: 1000 - 10 - 502.
    let m = send(&router, "tokens-key", "/v1/messages", chat("main", false, 500)).await;
    assert_eq!((m.status, m.header("x-ratelimit-remaining-tokens")), (200, "488"));
    // 15 settled + 2 + 990 > 1000: refused, holding nothing, with the wait until enough tokens leave.
    tokio::time::advance(Duration::from_secs(20)).await;
    let big = send(&router, "tokens-key", "/v1/chat/completions", chat("main", false, 990)).await;
    // The first request's slot leaves at 60.25 s: 40.25 s from now, rounded up.
    assert_eq!((big.status, big.header("retry-after")), (429, "41"), "{}", big.body);
    assert!(big.body["error"]["message"].as_str().unwrap().contains("tpm limit 1000 reached"));
    assert_eq!(big.header("x-ratelimit-remaining-tokens"), "985");
    assert_eq!(big.header("x-ratelimit-remaining-requests"), "97", "a refusal holds no request either");
    // A request larger than the whole limit never fits, and says so.
    let never = send(&router, "tokens-key", "/v1/chat/completions", chat("main", false, 5000)).await;
    assert_eq!(never.status, 429);
    assert!(never.body["error"]["message"].as_str().unwrap().contains("alone exceeds its tpm limit"));
    // Once the settled requests leave the window, the big one fits.
    tokio::time::advance(Duration::from_secs(41)).await;
    let fits = send(&router, "tokens-key", "/v1/chat/completions", chat("main", false, 990)).await;
    assert_eq!((fits.status, fits.header("x-ratelimit-remaining-tokens")), (200, "8"));
}

#[tokio::test]
async fn a_route_the_key_may_not_use_is_a_403_in_every_endpoint_and_models_lists_only_its_own() {
    let router = server::router(Arc::new(state()));
    for (path, anthropic) in [
        ("/v1/chat/completions", false),
        ("/v1/responses", false),
        ("/v1/messages", true),
        ("/v1/messages/count_tokens", true),
    ] {
        // A route not listed, its target's id, and a route over a listed target id are refused.
        for model in ["other", "sim/m2", "waits"] {
            let a = send(&router, "narrow-key", path, request_for(path, model)).await;
            assert_eq!(a.status, 403, "{path} {model}: {}", a.body);
            assert_eq!(a.body["error"]["type"], "permission_error", "{path}: {}", a.body);
            assert_eq!(a.body["type"] == "error", anthropic, "the API's own shape at {path}: {}", a.body);
            let message = a.body["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("may not use {model:?}")), "{message}");
            assert!(message.contains("server.keys.narrow.routes") && !message.contains("narrow-key"), "{message}");
        }
        // A listed route, its target's id, and a listed target id are allowed.
        for model in ["main", "sim/m1", "sim/m3"] {
            let a = send(&router, "narrow-key", path, request_for(path, model)).await;
            assert_eq!(a.status, 200, "{path} {model}: {}", a.body);
        }
    }
    let ids = |list: Value| -> Vec<String> {
        list["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(get(&router, "narrow-key", "/v1/models").await), ["main", "sim/m1", "sim/m3"]);
    let all = ids(get(&router, "open-key", "/v1/models").await);
    assert_eq!(all, ["main", "other", "waits", "sim/m1", "sim/m2", "sim/m3"]);
    assert_eq!(ids(get(&router, "plain-key", "/v1/models").await), all);
}

#[tokio::test(start_paused = true)]
async fn keep_alive_streams_carry_the_limit_headers_before_their_first_byte() {
    let router = server::router(Arc::new(state()));
    let s = send(&router, "tokens-key", "/v1/chat/completions", chat("waits", true, 500)).await;
    assert_eq!((s.status, s.header("content-type")), (200, "text/event-stream"));
    assert_eq!(s.header("x-ratelimit-remaining-requests"), "99");
    assert_eq!(s.header("x-ratelimit-remaining-tokens"), "498");
    assert!(s.body.as_str().unwrap().contains("three"), "{}", s.body);
    // Its final usage settled the reservation: 1000 - 5 - 502.
    let a = send(&router, "tokens-key", "/v1/messages", chat("waits", false, 500)).await;
    assert_eq!((a.status, a.header("x-ratelimit-remaining-tokens")), (200, "493"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_over_rpm_admit_exactly_rpm() {
    let router = server::router(Arc::new(state()));
    let requests = (0..100).map(|i| {
        let router = router.clone();
        let path = if i % 2 == 0 { "/v1/chat/completions" } else { "/v1/messages" };
        tokio::spawn(async move { send(&router, "many-key", path, chat("main", i % 3 == 0, 50)).await.status })
    });
    let statuses: Vec<u16> = futures::future::join_all(requests).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 25, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 75, "{statuses:?}");
}

#[tokio::test]
async fn the_request_log_and_usage_by_key_name_the_key_and_the_file_never_holds_a_secret() {
    let path = temp_folder("client-keys").join("switchyard.db");
    let storage = Arc::new(Storage::open(&storage_config(path.clone(), 1000)));
    let router = server::router(Arc::new(state().with_storage(storage.clone())));
    for _ in 0..4 {
        send(&router, "team-a-key", "/v1/chat/completions", chat("main", false, 50)).await;
    }
    send(&router, "team-a-key", "/v1/chat/completions", chat("main", true, 50)).await;
    assert_eq!(send(&router, "narrow-key", "/v1/messages", chat("main", false, 50)).await.status, 200);
    assert_eq!(send(&router, "narrow-key", "/v1/messages", chat("other", false, 50)).await.status, 403);
    assert_eq!(send(&router, "plain-key", "/v1/chat/completions", chat("main", false, 50)).await.status, 200);
    let flushing = storage.clone();
    tokio::task::spawn_blocking(move || flushing.flush()).await.unwrap();

    let admin = |path: &'static str| get(&router, ADMIN_KEY, path);
    let team = admin("/admin/requests?key=team-a").await;
    let rows = team["requests"].as_array().unwrap();
    let statuses: Vec<u64> = rows.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [429, 429, 200, 200, 200], "newest first: {team}");
    assert_eq!(rows[0]["error"]["kind"], "rate_limited");
    assert_eq!((rows[0]["stream"].as_bool(), rows[0]["outcome"].as_str()), (Some(true), Some("failed")));
    assert!(rows.iter().all(|r| r["key"] == "team-a"));
    let narrow = admin("/admin/requests?key=narrow").await;
    let refused = &narrow["requests"][0];
    assert_eq!((refused["status"].as_u64(), refused["route"].as_str()), (Some(403), Some("other")));
    assert_eq!(refused["error"]["kind"], "auth");
    let all = admin("/admin/requests").await;
    assert_eq!(all["requests"][0]["key"], Value::Null, "an unnamed key has no name");

    let usage = admin("/admin/usage?by=key&bucket=1d").await;
    let group = |name: Value| -> Vec<(i64, i64, i64, i64)> {
        usage["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["group"] == name)
            .map(|b| {
                let n = |f: &str| b[f].as_i64().unwrap();
                (n("requests"), n("success"), n("failed"), n("output_tokens"))
            })
            .collect()
    };
    assert_eq!(group(json!("team-a")), [(5, 3, 2, 9)], "{usage}");
    assert_eq!(group(json!("narrow")), [(2, 1, 1, 3)], "{usage}");
    assert_eq!(group(Value::Null), [(1, 1, 0, 3)], "{usage}");

    storage.close();
    for file in ["switchyard.db", "switchyard.db-wal"] {
        let bytes = std::fs::read(path.with_file_name(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["team-a-key", "narrow-key", "plain-key"] {
            assert!(!text.contains(secret), "{file} holds {secret}");
        }
    }
}

/// Every target answers after 10 s (within the default 20 s first-chunk timeout).
struct Slow;

impl ModelFactory for Slow {
    fn build(&self, _provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String> {
        Ok(Arc::new(SimModel::replying(target.model.clone(), "one two three").latency(Duration::from_secs(10))))
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_leaves_before_any_usage_keeps_its_estimate_counted() {
    let config = Config::parse(CONFIG, &|_| None, None).unwrap();
    let router = server::router(Arc::new(AppState::build(&config, &Slow).unwrap()));
    // 2 tokens of prompt + 400 of max_tokens reserved; the client hangs up before the answer.
    let left = tokio::spawn({
        let router = router.clone();
        async move { send(&router, "tokens-key", "/v1/chat/completions", chat("main", false, 400)).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    left.abort();
    assert!(left.await.is_err_and(|e| e.is_cancelled()), "the client left before the answer");
    // The upstream may have spent those tokens: they stay counted, so hanging up cannot dodge the tpm.
    let next = send(&router, "tokens-key", "/v1/chat/completions", chat("main", false, 400)).await;
    assert_eq!((next.status, next.header("x-ratelimit-remaining-tokens")), (200, "196"), "{}", next.body);
}

/// Over a real socket, the connection writes a limited key's `x-ratelimit-*` into the head of whole answers,
/// streams and its 429, each once; an unlimited key's answers have none.
#[tokio::test]
async fn the_limit_headers_are_written_into_the_head_of_answers_streams_and_refusals() {
    let server =
        format!("api_keys = [\"plain-key\"]\n[server.keys.team]\nkey = \"{CLIENT_KEY}\"\nrpm = 3\ntpm = 100000\n");
    let h = start_with(&server, "[routes.main]\ntargets = [{ provider = \"oa\", model = \"gpt-4o\" }]\n").await;
    let once = |headers: &http::HeaderMap, name: &str| -> String {
        let values: Vec<_> = headers.get_all(name).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert_eq!(values.len(), 1, "{name}: {values:?}");
        values[0].clone()
    };
    let whole = h.chat("main", "hello").await;
    assert_eq!(whole.status, 200, "{:?}", whole.body);
    assert_eq!(once(&whole.headers, "x-ratelimit-limit-requests"), "3");
    assert_eq!(once(&whole.headers, "x-ratelimit-remaining-requests"), "2");
    assert_eq!(once(&whole.headers, "x-ratelimit-limit-tokens"), "100000");
    let tokens: u64 = once(&whole.headers, "x-ratelimit-remaining-tokens").parse().unwrap();
    assert!(tokens > 0 && tokens < 100000, "the reservation is counted: {tokens}");
    assert_eq!(whole.header("x-switchyard-attempts"), "1", "the map's own headers are still written");

    let body = json!({ "model": "main", "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
    let stream = h.stream("/v1/chat/completions", &body).await;
    assert_eq!(stream.status, 200);
    assert_eq!(once(&stream.headers, "x-ratelimit-remaining-requests"), "1");
    assert!(stream.text.contains("[DONE]"), "{}", stream.text);

    assert_eq!(h.chat("main", "hello").await.status, 200);
    let refused = h.chat("main", "hello").await;
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    assert_eq!(once(&refused.headers, "x-ratelimit-limit-requests"), "3");
    assert_eq!(once(&refused.headers, "x-ratelimit-remaining-requests"), "0");
    assert!(!refused.header("retry-after").is_empty());

    let plain = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth("plain-key")
        .json(&json!({ "model": "main", "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().keys().all(|name| !name.as_str().starts_with("x-ratelimit-")), "{:?}", plain.headers());
}
