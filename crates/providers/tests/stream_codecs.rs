//! The gateway's stream encoders, read back by the clients' decoders: both directions of each API.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use bytes::Bytes;
use serde_json::{Value, json};
use switchyard::{ChatChunk, ChatStream, Error, ErrorKind, FinishReason, Usage, types::ToolCallDelta};
use switchyard_providers::sse::{SseEvent, SseParser};
use switchyard_providers::{Decoded, EventDecoder, anthropic, openai};

fn chunks() -> Vec<ChatChunk> {
    let delta = |index, id: Option<&str>, name: Option<&str>, args: &str| {
        ChatChunk::ToolCall(ToolCallDelta {
            index,
            id: id.map(Into::into),
            name: name.map(Into::into),
            arguments: args.into(),
        })
    };
    vec![
        ChatChunk::Usage(Usage { input_tokens: 12, output_tokens: 0 }),
        ChatChunk::text("Let me "),
        ChatChunk::text("check."),
        delta(3, Some("call_a"), Some("get_weather"), ""),
        delta(3, None, None, "{\"city\":"),
        delta(3, None, None, "\"Oslo\"}"),
        delta(7, Some("call_b"), Some("get_time"), "{}"),
        ChatChunk::Usage(Usage { input_tokens: 12, output_tokens: 9 }),
        ChatChunk::Finish { reason: FinishReason::ToolCalls },
    ]
}

fn parse_frames(frames: &[Bytes]) -> Vec<SseEvent> {
    let mut parser = SseParser::default();
    let mut out = Vec::new();
    for frame in frames {
        parser.push(frame, &mut out).unwrap();
    }
    out
}

fn decode(decoder: &mut dyn EventDecoder, events: &[SseEvent]) -> Vec<Result<ChatChunk, Error>> {
    let mut items = Vec::new();
    for event in events {
        let mut out = Vec::new();
        let result = decoder.event(event.view(), &mut out);
        items.extend(out.into_iter().map(Ok));
        match result {
            Ok(Decoded::End) => return items,
            // The client's reader skips a malformed event, as here.
            Ok(Decoded::More | Decoded::Malformed(_)) => {}
            Err(e) => {
                items.push(Err(e));
                return items;
            }
        }
    }
    let mut out = Vec::new();
    if let Err(e) = decoder.end(&mut out) {
        items.push(Err(e));
    }
    items.extend(out.into_iter().map(Ok));
    items
}

async fn check_response(items: Vec<Result<ChatChunk, Error>>) {
    let response = ChatStream::from_items(items).collect_response().await.unwrap();
    assert_eq!(response.message.text(), "Let me check.");
    let calls: Vec<_> =
        response.message.tool_calls().map(|c| (c.id.clone(), c.name.clone(), c.arguments.clone())).collect();
    assert_eq!(
        calls,
        vec![
            ("call_a".into(), "get_weather".into(), "{\"city\":\"Oslo\"}".into()),
            ("call_b".into(), "get_time".into(), "{}".into())
        ]
    );
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.usage, Usage { input_tokens: 12, output_tokens: 9 });
}

#[tokio::test]
async fn openai_encoder_output_decodes_to_the_same_answer() {
    let mut encoder = openai::StreamEncoder::new("chatcmpl-1", "default", true);
    let mut frames: Vec<Bytes> = chunks().iter().flat_map(|c| encoder.chunk(c)).collect();
    frames.push(encoder.done());
    let events = parse_frames(&frames);
    let first: Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(first["choices"][0]["delta"]["role"], json!("assistant"));
    assert_eq!(first["object"], json!("chat.completion.chunk"));
    let tool_indexes: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter_map(|v| v["choices"][0]["delta"]["tool_calls"][0]["index"].as_u64().map(Value::from))
        .collect();
    assert_eq!(tool_indexes, vec![json!(0), json!(0), json!(0), json!(1)], "OpenAI tool indexes are dense");
    let usage: Value = serde_json::from_str(&events[events.len() - 2].data).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], json!({"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    check_response(decode(&mut openai::StreamDecoder::new(), &events)).await;
}

#[test]
fn openai_encoder_without_include_usage_sends_no_usage_chunk() {
    let mut encoder = openai::StreamEncoder::new("id", "m", false);
    let mut frames: Vec<Bytes> = chunks().iter().flat_map(|c| encoder.chunk(c)).collect();
    frames.push(encoder.done());
    let events = parse_frames(&frames);
    assert!(events.iter().all(|e| !e.data.contains("\"prompt_tokens\"")));
}

#[tokio::test]
async fn anthropic_encoder_output_decodes_to_the_same_answer() {
    let mut encoder = anthropic::StreamEncoder::new("msg_1", "default");
    let mut frames: Vec<Bytes> = chunks().iter().flat_map(|c| encoder.chunk(c)).collect();
    frames.push(encoder.done());
    let events = parse_frames(&frames);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start: Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(start["message"]["usage"], json!({"input_tokens": 12, "output_tokens": 0}));
    let delta: Value = serde_json::from_str(&events[12].data).unwrap();
    assert_eq!(delta["delta"]["stop_reason"], json!("tool_use"));
    assert_eq!(delta["usage"], json!({"input_tokens": 12, "output_tokens": 9}));
    check_response(decode(&mut anthropic::StreamDecoder::new(), &events)).await;
}

#[test]
fn anthropic_streams_carry_usage_even_when_it_is_unknown() {
    let mut encoder = anthropic::StreamEncoder::new("msg_1", "m");
    let mut frames = encoder.chunk(&ChatChunk::text("hi"));
    frames.extend(encoder.chunk(&ChatChunk::Finish { reason: FinishReason::Stop }));
    frames.push(encoder.done());
    let events = parse_frames(&frames);
    let start: Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(start["message"]["usage"], json!({"input_tokens": 0, "output_tokens": 0}));
    let delta: Value = serde_json::from_str(&events[events.len() - 2].data).unwrap();
    assert_eq!(delta["usage"], json!({"input_tokens": 0, "output_tokens": 0}));
    assert_eq!(delta["delta"]["stop_reason"], json!("end_turn"));
}

#[test]
fn error_events_have_each_vendors_shape_and_parse_back() {
    let err = Error::Overloaded { status: 529, message: "busy".into() };
    let mut encoder = anthropic::StreamEncoder::new("msg_1", "m").with_request_id("req-9");
    let mut frames = encoder.chunk(&ChatChunk::text("partial"));
    frames.push(encoder.error(&err));
    let events = parse_frames(&frames);
    let last = events.last().unwrap();
    assert_eq!(last.event, "error");
    let body: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(body["error"]["type"], json!("overloaded_error"));
    assert_eq!(body["request_id"], json!("req-9"));
    let items = decode(&mut anthropic::StreamDecoder::new(), &events);
    assert_eq!(items.last().unwrap().as_ref().unwrap_err().kind(), ErrorKind::Overloaded);
    assert!(!events.iter().any(|e| e.event == "message_stop"));

    let mut encoder = openai::StreamEncoder::new("id", "m", true);
    let mut frames: Vec<Bytes> = encoder.chunk(&ChatChunk::text("partial")).into_iter().collect();
    frames.push(encoder.error(&Error::server(503, "down")));
    let events = parse_frames(&frames);
    let body: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!(body["error"]["type"], json!("server_error"));
    assert!(!events.iter().any(|e| e.data == "[DONE]"));
    let items = decode(&mut openai::StreamDecoder::new(), &events);
    assert_eq!(items.last().unwrap().as_ref().unwrap_err().kind(), ErrorKind::Server);
}
