//! The gateway's request path without sockets: decode the caller's body, run the engine over an instant
//! simulated model, encode the answer (complete, or as SSE frames) in the caller's API.
//!
//! `cargo bench -p switchyard-gateway --bench request_path`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use switchyard::{Backoff, ChatModel, Error, FallbackManager, ModelFallback, SharedModel};
use switchyard_gateway::codec::{self, StreamEncoder};
use switchyard_gateway::error::Api;
use switchyard_sim::SimModel;

const OPENAI_BODY: &str = r#"{"model":"default","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello to the benchmark, please."}],"max_tokens":64}"#;
const ANTHROPIC_BODY: &str = r#"{"model":"default","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Say hello to the benchmark, please."}]}"#;

fn instant(name: &str) -> SharedModel {
    Arc::new(SimModel::replying(name, "Hello, benchmark! Here is a short answer.").keep_requests(false))
}

fn manager(primary: SharedModel) -> FallbackManager {
    FallbackManager::builder()
        .target(ModelFallback::new("sim", "a"), primary)
        .target(ModelFallback::new("sim", "b"), instant("b"))
        .backoff(Backoff::Immediate)
        .build()
        .unwrap()
}

async fn complete(manager: &FallbackManager, api: Api, body: &[u8]) -> Vec<u8> {
    let decoded = codec::decode(api, body).unwrap();
    let response = manager.complete(decoded.request).await.unwrap();
    codec::encode_response(api, &response, "default", &decoded.shape).unwrap()
}

async fn stream(manager: &FallbackManager, api: Api, body: &[u8]) -> usize {
    let decoded = codec::decode(api, body).unwrap();
    let mut encoder = StreamEncoder::new(api, "req-bench", "default", &decoded.shape);
    let mut chunks = manager.stream(decoded.request).await.unwrap();
    let mut bytes = 0;
    while let Some(chunk) = chunks.next().await {
        if let Some(frame) = encoder.chunk(&chunk.unwrap()) {
            bytes += black_box(frame).len();
        }
    }
    bytes + encoder.done().len()
}

fn request_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let ok = manager(instant("a"));
    let failing: SharedModel =
        Arc::new(SimModel::failing("a", Error::server(500, "internal error")).keep_requests(false));
    let fails_over = manager(failing);
    let mut group = c.benchmark_group("request_path");
    for (api, name, body) in [(Api::OpenAi, "openai", OPENAI_BODY), (Api::Anthropic, "anthropic", ANTHROPIC_BODY)] {
        group.bench_function(format!("{name}_complete"), |b| {
            b.to_async(&rt).iter(|| async { black_box(complete(&ok, api, body.as_bytes()).await) })
        });
        group.bench_function(format!("{name}_stream"), |b| {
            b.to_async(&rt).iter(|| async { black_box(stream(&ok, api, body.as_bytes()).await) })
        });
        group.bench_function(format!("{name}_complete_failover_after_500"), |b| {
            b.to_async(&rt).iter(|| async { black_box(complete(&fails_over, api, body.as_bytes()).await) })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(50);
    targets = request_path
}
criterion_main!(benches);
