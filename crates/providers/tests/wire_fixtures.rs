//! Recorded vendor wire data (error bodies, SSE streams) → the engine's errors and chunks.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::time::Duration;

use switchyard::{ChatChunk, ChatStream, Error, ErrorKind, FinishReason, Usage};
use switchyard_providers::sse::SseParser;
use switchyard_providers::{Decoded, EventDecoder, anthropic, openai};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Runs a recorded stream through the SSE reader and a decoder, as the client does.
fn decode(decoder: &mut dyn EventDecoder, bytes: &str) -> Vec<Result<ChatChunk, Error>> {
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    parser.push(bytes.as_bytes(), &mut events).unwrap();
    let mut items = Vec::new();
    for event in &events {
        let mut chunks = Vec::new();
        let result = decoder.event(event.view(), &mut chunks);
        items.extend(chunks.into_iter().map(Ok));
        match result {
            // The client's reader skips a malformed event, as here.
            Ok(Decoded::More | Decoded::Malformed(_)) => {}
            Ok(Decoded::End) => return items,
            Err(e) => {
                items.push(Err(e));
                return items;
            }
        }
    }
    let mut chunks = Vec::new();
    let result = decoder.end(&mut chunks);
    items.extend(chunks.into_iter().map(Ok));
    if let Err(e) = result {
        items.push(Err(e));
    }
    items
}

#[test]
fn openai_error_bodies_map_to_kinds() {
    let cases = [
        (429, "openai_429.json", ErrorKind::RateLimited),
        (400, "openai_context_length.json", ErrorKind::ContextLength),
        (400, "openai_content_filter.json", ErrorKind::ContentFiltered),
        (401, "openai_401.json", ErrorKind::Auth),
        (403, "openai_401.json", ErrorKind::Auth),
        (404, "openai_404.json", ErrorKind::NotFound),
        (400, "openai_400.json", ErrorKind::InvalidRequest),
        (500, "openai_503.json", ErrorKind::Server),
        (502, "gateway_502.html", ErrorKind::Server),
        (503, "openai_503.json", ErrorKind::Server),
        (504, "gateway_502.html", ErrorKind::Server),
    ];
    for (status, file, kind) in cases {
        let err = openai::parse_error(Some(status), &fixture(file), None);
        assert_eq!(err.kind(), kind, "{status} {file}: {err}");
    }
}

#[test]
fn openai_rate_limit_keeps_retry_after_and_400_keeps_status_message_and_param() {
    let err = openai::parse_error(Some(429), &fixture("openai_429.json"), Some(Duration::from_secs(2)));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    let err = openai::parse_error(Some(400), &fixture("openai_400.json"), None);
    assert_eq!(
        err,
        Error::InvalidRequest {
            status: 400,
            message: "Invalid value for 'temperature': must be between 0 and 2.".into(),
            param: Some("temperature".into()),
            attempts: Vec::new(),
        }
    );
    let err = openai::parse_error(Some(502), &fixture("gateway_502.html"), None);
    assert!(err.to_string().contains("502 Bad Gateway"), "{err}");
}

#[test]
fn anthropic_error_bodies_map_to_kinds() {
    let cases = [
        (529, "anthropic_529.json", ErrorKind::Overloaded),
        (400, "anthropic_prompt_too_long.json", ErrorKind::ContextLength),
        (429, "anthropic_429.json", ErrorKind::RateLimited),
        (401, "anthropic_401.json", ErrorKind::Auth),
        (403, "anthropic_403.json", ErrorKind::Auth),
        (404, "anthropic_404.json", ErrorKind::NotFound),
        (400, "anthropic_400.json", ErrorKind::InvalidRequest),
        (500, "anthropic_500.json", ErrorKind::Server),
        (502, "gateway_502.html", ErrorKind::Server),
        (503, "anthropic_500.json", ErrorKind::Server),
    ];
    for (status, file, kind) in cases {
        let err = anthropic::parse_error(Some(status), &fixture(file), None);
        assert_eq!(err.kind(), kind, "{status} {file}: {err}");
    }
    let err = anthropic::parse_error(Some(400), &fixture("anthropic_400.json"), None);
    assert!(
        matches!(&err, Error::InvalidRequest { status: 400, message, .. } if message == "max_tokens: Field required")
    );
}

#[tokio::test]
async fn anthropic_tool_stream_assembles_text_two_tool_calls_and_usage() {
    let items = decode(&mut anthropic::StreamDecoder::new(), &fixture("anthropic_tool_stream.sse"));
    let response = ChatStream::from_items(items).collect_response().await.unwrap();
    assert_eq!(response.message.text(), "Okay, let me check the weather.");
    let calls: Vec<_> = response.message.tool_calls().cloned().collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].id, "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments, r#"{"location": "San Francisco, CA"}"#);
    // A tool called with no argument deltas still gets valid JSON.
    assert_eq!((calls[1].name.as_str(), calls[1].arguments.as_str()), ("get_time", "{}"));
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.usage, Usage { input_tokens: 472, output_tokens: 89 });
}

#[tokio::test]
async fn openai_tool_stream_assembles_interleaved_fragments_and_usage() {
    let items = decode(&mut openai::StreamDecoder::new(), &fixture("openai_tool_stream.sse"));
    let response = ChatStream::from_items(items).collect_response().await.unwrap();
    let calls: Vec<_> = response.message.tool_calls().cloned().collect();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].id.as_str(), calls[0].name.as_str()), ("call_abc", "get_weather"));
    assert_eq!(calls[0].arguments, r#"{"location": "Paris"}"#);
    assert_eq!((calls[1].id.as_str(), calls[1].arguments.as_str()), ("call_def", "{}"));
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.usage, Usage { input_tokens: 82, output_tokens: 17 });
}

#[tokio::test]
async fn openai_text_stream_with_comments_and_usage_on_the_last_delta() {
    let items = decode(&mut openai::StreamDecoder::new(), &fixture("openai_text_stream.sse"));
    let response = ChatStream::from_items(items).collect_response().await.unwrap();
    assert_eq!(response.message.text(), "Hello there");
    assert_eq!(response.usage, Usage { input_tokens: 5, output_tokens: 2 });
    assert_eq!(response.finish_reason, FinishReason::Stop);
}

#[test]
fn an_error_event_before_content_is_the_vendors_error() {
    let items = decode(&mut openai::StreamDecoder::new(), &fixture("openai_error_in_stream.sse"));
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().kind(), ErrorKind::Server);
}

#[test]
fn an_error_event_after_content_follows_the_content() {
    let items = decode(&mut anthropic::StreamDecoder::new(), &fixture("anthropic_error_after_content.sse"));
    assert!(matches!(&items[1], Ok(ChatChunk::Text { text }) if text == "Once upon"), "{items:?}");
    let last = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(last.kind(), ErrorKind::Overloaded);
}

#[test]
fn a_stream_without_its_finish_event_is_invalid() {
    let items = decode(&mut anthropic::StreamDecoder::new(), &fixture("anthropic_cut_off.sse"));
    assert_eq!(items.last().unwrap().as_ref().unwrap_err().kind(), ErrorKind::InvalidResponse);
    let cut = fixture("openai_text_stream.sse").replace("\"finish_reason\":\"stop\"", "\"finish_reason\":null");
    let cut = cut.replace("data: [DONE]\n", "");
    let items = decode(&mut openai::StreamDecoder::new(), &cut);
    assert_eq!(items.last().unwrap().as_ref().unwrap_err().kind(), ErrorKind::InvalidResponse);
}

#[test]
fn a_content_filter_stop_with_no_content_is_content_filtered() {
    let stream =
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"content_filter\"}]}\n\ndata: [DONE]\n\n";
    let items = decode(&mut openai::StreamDecoder::new(), stream);
    assert_eq!(items.last().unwrap().as_ref().unwrap_err().kind(), ErrorKind::ContentFiltered);
    let body = r#"{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#;
    let err = openai::response_from_wire(serde_json::from_str(body).unwrap()).unwrap_err();
    assert_eq!(err, Error::content_filtered("I can't help with that."));
    let body = r#"{"id":"m","type":"message","role":"assistant","model":"c","content":[],"stop_reason":"refusal","usage":{"input_tokens":1,"output_tokens":0}}"#;
    let err = anthropic::response_from_wire(serde_json::from_str(body).unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContentFiltered);
}

#[test]
fn a_non_json_event_is_malformed_and_reads_nothing() {
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    parser
        .push(b"data: {not json\n\nevent: content_block_delta\ndata: {\"type\": \"content_block_del\n\n", &mut events)
        .unwrap();
    let mut chunks = Vec::new();
    let openai = openai::StreamDecoder::new().event(events[0].view(), &mut chunks).unwrap();
    let anthropic = anthropic::StreamDecoder::new().event(events[1].view(), &mut chunks).unwrap();
    for decoded in [openai, anthropic] {
        let Decoded::Malformed(error) = decoded else { panic!("{decoded:?}") };
        assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    }
    assert!(chunks.is_empty());
}
