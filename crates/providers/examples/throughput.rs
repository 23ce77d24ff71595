//! Measures the clients against the simulated upstream on one thread (client and upstream share it), and
//! the gateway-side codecs alone.
//!
//! `cargo run --release -p switchyard-providers --example throughput`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::Instant;

use futures::StreamExt;
use switchyard::{ChatModel, ChatRequest};
use switchyard_providers::{ApiKey, ProviderConfig, ProviderKind, anthropic, build_model, openai};
use switchyard_sim::{DEFAULT_API_KEY, Upstream, UpstreamConfig};

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 32;

async fn run(kind: ProviderKind, upstream: &Upstream, stream: bool) {
    let mut config = ProviderConfig::new(kind, "sim", "bench-ok");
    config.base_url = match kind {
        ProviderKind::OpenAi => upstream.openai_base_url(),
        ProviderKind::Anthropic => upstream.anthropic_base_url(),
    };
    config.api_key = Some(ApiKey::new(DEFAULT_API_KEY));
    let model = build_model(config).unwrap();
    let start = Instant::now();
    futures::stream::iter(0..REQUESTS)
        .for_each_concurrent(CONCURRENCY, |_| {
            let model = model.clone();
            async move {
                let request = ChatRequest::user("Hello there");
                if stream {
                    let mut s = model.stream(request).await.unwrap();
                    while let Some(item) = s.next().await {
                        item.unwrap();
                    }
                } else {
                    model.complete(request).await.unwrap();
                }
            }
        })
        .await;
    let secs = start.elapsed().as_secs_f64();
    let mode = if stream { "stream" } else { "complete" };
    println!(
        "{kind:>9} {mode:>8}: {:>8.0} requests/s ({REQUESTS} requests, {CONCURRENCY} in flight)",
        REQUESTS as f64 / secs
    );
}

fn codecs() {
    let body = serde_json::json!({"model": "default", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there, how are you today?"}]})
    .to_string();
    const N: u32 = 100_000;
    let start = Instant::now();
    for _ in 0..N {
        let request = openai::decode_request(body.as_bytes()).unwrap();
        let wire = anthropic::request_to_wire(&request, "claude", 4096, false).unwrap();
        std::hint::black_box(serde_json::to_vec(&wire).unwrap());
    }
    println!("OpenAI body → Anthropic body: {:.2} µs each", start.elapsed().as_secs_f64() * 1e6 / f64::from(N));
}

fn main() {
    codecs();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
        for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
            run(kind, &upstream, false).await;
            run(kind, &upstream, true).await;
        }
    });
}
