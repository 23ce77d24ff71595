//! Mixed routes: an Anthropic target behind the OpenAI API and the reverse, with tool calls over several turns.

use serde_json::{Value, json};

use crate::common::*;

const ROUTES: &str = r#"
[routes.to_anthropic]
targets = [{ provider = "an", model = "claude-ok" }]
[routes.to_openai]
targets = [{ provider = "oa", model = "gpt-ok" }]
"#;

fn openai_tools() -> Value {
    json!([{ "type": "function", "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] }
    }}])
}

fn anthropic_tools() -> Value {
    json!([{
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] }
    }])
}

#[tokio::test]
async fn openai_api_over_an_anthropic_target_with_tools_over_several_turns() {
    let h = start(ROUTES).await;
    let mut messages = vec![
        json!({ "role": "system", "content": "You are helpful." }),
        json!({ "role": "user", "content": "please use the tool for Paris" }),
    ];
    for turn in 0..2 {
        let r = h
            .post(
                "/v1/chat/completions",
                &json!({ "model": "to_anthropic", "messages": messages, "tools": openai_tools() }),
            )
            .await;
        assert_eq!(r.status, 200, "turn {turn}: {:?}", r.body);
        assert_eq!(r.target(), "an/claude-ok");
        let choice = &r.body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls", "turn {turn}: {:?}", r.body);
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "get_weather");
        let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(args["city"].is_string(), "{args}");
        let id = call["id"].as_str().unwrap().to_owned();
        assert!(!id.is_empty());
        messages.push(choice["message"].clone());
        messages.push(json!({ "role": "tool", "tool_call_id": id, "content": format!("sunny-{turn}") }));

        let r = h
            .post(
                "/v1/chat/completions",
                &json!({ "model": "to_anthropic", "messages": messages, "tools": openai_tools() }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let text = r.body["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
        assert!(text.contains(&format!("sunny-{turn}")), "the tool result must reach the model: {text}");
        messages.push(json!({ "role": "assistant", "content": text }));
        messages.push(json!({ "role": "user", "content": "use the tool once more" }));
    }

    // The same first turn, streamed: tool-call fragments arrive as OpenAI deltas.
    let r = h
        .stream(
            "/v1/chat/completions",
            &json!({ "model": "to_anthropic", "stream": true, "tools": openai_tools(),
                     "messages": [{ "role": "user", "content": "please use the tool" }] }),
        )
        .await;
    assert_eq!(r.status, 200);
    let mut name = String::new();
    let mut args = String::new();
    let mut finish = String::new();
    for d in r.data().iter().filter(|d| *d != "[DONE]") {
        let v: Value = serde_json::from_str(d).unwrap();
        if let Some(call) = v["choices"][0]["delta"]["tool_calls"].get(0) {
            name.push_str(call["function"]["name"].as_str().unwrap_or(""));
            args.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
            finish = f.to_owned();
        }
    }
    assert_eq!(name, "get_weather");
    assert!(serde_json::from_str::<Value>(&args).unwrap()["city"].is_string(), "{args}");
    assert_eq!(finish, "tool_calls");
}

#[tokio::test]
async fn anthropic_api_over_an_openai_target_with_tools_over_several_turns() {
    let h = start(ROUTES).await;
    let mut messages = vec![json!({ "role": "user", "content": "please use the tool for Rome" })];
    for turn in 0..2 {
        let r = h
            .post(
                "/v1/messages",
                &json!({ "model": "to_openai", "max_tokens": 300, "system": "Be brief.", "messages": messages, "tools": anthropic_tools() }),
            )
            .await;
        assert_eq!(r.status, 200, "turn {turn}: {:?}", r.body);
        assert_eq!(r.target(), "oa/gpt-ok");
        assert_eq!(r.body["stop_reason"], "tool_use", "{:?}", r.body);
        let block = r.body["content"].as_array().unwrap().iter().find(|b| b["type"] == "tool_use").unwrap().clone();
        assert_eq!(block["name"], "get_weather");
        assert!(block["input"]["city"].is_string());
        let id = block["id"].as_str().unwrap().to_owned();
        messages.push(json!({ "role": "assistant", "content": r.body["content"] }));
        messages.push(json!({ "role": "user", "content": [{ "type": "tool_result", "tool_use_id": id, "content": format!("cloudy-{turn}") }] }));

        let r = h
            .post(
                "/v1/messages",
                &json!({ "model": "to_openai", "max_tokens": 300, "messages": messages, "tools": anthropic_tools() }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let text = r.body["content"][0]["text"].as_str().unwrap().to_owned();
        assert!(text.contains(&format!("cloudy-{turn}")), "{text}");
        messages.push(json!({ "role": "assistant", "content": text }));
        messages.push(json!({ "role": "user", "content": "use the tool again" }));
    }

    let r = h
        .stream(
            "/v1/messages",
            &json!({ "model": "to_openai", "stream": true, "max_tokens": 300, "tools": anthropic_tools(),
                     "messages": [{ "role": "user", "content": "please use the tool" }] }),
        )
        .await;
    assert_eq!(r.status, 200);
    let mut json_text = String::new();
    let mut saw_tool_block = false;
    let mut stop = String::new();
    for d in r.data() {
        let v: Value = serde_json::from_str(&d).unwrap();
        if v["type"] == "content_block_start" && v["content_block"]["type"] == "tool_use" {
            saw_tool_block = true;
            assert_eq!(v["content_block"]["name"], "get_weather");
        }
        if v["delta"]["type"] == "input_json_delta" {
            json_text.push_str(v["delta"]["partial_json"].as_str().unwrap());
        }
        if let Some(s) = v["delta"]["stop_reason"].as_str() {
            stop = s.to_owned();
        }
    }
    assert!(saw_tool_block, "{}", r.text);
    assert!(serde_json::from_str::<Value>(&json_text).unwrap()["city"].is_string(), "{json_text}");
    assert_eq!(stop, "tool_use");
}
