//! Translation between the OpenAI and Anthropic shapes through the neutral types, in each direction.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use serde_json::{Value, json};
use switchyard::{ChatResponse, ErrorKind, FinishReason, Message, Part, Role, ToolCall, Usage};
use switchyard_providers::{ProviderKind, anthropic, fields, openai};

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

fn openai_request() -> Value {
    json!({
        "model": "default",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image, and the weather in Paris?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C, cloudy"},
            {"role": "tool", "tool_call_id": "call_2", "content": "14:05"},
            {"role": "user", "content": "Thanks, summarise."}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": false,
        "temperature": 0.2,
        "stop": "END",
        "user": "user-42",
        "stream": true,
        "stream_options": {"include_usage": true}
    })
}

#[test]
fn openai_request_becomes_the_equivalent_anthropic_request() {
    let decoded = openai::decode(openai_request().to_string().as_bytes()).unwrap();
    assert!(decoded.stream && decoded.include_usage);
    let wire = anthropic::request_to_wire(&decoded.request, "claude-sonnet-4-5", 4096, true).unwrap();
    assert_eq!(
        to_json(&wire),
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "system": "You are terse.",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this image, and the weather in Paris?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, cloudy"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "14:05"},
                    {"type": "text", "text": "Thanks, summarise."}
                ]}
            ],
            "tools": [{"name": "get_weather", "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
            "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
            "temperature": 0.2,
            "stop_sequences": ["END"],
            "stream": true,
            "metadata": {"user_id": "user-42"}
        })
    );
}

#[test]
fn openai_request_round_trips_through_the_neutral_form() {
    let original = openai_request();
    let request = openai::decode_request(original.to_string().as_bytes()).unwrap();
    let wire = openai::request_to_wire(&request, "default", true).unwrap();
    let mut expected = original;
    // Single-text user content is written as a plain string; stop as a list.
    expected["stop"] = json!(["END"]);
    assert_eq!(to_json(&wire), expected);
}

fn anthropic_request() -> Value {
    json!({
        "model": "default",
        "max_tokens": 512,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "service down"}], "is_error": true},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
            ]}
        ],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "any"},
        "stop_sequences": ["\n\nHuman:"],
        "top_p": 0.9
    })
}

#[test]
fn anthropic_request_becomes_the_equivalent_openai_request() {
    let request = anthropic::decode_request(anthropic_request().to_string().as_bytes()).unwrap();
    assert_eq!(request.messages[2].role, Role::Tool);
    assert!(matches!(&request.messages[2].content[0], Part::ToolResult(r) if r.is_error));
    let wire = openai::request_to_wire(&request, "gpt-4o", false).unwrap();
    assert_eq!(
        to_json(&wire),
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "content": "Let me look.", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "service down"},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required",
            "top_p": 0.9,
            "max_tokens": 512,
            "stop": ["\n\nHuman:"]
        })
    );
}

#[test]
fn anthropic_request_round_trips_through_the_neutral_form() {
    let original = anthropic_request();
    let request = anthropic::decode_request(original.to_string().as_bytes()).unwrap();
    let wire = anthropic::request_to_wire(&request, "default", 4096, false).unwrap();
    let mut expected = original;
    expected["system"] = json!("Be brief.");
    expected["messages"][0]["content"] = json!([{"type": "text", "text": "Weather in Oslo?"}]);
    expected["messages"][2]["content"][0]["content"] = json!("service down");
    assert_eq!(to_json(&wire), expected);
}

#[test]
fn anthropic_request_without_max_tokens_gets_the_targets_value() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let request = anthropic::decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(request.options.max_tokens, None);
    assert_eq!(anthropic::request_to_wire(&request, "c", 4096, false).unwrap().max_tokens, Some(4096));
    assert_eq!(anthropic::request_to_wire(&request, "c", 1000, false).unwrap().max_tokens, Some(1000));
    let openai_request =
        openai::decode_request(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
    assert_eq!(anthropic::request_to_wire(&openai_request, "c", 4096, false).unwrap().max_tokens, Some(4096));
}

#[test]
fn fields_of_the_same_api_pass_and_the_other_api_translates_drops_or_refuses_them_per_the_table() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 7, "user": "u-1",
        "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}}},
        "max_completion_tokens": 300});
    let request = openai::decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(request.extra.origin.as_deref(), Some("openai"));
    let wire = to_json(&openai::request_to_wire(&request, "gpt", false).unwrap());
    assert_eq!(wire["seed"], json!(7));
    assert_eq!(wire["response_format"]["type"], json!("json_schema"));
    assert_eq!(wire["max_completion_tokens"], json!(300));
    assert!(wire.get("max_tokens").is_none(), "{wire}");
    // Towards Anthropic: structured output and user translated, seed dropped, and the fit says so.
    let wire = to_json(&anthropic::request_to_wire(&request, "claude", 4096, false).unwrap());
    assert_eq!(wire["output_config"], json!({"format": {"type": "json_schema", "schema": {"type": "object"}}}));
    assert_eq!(wire["metadata"], json!({"user_id": "u-1"}));
    assert!(wire.get("seed").is_none() && wire.get("response_format").is_none(), "{wire}");
    let fit = fields::fit(&request, ProviderKind::Anthropic);
    assert_eq!((fit.dropped, fit.unfit), (vec!["seed".to_owned()], None));
    assert_eq!(fields::fit(&request, ProviderKind::OpenAi), switchyard::model::Fit::serves());

    // JSON mode without a schema becomes an instruction; reasoning effort a thinking budget under max_tokens.
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2,
        "response_format": {"type": "json_object"}, "reasoning_effort": "high", "max_tokens": 8000});
    let request = openai::decode_request(body.to_string().as_bytes()).unwrap();
    let wire = to_json(&anthropic::request_to_wire(&request, "claude", 4096, false).unwrap());
    assert!(wire["system"].as_str().unwrap().contains("JSON object"), "{wire}");
    assert_eq!(wire["thinking"], json!({"type": "enabled", "budget_tokens": 7999}));
    assert!(wire.get("temperature").is_none(), "thinking takes no temperature: {wire}");

    // n > 1: no target kind carries several choices through the gateway.
    let n2 = openai::decode_request(br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"n":2}"#).unwrap();
    for kind in [ProviderKind::Anthropic, ProviderKind::OpenAi] {
        let unfit = fields::fit(&n2, kind).unfit.unwrap();
        assert_eq!(unfit.field(), "n");
    }
    let err = anthropic::request_to_wire(&n2, "claude", 4096, false).unwrap_err();
    assert!(matches!(&err, switchyard::Error::InvalidRequest { param: Some(p), .. } if p == "n"), "{err}");
    let n1 = openai::decode_request(br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"n":1}"#).unwrap();
    assert!(anthropic::request_to_wire(&n1, "claude", 4096, false).is_ok());

    // Anthropic fields towards OpenAI: structured output and thinking translated, top_k dropped.
    let body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "top_k": 5,
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        "thinking": {"type": "enabled", "budget_tokens": 2048}});
    let request = anthropic::decode_request(body.to_string().as_bytes()).unwrap();
    let same = to_json(&anthropic::request_to_wire(&request, "c", 4096, false).unwrap());
    assert_eq!((&same["top_k"], &same["thinking"]["budget_tokens"]), (&json!(5), &json!(2048)));
    let wire = to_json(&openai::request_to_wire(&request, "gpt", false).unwrap());
    assert_eq!(
        wire["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!(wire["reasoning_effort"], json!("low"));
    assert!(wire.get("top_k").is_none() && wire.get("thinking").is_none(), "{wire}");
    assert_eq!(fields::fit(&request, ProviderKind::OpenAi).dropped, ["top_k"]);
}

#[test]
fn bad_requests_are_invalid_requests_naming_the_field() {
    let param = |e: switchyard::Error| match e {
        switchyard::Error::InvalidRequest { param, status: 400, .. } => param,
        other => panic!("not an InvalidRequest: {other}"),
    };
    assert_eq!(param(openai::decode_request(br#"{"model":"m"}"#).unwrap_err()).as_deref(), Some("messages"));
    assert_eq!(
        param(openai::decode_request(br#"{"messages":[{"role":"tool","content":"x"}]}"#).unwrap_err()).as_deref(),
        Some("messages[0].tool_call_id")
    );
    assert_eq!(
        param(
            openai::decode_request(br#"{"messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"}"#)
                .unwrap_err()
        )
        .as_deref(),
        Some("tool_choice")
    );
    let thinking = json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}]}]});
    assert_eq!(
        param(anthropic::decode_request(thinking.to_string().as_bytes()).unwrap_err()).as_deref(),
        Some("messages[0].content[0].type")
    );
    assert!(openai::decode_request(b"not json").is_err());
}

fn tool_response() -> ChatResponse {
    ChatResponse {
        id: "resp_1".into(),
        model: "upstream-model".into(),
        message: Message {
            role: Role::Assistant,
            content: vec![
                Part::Text { text: "Calling.".into() },
                Part::ToolCall(ToolCall {
                    id: "c1".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Rome"}"#.into(),
                }),
            ],
        },
        finish_reason: FinishReason::ToolCalls,
        usage: Usage { input_tokens: 11, output_tokens: 7 },
        served_by: None,
        attempts: Vec::new(),
    }
}

#[test]
fn anthropic_response_becomes_the_equivalent_openai_response() {
    let upstream = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "Calling."},
            {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Rome"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": 6}
    });
    let response = anthropic::response_from_wire(serde_json::from_value(upstream).unwrap()).unwrap();
    assert_eq!(response.usage, Usage { input_tokens: 11, output_tokens: 7 });
    let mut out = to_json(&openai::encode_response(&response, "default"));
    assert!(out["created"].as_u64().unwrap() > 0);
    out["created"] = json!(0);
    assert_eq!(
        out,
        json!({
            "id": "msg_1", "object": "chat.completion", "created": 0, "model": "default",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Calling.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]}, "finish_reason": "tool_calls", "logprobs": null}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        })
    );
}

#[test]
fn openai_response_becomes_the_equivalent_anthropic_response() {
    // Read from the text, as the client reads it (the wire type borrows from its input).
    let upstream = serde_json::to_string(&openai::encode_response(&tool_response(), "gpt-4o")).unwrap();
    let response = openai::response_from_wire(serde_json::from_str(&upstream).unwrap()).unwrap();
    assert_eq!(response.message, tool_response().message);
    assert_eq!(
        to_json(&anthropic::encode_response(&response, "default")),
        json!({
            "id": "resp_1", "type": "message", "role": "assistant", "model": "default",
            "content": [
                {"type": "text", "text": "Calling."},
                {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Rome"}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 11, "output_tokens": 7}
        })
    );
}

#[test]
fn finish_reasons_map_both_ways() {
    for (reason, openai_name, anthropic_name) in [
        (FinishReason::Stop, "stop", "end_turn"),
        (FinishReason::Length, "length", "max_tokens"),
        (FinishReason::ToolCalls, "tool_calls", "tool_use"),
        (FinishReason::ContentFilter, "content_filter", "refusal"),
    ] {
        assert_eq!(openai::finish_reason_str(&reason), openai_name);
        assert_eq!(openai::parse_finish_reason(openai_name), reason);
        assert_eq!(anthropic::stop_reason_str(&reason), anthropic_name);
        assert_eq!(anthropic::parse_stop_reason(anthropic_name), reason);
    }
    assert_eq!(anthropic::parse_stop_reason("stop_sequence"), FinishReason::Stop);
}

#[test]
fn error_bodies_have_each_vendors_shape() {
    let err = switchyard::Error::RateLimited { message: "slow down".into(), retry_after: None };
    let body = openai::error_body(&err, "req-1");
    assert_eq!(body["error"]["code"], json!("rate_limit_exceeded"));
    assert_eq!(body["error"]["request_id"], json!("req-1"));
    let body = anthropic::error_body(&switchyard::Error::Overloaded { status: 529, message: "busy".into() }, "req-2");
    assert_eq!(body["type"], json!("error"));
    assert_eq!(body["error"]["type"], json!("overloaded_error"));
    assert_eq!(body["request_id"], json!("req-2"));
    let invalid = switchyard::Error::invalid_request("n > 1 is not supported", Some("n"));
    assert_eq!(openai::error_body(&invalid, "r")["error"]["param"], json!("n"));
    assert_eq!(anthropic::error_body(&invalid, "r")["error"]["type"], json!("invalid_request_error"));
    // The gateway's error bodies parse back to the same kind.
    for err in [err, invalid, switchyard::Error::ContextLength { message: "too long".into() }] {
        let status = match err.kind() {
            ErrorKind::RateLimited => 429,
            _ => 400,
        };
        let text = openai::error_body(&err, "").to_string();
        assert_eq!(openai::parse_error(Some(status), &text, None).kind(), err.kind(), "{text}");
        let text = anthropic::error_body(&err, "").to_string();
        assert_eq!(anthropic::parse_error(Some(status), &text, None).kind(), err.kind(), "{text}");
    }
}
