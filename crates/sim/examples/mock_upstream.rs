//! Runs the simulated upstream on one thread, for load tests and manual tries.
//!
//! `cargo run --release -p switchyard-sim --example mock_upstream -- [--listen ADDR] [--key KEY]`
//! (defaults: 127.0.0.1:9099, key `sim-key`; `--key ''` accepts any key).

use switchyard_sim::{DEFAULT_API_KEY, UpstreamConfig, serve_upstream_until};

fn main() -> std::io::Result<()> {
    let mut listen = "127.0.0.1:9099".to_owned();
    let mut key = DEFAULT_API_KEY.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => listen = value,
            ("--key", Some(value)) => key = value,
            _ => {
                eprintln!("usage: mock_upstream [--listen ADDR] [--key KEY]");
                std::process::exit(2);
            }
        }
    }
    let config = UpstreamConfig { api_key: (!key.is_empty()).then_some(key), ..UpstreamConfig::default() };
    // One thread, so a load test measures what one core can do.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        eprintln!("simulated upstream on http://{} (OpenAI base URL http://{0}/v1)", listener.local_addr()?);
        serve_upstream_until(listener, config, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
}
