//! The simulated upstream, through real HTTP with reqwest.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_sim::{DEFAULT_API_KEY, ERROR_TEXT, Upstream, UpstreamConfig};
use tokio::time::timeout;

async fn start() -> Upstream {
    Upstream::start(UpstreamConfig::default()).await.unwrap()
}

thread_local! {
    // One client per test thread (each test has its own runtime): building a client is slow in debug builds.
    static CLIENT: reqwest::Client = reqwest::Client::new();
}

fn client() -> reqwest::Client {
    CLIENT.with(Clone::clone)
}

fn openai_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]})
}

fn anthropic_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 100, "system": "be brief",
        "messages": [{"role": "user", "content": "hello there"}]})
}

async fn openai(up: &Upstream, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", up.openai_base_url()))
        .bearer_auth(DEFAULT_API_KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn anthropic(up: &Upstream, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", up.anthropic_base_url()))
        .header("x-api-key", DEFAULT_API_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// One SSE event: its `event:` name (if any) and its `data:`.
#[derive(Debug)]
struct Event {
    name: Option<String>,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

fn parse_events(text: &str) -> Vec<Event> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            Event { name, data: data.join("\n") }
        })
        .collect()
}

/// Reads a body until its end or an error; returns the bytes and whether it ended with an error.
async fn read_all(mut response: reqwest::Response) -> (String, bool) {
    let mut out = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk),
            Ok(None) => return (String::from_utf8(out).unwrap(), false),
            Err(_) => return (String::from_utf8(out).unwrap(), true),
        }
    }
}

fn openai_text(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| e.json()["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

fn anthropic_text(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .filter_map(|e| e.json()["delta"]["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn openai_ok_answers_in_the_openai_shape() {
    let up = start().await;
    let response = openai(&up, &openai_body("gpt-4o-ok", false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-ok");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(choice["message"]["content"].as_str().unwrap().contains("gpt-4o-ok"));
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 4);
    let completion = body["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(completion > 0);
    assert_eq!(body["usage"]["total_tokens"], 4 + completion);
    assert_eq!(up.calls("gpt-4o-ok"), 1);
}

#[tokio::test]
async fn anthropic_ok_answers_in_the_anthropic_shape() {
    let up = start().await;
    let response = anthropic(&up, &anthropic_body("claude-ok", false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-ok");
    assert_eq!(body["content"][0]["type"], "text");
    assert!(body["content"][0]["text"].as_str().unwrap().contains("claude-ok"));
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    assert_eq!(body["usage"]["input_tokens"], 4);
    assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn openai_stream_has_chunks_usage_when_asked_and_done() {
    let up = start().await;
    let mut body = openai_body("gpt-4o", true);
    body["stream_options"] = json!({"include_usage": true});
    let response = openai(&up, &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (text, broken) = read_all(response).await;
    assert!(!broken);
    let events = parse_events(&text);
    assert!(events.iter().all(|e| e.name.is_none()), "OpenAI streams have data lines only");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Event::json).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "gpt-4o"));
    let content_chunks =
        chunks.iter().filter(|c| c["choices"][0]["delta"]["content"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(content_chunks.count() >= 3);
    assert!(openai_text(&events).contains("gpt-4o"));
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"], Value::Null);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 4);
    // Every chunk's fields in OpenAI's order, the usage chunk's too (a client may read the start once).
    for event in &events[..events.len() - 1] {
        assert!(event.data.starts_with(r#"{"id":"chatcmpl-sim"#), "{}", event.data);
        let order = ["\"object\"", "\"created\"", "\"model\"", "\"system_fingerprint\"", "\"choices\""];
        let at: Vec<usize> = order.iter().map(|key| event.data.find(key).unwrap_or(usize::MAX)).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{}", event.data);
    }
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.get("usage") == Some(&Value::Null)));

    let (text, _) = read_all(openai(&up, &openai_body("gpt-4o", true)).await).await;
    let events = parse_events(&text);
    let chunks: Vec<Value> = events.iter().filter(|e| e.data != "[DONE]").map(Event::json).collect();
    assert!(chunks.iter().all(|c| c.get("usage").is_none()), "no usage unless include_usage");
}

/// As OpenAI does by default: every chunk with a delta carries an `obfuscation` string, last; the usage chunk
/// does not; `stream_options.include_obfuscation: false` turns it off.
#[tokio::test]
async fn openai_stream_chunks_are_padded_unless_asked_not_to() {
    let up = start().await;
    let mut body = openai_body("gpt-4o", true);
    body["stream_options"] = json!({"include_usage": true});
    let (text, _) = read_all(openai(&up, &body).await).await;
    let events = parse_events(&text);
    let chunks: Vec<Value> = events.iter().filter(|e| e.data != "[DONE]").map(Event::json).collect();
    let (usage, deltas) = chunks.split_last().unwrap();
    assert!(usage.get("obfuscation").is_none(), "{usage}");
    let paddings: Vec<&str> = deltas.iter().filter_map(|c| c["obfuscation"].as_str()).collect();
    assert_eq!(paddings.len(), deltas.len(), "every chunk with a delta is padded");
    assert!(paddings.iter().all(|p| (1..=16).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric())));
    assert!(paddings.windows(2).any(|w| w[0] != w[1]), "the padding changes from chunk to chunk: {paddings:?}");
    for event in events.iter().filter(|e| e.data.contains("\"delta\"")) {
        assert!(event.data.ends_with("\"}"), "the padding comes last: {}", event.data);
    }

    body["stream_options"] = json!({"include_usage": true, "include_obfuscation": false});
    let (text, _) = read_all(openai(&up, &body).await).await;
    assert!(!text.contains("obfuscation"), "{text}");
}

#[tokio::test]
async fn anthropic_stream_has_the_vendor_event_sequence() {
    let up = start().await;
    let (text, broken) = read_all(anthropic(&up, &anthropic_body("claude", true)).await).await;
    assert!(!broken);
    let events = parse_events(&text);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    let deltas = names.iter().filter(|n| **n == "content_block_delta").count();
    assert!(deltas >= 3);
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    for e in &events {
        assert_eq!(e.json()["type"], e.name.as_deref().unwrap(), "data.type matches the event name");
    }
    let start = events[0].json();
    assert_eq!(start["message"]["usage"]["input_tokens"], 4);
    assert_eq!(start["message"]["model"], "claude");
    assert_eq!(events[1].json()["content_block"], json!({"type": "text", "text": ""}));
    assert_eq!(events[3].json()["delta"]["type"], "text_delta");
    assert!(anthropic_text(&events).contains("claude"));
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn status_words_answer_with_the_vendor_error_bodies() {
    let up = start().await;
    for (word, status, openai_type, anthropic_type) in [
        ("500", 500, "server_error", "api_error"),
        ("503", 503, "server_error", "api_error"),
        ("529", 529, "server_error", "overloaded_error"),
        ("429", 429, "requests", "rate_limit_error"),
        ("401", 401, "invalid_request_error", "authentication_error"),
        ("400", 400, "invalid_request_error", "invalid_request_error"),
        ("ctxlen", 400, "invalid_request_error", "invalid_request_error"),
    ] {
        for stream in [false, true] {
            let model = format!("m-{word}");
            let response = openai(&up, &openai_body(&model, stream)).await;
            assert_eq!(response.status().as_u16(), status, "{model}");
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(retry_after.as_deref(), (status == 429).then_some("1"), "{model}");
            let body: Value = response.json().await.unwrap();
            let error = body["error"].as_object().unwrap();
            assert_eq!(error.keys().collect::<Vec<_>>(), ["code", "message", "param", "type"]);
            assert_eq!(error["type"], openai_type, "{model}");

            let response = anthropic(&up, &anthropic_body(&model, stream)).await;
            assert_eq!(response.status().as_u16(), status, "{model}");
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(retry_after.as_deref(), (status == 429).then_some("1"), "{model}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["type"], "error");
            assert_eq!(body["error"]["type"], anthropic_type, "{model}");
            assert!(body["error"]["message"].as_str().is_some());
        }
    }
    let body: Value = openai(&up, &openai_body("m-ctxlen", false)).await.json().await.unwrap();
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(body["error"]["param"], "messages");
    let body: Value = openai(&up, &openai_body("m-429", false)).await.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let body: Value = anthropic(&up, &anthropic_body("m-ctxlen", false)).await.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().starts_with("prompt is too long"));
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_401() {
    let up = start().await;
    let url = format!("{}/chat/completions", up.openai_base_url());
    for key in [Some("wrong"), None] {
        let mut request = client().post(&url).json(&openai_body("m", false));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(!body.to_string().contains(DEFAULT_API_KEY), "the expected key is never echoed");

        let mut request = client()
            .post(format!("{}/v1/messages", up.anthropic_base_url()))
            .header("anthropic-version", "2023-06-01")
            .json(&anthropic_body("m", false));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "authentication_error");
    }
    assert!(up.all_calls().is_empty(), "rejected requests are not counted");

    let custom =
        Upstream::start(UpstreamConfig { api_key: Some("other".into()), ..UpstreamConfig::default() }).await.unwrap();
    assert_eq!(openai(&custom, &openai_body("m", false)).await.status(), 401);
    let open = Upstream::start(UpstreamConfig { api_key: None, ..UpstreamConfig::default() }).await.unwrap();
    let response = client()
        .post(format!("{}/chat/completions", open.openai_base_url()))
        .json(&openai_body("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn anthropic_requires_max_tokens_and_the_version_header() {
    let up = start().await;
    let mut body = anthropic_body("claude", false);
    body.as_object_mut().unwrap().remove("max_tokens");
    let response = anthropic(&up, &body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(error["error"]["message"].as_str().unwrap().contains("max_tokens"));

    let response = client()
        .post(format!("{}/v1/messages", up.anthropic_base_url()))
        .header("x-api-key", DEFAULT_API_KEY)
        .json(&anthropic_body("claude", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("anthropic-version"));
    assert_eq!(up.calls("claude"), 0);
}

#[tokio::test]
async fn malformed_requests_are_400_naming_the_problem() {
    let up = start().await;
    let response = client()
        .post(format!("{}/chat/completions", up.openai_base_url()))
        .bearer_auth(DEFAULT_API_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("not valid JSON"));

    let body: Value = openai(&up, &json!({"model": "m"})).await.json().await.unwrap();
    assert_eq!(body["error"]["param"], "messages");
    let body: Value = openai(&up, &json!({"messages": []})).await.json().await.unwrap();
    assert_eq!(body["error"]["param"], "model");
}

#[tokio::test]
async fn flaky_fails_the_first_n_calls_per_model_name() {
    let up = start().await;
    for _ in 0..2 {
        assert_eq!(openai(&up, &openai_body("gpt-flaky2", false)).await.status(), 503);
    }
    assert_eq!(anthropic(&up, &anthropic_body("claude-flaky1", false)).await.status(), 503);
    assert_eq!(openai(&up, &openai_body("gpt-flaky2", false)).await.status(), 200);
    assert_eq!(openai(&up, &openai_body("gpt-flaky2", true)).await.status(), 200);
    assert_eq!(anthropic(&up, &anthropic_body("claude-flaky1", false)).await.status(), 200);

    let calls: Value = client().get(format!("{}/_calls", up.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls, json!({"claude-flaky1": 2, "gpt-flaky2": 4}));
    let reset = client().delete(format!("{}/_calls", up.url())).send().await.unwrap();
    assert_eq!(reset.status(), 204);
    assert!(up.all_calls().is_empty());
    assert_eq!(openai(&up, &openai_body("gpt-flaky2", false)).await.status(), 503, "a reset restarts the sequence");
}

#[tokio::test]
async fn break_drops_the_stream_after_n_content_chunks() {
    let up = start().await;
    let (text, broken) = read_all(openai(&up, &openai_body("gpt-break3", true)).await).await;
    assert!(broken, "the body must end with an error, not cleanly");
    let events = parse_events(&text);
    assert!(events.iter().all(|e| e.data != "[DONE]"));
    let content =
        events.iter().filter(|e| e.json()["choices"][0]["delta"]["content"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(content.count(), 3);

    let (text, broken) = read_all(anthropic(&up, &anthropic_body("claude-break20", true)).await).await;
    assert!(broken);
    let events = parse_events(&text);
    assert_eq!(events.iter().filter(|e| e.name.as_deref() == Some("content_block_delta")).count(), 20);
    assert!(events.iter().all(|e| e.name.as_deref() != Some("message_stop")));

    let (text, broken) = read_all(openai(&up, &openai_body("gpt-break3", false)).await).await;
    assert!(broken, "non-streaming: the body is cut off");
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

#[tokio::test]
async fn stall_goes_silent_with_the_connection_open() {
    let up = start().await;
    let mut response = anthropic(&up, &anthropic_body("claude-stall2", true)).await;
    let mut text = String::new();
    while parse_events(&text).iter().filter(|e| e.name.as_deref() == Some("content_block_delta")).count() < 2 {
        text.push_str(std::str::from_utf8(&response.chunk().await.unwrap().unwrap()).unwrap());
    }
    assert!(timeout(Duration::from_millis(300), response.chunk()).await.is_err(), "nothing after the stall");
    up.shutdown().await.unwrap();
    let rest = timeout(Duration::from_secs(5), response.chunk()).await.unwrap();
    assert!(rest.is_err(), "shutting down ends the stalled stream with an error");
}

#[tokio::test]
async fn hang_sends_nothing_until_shutdown() {
    let up = start().await;
    let url = format!("{}/chat/completions", up.openai_base_url());
    let request = client().post(url).bearer_auth(DEFAULT_API_KEY).json(&openai_body("gpt-hang", true)).send();
    let pending = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "no headers from a hung upstream");
    assert_eq!(up.calls("gpt-hang"), 1);
    timeout(Duration::from_secs(5), up.shutdown()).await.unwrap().unwrap();
    timeout(Duration::from_secs(5), pending).await.unwrap().unwrap().ok();
}

#[tokio::test]
async fn slow_delays_the_headers_and_ttfb_the_first_chunk() {
    let up = start().await;
    let slow_body = openai_body("gpt-slow10000", true);
    let slow = openai(&up, &slow_body);
    assert!(timeout(Duration::from_millis(300), slow).await.is_err(), "slowN delays the response itself");

    let mut response = timeout(Duration::from_secs(5), openai(&up, &openai_body("gpt-ttfb10000", true))).await.unwrap();
    assert_eq!(response.status(), 200, "ttfbN sends the headers at once");
    assert!(timeout(Duration::from_millis(300), response.chunk()).await.is_err(), "but no chunk yet");

    let started = std::time::Instant::now();
    let response = openai(&up, &openai_body("gpt-slow50", false)).await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(50));
    let started = std::time::Instant::now();
    let (text, _) = read_all(anthropic(&up, &anthropic_body("claude-ttfb50", true)).await).await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(text.contains("message_stop"));
}

#[tokio::test]
async fn pace_spaces_a_streams_content_chunks() {
    let up = start().await;
    let started = std::time::Instant::now();
    let (text, broken) = read_all(openai(&up, &openai_body("gpt-pace100", true)).await).await;
    assert!(!broken);
    let events = parse_events(&text);
    let said = openai_text(&events);
    assert_eq!(said, "Hello! This is gpt-pace100 answering from the simulated upstream.");
    // Nine content chunks, each 100 ms after the piece before it.
    let words = said.split_inclusive(' ').count();
    assert_eq!(words, 9);
    assert!(started.elapsed() >= Duration::from_millis(100 * words as u64), "{:?}", started.elapsed());
    assert_eq!(events.last().unwrap().data, "[DONE]");
    // Not streaming: the normal answer.
    let whole: Value = openai(&up, &openai_body("gpt-pace100", false)).await.json().await.unwrap();
    assert_eq!(whole["choices"][0]["message"]["content"], said.as_str());
}

#[tokio::test]
async fn sseerr_streams_the_vendor_error_event_first() {
    let up = start().await;
    let response = openai(&up, &openai_body("gpt-sseerr", true)).await;
    assert_eq!(response.status(), 200);
    let (text, _) = read_all(response).await;
    let events = parse_events(&text);
    assert_eq!(events.len(), 1, "{text}");
    let error = events[0].json();
    assert_eq!(error["error"]["type"], "server_error");
    assert!(error["error"]["message"].as_str().is_some());

    let (text, _) = read_all(anthropic(&up, &anthropic_body("claude-sseerr", true)).await).await;
    let events = parse_events(&text);
    assert_eq!(events[0].name.as_deref(), Some("error"));
    assert_eq!(
        events[0].json(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );

    let response = anthropic(&up, &anthropic_body("claude-sseerr", false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
}

#[tokio::test]
async fn errtext_and_empty_are_200s_with_bad_content() {
    let up = start().await;
    let body: Value = openai(&up, &openai_body("gpt-errtext", false)).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], ERROR_TEXT);
    assert!(ERROR_TEXT.starts_with("Exception:"));
    let body: Value = anthropic(&up, &anthropic_body("claude-errtext", false)).await.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], ERROR_TEXT);
    let (text, _) = read_all(openai(&up, &openai_body("gpt-errtext", true)).await).await;
    assert_eq!(openai_text(&parse_events(&text)), ERROR_TEXT);
    let (text, _) = read_all(anthropic(&up, &anthropic_body("claude-errtext", true)).await).await;
    assert_eq!(anthropic_text(&parse_events(&text)), ERROR_TEXT);

    let body: Value = openai(&up, &openai_body("gpt-empty", false)).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let body: Value = anthropic(&up, &anthropic_body("claude-empty", false)).await.json().await.unwrap();
    assert_eq!(body["content"], json!([]));
    let (text, broken) = read_all(openai(&up, &openai_body("gpt-empty", true)).await).await;
    assert!(!broken && text.ends_with("data: [DONE]\n\n"));
    assert_eq!(openai_text(&parse_events(&text)), "");
    let (text, _) = read_all(anthropic(&up, &anthropic_body("claude-empty", true)).await).await;
    let names: Vec<String> = parse_events(&text).into_iter().filter_map(|e| e.name).collect();
    assert_eq!(names, ["message_start", "ping", "message_delta", "message_stop"]);
}

#[tokio::test]
async fn badjson_is_a_200_that_does_not_parse() {
    let up = start().await;
    for response in [
        openai(&up, &openai_body("gpt-badjson", false)).await,
        anthropic(&up, &anthropic_body("c-badjson", false)).await,
    ] {
        assert_eq!(response.status(), 200);
        assert!(serde_json::from_str::<Value>(&response.text().await.unwrap()).is_err());
    }
    let (text, _) = read_all(openai(&up, &openai_body("gpt-badjson", true)).await).await;
    let first = &parse_events(&text)[0];
    assert!(serde_json::from_str::<Value>(&first.data).is_err());
    let (text, _) = read_all(anthropic(&up, &anthropic_body("c-badjson", true)).await).await;
    let first = &parse_events(&text)[0];
    assert_eq!(first.name.as_deref(), Some("message_start"));
    assert!(serde_json::from_str::<Value>(&first.data).is_err());
}

fn weather_schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]})
}

#[tokio::test]
async fn openai_tool_loop_calls_the_tool_then_quotes_its_result() {
    let up = start().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "weather", "parameters": weather_schema()}}]);
    let ask =
        json!({"model": "gpt-4o", "tools": tools, "messages": [{"role": "user", "content": "Use the tool for Paris"}]});
    let body: Value = openai(&up, &ask).await.json().await.unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "simulated", "unit": "c"}));

    let mut streaming = ask.clone();
    streaming["stream"] = json!(true);
    let (text, _) = read_all(openai(&up, &streaming).await).await;
    let chunks: Vec<Value> = parse_events(&text).iter().filter(|e| e.data != "[DONE]").map(Event::json).collect();
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["index"], 0);
    assert_eq!(first["function"]["name"], "get_weather");
    assert!(first["id"].as_str().unwrap().starts_with("call_"));
    let fragments: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    assert!(fragments.len() >= 2, "arguments arrive in fragments: {fragments:?}");
    assert_eq!(serde_json::from_str::<Value>(&fragments.concat()).unwrap(), args);
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");

    let id = call["id"].clone();
    let follow = json!({"model": "gpt-4o", "tools": tools, "messages": [
        {"role": "user", "content": "Use the tool for Paris"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": id, "content": "18C and cloudy"},
    ]});
    let body: Value = openai(&up, &follow).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "The tool returned: 18C and cloudy");

    let plain = json!({"model": "gpt-4o", "tools": tools, "messages": [{"role": "user", "content": "hi"}]});
    let body: Value = openai(&up, &plain).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "stop", "no trigger word: no tool call");
    let mut forced = plain.clone();
    forced["tool_choice"] = json!("required");
    let body: Value = openai(&up, &forced).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "tool_choice required forces a call");
}

#[tokio::test]
async fn anthropic_tool_loop_calls_the_tool_then_quotes_its_result() {
    let up = start().await;
    let tools = json!([{"name": "get_weather", "description": "weather", "input_schema": weather_schema()}]);
    let ask = json!({"model": "claude", "max_tokens": 100, "tools": tools,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "please call a tool"}]}]});
    let body: Value = anthropic(&up, &ask).await.json().await.unwrap();
    assert_eq!(body["stop_reason"], "tool_use");
    let block = &body["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"city": "simulated", "unit": "c"}));

    let mut streaming = ask.clone();
    streaming["stream"] = json!(true);
    let (text, _) = read_all(anthropic(&up, &streaming).await).await;
    let events = parse_events(&text);
    let start = events.iter().find(|e| e.name.as_deref() == Some("content_block_start")).unwrap().json();
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "get_weather");
    assert_eq!(start["content_block"]["input"], json!({}));
    let fragments: Vec<String> = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let delta = e.json()["delta"].clone();
            assert_eq!(delta["type"], "input_json_delta");
            delta["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(fragments.len() >= 2);
    assert_eq!(serde_json::from_str::<Value>(&fragments.concat()).unwrap(), block["input"]);
    let delta = events.iter().find(|e| e.name.as_deref() == Some("message_delta")).unwrap().json();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");

    let follow = json!({"model": "claude", "max_tokens": 100, "tools": tools, "messages": [
        ask["messages"][0],
        {"role": "assistant", "content": [block]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"], "content": "18C and cloudy"}]},
    ]});
    let body: Value = anthropic(&up, &follow).await.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "The tool returned: 18C and cloudy");
    assert_eq!(body["stop_reason"], "end_turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_are_counted_exactly() {
    let up = start().await;
    let base = up.openai_base_url();
    let client = client();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let client = client.clone();
            let url = format!("{base}/chat/completions");
            tokio::spawn(async move {
                let model = if i % 2 == 0 { "a-ok" } else { "b-503" };
                client
                    .post(url)
                    .bearer_auth(DEFAULT_API_KEY)
                    .json(&openai_body(model, i % 4 == 0))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for task in tasks {
        let status = task.await.unwrap();
        assert!(status == 200 || status == 503);
    }
    assert_eq!(up.all_calls().into_iter().collect::<Vec<_>>(), [("a-ok".to_owned(), 100), ("b-503".to_owned(), 100)]);
}

#[tokio::test]
async fn unknown_paths_are_404_naming_the_served_ones() {
    let up = start().await;
    let response = client().post(format!("{}/v1/completions", up.url())).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("/v1/chat/completions"));
}

#[tokio::test]
async fn streams_stay_valid_json_for_odd_model_names_and_text() {
    let up = start().await;
    let model = "we\"ird\\name\n-ok";
    let (text, _) = read_all(openai(&up, &openai_body(model, true)).await).await;
    let events = parse_events(&text);
    for event in events.iter().filter(|e| e.data != "[DONE]") {
        assert_eq!(event.json()["model"], model);
    }
    let (text, _) = read_all(anthropic(&up, &anthropic_body(model, true)).await).await;
    assert!(anthropic_text(&parse_events(&text)).contains(model));
}

#[tokio::test]
async fn flaky_sequences_are_per_session_so_two_clients_do_not_eat_each_others_failures() {
    let up = start().await;
    let call = |session: &'static str| {
        let url = format!("{}/chat/completions", up.openai_base_url());
        async move {
            client()
                .post(url)
                .bearer_auth(DEFAULT_API_KEY)
                .header(switchyard_sim::SESSION_HEADER, session)
                .json(&openai_body("gpt-flaky1", false))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(call("test-a").await, 503);
    assert_eq!(call("test-b").await, 503, "another session gets its own failure");
    assert_eq!(call("test-a").await, 200);
    assert_eq!(call("test-b").await, 200);
    assert_eq!(up.calls("gpt-flaky1"), 4, "calls are still counted per model");
}
