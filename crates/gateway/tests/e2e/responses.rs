//! `POST /v1/responses` (the OpenAI Responses API, stateless) over both kinds of target with a failing
//! primary: whole and streamed answers, a function tool round (`function_call`, then `function_call_output`),
//! `text.format` json_schema, a stream that breaks after commit (`response.failed`), the drain deadline, and
//! what needs stored state refused with a 400.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::common::*;

const ROUTES: &str = r#"
[routes.to_openai]
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-ok" }]
[routes.to_anthropic]
targets = [{ provider = "oa", model = "gpt-500" }, { provider = "an", model = "claude-ok" }]
[routes.breaks]
targets = [{ provider = "oa", model = "gpt-break2" }, { provider = "an", model = "claude-ok" }]
[routes.all_fail]
targets = [{ provider = "oa", model = "gpt-500" }, { provider = "an", model = "claude-500" }]
[routes.kept_alive]
keepalive = "10ms"
targets = [{ provider = "oa", model = "gpt-ttfb200" }, { provider = "an", model = "claude-ok" }]
[routes.kept_alive_fails]
keepalive = "10ms"
targets = [{ provider = "oa", model = "gpt-500" }]
"#;

/// Each route, the target that serves it and that target's model.
const SERVED: [(&str, &str, &str); 2] =
    [("to_openai", "oa/gpt-ok", "gpt-ok"), ("to_anthropic", "an/claude-ok", "claude-ok")];

fn tools() -> Value {
    json!([{
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"],
                        "additionalProperties": false },
        "strict": true
    }])
}

fn first_turn(model: &str, stream: bool) -> Value {
    json!({
        "model": model, "stream": stream, "tools": tools(), "instructions": "You are helpful.",
        "input": [{ "role": "user", "content": [{ "type": "input_text", "text": "please use the tool for Paris" }] }]
    })
}

/// The second turn: the first turn's input, the model's call, and the caller's result for it.
fn second_turn(model: &str, stream: bool, call: &Value, result: &str) -> Value {
    let mut body = first_turn(model, stream);
    let input = body["input"].as_array_mut().unwrap();
    input.push(json!({ "type": "function_call", "call_id": call["call_id"], "name": call["name"],
                       "arguments": call["arguments"] }));
    input.push(json!({ "type": "function_call_output", "call_id": call["call_id"], "output": result }));
    body
}

fn items<'a>(response: &'a Value, kind: &str) -> Vec<&'a Value> {
    response["output"].as_array().unwrap().iter().filter(|i| i["type"] == kind).collect()
}

fn usage_adds_up(response: &Value) {
    let usage = &response["usage"];
    let (input, output) = (usage["input_tokens"].as_u64().unwrap(), usage["output_tokens"].as_u64().unwrap());
    assert!(input > 0 && output > 0, "{usage}");
    assert_eq!(usage["total_tokens"].as_u64(), Some(input + output), "{usage}");
}

#[tokio::test]
async fn a_whole_response_with_a_function_tool_round_through_either_kind_of_target_after_the_primary_fails() {
    let h = start(ROUTES).await;
    for (route, target, model) in SERVED {
        let r = h.post("/v1/responses", &first_turn(route, false)).await;
        assert_eq!(r.status, 200, "{route}: {}", r.body);
        assert_eq!((r.target(), r.attempts(), r.fallback()), (target, "2", "true"), "{route}");
        let body = &r.body;
        assert_eq!((body["object"].as_str(), body["status"].as_str()), (Some("response"), Some("completed")));
        assert!(body["id"].as_str().unwrap().starts_with("resp_"), "{body}");
        assert_eq!(body["model"], model);
        assert_eq!(body["instructions"], "You are helpful.");
        assert_eq!(body["tools"], tools());
        usage_adds_up(body);
        let calls = items(body, "function_call");
        assert_eq!(calls.len(), 1, "{route}: {body}");
        let call = calls[0];
        assert_eq!(call["name"], "get_weather");
        assert!(!call["call_id"].as_str().unwrap().is_empty(), "{call}");
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert!(args["city"].is_string(), "{args}");

        let r = h.post("/v1/responses", &second_turn(route, false, call, "sunny-17")).await;
        assert_eq!((r.status, r.target()), (200, target), "{route}: {}", r.body);
        let messages = items(&r.body, "message");
        assert_eq!(messages.len(), 1, "{}", r.body);
        assert_eq!(
            (messages[0]["role"].as_str(), messages[0]["status"].as_str()),
            (Some("assistant"), Some("completed"))
        );
        let part = &messages[0]["content"][0];
        assert_eq!(part["type"], "output_text");
        assert!(part["text"].as_str().unwrap().contains("sunny-17"), "the tool result must reach the model: {part}");
    }
}

/// The parsed events of a Responses stream, checked for the frame format and the sequence numbers.
fn checked_events(r: &StreamReply) -> Vec<Value> {
    let names = r.events();
    let events: Vec<Value> = r.data().iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(names.len(), events.len(), "{}", r.text);
    for (i, (name, event)) in names.iter().zip(&events).enumerate() {
        assert_eq!(&event["type"], name, "the event: line names the type");
        assert_eq!(event["sequence_number"].as_u64(), Some(i as u64), "{}", r.text);
    }
    events
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn joined(events: &[Value], kind: &str) -> String {
    of_type(events, kind).iter().map(|e| e["delta"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_streamed_response_with_a_function_tool_round_through_either_kind_of_target_after_the_primary_fails() {
    let h = start(ROUTES).await;
    for (route, target, model) in SERVED {
        let r = h.stream("/v1/responses", &first_turn(route, true)).await;
        assert_eq!((r.status, r.header("x-switchyard-target")), (200, target), "{route}: {}", r.text);
        assert_eq!((r.header("x-switchyard-attempts"), r.header("x-switchyard-fallback")), ("2", "true"));
        let events = checked_events(&r);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds[..2], ["response.created", "response.in_progress"], "{}", r.text);
        assert_eq!(events[0]["response"]["status"], "in_progress");
        assert_eq!(kinds.last(), Some(&"response.completed"), "{}", r.text);
        let added = of_type(&events, "response.output_item.added");
        let call_added = added.iter().find(|e| e["item"]["type"] == "function_call").expect("a function_call item");
        let item_id = call_added["item"]["id"].as_str().unwrap();
        let done = of_type(&events, "response.function_call_arguments.done");
        assert_eq!(done.len(), 1, "{}", r.text);
        assert_eq!((done[0]["item_id"].as_str(), done[0]["name"].as_str()), (Some(item_id), Some("get_weather")));
        let arguments = done[0]["arguments"].as_str().unwrap();
        assert_eq!(joined(&events, "response.function_call_arguments.delta"), arguments);
        assert!(serde_json::from_str::<Value>(arguments).unwrap()["city"].is_string(), "{arguments}");
        let item_done = of_type(&events, "response.output_item.done");
        assert!(item_done.iter().any(|e| e["item"]["id"] == item_id && e["item"]["status"] == "completed"));
        let completed = &events.last().unwrap()["response"];
        assert_eq!((completed["status"].as_str(), completed["model"].as_str()), (Some("completed"), Some(model)));
        usage_adds_up(completed);
        let call = items(completed, "function_call")[0].clone();
        assert_eq!(call["arguments"], arguments);

        let r = h.stream("/v1/responses", &second_turn(route, true, &call, "rainy-4")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let events = checked_events(&r);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        let order = [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ];
        let mut at = 0;
        for kind in order {
            at +=
                kinds[at..].iter().position(|k| *k == kind).unwrap_or_else(|| panic!("no {kind} in order: {kinds:?}"));
        }
        let text = joined(&events, "response.output_text.delta");
        assert!(text.contains("rainy-4"), "{text}");
        assert_eq!(of_type(&events, "response.output_text.done")[0]["text"], text.as_str());
        assert_eq!(of_type(&events, "response.content_part.done")[0]["part"]["text"], text.as_str());
        let completed = &events.last().unwrap()["response"];
        assert_eq!(items(completed, "message")[0]["content"][0]["text"], text.as_str());
        usage_adds_up(completed);
    }
}

fn city_format() -> Value {
    json!({ "type": "json_schema", "name": "city", "strict": true, "schema": {
        "type": "object",
        "properties": { "name": { "type": "string" }, "population": { "type": "integer" } },
        "required": ["name", "population"], "additionalProperties": false
    }})
}

#[tokio::test]
async fn text_format_json_schema_is_honoured_by_either_kind_of_target() {
    let h = start(ROUTES).await;
    for (route, target, _) in SERVED {
        let body = json!({ "model": route, "input": "Describe Lisbon.", "text": { "format": city_format() } });
        let r = h.post("/v1/responses", &body).await;
        assert_eq!((r.status, r.target()), (200, target), "{route}: {}", r.body);
        assert_eq!(r.body["text"]["format"], city_format());
        let text = items(&r.body, "message")[0]["content"][0]["text"].as_str().unwrap().to_owned();
        let city: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{route}: {e}: {text}"));
        assert!(city["name"].is_string() && city["population"].is_i64(), "{city}");

        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        let r = h.stream("/v1/responses", &streamed).await;
        assert_eq!((r.status, r.header("x-switchyard-target")), (200, target), "{route}: {}", r.text);
        let text = joined(&checked_events(&r), "response.output_text.delta");
        let city: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{route} streamed: {e}: {text}"));
        assert!(city["name"].is_string() && city["population"].is_i64(), "{city}");
    }
}

#[tokio::test]
async fn fields_an_anthropic_target_cannot_take_are_dropped_with_notice() {
    let h = start(ROUTES).await;
    let body = json!({ "model": "to_anthropic", "input": "hi", "prompt_cache_key": "k1", "service_tier": "auto" });
    let r = h.post("/v1/responses", &body).await;
    assert_eq!((r.status, r.target()), (200, "an/claude-ok"), "{}", r.body);
    assert_eq!(r.header("x-switchyard-dropped"), "prompt_cache_key,service_tier");
    let r = h.post("/v1/responses", &json!({ "model": "to_openai", "input": "hi", "prompt_cache_key": "k1" })).await;
    assert_eq!((r.status, r.target()), (200, "oa/gpt-ok"), "{}", r.body);
    assert!(r.headers.get("x-switchyard-dropped").is_none(), "an OpenAI target takes it");
}

#[tokio::test]
async fn a_stream_that_breaks_after_commit_ends_with_response_failed_never_completed() {
    let h = start(ROUTES).await;
    let r = h.stream("/v1/responses", &json!({ "model": "breaks", "stream": true, "input": "hi" })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let events = checked_events(&r);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.failed", "{}", r.text);
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(last["response"]["error"]["code"], "server_error");
    assert!(last["response"]["error"]["message"].is_string());
    assert!(!joined(&events, "response.output_text.delta").is_empty(), "the break came after content");
    assert!(of_type(&events, "response.completed").is_empty(), "{}", r.text);
    assert_eq!(h.upstream.calls("claude-ok"), 0, "after commit, no fallback");
}

#[tokio::test]
async fn failures_before_commit_are_ordinary_http_errors_with_the_attempts() {
    let h = start(ROUTES).await;
    for stream in [false, true] {
        let r = h.post("/v1/responses", &json!({ "model": "all_fail", "stream": stream, "input": "hi" })).await;
        assert_eq!(r.status, 502, "{}", r.body);
        assert_eq!(r.attempts(), "2");
        assert_eq!(r.body["error"]["code"], "all_targets_failed");
        assert_eq!(r.body["error"]["attempts"].as_array().unwrap().len(), 2);
    }
    let r = h.post("/v1/responses", &json!({ "model": "nope", "input": "hi" })).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (404, Some("model_not_found")), "{}", r.body);
}

#[tokio::test]
async fn a_keepalive_route_streams_responses_events_after_its_comments() {
    let h = start(ROUTES).await;
    let r = h.stream("/v1/responses", &json!({ "model": "kept_alive", "stream": true, "input": "hi" })).await;
    assert_eq!(r.status, 200);
    assert!(r.text.starts_with(':'), "comments while waiting: {}", r.text);
    let events = checked_events(&r);
    assert_eq!(events[0]["type"], "response.created");
    let last = events.last().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["response"]["model"].as_str()),
        (Some("response.completed"), Some("gpt-ttfb200"))
    );
    // Headers went out before any target answered: a failure is then the stream's response.failed.
    let r = h.stream("/v1/responses", &json!({ "model": "kept_alive_fails", "stream": true, "input": "hi" })).await;
    assert_eq!(r.status, 200);
    let events = checked_events(&r);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["response.created", "response.in_progress", "response.failed"], "{}", r.text);
}

#[tokio::test]
async fn what_needs_stored_state_is_a_400_saying_the_gateway_is_stateless() {
    let h = start(ROUTES).await;
    let cases = [
        (json!({ "previous_response_id": "resp_123" }), "previous_response_id"),
        (json!({ "store": true }), "store"),
        (json!({ "conversation": "conv_1" }), "conversation"),
        (json!({ "background": true }), "background"),
        (json!({ "input": [{ "type": "item_reference", "id": "msg_1" }] }), "input[0].type"),
    ];
    for (fields, param) in cases {
        let mut body = json!({ "model": "to_openai", "input": "hi" });
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        let r = h.post("/v1/responses", &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["error"]["param"], param, "{}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("stateless"), "{}", r.body);
    }
    assert_eq!(h.upstream.calls("claude-500") + h.upstream.calls("gpt-ok"), 0);
    // `store: false` (what stateless clients send) is served.
    let r = h.post("/v1/responses", &json!({ "model": "to_openai", "input": "hi", "store": false })).await;
    assert_eq!((r.status, r.body["store"].as_bool()), (200, Some(false)), "{}", r.body);
}

#[tokio::test]
async fn built_in_tools_are_refused_naming_the_tool() {
    let h = start(ROUTES).await;
    let body = json!({ "model": "to_openai", "input": "hi", "tools": [{ "type": "web_search" }] });
    let r = h.post("/v1/responses", &body).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["param"], "tools[0].type");
}

#[tokio::test]
async fn the_drain_deadline_ends_an_open_responses_stream_with_response_failed() {
    let routes = "[routes.stall]\ntargets = [{ provider = \"oa\", model = \"gpt-stall2\" }]";
    let h = start_draining(&format!("api_keys = [\"{CLIENT_KEY}\"]"), routes, Duration::from_millis(500)).await;
    let response = h
        .http
        .post(h.url("/v1/responses"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({ "model": "stall", "stream": true, "input": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = String::from_utf8_lossy(&body.next().await.unwrap().unwrap()).into_owned();
    let Harness { gateway, upstream, .. } = h;
    let stopped = tokio::spawn(gateway.shutdown());
    while let Some(Ok(chunk)) = tokio::time::timeout(Duration::from_secs(10), body.next()).await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    assert!(last.starts_with("event: response.failed\ndata: "), "{text}");
    assert!(!text.contains("response.completed"), "{text}");
    stopped.await.unwrap().unwrap();
    drop(upstream);
}

/// The OpenAI SDK version `.ci/run` installs.
const OPENAI_SDK: &str = "openai==3.57.0";

#[tokio::test]
async fn the_official_openai_python_sdk_works_unchanged_over_either_kind_of_target() {
    let h = start(ROUTES).await;
    let args = vec![h.url("/v1"), CLIENT_KEY.to_owned(), "to_openai".to_owned(), "to_anthropic".to_owned()];
    let stdout = run_python_sdk("openai_sdk.py", args, OPENAI_SDK).await;
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), 2, "{stdout}");
    // Every call went through the failing primary first.
    assert!(h.upstream.calls("claude-500") > 0 && h.upstream.calls("gpt-500") > 0);
}
