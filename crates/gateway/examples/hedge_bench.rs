//! Hedging through the gateway: a heavy-tailed primary (one call in 20 takes 2 s, the rest 20–60 ms) and
//! a steady secondary (80 ms), 1,000 requests at 20 at a time over real sockets, with and without
//! `hedge = { after = "p95" }`. Prints p50, p99 and the extra upstream calls hedging cost.
//!
//! Run: `cargo run --release -p switchyard-gateway --example hedge_bench`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::json;
use switchyard::{ChatModel, ChatRequest, ChatResponse, ChatStream, Error, SharedModel};
use switchyard_gateway::config::{Config, ProviderConfig, TargetConfig};
use switchyard_gateway::server::Running;
use switchyard_gateway::state::{AppState, ModelFactory};

const REQUESTS: usize = 1000;
const CONCURRENCY: usize = 20;

/// Answers after a delay that depends on the call number; counts calls.
struct Model {
    delay: fn(usize) -> Duration,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl ChatModel for Model {
    async fn complete(&self, _request: ChatRequest) -> Result<ChatResponse, Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep((self.delay)(n)).await;
        Ok(ChatResponse::text("bench", "an answer"))
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        let response = self.complete(request).await?;
        Ok(ChatStream::from_items(vec![
            Ok(switchyard::ChatChunk::text(response.message.text())),
            Ok(switchyard::ChatChunk::Finish { reason: switchyard::FinishReason::Stop }),
        ]))
    }
}

fn heavy_tail(n: usize) -> Duration {
    if n % 20 == 7 { Duration::from_secs(2) } else { Duration::from_millis(20 + (n as u64 * 7) % 41) }
}

fn steady(_: usize) -> Duration {
    Duration::from_millis(80)
}

/// Tail models for `*-tail` targets, steady ones otherwise; one call counter per target.
struct Factory {
    secondary_calls: Arc<AtomicUsize>,
}

impl ModelFactory for Factory {
    fn build(&self, _provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String> {
        if target.model.ends_with("tail") {
            Ok(Arc::new(Model { delay: heavy_tail, calls: Arc::default() }))
        } else {
            Ok(Arc::new(Model { delay: steady, calls: self.secondary_calls.clone() }))
        }
    }
}

async fn run(hedge: &str) -> (Duration, Duration, f64) {
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[providers.sim]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key = "unused"
[routes.bench]
breaker = {{ enabled = false }}
{hedge}
targets = [{{ provider = "sim", model = "primary-tail" }}, {{ provider = "sim", model = "secondary" }}]
"#
    );
    let config = Config::parse(&config, &|_| None, None).unwrap();
    let secondary_calls = Arc::new(AtomicUsize::new(0));
    let state = Arc::new(AppState::build(&config, &Factory { secondary_calls: secondary_calls.clone() }).unwrap());
    let gateway = Running::start(state, "127.0.0.1:0", Duration::from_secs(5)).await.unwrap();
    let url = format!("{}/v1/chat/completions", gateway.url());
    let http = reqwest::Client::new();
    let body = json!({ "model": "bench", "messages": [{ "role": "user", "content": "hi" }] });
    let mut times: Vec<Duration> = futures::stream::iter(0..REQUESTS)
        .map(|_| {
            let (http, url, body) = (http.clone(), url.clone(), body.clone());
            async move {
                let start = Instant::now();
                let r = http.post(&url).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
                start.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    gateway.shutdown().await.unwrap();
    times.sort_unstable();
    let at = |q: usize| times[(times.len() * q).div_ceil(100) - 1];
    (at(50), at(99), secondary_calls.load(Ordering::SeqCst) as f64 / REQUESTS as f64)
}

#[tokio::main]
async fn main() {
    let (p50, p99, _) = run("").await;
    println!("no hedging:        p50 {:>6.1} ms  p99 {:>7.1} ms", ms(p50), ms(p99));
    let (hp50, hp99, extra) = run("hedge = { after = \"p95\" }").await;
    println!(
        "hedge after p95:   p50 {:>6.1} ms  p99 {:>7.1} ms  extra upstream calls {:.1}%  (p99 {:.1}x lower)",
        ms(hp50),
        ms(hp99),
        extra * 100.0,
        p99.as_secs_f64() / hp99.as_secs_f64()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
