//! The providers' hot paths: SSE parsing, stream decoding, and OpenAI <-> Anthropic translation.
//!
//! `cargo bench -p switchyard-providers --bench codecs -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use switchyard::{ChatChunk, ChatResponse, FinishReason, Usage};
use switchyard_providers::sse::{SseEvent, SseParser};
use switchyard_providers::{EventDecoder, anthropic, openai};

/// A chat request as an OpenAI client sends it: system prompt, a short conversation, one tool.
const OPENAI_REQUEST: &str = r#"{
  "model": "default",
  "messages": [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly and cite the tool when you use it."},
    {"role": "user", "content": "What is the weather in Paris today, and should I take an umbrella?"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"sky\":\"rain\",\"temp_c\":12}"},
    {"role": "user", "content": "Thanks. And tomorrow?"}
  ],
  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
  "temperature": 0.2,
  "max_tokens": 512
}"#;

/// The same conversation as an Anthropic client sends it.
const ANTHROPIC_REQUEST: &str = r#"{
  "model": "default",
  "max_tokens": 512,
  "system": "You are a helpful assistant. Answer briefly and cite the tool when you use it.",
  "messages": [
    {"role": "user", "content": "What is the weather in Paris today, and should I take an umbrella?"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
      "input": {"city": "Paris"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
      "content": "{\"sky\":\"rain\",\"temp_c\":12}"}]},
    {"role": "user", "content": "Thanks. And tomorrow?"}
  ],
  "tools": [{"name": "get_weather", "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
  "temperature": 0.2
}"#;

/// Forty short text deltas, usage and a finish: a typical answer's stream.
fn answer_chunks() -> Vec<ChatChunk> {
    let mut chunks: Vec<ChatChunk> = (0..40).map(|i| ChatChunk::text(format!("word{i} "))).collect();
    chunks.push(ChatChunk::Usage(Usage { input_tokens: 42, output_tokens: 40 }));
    chunks.push(ChatChunk::Finish { reason: FinishReason::Stop });
    chunks
}

fn openai_stream_bytes() -> Vec<u8> {
    let mut encoder = openai::StreamEncoder::new("chatcmpl-bench", "bench-ok", true);
    let mut out = Vec::new();
    for chunk in answer_chunks() {
        if let Some(frame) = encoder.chunk(&chunk) {
            out.extend_from_slice(&frame);
        }
    }
    out.extend_from_slice(&encoder.done());
    out
}

fn anthropic_stream_bytes() -> Vec<u8> {
    let mut encoder = anthropic::StreamEncoder::new("msg_bench", "bench-ok");
    let mut out = Vec::new();
    for chunk in answer_chunks() {
        for frame in encoder.chunk(&chunk) {
            out.extend_from_slice(&frame);
        }
    }
    out.extend_from_slice(&encoder.done());
    out
}

fn parse_all(bytes: &[u8], split: usize) -> Vec<SseEvent> {
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    for part in bytes.chunks(split) {
        parser.push(part, &mut events).unwrap();
    }
    events
}

fn sse(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse");
    for (name, bytes) in [("openai", openai_stream_bytes()), ("anthropic", anthropic_stream_bytes())] {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        // Whole body in one read, and in 64-byte reads (events split across reads).
        group.bench_function(format!("parse_{name}_one_read"), |b| {
            b.iter(|| black_box(parse_all(black_box(&bytes), bytes.len())))
        });
        group.bench_function(format!("parse_{name}_64_byte_reads"), |b| {
            b.iter(|| black_box(parse_all(black_box(&bytes), 64)))
        });
    }
    let openai_events = parse_all(&openai_stream_bytes(), usize::MAX);
    group.bench_function("decode_openai_events_to_chunks", |b| {
        b.iter(|| {
            let mut decoder = openai::StreamDecoder::new();
            let mut chunks = Vec::with_capacity(64);
            for event in &openai_events {
                decoder.event(event.view(), &mut chunks).unwrap();
            }
            black_box(chunks)
        })
    });
    let anthropic_events = parse_all(&anthropic_stream_bytes(), usize::MAX);
    group.bench_function("decode_anthropic_events_to_chunks", |b| {
        b.iter(|| {
            let mut decoder = anthropic::StreamDecoder::new();
            let mut chunks = Vec::with_capacity(64);
            for event in &anthropic_events {
                decoder.event(event.view(), &mut chunks).unwrap();
            }
            black_box(chunks)
        })
    });
    group.bench_function("encode_openai_stream", |b| b.iter(|| black_box(openai_stream_bytes())));
    group.bench_function("encode_anthropic_stream", |b| b.iter(|| black_box(anthropic_stream_bytes())));
    group.finish();
}

fn translate(c: &mut Criterion) {
    let mut group = c.benchmark_group("translate");
    group.bench_function("openai_request_decode", |b| {
        b.iter(|| black_box(openai::decode(black_box(OPENAI_REQUEST.as_bytes())).unwrap()))
    });
    group.bench_function("anthropic_request_decode", |b| {
        b.iter(|| black_box(anthropic::decode(black_box(ANTHROPIC_REQUEST.as_bytes())).unwrap()))
    });
    // Caller speaks OpenAI, upstream is Anthropic: body -> neutral -> Anthropic wire -> bytes.
    group.bench_function("openai_request_to_anthropic_body", |b| {
        b.iter(|| {
            let request = openai::decode_request(black_box(OPENAI_REQUEST.as_bytes())).unwrap();
            let wire = anthropic::request_to_wire(&request, "claude-bench", 4096, false).unwrap();
            black_box(serde_json::to_vec(&wire).unwrap())
        })
    });
    group.bench_function("anthropic_request_to_openai_body", |b| {
        b.iter(|| {
            let request = anthropic::decode_request(black_box(ANTHROPIC_REQUEST.as_bytes())).unwrap();
            let wire = openai::request_to_wire(&request, "gpt-bench", false).unwrap();
            black_box(serde_json::to_vec(&wire).unwrap())
        })
    });
    // Answers the other way: the upstream's JSON -> neutral -> the caller's JSON.
    let response = ChatResponse {
        id: "resp_bench".into(),
        usage: Usage { input_tokens: 42, output_tokens: 40 },
        ..ChatResponse::text("bench-ok", "It will rain tomorrow too: take the umbrella. ".repeat(8))
    };
    let anthropic_json = serde_json::to_vec(&anthropic::encode_response(&response, "claude-bench")).unwrap();
    let openai_json = serde_json::to_vec(&openai::encode_response(&response, "gpt-bench")).unwrap();
    group.bench_function("anthropic_response_to_openai_body", |b| {
        b.iter_batched(
            || anthropic_json.clone(),
            |json| {
                let wire: anthropic::wire::MessagesResponse = serde_json::from_slice(&json).unwrap();
                let neutral = anthropic::response_from_wire(wire).unwrap();
                black_box(serde_json::to_vec(&openai::encode_response(&neutral, "default")).unwrap())
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("openai_response_to_anthropic_body", |b| {
        b.iter_batched(
            || openai_json.clone(),
            |json| {
                let wire: openai::wire::ChatCompletion = serde_json::from_slice(&json).unwrap();
                let neutral = openai::response_from_wire(wire).unwrap();
                black_box(serde_json::to_vec(&anthropic::encode_response(&neutral, "default")).unwrap())
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(50);
    targets = sse, translate
}
criterion_main!(benches);
