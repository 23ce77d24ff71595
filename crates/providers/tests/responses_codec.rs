//! The Responses API codec on its own: items into the neutral request, the answer and the event sequence out.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use serde_json::{Value, json};
use switchyard::{
    ChatChunk, ChatResponse, Error, FinishReason, Message, Part, Role, ToolCall, ToolChoice, Usage,
    types::ToolCallDelta,
};
use switchyard_providers::responses::{self, Echo, StreamEncoder};

fn decode(body: &Value) -> Result<responses::DecodedRequest, Error> {
    responses::decode(body.to_string().as_bytes())
}

fn param(e: Error) -> String {
    match e {
        Error::InvalidRequest { param, .. } => param.unwrap_or_default(),
        other => panic!("not an InvalidRequest: {other:?}"),
    }
}

#[test]
fn items_become_one_conversation_with_each_turns_text_and_calls_in_one_assistant_message() {
    let d = decode(&json!({
        "model": "default", "instructions": "Be brief.", "max_output_tokens": 300, "temperature": 0.2,
        "tool_choice": { "type": "function", "name": "get_weather" },
        "tools": [{ "type": "function", "name": "get_weather", "parameters": { "type": "object" }, "strict": true }],
        "text": { "format": { "type": "json_schema", "name": "w", "schema": { "type": "object" }, "strict": true } },
        "input": [
            { "role": "developer", "content": "Use metric units." },
            { "role": "user", "content": [{ "type": "input_text", "text": "Weather in Paris?" }] },
            { "type": "reasoning", "id": "rs_1", "summary": [] },
            { "type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
              "content": [{ "type": "output_text", "text": "Checking.", "annotations": [] }] },
            { "type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
              "arguments": "{\"city\":\"Paris\"}", "status": "completed" },
            { "type": "function_call_output", "call_id": "call_1", "output": "18C" }
        ]
    }))
    .unwrap();
    let r = &d.request;
    assert_eq!(r.system.as_deref(), Some("Be brief.\n\nUse metric units."));
    assert_eq!(r.messages.len(), 3, "{:?}", r.messages);
    assert_eq!(r.messages[0], Message::user("Weather in Paris?"));
    assert_eq!(
        r.messages[1],
        Message {
            role: Role::Assistant,
            content: vec![
                Part::Text { text: "Checking.".into() },
                Part::ToolCall(ToolCall {
                    id: "call_1".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Paris\"}".into()
                }),
            ],
        }
    );
    assert_eq!(r.messages[2], Message::tool_result("call_1", "18C", false));
    assert_eq!(r.tools[0].name, "get_weather");
    assert_eq!(r.tool_choice, Some(ToolChoice::Tool { name: "get_weather".into() }));
    assert_eq!((r.options.max_tokens, r.options.temperature), (Some(300), Some(0.2)));
    assert_eq!(r.extra.origin.as_deref(), Some("openai"));
    assert_eq!(
        r.extra.fields["response_format"],
        json!({ "type": "json_schema", "json_schema": { "name": "w", "schema": { "type": "object" }, "strict": true } })
    );
    assert_eq!(d.echo.instructions.as_deref(), Some("Be brief."));
    assert_eq!(d.echo.max_output_tokens, Some(300));
    assert_eq!(d.echo.text["format"]["name"], "w");
    let plain = decode(&json!({ "input": "hi", "text": { "verbosity": "low" } })).unwrap();
    assert_eq!(plain.echo.text, json!({ "format": { "type": "text" }, "verbosity": "low" }));
    assert_eq!(plain.request.extra.fields["verbosity"], "low");
}

#[test]
fn what_cannot_be_served_is_refused_naming_the_field() {
    let cases = [
        (json!({ "input": "hi", "previous_response_id": "resp_1" }), "previous_response_id"),
        (json!({ "input": "hi", "store": true }), "store"),
        (json!({ "input": [{ "type": "item_reference", "id": "x" }] }), "input[0].type"),
        (json!({ "input": [{ "type": "web_search_call", "id": "x" }] }), "input[0].type"),
        (json!({ "input": "hi", "tools": [{ "type": "file_search" }] }), "tools[0].type"),
        (
            json!({ "input": [{ "role": "user", "content": [{ "type": "input_file", "file_id": "f" }] }] }),
            "input[0].content[0].type",
        ),
        (json!({ "input": [{ "type": "function_call_output", "output": "x" }] }), "input[0].call_id"),
        (json!({ "input": "hi", "text": { "format": { "type": "json_schema", "name": "x" } } }), "text.format.schema"),
        (json!({ "input": "hi", "tool_choice": "sometimes" }), "tool_choice"),
        (json!({ "model": "m" }), "input"),
    ];
    for (body, expected) in cases {
        let got = param(decode(&body).unwrap_err());
        assert_eq!(got, expected, "{body}");
    }
    assert!(decode(&json!({ "input": "hi", "store": false })).is_ok());
}

fn echo() -> Echo {
    Echo::default()
}

#[test]
fn a_whole_answer_is_a_message_then_its_function_calls_with_usage() {
    let response = ChatResponse {
        id: "x".into(),
        model: "gpt-4o".into(),
        message: Message {
            role: Role::Assistant,
            content: vec![
                Part::Text { text: "Let me check.".into() },
                Part::ToolCall(ToolCall { id: "call_9".into(), name: "f".into(), arguments: "{}".into() }),
            ],
        },
        finish_reason: FinishReason::ToolCalls,
        usage: Usage { input_tokens: 10, output_tokens: 4 },
        served_by: None,
        attempts: Vec::new(),
    };
    let v = serde_json::to_value(responses::encode_response(&response, "served-model", &echo())).unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(
        (v["object"].as_str(), v["status"].as_str(), v["model"].as_str()),
        (Some("response"), Some("completed"), Some("served-model"))
    );
    assert_eq!(v["output"][0]["type"], "message");
    assert_eq!(
        v["output"][0]["content"][0],
        json!({ "type": "output_text", "text": "Let me check.", "annotations": [], "logprobs": [] })
    );
    assert_eq!(
        (v["output"][1]["type"].as_str(), v["output"][1]["call_id"].as_str()),
        (Some("function_call"), Some("call_9"))
    );
    assert_eq!(v["usage"]["total_tokens"], 14);
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!((v["tool_choice"].as_str(), v["parallel_tool_calls"].as_bool()), (Some("auto"), Some(true)));

    let mut cut = response.clone();
    cut.finish_reason = FinishReason::Length;
    let v = serde_json::to_value(responses::encode_response(&cut, "m", &echo())).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["incomplete_details"]["reason"].as_str()),
        (Some("incomplete"), Some("max_output_tokens"))
    );
}

fn parse(frames: &[bytes::Bytes]) -> Vec<Value> {
    let text: String = frames.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|frame| {
            let (event, data) = frame.split_once('\n').unwrap();
            let value: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(event.strip_prefix("event: ").unwrap(), value["type"]);
            value
        })
        .collect()
}

fn call(index: u32, id: Option<&str>, arguments: &str) -> ChatChunk {
    ChatChunk::ToolCall(ToolCallDelta {
        index,
        id: id.map(str::to_owned),
        name: id.map(|_| format!("tool{index}")),
        arguments: arguments.into(),
    })
}

#[test]
fn a_stream_of_text_then_two_calls_is_the_responses_event_sequence() {
    let mut e = StreamEncoder::new("resp_1", "m", &echo());
    let mut frames = Vec::new();
    for chunk in [
        ChatChunk::Text { text: "Hel".into() },
        ChatChunk::Text { text: "lo".into() },
        call(0, Some("call_a"), "{\"a\":"),
        call(0, None, "1}"),
        call(1, Some("call_b"), "{}"),
        ChatChunk::Usage(Usage { input_tokens: 5, output_tokens: 7 }),
        ChatChunk::Finish { reason: FinishReason::ToolCalls },
    ] {
        frames.extend(e.chunk(&chunk));
    }
    frames.push(e.done());
    let events = parse(&frames);
    let kinds: Vec<&str> = events.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, v) in events.iter().enumerate() {
        assert_eq!(v["sequence_number"].as_u64(), Some(i as u64));
    }
    assert_eq!(events[6]["text"], "Hello");
    assert_eq!((events[12]["arguments"].as_str(), events[12]["output_index"].as_u64()), (Some("{\"a\":1}"), Some(1)));
    let done = &events[18]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"].as_array().unwrap().len(), 3);
    assert_eq!(
        (done["output"][2]["call_id"].as_str(), done["output"][2]["status"].as_str()),
        (Some("call_b"), Some("completed"))
    );
    assert_eq!(done["usage"]["total_tokens"], 12);
}

#[test]
fn a_failure_ends_with_response_failed_even_before_any_content() {
    let mut e = StreamEncoder::new("resp_2", "m", &echo());
    let events = parse(&[e.error(&Error::server(500, "boom"))]);
    let kinds: Vec<&str> = events.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["response.created", "response.in_progress", "response.failed"]);
    assert_eq!(events[2]["response"]["status"], "failed");
    assert_eq!(events[2]["response"]["error"]["code"], "server_error");

    let mut e = StreamEncoder::new("resp_3", "m", &echo());
    let mut frames = e.chunk(&ChatChunk::Text { text: "partial".into() });
    frames.push(e.error(&Error::rate_limited("slow down", None)));
    let events = parse(&frames);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["error"]["code"], "rate_limit_exceeded");
    assert_eq!(last["response"]["output"][0]["status"], "incomplete");
    assert!(!events.iter().any(|v| v["type"] == "response.completed" || v["type"] == "response.output_item.done"));
}
