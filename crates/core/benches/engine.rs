//! The engine's own cost per request, on instant simulated models.
//!
//! `cargo bench -p switchyard --bench engine -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use switchyard::{Backoff, ChatModel, ChatRequest, Error, FallbackManager, ModelFallback, SharedModel};
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
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
