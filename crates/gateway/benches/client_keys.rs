//! What a named client key with `rpm` and `tpm` adds to a request through the router (auth, the route check,
//! the window's reservation and settlement, the `x-ratelimit-*` headers), against an unnamed key.
//!
//! `cargo bench -p switchyard-gateway --bench client_keys`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use switchyard::SharedModel;
use switchyard_gateway::config::{Config, ProviderConfig, TargetConfig};
use switchyard_gateway::server;
use switchyard_gateway::state::{AppState, ModelFactory};
use switchyard_sim::SimModel;
use tower::ServiceExt;

const CONFIG: &str = r#"
[server]
api_keys = ["plain-key"]
[server.keys.team-a]
key = "team-a-key"
rpm = 1000000000
tpm = 1000000000000
routes = ["default"]
[providers.sim]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
[routes.default]
targets = [{ provider = "sim", model = "a" }]
"#;

const BODY: &str = r#"{"model":"default","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello to the benchmark, please."}],"max_tokens":64}"#;

struct Instant;

impl ModelFactory for Instant {
    fn build(&self, _provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String> {
        Ok(Arc::new(SimModel::replying(target.model.clone(), "Hello, benchmark!").keep_requests(false)))
    }
}

async fn ask(router: &axum::Router, key: &str) -> usize {
    let request = Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(BODY))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().len()
}

fn client_keys(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let config = Config::parse(CONFIG, &|_| None, None).unwrap();
    let router = server::router(Arc::new(AppState::build(&config, &Instant).unwrap()));
    let mut group = c.benchmark_group("client_keys");
    for (name, key) in [("unnamed_key", "plain-key"), ("named_key_rpm_tpm_routes", "team-a-key")] {
        group.bench_function(name, |b| b.to_async(&rt).iter(|| async { black_box(ask(&router, key).await) }));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3))
        .sample_size(50);
    targets = client_keys
}
criterion_main!(benches);
