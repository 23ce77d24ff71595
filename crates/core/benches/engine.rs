//! The engine's own cost per request, on instant simulated models.
//!
//! `cargo bench -p switchyard --bench engine -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use switchyard::{
    Backoff, ChatModel, ChatRequest, Error, FallbackManager, ModelFallback, SharedModel,
    health::HealthRegistry,
    limits::{LeaseBoard, LeaseGrant, TargetLimits},
    manager::Balance,
};
use switchyard_sim::SimModel;

fn instant(name: &str) -> SimModel {
    SimModel::replying(name, "ok").keep_requests(false)
}

fn manager(primary: SimModel) -> FallbackManager {
    let shared = |m: SimModel| -> SharedModel { Arc::new(m) };
    FallbackManager::builder()
        .target(ModelFallback::new("sim", "a"), shared(primary))
        .target(ModelFallback::new("sim", "b"), shared(instant("b")))
        .target(ModelFallback::new("sim", "c"), shared(instant("c")))
        .backoff(Backoff::Immediate)
        .build()
        .unwrap()
}

/// One target, or a tier of three weighted 1:2:7 with `rpm`, `tpm` and `max_concurrency` set high enough never
/// to refuse (every call still takes a place, reserves and settles tokens).
fn spread(tier: bool, health: HealthRegistry) -> FallbackManager {
    let limits = TargetLimits { rpm: Some(100_000_000), tpm: Some(1 << 50), max_concurrency: Some(1 << 20) };
    let mut builder = FallbackManager::builder().balance(Balance::Weighted).backoff(Backoff::Immediate).health(health);
    let weights: &[u32] = if tier { &[1, 2, 7] } else { &[1] };
    for (i, weight) in weights.iter().enumerate() {
        let mut target = ModelFallback::new("sim", format!("t{i}")).with_weight(*weight);
        if tier {
            target = target.with_limits(limits);
        }
        builder = builder.target(target, Arc::new(instant("t")));
    }
    builder.build().unwrap()
}

/// Grants every leased window of `board` what it asks, on its signal and every 200 ms: the gateway's Redis
/// round without Redis, so the row measures what leases cost the request path.
async fn feed(board: Arc<LeaseBoard>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            () = board.wanted() => {}
            _ = tick.tick() => {}
        }
        let now = tokio::time::Instant::now();
        for window in board.windows() {
            let ask = window.lease_ask(now);
            let grant = LeaseGrant { requests: ask.requests, tokens: ask.tokens, ..LeaseGrant::default() };
            window.lease_granted(now, grant);
        }
    }
}

fn engine(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let request = ChatRequest::user("hello there");
    let mut group = c.benchmark_group("engine");

    let bare = instant("bare");
    group.bench_function("bare_model_complete", |b| {
        b.to_async(&rt).iter(|| async { black_box(bare.complete(request.clone()).await.unwrap()) })
    });

    let all_ok = manager(instant("a"));
    group.bench_function("complete_all_succeed", |b| {
        b.to_async(&rt).iter(|| async { black_box(all_ok.complete(request.clone()).await.unwrap()) })
    });

    let fails = manager(SimModel::failing("a", Error::server(503, "unavailable")).keep_requests(false));
    group.bench_function("complete_primary_fails_once", |b| {
        b.to_async(&rt).iter(|| async { black_box(fails.complete(request.clone()).await.unwrap()) })
    });

    group.bench_function("bare_model_stream", |b| {
        b.to_async(&rt).iter(|| async {
            let mut s = bare.stream(request.clone()).await.unwrap();
            while let Some(item) = s.next().await {
                black_box(item.unwrap());
            }
        })
    });

    group.bench_function("stream_all_succeed", |b| {
        b.to_async(&rt).iter(|| async {
            let mut s = all_ok.stream(request.clone()).await.unwrap();
            while let Some(item) = s.next().await {
                black_box(item.unwrap());
            }
        })
    });

    group.bench_function("stream_primary_fails_once", |b| {
        b.to_async(&rt).iter(|| async {
            let mut s = fails.stream(request.clone()).await.unwrap();
            while let Some(item) = s.next().await {
                black_box(item.unwrap());
            }
        })
    });
    // Issue 18's bar: balancing and limits add <= 0.01 ms at p50 over a single target.
    let single = spread(false, HealthRegistry::new());
    group.bench_function("spread_single_target", |b| {
        b.to_async(&rt).iter(|| async { black_box(single.complete(request.clone()).await.unwrap()) })
    });
    let tier = spread(true, HealthRegistry::new());
    group.bench_function("spread_weighted_tier_with_limits", |b| {
        b.to_async(&rt).iter(|| async { black_box(tier.complete(request.clone()).await.unwrap()) })
    });
    // The same limits cluster-wide (`[state] backend = "redis"`): admitted from leases.
    let board = LeaseBoard::new();
    rt.spawn(feed(board.clone()));
    let leased = spread(true, HealthRegistry::new().with_leases(board));
    group.bench_function("spread_weighted_tier_with_leased_limits", |b| {
        b.to_async(&rt).iter(|| async { black_box(leased.complete(request.clone()).await.unwrap()) })
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
