//! Throughput of the gateway with the request log on and off, in one process against the simulated
//! upstream: the two gateways take turns, so drift of a loaded host hits both alike.
//!
//! `cargo run --release -p switchyard-gateway --example storage_throughput -- [REQUESTS] [CONCURRENCY] [ROUNDS]`

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchyard_gateway::config::Config;
use switchyard_gateway::server::Running;
use switchyard_gateway::state::{AppState, HttpProviders};
use switchyard_gateway::storage::{Storage, StorageConfig};
use switchyard_sim::{Upstream, UpstreamConfig};

async fn gateway(upstream: &Upstream, storage: Option<&StorageConfig>) -> Result<Running, Box<dyn std::error::Error>> {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[providers.oa]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"{}\"\n\
         [routes.r]\nhedge = false\ntargets = [{{ provider = \"oa\", model = \"gpt-ok\" }}]\n",
        upstream.openai_base_url(),
        switchyard_sim::DEFAULT_API_KEY
    );
    let config = Config::parse(&text, &|_| None, None)?;
    let mut state = AppState::build(&config, &HttpProviders::default())?;
    if let Some(storage) = storage {
        state = state.with_storage(Arc::new(Storage::open(storage)));
    }
    Ok(Running::start(Arc::new(state), "127.0.0.1:0", Duration::from_secs(5)).await?)
}

async fn load(url: &str, requests: usize, concurrency: usize) -> (f64, usize) {
    let http = reqwest::Client::new();
    let body = serde_json::json!({ "model": "r", "messages": [{ "role": "user", "content": "hello" }] });
    let started = Instant::now();
    let ok = futures::stream::iter(0..requests)
        .map(|_| {
            let request = http.post(format!("{url}/v1/chat/completions")).json(&body).send();
            async move { request.await.is_ok_and(|r| r.status() == 200) }
        })
        .buffer_unordered(concurrency)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    (requests as f64 / started.elapsed().as_secs_f64(), ok)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let requests = args.next().transpose()?.unwrap_or(20_000);
    let concurrency = args.next().transpose()?.unwrap_or(64);
    let rounds = args.next().transpose()?.unwrap_or(3);
    let upstream = Upstream::start(UpstreamConfig::default()).await?;
    let folder = std::env::temp_dir().join(format!("switchyard-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&folder)?;
    let storage = StorageConfig {
        path: folder.join("switchyard.db"),
        retention: Duration::from_secs(86_400),
        log_bodies: false,
        queue: 50_000,
    };
    let off = gateway(&upstream, None).await?;
    let on = gateway(&upstream, Some(&storage)).await?;
    let mut out = std::io::stdout();
    let (mut sum_off, mut sum_on) = (0.0, 0.0);
    for round in 0..rounds {
        let (rps_off, ok_off) = load(&off.url(), requests, concurrency).await;
        let (rps_on, ok_on) = load(&on.url(), requests, concurrency).await;
        sum_off += rps_off;
        sum_on += rps_on;
        writeln!(
            out,
            "round {round}: storage off {rps_off:.0} req/s ({ok_off} ok), on {rps_on:.0} req/s ({ok_on} ok)"
        )?;
    }
    let dropped = on.state.log.storage().map_or(0, |s| s.dropped());
    writeln!(
        out,
        "mean: off {:.0} req/s, on {:.0} req/s, on/off {:.3}; rows dropped {dropped}",
        sum_off / rounds as f64,
        sum_on / rounds as f64,
        sum_on / sum_off
    )?;
    let _ = std::fs::remove_dir_all(&folder);
    Ok(())
}
